/**
 * The Worker's purge route, `POST /_imgrelay/purge` (docs/edge.md "Purges at the edge"): for a Node service whose
 * store is not the edge's R2 bucket, its admin purge calls this as one more CDN target (`IMGRELAY_CDN_PURGE=
 * worker+https://<edge host>`, src/admin/cdn.ts). The body is the admin's (`urls`, `hosts`, `prefixes`, `tags`,
 * `all`). The purge is written to the purge log in R2, which every isolate in every data centre reads, applied
 * to the isolate that took the request at once, and its R2 entries are deleted (207 when some R2 call failed). A
 * request reaches one isolate only, so the log is what makes it a purge of the whole edge (and why the route needs
 * R2).
 *
 * Bearer tokens from IMGRELAY_EDGE_PURGE_TOKEN (a Worker secret; several, to rotate): both sides hashed with SHA-256
 * and compared in constant time against every token, like the Node admin (src/admin/auth.ts, which uses node:crypto).
 * No token configured: the route is disabled (503), never open.
 */
import { resolvePurge } from './admin/selectors.js';
import { RelayError } from './errors.js';
import type { PurgeFollower } from './edge-purge.js';
import { problemResponse } from './http/problem.js';
import type { RequestOptions } from './url/options.js';

export const EDGE_PURGE_PATH = '/_imgrelay/purge';
/** The CDN target sends at most 1000 tags of at most 200 characters (~200 KB) per call; direct calls get room too. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface EdgePurgeRouteDeps {
  tokens: readonly string[];
  /** Absent without R2: there is no log to reach the other isolates with. */
  purges?: PurgeFollower;
  legacyOptions?: RequestOptions;
  pollMs: number;
}

/** Whether a request is for the purge route (a string test first: every image request passes here). */
export function isEdgePurgeRequest(request: Request): boolean {
  return request.url.includes(EDGE_PURGE_PATH) && new URL(request.url).pathname === EDGE_PURGE_PATH;
}

export async function handleEdgePurge(request: Request, deps: EdgePurgeRouteDeps): Promise<Response> {
  try {
    if (deps.tokens.length === 0) {
      throw new RelayError('E_ADMIN_DISABLED', 'The edge purge route is disabled: set the IMGRELAY_EDGE_PURGE_TOKEN secret');
    }
    if (request.method !== 'POST') throw new RelayError('E_METHOD_NOT_ALLOWED', `POST a purge body to ${EDGE_PURGE_PATH}`);
    if (!(await tokenMatches(request.headers.get('authorization'), deps.tokens))) {
      throw new RelayError('E_UNAUTHORIZED', 'Missing or invalid bearer token: send Authorization: Bearer <token>');
    }
    if (!deps.purges) {
      throw new RelayError('E_NOT_IMPLEMENTED',
        'Edge purges need the IMGRELAY_R2 bucket: the purge log is how every isolate learns of a purge');
    }
    const { selectors } = resolvePurge(await readJson(request), deps.legacyOptions);
    const done = await deps.purges.purgeNow(selectors);
    const body = { edge: { memory: done.memory, purgeLog: done.purgeLog, r2: done.r2,
      isolates: `every isolate within ${2 * deps.pollMs} ms (the purge log in R2)` } };
    // R2 calls that failed: entries may remain (the fence still hides them): a partial result, to be retried.
    const status = done.r2 && done.r2.failures > 0 ? 207 : 200;
    return new Response(JSON.stringify(body),
      { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
  } catch (error) {
    return problemResponse(error, { negativeTtlS: 0 });
  }
}

async function readJson(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw new RelayError('E_BAD_REQUEST', `The purge body is over ${MAX_BODY_BYTES} bytes`);
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw new RelayError('E_BAD_REQUEST', `The purge body is over ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RelayError('E_BAD_REQUEST', 'The purge body is not JSON');
  }
}

/** Constant time over digests of equal length, against every token (no early exit): the timing shows nothing. */
export async function tokenMatches(authorization: string | null, tokens: readonly string[]): Promise<boolean> {
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return false;
  const presented = await digest(match[1]);
  let matched = false;
  for (const token of tokens) {
    const expected = await digest(token);
    let difference = 0;
    for (let i = 0; i < expected.length; i++) difference |= expected[i] ^ presented[i];
    matched = difference === 0 || matched;
  }
  return matched;
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}
