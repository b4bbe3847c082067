/**
 * The legacy relay and the response contract at the edge, in workerd: the old worker's URL form relays the
 * origin's bytes unchanged with every success header of DESIGN.md, and failures are the same problems as on Node.
 * Sources are real loopback servers reached through the lab's router (lab.ts).
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { EDGE, IMAGES, originalBytes, problemOf, sha256, unique, viaWorker } from './helpers.js';
import { expectContractHeaders } from '../helpers/contract.js';

const LEGACY = `/?${IMAGES}/202107/abc_1024.jpg`;

describe('legacy relay at the edge', () => {
  it('relays the origin bytes unchanged, raw and percent-encoded once and twice, with the success headers', async () => {
    const original = await sha256(await originalBytes('/202107/abc_1024.jpg'));
    const once = encodeURIComponent(`${IMAGES}/202107/abc_1024.jpg`);
    for (const path of [LEGACY, `/?${once}`, `/?${encodeURIComponent(once)}`]) {
      // SELF: through the runtime, with wrangler.toml's vars exactly as deployed.
      const response = await SELF.fetch(EDGE + path);
      expect(response.status, path).toBe(200);
      expect(await sha256(await response.arrayBuffer()), path).toBe(original);
      expect(response.headers.get('content-type')).toBe('image/jpeg');
    }
    const response = await SELF.fetch(EDGE + LEGACY);
    const h = response.headers;
    expect(h.get('content-length')).toBe(String((await response.arrayBuffer()).byteLength));
    expectContractHeaders(h, 'zkres2.myzaker.com');
    expect(h.get('x-cache')).toMatch(/^(HIT-MEMORY|HIT-STORE)$/);
  });

  it('answers If-None-Match with a 304 carrying the caching headers, and HEAD without a body', async () => {
    const path = `/?${IMAGES}/photo.jpg?case=${unique('conditional')}`;
    const first = await viaWorker(path);
    const etag = first.headers.get('etag') ?? '';
    const revalidated = await viaWorker(path, {}, { headers: { 'if-none-match': etag } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect(revalidated.headers.get('cache-control')).toBe(first.headers.get('cache-control'));
    expect(revalidated.headers.get('x-cache')).toBe('HIT-MEMORY');
    const head = await viaWorker(path, {}, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(first.headers.get('content-length'));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('relays an SVG as it is, under the sandboxing CSP', async () => {
    const response = await viaWorker(`/?${IMAGES}/logo.svg?case=${unique('svg')}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/svg+xml');
    expect(response.headers.get('content-security-policy')).toContain('sandbox');
  });
});

describe('errors at the edge', () => {
  const cases: Array<[string, string, number, string, string]> = [
    ['a source that is gone (410)', `/?${IMAGES}/gone.jpg`, 404, 'E_SOURCE_NOT_FOUND', 'public, max-age=60'],
    ['a body that is not an image', `/?${IMAGES}/page.html`, 415, 'E_UNSUPPORTED_MEDIA', 'no-store'],
    ['an upstream 5xx', `/?${IMAGES}/broken.jpg`, 502, 'E_UPSTREAM', 'no-store'],
    ['a redirect to the metadata address', `/?${IMAGES}/to-metadata.jpg`, 403, 'E_SOURCE_FORBIDDEN', 'no-store'],
    ['an IP-literal source', '/?http://127.0.0.1/a.jpg', 403, 'E_SOURCE_FORBIDDEN', 'no-store'],
    ['an internal name', '/?http://metadata.google.internal/a.jpg', 403, 'E_SOURCE_FORBIDDEN', 'no-store'],
    ['a port not allowed', `/?${IMAGES}:8080/a.jpg`, 403, 'E_SOURCE_FORBIDDEN', 'no-store'],
    ['a malformed percent-encoding', '/?http%3A%2F%2Fa.example%2F%E0%A4%A.jpg', 400, 'E_BAD_REQUEST', 'no-store'],
    ['a root request without a source', '/?w=100', 400, 'E_BAD_REQUEST', 'no-store'],
    ['an unknown route', '/nope', 404, 'E_NOT_FOUND', 'no-store'],
  ];

  it.each(cases)('%s is a problem document with its status, code and Cache-Control', async (_name, path, status, code, cc) => {
    const response = await viaWorker(path);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('cache-control')).toBe(cc);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('x-cache')).toBeNull();
    const problem = await problemOf(response);
    expect(problem).toMatchObject({ status, code, type: `https://imgrelay.dev/errors/${code}` });
  });

  it('refuses other methods with 405', async () => {
    const response = await viaWorker(`/?${IMAGES}/photo.jpg`, {}, { method: 'POST', body: 'x' });
    expect(response.status).toBe(405);
    expect((await problemOf(response)).code).toBe('E_METHOD_NOT_ALLOWED');
  });

  it('answers 504 when the source misses the deadline, before a generous bound', async () => {
    const started = Date.now();
    const response = await viaWorker(`/?${IMAGES}/slow.jpg?case=${unique('slow')}`, { IMGRELAY_UPSTREAM_TIMEOUT_MS: '300' });
    expect(response.status).toBe(504);
    expect((await problemOf(response)).code).toBe('E_UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('answers 413 over the byte cap', async () => {
    const response = await viaWorker(`/?${IMAGES}/photo.jpg?case=${unique('cap')}`, { IMGRELAY_MAX_SOURCE_BYTES: '1000' });
    expect(response.status).toBe(413);
    expect((await problemOf(response)).code).toBe('E_SOURCE_TOO_LARGE');
  });

  it('keeps configuration details out of a misconfigured Worker\'s answers', async () => {
    const response = await viaWorker(`/?${IMAGES}/photo.jpg`, { IMGRELAY_UPSTREAM_TIMEOUT_MS: 'soon' });
    expect(response.status).toBe(500);
    const problem = await problemOf(response);
    expect(problem.code).toBe('E_INTERNAL');
    expect(problem.detail).not.toContain('UPSTREAM_TIMEOUT');
  });
});
