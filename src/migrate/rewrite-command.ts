/**
 * `imgrelay rewrite <dir-or-files…> --base URL [--widths 480,800,1200] [--sizes "…"] [--include-bare-hosts globs]
 * [--metadata URL] [--dry-run]`: moves a blog's posts off the old CORS worker. Per file: rewritten / unchanged /
 * REFUSED (cannot be parsed: left untouched); `--dry-run` prints a unified diff instead of writing.
 * Exit 0 when every file was handled, 1 when any was refused, 2 on a usage error.
 */
import { MigrateUsageError, parseList, parseMigrateArgs, parseWidths } from './args.js';
import { unifiedDiff } from './diff.js';
import { NotUtf8, postFiles, readPost, writeAtomically } from './files.js';
import { serviceSizeOf } from './metadata.js';
import type { RewriteOptions } from './rewrite-html.js';
import { Unparsable, rewriteFile } from './rewrite.js';
import { normaliseBase, urlPolicy } from './urls.js';

export const DEFAULT_WIDTHS = [480, 800, 1200];

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export async function rewriteCommand(args: string[], io: Io): Promise<number> {
  const p = parseMigrateArgs(args, ['base', 'widths', 'sizes', 'include-bare-hosts', 'metadata'], ['dry-run']);
  if (p.positional.length === 0) throw new MigrateUsageError('rewrite: give the posts\' directories or files');
  const options = rewriteOptions(p.values);
  const dryRun = p.flags.has('dry-run');
  const counts = { rewritten: 0, unchanged: 0, refused: 0 };
  for (const file of await postFiles(p.positional).catch((error: Error) => { throw new MigrateUsageError(error.message); })) {
    const outcome = await rewriteOne(file, options, dryRun, io);
    counts[outcome]++;
  }
  const verb = dryRun ? 'would rewrite' : 'rewrote';
  io.out(`${verb} ${counts.rewritten}, unchanged ${counts.unchanged}, refused ${counts.refused}\n`);
  return counts.refused ? 1 : 0;
}

function rewriteOptions(values: Map<string, string>): RewriteOptions {
  const raw = values.get('base');
  if (!raw) throw new MigrateUsageError('rewrite: --base <imgrelay URL> is required (e.g. https://img.example.com)');
  let base: string;
  try {
    base = normaliseBase(raw);
  } catch (error) {
    throw new MigrateUsageError((error as Error).message);
  }
  return {
    policy: urlPolicy(base, parseList(values.get('include-bare-hosts'))),
    widths: parseWidths(values.get('widths'), DEFAULT_WIDTHS),
    sizes: values.get('sizes'),
    sizeOf: serviceSizeOf(values.get('metadata') ?? base),
  };
}

async function rewriteOne(file: string, options: RewriteOptions, dryRun: boolean, io: Io) {
  let before;
  let result;
  try {
    before = await readPost(file);
    result = await rewriteFile(before, options);
  } catch (error) {
    if (!(error instanceof Unparsable || error instanceof NotUtf8)) throw error;
    io.out(`REFUSED    ${file}: ${error.message} (left untouched)\n`);
    return 'refused' as const;
  }
  for (const source of new Set(result.unsized)) io.out(`  note: ${file}: size of ${source} unknown, no srcset/width/height\n`);
  if (!result.changed) {
    io.out(`unchanged  ${file}\n`);
    return 'unchanged' as const;
  }
  io.out(`${dryRun ? 'would rewrite' : 'rewritten'}  ${file}: ${result.moved} URL(s) moved, ${result.enriched} <img> given size/srcset/lazy\n`);
  if (dryRun) io.out(unifiedDiff(file, before, result.text));
  else await writeAtomically(file, result.text);
  return 'rewritten' as const;
}
