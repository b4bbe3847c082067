/**
 * A real Varnish (deploy/varnish/default.vcl, Debian's varnishd) in front of a real imgrelay: images become edge
 * hits; POST /purge with IMGRELAY_CDN_PURGE pointing at that Varnish sends PURGE for the named URL and BANs on
 * Surrogate-Key for every other form and variant of the source, so the next request goes through to imgrelay and
 * gets the origin's new bytes. varnishd missing is a failure (CI installs it), never a skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, digest } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, eventually, fetchImage, purge, solidPng } from './helpers/admin.js';
import { type TestVarnish, startVarnish } from './helpers/varnish.js';

const OTHER = 'img.example.org';
let origin: TestOrigin;
let varnish: TestVarnish;
let relay: RunningNode;

beforeAll(async () => {
  origin = await startOrigin();
  varnish = await startVarnish();
  relay = await bootImgrelay({ IMGRELAY_RESOLVE: `${ZAKER}:80:127.0.0.1:${origin.port},${OTHER}:80:127.0.0.1:${origin.port}`,
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_ADMIN_TOKENS: TOKEN_A,
    IMGRELAY_CDN_PURGE: `varnish+${varnish.url}`,
    // Short upstream lifetimes are honoured as they are (the default clamps them to an hour).
    IMGRELAY_MIN_TTL_S: '0' });
  await varnish.useBackend(relay.port);
});
afterAll(async () => {
  await relay?.close();
  await varnish?.close();
  await origin?.close();
});

const edge = (path: string) => `${varnish.url}${path}`;
const legacy = (name: string) => `/?http://${ZAKER}/${name}`;
const variant = (name: string, w: number) => `/?url=${encodeURIComponent(`http://${ZAKER}/${name}`)}&w=${w}`;

/** Requests a path through Varnish until it is an edge hit (the first request fills the edge). */
async function expectEdgeHit(path: string): Promise<Awaited<ReturnType<typeof fetchImage>>> {
  const first = await fetchImage(edge(path));
  expect(first.status).toBe(200);
  const second = await fetchImage(edge(path));
  expect(second.headers.get('x-edge-cache')).toBe('HIT');
  expect(second.headers.get('x-varnish')).toMatch(/^\d+ \d+$/); // a hit names the request and the cached object
  expect(second.headers.get('age')).toMatch(/^\d+$/);
  expect(second.digest).toBe(first.digest);
  return second;
}

async function expectEdgeMiss(path: string): Promise<Awaited<ReturnType<typeof fetchImage>>> {
  const next = await fetchImage(edge(path));
  expect(next.status).toBe(200);
  expect(next.headers.get('x-edge-cache')).toBe('MISS');
  expect(next.headers.get('x-varnish')).toMatch(/^\d+$/);
  return next;
}

describe('Varnish in front of imgrelay', () => {
  it('serves repeats from the edge, and after a purge by URL goes back to imgrelay for the new bytes', async () => {
    const [oldPng, newPng] = [await solidPng('#880000'), await solidPng('#008800')];
    origin.serve('/v.png', oldPng, 'image/png');
    const hit = await expectEdgeHit(legacy('v.png'));
    expect(hit.digest).toBe(digest(oldPng));
    const oldVariant = await expectEdgeHit(variant('v.png', 12));
    const originHits = origin.hits('/v.png');

    origin.serve('/v.png', newPng, 'image/png');
    const answer = await purge(relay, { urls: [edge(legacy('v.png'))] });
    expect(answer.cdn).toEqual([{ target: `varnish 127.0.0.1:${varnish.port}`, ok: true,
      detail: 'purged 1 URL(s), banned 1 tag(s)' }]);

    const fresh = await expectEdgeMiss(legacy('v.png'));
    expect(fresh.cache).toBe('MISS'); // imgrelay built it again too
    expect(fresh.digest).toBe(digest(newPng));
    expect(origin.hits('/v.png')).toBe(originHits + 1);
    // The variant was never named: the ban on the source's surrogate key took it too.
    const freshVariant = await expectEdgeMiss(variant('v.png', 12));
    expect(freshVariant.digest).not.toBe(oldVariant.digest);
    await expectEdgeHit(legacy('v.png'));
  });

  it('a purge by host bans that host\'s images at the edge and nothing else', async () => {
    origin.serve('/h1.png', await solidPng('#444444'), 'image/png');
    origin.serve('/h2.png', await solidPng('#555555'), 'image/png');
    await expectEdgeHit(legacy('h1.png'));
    await expectEdgeHit(variant('h2.png', 8));
    origin.serve('/o.png', await solidPng('#777777'), 'image/png');
    await expectEdgeHit(`/?http://${OTHER}/o.png`);

    const answer = await purge(relay, { hosts: [ZAKER] });
    expect(answer.cdn[0]).toMatchObject({ ok: true, detail: 'purged 0 URL(s), banned 1 tag(s)' });
    await expectEdgeMiss(legacy('h1.png'));
    await expectEdgeMiss(variant('h2.png', 8));
    const kept = await fetchImage(edge(`/?http://${OTHER}/o.png`));
    expect(kept.headers.get('x-edge-cache')).toBe('HIT');
  });

  it('a purge of everything empties the edge', async () => {
    origin.serve('/all.png', await solidPng('#666666'), 'image/png');
    await expectEdgeHit(legacy('all.png'));
    const answer = await purge(relay, { all: true });
    expect(answer.cdn[0]).toMatchObject({ ok: true, detail: 'banned everything' });
    await expectEdgeMiss(legacy('all.png'));
  });

  it('keeps an image only as long as its upstream allows, counted from imgrelay\'s fetch, not the configured 30 days', async () => {
    origin.serve('/short.png', await solidPng('#123456'), 'image/png', { 'cache-control': 'max-age=3' });
    const fetched = Date.now();
    await fetchImage(`${relay.url}${legacy('short.png')}`); // imgrelay's entry starts ageing before the edge has it
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const filled = await fetchImage(edge(legacy('short.png')));
    expect(filled.headers.get('x-edge-cache')).toBe('MISS');
    expect(filled.headers.get('cache-control')).toMatch(/^public, max-age=3, s-maxage=3,/);
    expect(Number(filled.headers.get('age'))).toBeGreaterThanOrEqual(1); // imgrelay's Age, passed on by Varnish
    const hit = await fetchImage(edge(legacy('short.png')));
    const objectOf = (r: { headers: Headers }) => r.headers.get('x-varnish')?.split(' ')[1];
    expect(objectOf(hit)).toBeDefined();
    // Once the 3 s are over, the edge goes back to imgrelay (serving its old copy once meanwhile: stale-while-
    // revalidate) and then serves a new object; under a constant 30-day s-maxage it would keep the first one.
    const refetched = await eventually(async () => objectOf(await fetchImage(edge(legacy('short.png')))) !== objectOf(hit), 8000, 200);
    expect(refetched).toBe(true);
    expect(Date.now() - fetched).toBeGreaterThanOrEqual(3000);
  });

  it('refuses PURGE and BAN with bad input rather than banning what it cannot parse', async () => {
    const ban = await fetch(edge('/'), { method: 'BAN', headers: { 'x-purge-tags': 'a|b .*' } });
    expect(ban.status).toBe(400);
  });
});
