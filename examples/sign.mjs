// Signs an imgrelay URL in a page template (README "Signed URLs"): plain Node, no imgrelay import.
import { createHmac } from 'node:crypto';

/** options use imgrelay's field names, e.g. { width: 800, format: 'auto' } (width height quality format dpr blur sharpen). */
export function signedImageUrl(relay, source, options, key) {
  const href = new URL(source).href;
  const pairs = Object.keys(options).sort().map((name) => `${name}=${encodeURIComponent(String(options[name]))}`);
  const sig = createHmac('sha256', key).update(`${href}\n${pairs.join('&')}`).digest('base64url');
  return `${relay}/cdn-cgi/image/${[...pairs, `sig=${sig}`].join(',')}/${href}`;
}
