/**
 * Helpers for the admin tests: calling the admin API of a booted node, reading what each tier holds (by source),
 * and small distinct images whose bytes tell versions apart.
 */
import sharp from 'sharp';
import { sha256Hex } from '../../src/cache/keys.js';
import type { RunningNode } from '../../src/node.js';
import { bytes, digest } from './imgrelay.js';
import type { TestOrigin } from './origin.js';

export const TOKEN_A = 'token-a-0123456789abcdef';
export const TOKEN_B = 'token-b-fedcba9876543210';

export interface AdminCall {
  method?: string;
  body?: unknown;
  /** Bearer token; `null` sends no Authorization header. */
  token?: string | null;
}

export function adminFetch(node: RunningNode, path: string, call: AdminCall = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = call.token === undefined ? TOKEN_A : call.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${node.adminUrl}${path}`, {
    method: call.method ?? (call.body === undefined ? 'GET' : 'POST'), headers,
    body: call.body === undefined ? undefined : typeof call.body === 'string' ? call.body : JSON.stringify(call.body),
  });
}

/** POST /purge; fails the test unless it answers `status` (200: every tier reached; 207: a partial purge). */
export async function purge(node: RunningNode, body: unknown, status: 200 | 207 = 200): Promise<PurgeAnswer> {
  const response = await adminFetch(node, '/purge', { body });
  const answer = await response.json() as PurgeAnswer;
  if (response.status !== status) throw new Error(`purge answered ${response.status}: ${JSON.stringify(answer)}`);
  return answer;
}

export interface PurgeAnswer {
  memory: number;
  store: number | null;
  instances: string;
  purgeLog?: string;
  cdn: Array<{ target: string; ok: boolean; detail: string; retrying?: boolean }>;
  warnings?: string[];
  status: 'complete' | 'partial';
  instance: string;
  tiers: Array<{ tier: string; where: string; state: 'done' | 'failed' | 'none'; removed?: number; fenced?: number;
    detail: string }>;
  unreached: string[];
}

/** Canonical source URLs with at least one entry (positive or negative) in the memory tier. */
export function memorySources(node: RunningNode): Set<string> {
  const sources = new Set<string>();
  node.memory.deleteWhere((source) => {
    sources.add(source);
    return false;
  });
  return sources;
}

/** Source-hash directories present in the store (purge log excluded), after pending writes landed. */
export async function storeDirs(node: RunningNode): Promise<Set<string>> {
  await node.store?.writes.drain(10_000);
  const dirs = new Set<string>();
  // Entries only: the purge log (`_purge/`) and the purge index (`_index/`) are not cache entries.
  for await (const key of node.store!.raw.list('')) if (!key.startsWith('_')) dirs.add(key.slice(0, 64));
  return dirs;
}

export async function storeKeys(node: RunningNode, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of node.store!.raw.list(prefix)) keys.push(key);
  return keys;
}

export const hashOf = (source: string) => sha256Hex(source);

/** GET and read: status, X-Cache and a digest of the body. */
export async function fetchImage(url: string, headers: Record<string, string> = {})
  : Promise<{ status: number; cache: string | null; digest: string; headers: Headers }> {
  const response = await fetch(url, { headers });
  const body = await bytes(response);
  return { status: response.status, cache: response.headers.get('x-cache'), digest: digest(body), headers: response.headers };
}

/** A small PNG of one colour: different colours are different bytes. */
export async function solidPng(colour: string, width = 40, height = 30): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer());
}

/** Serves `/<name>.png` on the origin for each [name, colour]: a solid PNG of that colour. */
export async function serveSolidPngs(origin: TestOrigin, images: Array<[string, string]>, width?: number, height?: number)
  : Promise<void> {
  for (const [name, colour] of images) origin.serve(`/${name}.png`, await solidPng(colour, width, height), 'image/png');
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it did (a deadline, not a timing). */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return check();
}

/** Waits for a synchronous `condition`, failing the test when it is not met within `boundMs` (a deadline). */
export async function until(condition: () => boolean, boundMs: number): Promise<void> {
  if (!(await eventually(async () => condition(), boundMs, 10))) throw new Error(`condition not met within ${boundMs} ms`);
}
