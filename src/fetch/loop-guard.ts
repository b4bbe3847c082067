/**
 * Loop guard: a source that leads back to this service is refused at once with 508 E_LOOP, before it costs a fetch
 * (otherwise each hop fetches itself through itself until a deadline, holding a socket and a slot per level).
 * Portable (no `node:` imports): both fetchers and the image route use it. Three signals:
 *
 * 1. `Via` (RFC 9110 §7.6.3): every upstream request carries `Via: 1.1 imgrelay`. An upstream response that carries
 *    that token came through an imgrelay, and an incoming request that carries it is one imgrelay fetching from
 *    another (or from itself). Both are refused. The token is the same for every imgrelay, so a chain of two
 *    distinct deployments is refused too, on purpose: proxying a proxy multiplies cost and adds nothing.
 * 2. `IMGRELAY_PUBLIC_HOSTS` (globs): this service's own names. A source on one of them, at any port, is a loop.
 * 3. Nested proxy URLs (`/?http…`, `/?url=…`, `/cdn-cgi/image/<opts>/…` on ANY host): the chain is followed and
 *    refused when a link is on a public host, or when it nests deeper than MAX_NESTED_PROXIES. A single nested
 *    URL on a foreign host is allowed: weserv and Cloudflare image URLs are legitimate sources in old articles,
 *    and if such a host is in fact this service under an unlisted name, the Via token stops it one hop later.
 */
import { RelayError } from '../errors.js';
import { nestedSourceUrl } from '../url/request.js';
import { compileHostGlobs } from './host-glob.js';

/** The `received-by` pseudonym this service puts in `Via` (no host name: that would leak internal names). */
export const VIA_PSEUDONYM = 'imgrelay';
export const VIA_HEADER_VALUE = `1.1 ${VIA_PSEUDONYM}`;
/** Proxy URLs wrapped in proxy URLs beyond this depth are refused as a loop (or an amplification chain). */
export const MAX_NESTED_PROXIES = 2;

export function loopError(detail: string): RelayError {
  return new RelayError('E_LOOP', detail);
}

/**
 * True when a `Via` value has a hop written exactly as imgrelay writes it (`<protocol> imgrelay`, no comment), in any
 * position of the list. A hop WITH a comment is another proxy on a machine that happens to be called imgrelay:
 * Varnish and Squid write `1.1 <hostname> (Varnish/7.1)`, and a container named `imgrelay` behind them is common;
 * reading their hop as ours would refuse every request.
 */
export function viaNamesImgrelay(via: string | null | undefined): boolean {
  if (!via) return false;
  return splitOutsideComments(via).some((hop) => {
    const parts = hop.trim().split(/\s+/);
    return parts.length === 2 && parts[1].toLowerCase() === VIA_PSEUDONYM;
  });
}

/** Splits a Via list on commas, except those inside a (comment). */
function splitOutsideComments(via: string): string[] {
  const hops: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < via.length; i++) {
    if (via[i] === '(') depth++;
    else if (via[i] === ')') depth = Math.max(0, depth - 1);
    else if (via[i] === ',' && depth === 0) {
      hops.push(via.slice(start, i));
      start = i + 1;
    }
  }
  hops.push(via.slice(start));
  return hops;
}

/**
 * Throws 508 when an upstream answer (any hop, redirects included) came through an imgrelay, after `release` gave
 * its unread body back (so the connection is reused or closed, never leaked).
 */
export async function refuseUpstreamVia(via: string | null | undefined, release: () => Promise<void>): Promise<void> {
  if (!viaNamesImgrelay(via)) return;
  await release();
  throw loopError('The source answered through an imgrelay (its Via token): a proxy loop');
}

/** Returns why `url` leads back to this service, or undefined. */
export function compileLoopCheck(publicHosts: readonly string[]): (url: URL) => string | undefined {
  const isPublicHost = compileHostGlobs(publicHosts);
  return (url) => {
    let current = url;
    for (let depth = 0; ; depth++) {
      if (isPublicHost(current.hostname)) {
        return depth === 0 ? 'The source is on this service\'s own host' : 'A nested image URL leads back to this service';
      }
      const inner = nestedSourceUrl(current);
      if (inner === undefined) return undefined;
      if (depth + 1 > MAX_NESTED_PROXIES) return `Image-proxy URLs nested more than ${MAX_NESTED_PROXIES} deep`;
      try {
        current = new URL(inner);
      } catch {
        return undefined; // the innermost link is not a URL: whoever serves it will refuse it
      }
    }
  };
}
