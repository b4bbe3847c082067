/**
 * Admins hand in URLs as they see them: a proxy URL in any of the three forms (ours, or the old CORS worker's
 * `https://cors.zfour.workers.dev/?<url>`), or the source URL itself. This tells them apart and turns each into the
 * canonical ImageRequest the public route would build, so purge and warm address exactly the cached entries.
 */
import { fail } from '../errors.js';
import type { RequestOptions } from '../url/options.js';
import {
  CF_PREFIX, type ImageRequest, LEGACY_PREFIX, parseImageRequest, parseSourceUrl, splitRequestUrl,
} from '../url/request.js';
import type { PresetTable } from '../url/presets.js';


export interface AddressedImage {
  /** The URL as given (absolute). */
  url: string;
  /** True when `url` is a proxy URL (a CDN may cache exactly that URL); false for a bare source URL. */
  proxy: boolean;
  request: ImageRequest;
}

/** Whether a raw path and query are one of the three proxy forms (not a plain image URL). */
export function isProxyForm(pathname: string, rawQuery: string): boolean {
  if (pathname.startsWith(CF_PREFIX)) return true;
  if (pathname !== '/') return false;
  return LEGACY_PREFIX.test(rawQuery) || new URLSearchParams(rawQuery).has('url');
}

/**
 * Resolves `input` (against `base` when relative) and parses it. Throws RelayError E_BAD_REQUEST when it is not an
 * absolute http(s) URL or a proxy URL whose options do not parse.
 */
export function addressImage(input: string,
  options: { base?: string; legacyOptions?: RequestOptions; presets?: PresetTable } = {}): AddressedImage {
  const url = absolute(input.trim(), options.base);
  const { pathname, rawQuery } = splitRequestUrl(url);
  if (isProxyForm(pathname, rawQuery)) {
    const request = parseImageRequest(pathname, rawQuery, options.legacyOptions, options.presets);
    if (request) return { url, proxy: true, request: checkScheme(request, input) };
  }
  const source = parseSourceUrl(url);
  return { url, proxy: false, request: checkScheme({ form: 'legacy', source, options: NO_OPTIONS }, input) };
}

const NO_OPTIONS: RequestOptions = Object.freeze({ spec: Object.freeze({}), response: Object.freeze({}) });

function absolute(input: string, base: string | undefined): string {
  if (/^https?:\/\//i.test(input)) return input;
  if (input.startsWith('//') && base) return `${new URL(base).protocol}${input}`;
  if (base) {
    try {
      return new URL(input, base).href;
    } catch {
      // fall through to the error below
    }
  }
  return fail('E_BAD_REQUEST', `Not an absolute http(s) URL: ${JSON.stringify(input.slice(0, 200))}`);
}

function checkScheme(request: ImageRequest, input: string): ImageRequest {
  const protocol = request.source.protocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    fail('E_BAD_REQUEST', `Not an http(s) image URL: ${JSON.stringify(input.slice(0, 200))}`);
  }
  return request;
}
