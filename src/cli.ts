/**
 * The `imgrelay` command (bin/imgrelay.js runs its compiled form, dist/node/cli.js):
 *   imgrelay serve                       run the service (IMGRELAY_* variables)
 *   imgrelay purge <url…> [--host h] [--prefix p] [--tag t] [--all]
 *   imgrelay warm <file-or-url…> [--base <article URL>]
 *   imgrelay reindex                     index entries stored before the purge index (talks to the store itself)
 *   imgrelay sign <imgrelay-url>         prints the URL signed with the first of IMGRELAY_SIGNING_KEYS
 *   imgrelay placeholder-hash <file…>    print the header-rule placeholder entries of saved hotlink placeholders
 *   imgrelay rewrite <dir-or-files…> --base URL …   moves posts off the old CORS worker (src/migrate/)
 *   imgrelay warm <posts or dirs…> [--widths …]     warms every URL migrated posts ask for (src/migrate/)
 * Admin commands talk to the admin API: IMGRELAY_ADMIN_URL (default http://<IMGRELAY_ADMIN_HOST>:<IMGRELAY_ADMIN_PORT>,
 * i.e. http://127.0.0.1:8081), token from IMGRELAY_ADMIN_TOKEN (or the first of IMGRELAY_ADMIN_TOKENS). `--json`
 * prints the API's answer as it is. Exit 0 on success, 1 when something failed, 2 on a usage error.
 */
import { readFile } from 'node:fs/promises';
import { openStore } from './cache/node-store.js';
import { markReindexed, reindexStore } from './cache/reindex.js';
import { withStoreIndex } from './cache/store-index.js';
import { type Config, ConfigError, parseConfig } from './config.js';
import { silentLogger } from './logger.js';
import { main } from './node.js';
import { SIGNATURE_VARS } from './policy/signature-config.js';
import { createSigner } from './policy/signature.js';
import { UnsignableUrl, signImageUrl } from './policy/sign-url.js';
import { parsePresets } from './url/presets.js';
import { placeholderHashCommand } from './fetch/placeholder-hash.js';
import { MigrateUsageError } from './migrate/args.js';
import { rewriteCommand } from './migrate/rewrite-command.js';
import { isMigrationWarm, migrationWarmCommand } from './migrate/warm-command.js';

const USAGE = `usage:
  imgrelay serve                                   run the service (configured by IMGRELAY_* variables)
  imgrelay purge <url…> [--host H] [--prefix P] [--tag T] [--all] [--json]
                                                   purge proxy or source URLs (every variant), hosts, source URL
                                                   prefixes, tags or everything, from every tier, instance and CDN
  imgrelay warm <file-or-url…> [--base URL] [--json]
                                                   warm image URLs, the images of HTML files (relative links resolved
                                                   against --base), or the URLs listed in text files (one per line)
  imgrelay reindex                                 write the purge index for entries stored before it existed (the
                                                   service does this once by itself at start-up; this runs it again)
  imgrelay sign <imgrelay-url>                     print the URL signed with the first key of IMGRELAY_SIGNING_KEYS
  imgrelay placeholder-hash <file…>                print the placeholder entries (exact and perceptual) of hotlink
                                                   placeholder images, for a rule in the IMGRELAY_HEADER_RULES file
  imgrelay rewrite <dir-or-files…> --base URL [--widths 480,800,1200] [--sizes S] [--include-bare-hosts GLOBS]
                   [--metadata URL] [--dry-run]    move .md/.markdown/.html posts off the old CORS worker
  imgrelay warm <posts, site or dirs…> [--widths W] [--concurrency N]
                                                   warm every imgrelay URL those pages ask for, in every Accept bucket
admin commands use IMGRELAY_ADMIN_URL (default http://127.0.0.1:8081) and IMGRELAY_ADMIN_TOKEN`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal (progress bars redraw in place). */
  tty?: boolean;
}

type Env = Record<string, string | undefined>;
const processIo: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t),
  tty: process.stderr.isTTY === true };

class UsageError extends Error {}

export async function runCli(args: string[], env: Env = process.env, io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === 'serve') {
      await main(env);
      return 0;
    }
    if (command === 'purge') return await purgeCommand(parseArgs(rest, ['host', 'prefix', 'tag']), env, io);
    if (command === 'rewrite') return await rewriteCommand(rest, io);
    if (command === 'warm' && isMigrationWarm(rest)) {
      return await migrationWarmCommand(rest, { base: adminBase(env), token: adminToken(env) }, io, io.tty ?? false);
    }
    if (command === 'warm') return await warmCommand(parseArgs(rest, ['base']), env, io);
    if (command === 'reindex') return await reindexCommand(env, io);
    if (command === 'sign') return await signCommand(rest, env, io);
    if (command === 'placeholder-hash') return await placeholderHash(rest, io);
    const help = command === undefined || command === 'help' || command === '--help' || command === '-h';
    (help ? io.out : io.err)(`${USAGE}\n`);
    return help ? 0 : 2;
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof MigrateUsageError)) throw error;
    io.err(`imgrelay: ${error.message}\n${USAGE}\n`);
    return 2;
  }
}

interface Parsed {
  positional: string[];
  values: Record<string, string[]>;
  flags: Set<string>;
}

function parseArgs(args: string[], valued: string[]): Parsed {
  const parsed: Parsed = { positional: [], values: {}, flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(arg);
    if (!match) {
      parsed.positional.push(arg);
      continue;
    }
    const [, name, inline] = match;
    if (!valued.includes(name)) {
      if (!['all', 'json'].includes(name)) throw new UsageError(`unknown option --${name}`);
      parsed.flags.add(name);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    (parsed.values[name] ??= []).push(value);
  }
  return parsed;
}

async function purgeCommand(p: Parsed, env: Env, io: CliIo): Promise<number> {
  const body: Record<string, unknown> = p.flags.has('all') ? { all: true } : {};
  if (p.positional.length) body.urls = p.positional;
  if (p.values.host) body.hosts = p.values.host;
  if (p.values.prefix) body.prefixes = p.values.prefix;
  if (p.values.tag) body.tags = p.values.tag;
  if (Object.keys(body).length === 0) throw new UsageError('purge: give URLs, --host, --prefix, --tag or --all');
  const answer = await callAdmin('/purge', body, env, io);
  if (!answer) return 1;
  if (p.flags.has('json')) io.out(`${JSON.stringify(answer, null, 2)}\n`);
  else io.out(describePurge(answer as unknown as PurgeAnswer));
  // A partial purge (207: a store, the purge log or a CDN not reached) fails the command, so scripts notice.
  return (answer as unknown as PurgeAnswer).status === 'partial' ? 1 : 0;
}

interface PurgeAnswer {
  memory: number; store: number | null; instances: string; storeSkipped?: number;
  cdn: Array<{ target: string; ok: boolean; detail: string; retrying?: boolean }>; warnings?: string[];
  status?: 'complete' | 'partial';
  tiers?: Array<{ tier: string; where: string; state: string; removed?: number; fenced?: number; skipped?: number;
    detail: string }>;
}

function describePurge(a: PurgeAnswer): string {
  // Objects in the store that are not imgrelay's (a shared bucket) are left alone: say how many were met.
  const skipped = a.storeSkipped ? ` (skipped ${a.storeSkipped} object(s) that are not imgrelay keys)` : '';
  const lines = [`purged: memory ${a.memory}, store ${a.store ?? 'none'}${skipped}`, `other instances: ${a.instances}`];
  for (const c of a.cdn) lines.push(`cdn ${c.target}: ${c.ok ? 'ok' : 'FAILED'} (${c.detail})${c.retrying ? ', retrying' : ''}`);
  for (const w of a.warnings ?? []) lines.push(`warning: ${w}`);
  if (a.tiers) lines.push(`${a.status === 'partial' ? 'PARTIAL' : 'complete'}, per tier:`, ...a.tiers.map(describeTier));
  return `${lines.join('\n')}\n`;
}

/** `  memory 3f2a…: done, removed 3, fenced 1 (detail)`; a store row also `, skipped 2` when it met foreign objects. */
function describeTier(t: NonNullable<PurgeAnswer['tiers']>[number]): string {
  const counts = [t.removed === undefined ? '' : `, removed ${t.removed}`, t.fenced === undefined ? '' : `, fenced ${t.fenced}`,
    t.skipped === undefined ? '' : `, skipped ${t.skipped}`];
  return `  ${t.tier} ${t.where}: ${t.state === 'failed' ? 'NOT REACHED' : t.state}${counts.join('')} (${t.detail})`;
}

async function warmCommand(p: Parsed, env: Env, io: CliIo): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('warm: give image URLs or files');
  const base = p.values.base?.[0];
  const urls = p.positional.filter((item) => /^https?:\/\//i.test(item));
  const bodies: object[] = urls.length ? [{ urls }] : [];
  for (const file of p.positional.filter((item) => !/^https?:\/\//i.test(item))) bodies.push(await warmFileBody(file, base));
  let failed = 0;
  for (const body of bodies) {
    const answer = await callAdmin('/warm', body, env, io) as WarmAnswer | undefined;
    if (!answer) return 1;
    failed += answer.failed;
    if (p.flags.has('json')) io.out(`${JSON.stringify(answer, null, 2)}\n`);
    else io.out(describeWarm(answer));
  }
  return failed === 0 ? 0 : 1;
}

/** An HTML file (by extension or content) is sent whole; any other file lists URLs, one per line. */
async function warmFileBody(file: string, base: string | undefined): Promise<object> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (/\.html?$/i.test(file) || /<[a-z!]/i.test(text)) return base ? { html: text, base } : { html: text };
  const urls = text.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  if (urls.length === 0) throw new UsageError(`${file}: no URLs in it`);
  return { urls };
}

interface WarmAnswer {
  total: number; ok: number; failed: number;
  results: Array<{ url: string; status: number; cache?: string; bytes?: number; code?: string; detail?: string }>;
}

function describeWarm(a: WarmAnswer): string {
  const lines = a.results.map((r) => (r.status === 200
    ? `${r.status} ${r.cache} ${r.bytes} bytes ${r.url}` : `${r.status} ${r.code} ${r.url}: ${r.detail}`));
  lines.push(`warmed ${a.ok} of ${a.total}${a.failed ? `, ${a.failed} failed` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** Opens the configured store (IMGRELAY_STORE …) directly and writes the markers of every source in it. */
async function reindexCommand(env: Env, io: CliIo): Promise<number> {
  let config: Config;
  try {
    config = parseConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`imgrelay: ${error.message}\n`);
    return 2;
  }
  const store = await openStore(config, silentLogger);
  if (!store) throw new UsageError('reindex: IMGRELAY_STORE=none has no store to index');
  try {
    const { sources } = await reindexStore(store, withStoreIndex(store).mark);
    await markReindexed(store);
    io.out(`indexed ${sources} source(s) in the ${store.kind} store\n`);
    // A directory store reads its markers at start-up: a running service sees these after a restart.
    if (store.kind === 'fs') io.out('restart the service if it is running on this directory\n');
    return 0;
  } catch (error) {
    io.err(`imgrelay: reindex failed (run it again): ${(error as Error).message}\n`);
    return 1;
  } finally {
    await store.close?.();
  }
}

/** Signs one URL offline: only the keys are read, so it runs wherever the service's key is at hand. */
async function signCommand(args: string[], env: Env, io: CliIo): Promise<number> {
  if (args.length !== 1) throw new UsageError('sign: give exactly one imgrelay URL (quote it: it contains & or ?)');
  const keys = SIGNATURE_VARS.SIGNING_KEYS[0].safeParse(env.IMGRELAY_SIGNING_KEYS ?? '');
  if (!keys.success) throw new UsageError(`IMGRELAY_SIGNING_KEYS: expected ${keys.error.issues[0]?.message}`);
  if (keys.data.length === 0) throw new UsageError('sign: set IMGRELAY_SIGNING_KEYS (the service\'s keys; the first signs)');
  const presets = presetsOf(env);
  try {
    io.out(`${await signImageUrl(args[0], createSigner(keys.data), presets)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UnsignableUrl) throw new UsageError(`sign: ${error.message}`);
    throw error;
  }
}

/** IMGRELAY_PRESETS as the service expands them (a `p=` URL signs as its options). */
function presetsOf(env: Env) {
  try {
    return parsePresets(env.IMGRELAY_PRESETS ?? '');
  } catch (error) {
    throw new UsageError(`IMGRELAY_PRESETS: ${(error as Error).message}`);
  }
}

function adminBase(env: Env): string {
  if (env.IMGRELAY_ADMIN_URL) return env.IMGRELAY_ADMIN_URL;
  const host = env.IMGRELAY_ADMIN_HOST && env.IMGRELAY_ADMIN_HOST !== '0.0.0.0' ? env.IMGRELAY_ADMIN_HOST : '127.0.0.1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${env.IMGRELAY_ADMIN_PORT || '8081'}`;
}

function adminToken(env: Env): string {
  const token = env.IMGRELAY_ADMIN_TOKEN || (env.IMGRELAY_ADMIN_TOKENS ?? '').split(',')[0]?.trim();
  if (!token) throw new UsageError('no token: set IMGRELAY_ADMIN_TOKEN to one of the service\'s IMGRELAY_ADMIN_TOKENS');
  return token;
}

/** POSTs to the admin API; prints the problem and resolves undefined on any failure. */
async function callAdmin(path: string, body: object, env: Env, io: CliIo): Promise<Record<string, unknown> | undefined> {
  const token = adminToken(env);
  const url = new URL(path, adminBase(env));
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
  } catch (error) {
    io.err(`imgrelay: cannot reach the admin API at ${url.origin}: ${(error as Error).cause ?? (error as Error).message}\n`);
    return undefined;
  }
  const answer = await response.json().catch(() => ({})) as Record<string, unknown>;
  if (response.ok) return answer;
  io.err(`imgrelay: ${path.slice(1)} failed: ${response.status} ${answer.code ?? ''} ${answer.detail ?? ''}`.trimEnd() + '\n');
  return undefined;
}

async function placeholderHash(files: string[], io: CliIo): Promise<number> {
  if (files.length === 0 || files.some((file) => file.startsWith('--'))) {
    throw new UsageError('placeholder-hash takes the image files to hash');
  }
  return placeholderHashCommand(files, io);
}
