/**
 * Success responses for images (DESIGN.md "Responses"): every header a browser and a CDN need, 304 on a matching
 * If-None-Match with the same caching headers, HEAD without a body. Headers are plain objects (the fast path of
 * @hono/node-server writes them directly).
 */
import type { EntryMeta, StoredEntry } from '../cache/types.js';
import type { CacheState } from '../cache/tiered.js';

/** Headers every image response carries, whatever the entry. */
const STATIC_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': '*',
  'cross-origin-resource-policy': 'cross-origin',
  'timing-allow-origin': '*',
  'x-content-type-options': 'nosniff',
  // An SVG relayed as-is must not run scripts or load anything when opened directly.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
  'referrer-policy': 'no-referrer',
});

/** What shapes an image response's headers, besides the entry itself. */
export interface HeaderOptions {
  state: CacheState;
  varyAccept: boolean;
  /** From cache-control.ts (the entry's freshness under the configured ceiling), or a fallback's own. */
  cacheControl: string;
  /** `Age` in whole seconds since the entry was fetched; absent for stand-ins (fallbacks). */
  age?: string;
  filename?: string;
  serverTiming?: string;
  /** Extra headers (e.g. the fallback marker). */
  extra?: Record<string, string>;
}

export interface ImageResponseOptions extends HeaderOptions {
  method: string;
  ifNoneMatch: string | null;
}

export function imageResponse(entry: StoredEntry, options: ImageResponseOptions): Response {
  if (options.ifNoneMatch !== null && etagMatches(options.ifNoneMatch, entry.meta.etag)) {
    return new Response(null, { status: 304, headers: cachingHeaders(entry.meta, options) });
  }
  const body = options.method === 'HEAD' ? null : entry.body as Uint8Array<ArrayBuffer>;
  return new Response(body, { status: 200, headers: imageHeaders(entry, options) });
}

/** Every header of a 200 for `entry` (the fast hit path prepares these once per entry). */
export function imageHeaders(entry: StoredEntry, options: HeaderOptions): Record<string, string> {
  const headers = cachingHeaders(entry.meta, options);
  headers['content-type'] = entry.meta.contentType;
  headers['content-length'] = String(entry.body.byteLength);
  if (options.filename) headers['content-disposition'] = contentDisposition(options.filename, entry.meta.contentType);
  return headers;
}

/** The headers a 304 repeats from the 200 (RFC 9110 §15.4.5): validators, caching, CORS, security. */
function cachingHeaders(meta: EntryMeta, options: HeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {
    ...STATIC_HEADERS,
    etag: meta.etag,
    'last-modified': new Date(meta.storedAt).toUTCString(),
    'cache-control': options.cacheControl,
    'x-cache': options.state,
    'surrogate-key': meta.tags.join(' '),
    'cache-tag': meta.tags.join(','),
  };
  if (options.age !== undefined) headers.age = options.age;
  if (options.varyAccept) headers.vary = 'Accept';
  if (options.serverTiming) headers['server-timing'] = options.serverTiming;
  if (options.extra) Object.assign(headers, options.extra);
  return headers;
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` prefixes are ignored; `*` matches. */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === bare);
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif', 'image/webp': 'webp', 'image/avif': 'avif',
  'image/svg+xml': 'svg', 'image/tiff': 'tiff', 'image/bmp': 'bmp', 'image/x-icon': 'ico', 'image/heif': 'heif',
  'image/jxl': 'jxl',
};

/** `inline; filename="name.ext"` with a safe ASCII name (weserv's `filename`: letters, digits, - and _ only). */
function contentDisposition(filename: string, contentType: string): string {
  const safe = filename.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 100) || 'image';
  return `inline; filename="${safe}.${EXTENSIONS[contentType] ?? 'bin'}"`;
}
