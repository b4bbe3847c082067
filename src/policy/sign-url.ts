/**
 * `imgrelay sign <imgrelay-url>`: the URL with its signature set (any old `s=` / `sig=` replaced), signed with the
 * first of the keys. Only the signature is touched; the rest of the URL stays as it was written. Portable.
 */
import { RelayError } from '../errors.js';
import { CF_PREFIX, type ImageRequest, parseImageRequest, splitRequestUrl } from '../url/request.js';
import { PRESET_PATH_NAME, PRESET_QUERY_NAME, type PresetTable } from '../url/presets.js';
import type { Signer } from './signature.js';

/** A URL that cannot be signed, and why (the CLI prints it and exits 2). */
export class UnsignableUrl extends Error {}

/** The name of a `name=value` pair, percent-decoded when it can be (a malformed one is kept as written). */
function pairName(pair: string): string {
  const name = pair.split('=', 1)[0].trim();
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** Whether the URL carries `p=` (query form) or `preset=` (path form). */
function namesPreset(form: ImageRequest['form'], pathname: string, rawQuery: string): boolean {
  if (form === 'query') return new URLSearchParams(rawQuery).has(PRESET_QUERY_NAME);
  const segment = pathname.slice(CF_PREFIX.length).split('/', 1)[0];
  return segment.split(',').some((pair) => pairName(pair) === PRESET_PATH_NAME);
}

function parsed(url: string, presets?: PresetTable): ImageRequest {
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UnsignableUrl(`not an absolute http(s) URL: ${url}`);
  const { pathname, rawQuery } = splitRequestUrl(url);
  let request: ImageRequest | undefined;
  try {
    request = parseImageRequest(pathname, rawQuery, undefined, presets);
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    throw new UnsignableUrl(`not a valid imgrelay image URL: ${error.detail}`);
  }
  if (!request) throw new UnsignableUrl('not an imgrelay image URL: expected /?url=<source>&… or /cdn-cgi/image/<options>/<source>');
  if (request.form === 'legacy') {
    throw new UnsignableUrl('the legacy /?<source> form cannot carry a signature: write it as /?url=<source> or /cdn-cgi/image/<options>/<source>');
  }
  if (Object.keys(presets ?? {}).length === 0 && namesPreset(request.form, pathname, rawQuery)) {
    throw new UnsignableUrl('the URL names a preset but IMGRELAY_PRESETS is not set here: a preset URL is signed over the '
      + 'preset\'s options, so give this command the service\'s IMGRELAY_PRESETS');
  }
  return request;
}

/** `presets`: the service's IMGRELAY_PRESETS, so `p=`/`preset=` URLs sign as the service expands them. */
export async function signImageUrl(url: string, signer: Signer, presets?: PresetTable): Promise<string> {
  const request = parsed(url, presets);
  const signature = await signer.sign(request);
  const { pathname, rawQuery, pathAndQuery } = splitRequestUrl(url);
  const origin = url.slice(0, url.length - pathAndQuery.length);
  if (request.form === 'query') {
    const pairs = rawQuery.split('&').filter((pair) => pair !== '' && pairName(pair) !== 's');
    return `${origin}${pathname}?${[...pairs, `s=${signature}`].join('&')}`;
  }
  const rest = pathname.slice(CF_PREFIX.length);
  const slash = rest.indexOf('/');
  const options = rest.slice(0, slash).split(',').filter((pair) => pair.trim() !== '' && pairName(pair) !== 'sig');
  const source = rest.slice(slash) + (rawQuery === '' ? '' : `?${rawQuery}`);
  return `${origin}${CF_PREFIX}${[...options, `sig=${signature}`].join(',')}${source}`;
}
