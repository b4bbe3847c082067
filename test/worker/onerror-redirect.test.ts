/**
 * Cloudflare's `onerror=redirect` at the edge, in workerd: a source error answers the same 302 to the source as the
 * Node service (`Cache-Control: no-store`, `X-Imgrelay-Error`), whether the edge served the request itself (a
 * relay, or a transform through the Images binding) or forwarded it to the Node origin; request errors stay 4xx.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ImagesBindingLike } from '../../src/edge-images.js';
import { freshEdge, IMAGES, NODE_ORIGIN, problemOf, unique, viaEdge } from './helpers.js';

const WITH_ORIGIN = { IMGRELAY_ORIGIN_URL: NODE_ORIGIN };
const DEAD_ORIGIN = { IMGRELAY_ORIGIN_URL: 'http://dead.imgrelay.test' };
const AT_EDGE = { IMAGES: env.LAB_IMAGES as ImagesBindingLike };
const REDIRECT_HEADERS = ['location', 'cache-control', 'x-imgrelay-error'];

/** A path-form URL of `source` (an IMAGES path, made unique per test) with Cloudflare `options`. */
const cf = (options: string, source: string) => `/cdn-cgi/image/${options}/${IMAGES}${source}`;

function expectRedirect(response: Response, source: string, code: string) {
  expect(response.status).toBe(302);
  expect(response.headers.get('location')).toBe(IMAGES + source);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('x-imgrelay-error')).toBe(code);
}

describe('onerror=redirect, forwarded to the origin', () => {
  it('passes the origin\'s 302 through as the origin answered it', async () => {
    const source = `/gone.jpg?case=${unique('onerror-forward')}`;
    const path = cf('width=120,onerror=redirect', source);
    const direct = await fetch(NODE_ORIGIN + path, { redirect: 'manual' });
    await direct.body?.cancel();
    const edge = freshEdge(WITH_ORIGIN);
    const response = await viaEdge(edge, path);
    expectRedirect(response, source, 'E_SOURCE_NOT_FOUND');
    for (const name of REDIRECT_HEADERS) expect(response.headers.get(name), name).toBe(direct.headers.get(name));
    // The same variant without onerror=redirect, right after (the failure may be remembered): the error, no 302.
    const plain = await viaEdge(edge, cf('width=120', source));
    expect(plain.status).toBe(404);
    expect((await problemOf(plain)).code).toBe('E_SOURCE_NOT_FOUND');
  });

  it('redirects when the origin cannot be reached: the browser still gets the original', async () => {
    const source = `/photo.jpg?case=${unique('onerror-dead')}`;
    expectRedirect(await viaEdge(freshEdge(DEAD_ORIGIN), cf('width=120,onerror=redirect', source)), source, 'E_UPSTREAM');
  });

  it('keeps request errors 4xx', async () => {
    const response = await viaEdge(freshEdge(WITH_ORIGIN), cf('width=abc,onerror=redirect', '/photo.jpg'));
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});

describe('onerror=redirect, served by the edge itself', () => {
  it('redirects a relay (no transform) without an origin', async () => {
    const source = `/gone.jpg?case=${unique('onerror-relay')}`;
    expectRedirect(await viaEdge(freshEdge(), cf('onerror=redirect', source)), source, 'E_SOURCE_NOT_FOUND');
  });

  it('redirects a transform through the Images binding', async () => {
    const source = `/gone.jpg?case=${unique('onerror-binding')}`;
    expectRedirect(await viaEdge(freshEdge(AT_EDGE), cf('width=120,onerror=redirect', source)), source, 'E_SOURCE_NOT_FOUND');
    const plain = await viaEdge(freshEdge(AT_EDGE), cf('width=120', source));
    expect(plain.status).toBe(404);
  });
  it('redirects a transform of a forbidden source when there is no origin (a 403 without onerror)', async () => {
    const forbidden = 'http://169.254.169.254/a.jpg';
    const response = await viaEdge(freshEdge(), `/cdn-cgi/image/width=120,onerror=redirect/${forbidden}`);
    expect([response.status, response.headers.get('location')]).toEqual([302, forbidden]);
    expect(response.headers.get('x-imgrelay-error')).toBe('E_SOURCE_FORBIDDEN');
    expect((await viaEdge(freshEdge(), `/cdn-cgi/image/width=120/${forbidden}`)).status).toBe(403);
  });
});
