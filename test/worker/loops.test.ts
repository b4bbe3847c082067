/**
 * Loops and downgrades at the edge, in workerd (issue #14 item 6): the portable fetcher and the edge's own routes
 * refuse what the Node service refuses. Sources are real loopback servers reached through the lab's router (lab.ts),
 * which routes by host name whatever the scheme, so an `https://` source is served by the plain lab origin.
 */
import { describe, expect, it } from 'vitest';
import { freshEdge, IMAGES, NODE_ORIGIN, originHits, problemOf, unique, viaEdge, viaWorker } from './helpers.js';
import { IMAGE_HOST } from './lab-hosts.js';

async function expectProblem(response: Response, status: number, code: string): Promise<void> {
  expect([response.status, response.headers.get('content-type'), response.headers.get('cache-control')])
    .toEqual([status, 'application/problem+json', 'no-store']);
  expect((await problemOf(response)).code).toBe(code);
}

describe('loops and downgrades at the edge', () => {
  it('refuses an https source redirected to http with 403 and never requests the http URL', async () => {
    await expectProblem(await viaWorker(`/?https://${IMAGE_HOST}/to-plain-http.jpg?case=${unique('down')}`), 403, 'E_SOURCE_FORBIDDEN');
    expect(await originHits('/plain-target.jpg')).toBe(0);
  });

  it('refuses an upstream answer carrying the imgrelay Via token with 508', async () => {
    await expectProblem(await viaWorker(`/?${IMAGES}/through-imgrelay.jpg?case=${unique('via')}`), 508, 'E_LOOP');
  });

  it('refuses a source on IMGRELAY_PUBLIC_HOSTS with 508 and fetches nothing', async () => {
    const path = `/photo.jpg?case=${unique('public')}`;
    await expectProblem(await viaWorker(`/?${IMAGES}${path}`, { IMGRELAY_PUBLIC_HOSTS: IMAGE_HOST }), 508, 'E_LOOP');
    expect(await originHits(path)).toBe(0);
  });

  it('refuses a relay and a forwarded transform that came through an imgrelay with 508, fetching nothing', async () => {
    const path = `/photo.jpg?case=${unique('incoming')}`;
    const relay = await viaWorker(`/?${IMAGES}${path}`, {}, { headers: { via: '1.1 imgrelay' } });
    await expectProblem(relay, 508, 'E_LOOP');
    const transform = await viaEdge(freshEdge({ IMGRELAY_ORIGIN_URL: NODE_ORIGIN }),
      `/?url=${encodeURIComponent(IMAGES + path)}&w=50`, { headers: { via: '1.1 varnish, 1.1 imgrelay' } });
    expect(transform.headers.get('via')).toBe('1.1 imgrelay');
    await expectProblem(transform, 508, 'E_LOOP');
    expect(await originHits(path)).toBe(0);
  });
});
