/**
 * `imgrelay warm <files or dirs…> [--widths …] [--concurrency N]` for migrated posts (Markdown, HTML, or the built
 * site): every imgrelay URL the pages will ask for — each src, every srcset candidate, front-matter images, CSS
 * backgrounds — warmed through the admin API (`POST /warm`) once per Accept bucket browsers send, so the first reader
 * of every old post gets a cache hit. `--widths` adds the query-form widths for each source (posts whose srcset is
 * only written at build time by the hexo plugin). Exit 1 when any URL failed.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import { decodeEntities } from '../admin/html-images.js';
import { isProxyForm } from '../admin/urls.js';
import { splitRequestUrl } from '../url/request.js';
import { MigrateUsageError, parseMigrateArgs, parseWidths } from './args.js';
import { postFiles } from './files.js';
import type { Io } from './rewrite-command.js';
import { URL_TOKEN, decodeSource, widthUrl } from './urls.js';

/** One Accept header per format bucket of src/transform/negotiate.ts: AVIF (Chromium, Firefox, Safari 16+), WebP only
 * (older Safari), neither (`*\/*`: crawlers, old clients). */
export const ACCEPT_BUCKETS = {
  avif: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  webp: 'image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  base: '*/*',
} as const;

export interface AdminTarget {
  base: string;
  token: string;
}

interface UrlOutcome {
  url: string;
  ok: boolean;
  bytes: number;
  detail: string;
}

/** This form rather than the article form of `imgrelay warm`: a directory, a Markdown file, or its options. */
export function isMigrationWarm(args: string[]): boolean {
  return args.some((a) => a.startsWith('--widths') || a.startsWith('--concurrency') || /\.(md|markdown)$/i.test(a)
    || (!a.startsWith('-') && existsSync(a) && statSync(a).isDirectory()));
}

export async function migrationWarmCommand(args: string[], admin: AdminTarget, io: Io, tty: boolean): Promise<number> {
  const p = parseMigrateArgs(args, ['widths', 'concurrency'], []);
  if (p.positional.length === 0) throw new MigrateUsageError('warm: give the posts\' (or the built site\'s) files or directories');
  const widths = parseWidths(p.values.get('widths'), []);
  const concurrency = Number(p.values.get('concurrency') ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new MigrateUsageError('--concurrency: 1…64');
  const files = await postFiles(p.positional).catch((error: Error) => { throw new MigrateUsageError(error.message); });
  const urls = new Set<string>();
  for (const file of files) for (const url of proxyUrls(await readFile(file, 'utf8'), widths)) urls.add(url);
  if (urls.size === 0) {
    io.err('imgrelay: warm: no imgrelay URLs in these files (rewrite them first)\n');
    return 1;
  }
  const started = Date.now();
  const progress = progressReporter(urls.size, io, tty);
  const limit = pLimit(concurrency);
  const outcomes = await Promise.all([...urls].map((url) => limit(async () => progress(await warmUrl(url, admin)))));
  return finalReport(outcomes, Date.now() - started, io);
}

/** The imgrelay URLs of a post or page, in order, each once; with `widths`, the query-form widths of each source too. */
export function proxyUrls(text: string, widths: number[] = []): string[] {
  const found = new Set<string>();
  for (const [token] of text.matchAll(URL_TOKEN)) {
    const url = decodeEntities(token).replace(/[,;.]+$/, '');
    let parts;
    try {
      parts = splitRequestUrl(url);
    } catch {
      continue;
    }
    if (!isProxyForm(parts.pathname, parts.rawQuery)) continue;
    found.add(url);
    const source = parts.pathname === '/' ? decodeSource(parts.rawQuery) : undefined;
    const origin = new URL(url).origin;
    for (const w of source ? widths : []) found.add(widthUrl(origin, source!, w));
  }
  return [...found];
}

/** One URL in every Accept bucket; ok only when each answered 200. */
async function warmUrl(url: string, admin: AdminTarget): Promise<UrlOutcome> {
  let bytes = 0;
  const states: string[] = [];
  for (const [bucket, accept] of Object.entries(ACCEPT_BUCKETS)) {
    const answer = await postWarm(url, accept, admin);
    const result = answer.results?.[0];
    if (!result || result.status !== 200) {
      return { url, ok: false, bytes, detail: `${bucket}: ${result ? `${result.status} ${result.code} ${result.detail}` : answer.error}` };
    }
    bytes += result.bytes ?? 0;
    states.push(`${bucket} ${result.cache}`);
  }
  return { url, ok: true, bytes, detail: states.join(', ') };
}

interface WarmAnswer {
  results?: Array<{ status: number; cache?: string; bytes?: number; code?: string; detail?: string }>;
  error?: string;
}

async function postWarm(url: string, accept: string, admin: AdminTarget): Promise<WarmAnswer> {
  try {
    const response = await fetch(new URL('/warm', admin.base), { method: 'POST', body: JSON.stringify({ urls: [url], accept }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` } });
    const answer = await response.json().catch(() => ({})) as WarmAnswer & { code?: string; detail?: string };
    return response.ok ? answer : { error: `admin API ${response.status} ${answer.code ?? ''} ${answer.detail ?? ''}`.trim() };
  } catch (error) {
    return { error: `cannot reach the admin API at ${admin.base}: ${(error as Error).cause ?? (error as Error).message}` };
  }
}

/** A bar redrawn in place on a terminal; one plain line per URL otherwise (logs, CI). */
function progressReporter(total: number, io: Io, tty: boolean): (outcome: UrlOutcome) => UrlOutcome {
  let done = 0;
  let failed = 0;
  return (outcome) => {
    done++;
    if (!outcome.ok) failed++;
    if (!tty) io.err(`[${done}/${total}] ${outcome.ok ? 'ok' : 'FAILED'} ${outcome.url}\n`);
    else {
      const filled = Math.round((done / total) * 30);
      io.err(`\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${done}/${total}${failed ? `, ${failed} failed` : ''}`);
      if (done === total) io.err('\n');
    }
    return outcome;
  };
}

function finalReport(outcomes: UrlOutcome[], ms: number, io: Io): number {
  const failed = outcomes.filter((o) => !o.ok);
  const bytes = outcomes.reduce((sum, o) => sum + o.bytes, 0);
  for (const o of outcomes) io.out(`${o.ok ? 'ok    ' : 'FAILED'} ${o.url} (${o.ok ? `${o.bytes} bytes; ${o.detail}` : o.detail})\n`);
  io.out(`warmed ${outcomes.length - failed.length} of ${outcomes.length} URL(s) in ${Object.keys(ACCEPT_BUCKETS).length} Accept `
    + `buckets, ${bytes} bytes, ${(ms / 1000).toFixed(1)} s${failed.length ? `; ${failed.length} FAILED` : ''}\n`);
  return failed.length ? 1 : 0;
}
