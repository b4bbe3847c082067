/**
 * Telling the three URL forms apart (DESIGN.md "Telling the forms apart", exactly) and turning each into one
 * canonical request: the same image through any form is the same cache entry. Portable.
 */
import { fail } from '../errors.js';
import { type RequestOptions, parseCfOptions, withCfDefaults } from './options.js';
import { type PresetTable, parseQueryWithPreset, pathPresetName, withPreset } from './presets.js';

export type RequestForm = 'legacy' | 'query' | 'path';

export interface ImageRequest {
  form: RequestForm;
  /** Parsed once; its `href` is the canonical source, and exactly that is fetched. */
  source: URL;
  options: RequestOptions;
}

export const LEGACY_PREFIX = /^https?(:|%3a|%253a)/i;
export const CF_PREFIX = '/cdn-cgi/image/';
const NO_OPTIONS: RequestOptions = Object.freeze({ spec: Object.freeze({}), response: Object.freeze({}) });

/**
 * Parses the public image URL. `rawQuery` is everything after the first `?`, undecoded ('' when none).
 * `legacyOptions` (IMGRELAY_LEGACY_OPTIONS, parsed once at start-up) apply to the legacy form; `presets`
 * (IMGRELAY_PRESETS) are expanded here, so `p=thumb` and its spelled-out options are one request (presets.ts).
 * Returns undefined when the path is not an image route (the caller answers 404).
 */
export function parseImageRequest(
  pathname: string, rawQuery: string, legacyOptions: RequestOptions = NO_OPTIONS, presets?: PresetTable,
): ImageRequest | undefined {
  if (pathname === '/') return parseRootRequest(rawQuery, legacyOptions, presets);
  if (pathname.startsWith(CF_PREFIX)) return parsePathForm(pathname.slice(CF_PREFIX.length), rawQuery, presets);
  return undefined;
}

function parseRootRequest(rawQuery: string, legacyOptions: RequestOptions, presets?: PresetTable): ImageRequest {
  if (LEGACY_PREFIX.test(rawQuery)) {
    return { form: 'legacy', source: parseSourceUrl(decodeLegacy(rawQuery)), options: legacyOptions };
  }
  const params = new URLSearchParams(rawQuery);
  const url = params.get('url');
  if (url === null || url === '') fail('E_BAD_REQUEST', 'Missing source URL: use /?<url>, /?url=<url>&… or /cdn-cgi/image/<options>/<url>');
  params.delete('url');
  return { form: 'query', source: parseSourceUrl(withDefaultScheme(url)), options: parseQueryWithPreset(params, presets) };
}

/** `/cdn-cgi/image/<k=v,…>/<source>`: the source is the raw path remainder plus the request's own query. */
function parsePathForm(rest: string, rawQuery: string, presets?: PresetTable): ImageRequest {
  const slash = rest.indexOf('/');
  if (slash <= 0) fail('E_BAD_REQUEST', 'Expected /cdn-cgi/image/<options>/<source URL>');
  const segment = safeDecode(rest.slice(0, slash));
  const parsed = parseCfOptions(segment);
  const preset = withPreset(parsed, pathPresetName(segment), presets);
  // Cloudflare's defaults fill what the URL leaves open, unless an operator's preset defines the variant: then
  // `preset=thumb` is exactly `p=thumb` (one entry, and IMGRELAY_PRESETS_ONLY admits it).
  const options = preset === parsed ? withCfDefaults(parsed) : preset;
  let source = rest.slice(slash + 1) + (rawQuery === '' ? '' : `?${rawQuery}`);
  // The source may arrive percent-encoded as one path segment (`https%3A%2F%2F…`).
  if (/^https?%3a/i.test(source)) source = safeDecode(source);
  if (!/^https?:/i.test(source)) fail('E_BAD_REQUEST', 'The path form needs an absolute http(s) source URL');
  return { form: 'path', source: parseSourceUrl(source), options };
}

/**
 * The source URL inside `url` when `url` is itself an image-proxy URL in one of the three forms (this service's,
 * weserv's `/?url=`, Cloudflare's `/cdn-cgi/image/`), undefined otherwise. Options are not parsed (an invalid
 * option must not hide the nesting); the loop guard uses this to follow a chain of proxies to its end.
 */
export function nestedSourceUrl(url: URL): string | undefined {
  const rawQuery = url.search.slice(1);
  try {
    if (url.pathname === '/' && rawQuery !== '') {
      if (LEGACY_PREFIX.test(rawQuery)) return decodeLegacy(rawQuery);
      const inner = new URLSearchParams(rawQuery).get('url');
      return inner ? withDefaultScheme(inner) : undefined;
    }
    if (!url.pathname.startsWith(CF_PREFIX)) return undefined;
    const rest = url.pathname.slice(CF_PREFIX.length);
    const slash = rest.indexOf('/');
    const inner = slash <= 0 ? '' : rest.slice(slash + 1) + url.search;
    return /^https?%3a/i.test(inner) ? safeDecode(inner) : /^https?:/i.test(inner) ? inner : undefined;
  } catch {
    return undefined; // malformed encoding: not a usable proxy URL, so not a hop of a chain
  }
}

/** The raw path and query of an absolute URL string, undecoded, exactly as the client sent them. */
export function splitRequestUrl(url: string): { pathname: string; rawQuery: string; pathAndQuery: string } {
  const authority = url.indexOf('//');
  const pathStart = url.indexOf('/', authority === -1 ? 0 : authority + 2);
  if (pathStart === -1) return { pathname: '/', rawQuery: '', pathAndQuery: '/' };
  const queryStart = url.indexOf('?', pathStart);
  return {
    pathname: queryStart === -1 ? url.slice(pathStart) : url.slice(pathStart, queryStart),
    rawQuery: queryStart === -1 ? '' : url.slice(queryStart + 1),
    pathAndQuery: url.slice(pathStart),
  };
}

/** The legacy query may be percent-encoded once or twice; a raw one is never decoded (`%2F` in paths survive). */
function decodeLegacy(rawQuery: string): string {
  let value = rawQuery;
  for (let round = 0; round < 2 && !/^https?:/i.test(value); round++) value = safeDecode(value);
  if (!/^https?:/i.test(value)) fail('E_BAD_REQUEST', 'The source URL is encoded more than twice');
  return value;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return fail('E_BAD_REQUEST', 'Malformed percent-encoding in the URL');
  }
}

/** weserv accepts `url=example.com/a.jpg` and `url=//example.com/a.jpg`: both mean http. */
function withDefaultScheme(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  return url.startsWith('//') ? `http:${url}` : `http://${url}`;
}

export function parseSourceUrl(value: string): URL {
  try {
    const url = new URL(value);
    url.hash = '';
    return url;
  } catch {
    return fail('E_BAD_REQUEST', 'The source URL cannot be parsed');
  }
}
