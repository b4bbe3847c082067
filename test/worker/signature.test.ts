/**
 * Signed URLs in workerd: the edge checks the signature itself (its forwarder and its caches serve transforms
 * without the image route), with WebCrypto, before forwarding to the Node origin or touching the source.
 */
import { describe, expect, it } from 'vitest';
import { IMAGES, NODE_ORIGIN, freshEdge, originHits, problemOf, unique, viaEdge, viaWorker } from './helpers.js';

const KEY = 'edge-signing-key-0123456789-0123456789';
const SIGNED = { IMGRELAY_ORIGIN_URL: NODE_ORIGIN, IMGRELAY_SIGNING_KEYS: KEY, IMGRELAY_REQUIRE_SIGNATURE: 'transforms' };
/** HMAC-SHA256, base64url without padding (README "Signed URLs"); workerd has no node:crypto without nodejs_compat. */
async function sign(text: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(KEY), { name: 'HMAC', hash: 'SHA-256' },
    false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...mac)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

describe('IMGRELAY_REQUIRE_SIGNATURE at the edge', () => {
  it('forwards a signed transform to the origin; an unsigned or wrongly signed one is refused 403 without any fetch', async () => {
    const source = `${IMAGES}/forwarded.jpg?case=${unique('sig')}`;
    const href = new URL(source).href;
    const edge = freshEdge(SIGNED);
    const path = `/?url=${encodeURIComponent(source)}&w=120&output=webp`;
    for (const refused of [path, `${path}&s=${await sign(`${href}\nformat=webp&width=121`)}`,
      `/cdn-cgi/image/width=120,format=webp/${source}`]) {
      const response = await viaEdge(edge, refused);
      expect(response.status, refused).toBe(403);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await problemOf(response)).toMatchObject({ code: 'E_SIGNATURE' });
    }
    expect(await originHits(new URL(source).pathname + new URL(source).search)).toBe(0);

    const signature = await sign(`${href}\nformat=webp&width=120`);
    const served = await viaEdge(edge, `/cdn-cgi/image/width=120,format=webp,sig=${signature}/${source}`);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('image/webp');
    // The same options in the other spelling (aliases), same signature: the entry the edge just cached. (The query
    // form is another entry: the path form adds Cloudflare's defaults, quality 85 and anim=true, docs/cloudflare-compat.md.)
    const again = await viaEdge(edge, `/cdn-cgi/image/f=webp,w=120,sig=${signature}/${source}`);
    expect([again.status, again.headers.get('x-cache')]).toEqual([200, 'HIT-MEMORY']);
    expect((await viaEdge(edge, `${path}&s=${signature}`)).status).toBe(200); // the query form verifies too
    // And the cached entry is never handed to the same URL without its signature.
    expect((await viaEdge(edge, `/cdn-cgi/image/width=120,format=webp/${source}`)).status).toBe(403);
  });

  it('relays need no signature in transforms mode; the Worker entry refuses to start without keys for a mode that needs them', async () => {
    const relay = await viaWorker(`/?${IMAGES}/202107/abc_1024.jpg`, SIGNED);
    expect(relay.status).toBe(200);
    expect(() => freshEdge({ IMGRELAY_REQUIRE_SIGNATURE: 'all' })).toThrow(/IMGRELAY_REQUIRE_SIGNATURE=all: requires IMGRELAY_SIGNING_KEYS/);
  });
});
