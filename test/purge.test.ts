/**
 * POST /purge by each selector through the real service (memory tier + directory store in a temp dir): exactly
 * the matching sources leave memory and the store, every variant of them, and nothing else; a purged image is
 * fetched again from the origin; purging twice is harmless.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { surrogateKeys } from '../src/images.js';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { adminFetch, fetchImage, hashOf, memorySources, purge, solidPng, storeDirs, storeKeys, TOKEN_A }
  from './helpers/admin.js';

const OTHER = 'img.example.org';
const SOURCES = {
  a: `http://${ZAKER}/a.png`,
  b: `http://${ZAKER}/b.png`,
  c: `http://${ZAKER}/2021/c.png`,
  d: `http://${ZAKER}/2022/d.png`,
  e: `http://${OTHER}/e.png`,
};
type Name = keyof typeof SOURCES;
const ALL = Object.keys(SOURCES) as Name[];

let origin: TestOrigin;
let dir: string;
let node: RunningNode;

beforeAll(async () => {
  origin = await startOrigin();
  const colours = ['#c00', '#0c0', '#00c', '#cc0', '#0cc'];
  for (const [i, name] of ALL.entries()) origin.serve(new URL(SOURCES[name]).pathname, await solidPng(colours[i]), 'image/png');
});
afterAll(() => origin.close());

async function boot(extra: Record<string, string> = {}): Promise<RunningNode> {
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-purge-'));
  return bootImgrelay({
    IMGRELAY_RESOLVE: `${ZAKER}:80:127.0.0.1:${origin.port},${OTHER}:80:127.0.0.1:${origin.port}`,
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_ADMIN_TOKENS: TOKEN_A, ...extra,
  });
}

afterEach(async () => {
  await node?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every source as the original (legacy form) and as a 20px-wide variant: two entries per source in each tier. */
async function fill(relay: RunningNode): Promise<void> {
  for (const name of ALL) {
    expect((await fetchImage(`${relay.url}/?${SOURCES[name]}`)).status).toBe(200);
    expect((await fetchImage(`${relay.url}/?url=${encodeURIComponent(SOURCES[name])}&w=20`)).status).toBe(200);
  }
  expect(memorySources(relay).size).toBe(ALL.length);
  expect((await storeDirs(relay)).size).toBe(ALL.length);
}

/** Asserts that exactly `gone` left memory and store, and the rest stayed. */
async function expectPurged(relay: RunningNode, gone: Name[]): Promise<void> {
  const kept = ALL.filter((name) => !gone.includes(name));
  expect([...memorySources(relay)].sort()).toEqual(kept.map((name) => SOURCES[name]).sort());
  const hashes = await Promise.all(kept.map((name) => hashOf(SOURCES[name])));
  expect([...await storeDirs(relay)].sort()).toEqual(hashes.sort());
}

describe('purge by selector (memory and fs store)', () => {
  it('urls: a proxy URL in the query form removes every variant of its source, and only that', async () => {
    node = await boot();
    await fill(node);
    const answer = await purge(node, { urls: [`https://img.example.com/?url=${encodeURIComponent(SOURCES.a)}&w=300`] });
    expect(answer).toMatchObject({ memory: 2, store: 2, instances: 'logged', cdn: [] });
    await expectPurged(node, ['a']);
    // The next request is built again from the origin.
    const hits = origin.hits('/a.png');
    expect((await fetchImage(`${node.url}/?${SOURCES.a}`)).cache).toBe('MISS');
    expect(origin.hits('/a.png')).toBe(hits + 1);
    expect((await fetchImage(`${node.url}/?${SOURCES.b}`)).cache).toBe('HIT-MEMORY');
  });

  it('urls: the legacy CORS-worker form, the path form and a bare source URL all address their sources', async () => {
    node = await boot();
    await fill(node);
    const answer = await purge(node, { urls: [
      `https://cors.zfour.workers.dev/?${SOURCES.a}`,
      `https://img.example.com/cdn-cgi/image/width=300,format=auto/${SOURCES.b}`,
      SOURCES.c,
    ] });
    expect(answer).toMatchObject({ memory: 6, store: 6 });
    await expectPurged(node, ['a', 'b', 'c']);
  });

  it('hosts: removes every source of that host only', async () => {
    node = await boot();
    await fill(node);
    expect(await purge(node, { hosts: [OTHER.toUpperCase()] })).toMatchObject({ memory: 2, store: 2 });
    await expectPurged(node, ['e']);
  });

  it('prefixes: removes the sources under a source URL prefix only', async () => {
    node = await boot();
    await fill(node);
    expect(await purge(node, { prefixes: [`http://${ZAKER.toUpperCase()}/2021/`] })).toMatchObject({ memory: 2, store: 2 });
    await expectPurged(node, ['c']);
  });

  it('tags: a source key and a host key remove what carries them', async () => {
    node = await boot();
    await fill(node);
    const [dKey] = await surrogateKeys(new URL(SOURCES.d));
    expect(await purge(node, { tags: [dKey, `host-${OTHER}`] })).toMatchObject({ memory: 4, store: 4 });
    await expectPurged(node, ['d', 'e']);
  });

  it('all: empties memory and store but keeps the purge log; a second purge is harmless (idempotent)', async () => {
    node = await boot();
    await fill(node);
    const first = await purge(node, { urls: [SOURCES.a] });
    const everything = await purge(node, { all: true });
    expect(everything).toMatchObject({ memory: 8, store: 8, instances: 'logged' });
    await expectPurged(node, ALL);
    const log = await storeKeys(node, '_purge/');
    expect(log).toEqual(expect.arrayContaining([first.purgeLog, everything.purgeLog]));
    expect(await purge(node, { all: true })).toMatchObject({ memory: 0, store: 0 });
    expect(await purge(node, { urls: [SOURCES.a] })).toMatchObject({ memory: 0, store: 0 });
    expect((await fetchImage(`${node.url}/?${SOURCES.b}`)).cache).toBe('MISS');
  });

  it('removes a remembered failure too: a source that was 404 is fetched again after its purge', async () => {
    node = await boot();
    const missing = `http://${ZAKER}/later.png`;
    expect((await fetchImage(`${node.url}/?${missing}`)).status).toBe(404);
    origin.serve('/later.png', await solidPng('#fff'), 'image/png');
    expect((await fetchImage(`${node.url}/?${missing}`)).status).toBe(404); // still remembered
    expect((await purge(node, { urls: [missing] })).memory).toBe(1);
    expect((await fetchImage(`${node.url}/?${missing}`)).status).toBe(200);
  });

  it('without a store says so: nothing shared to tell the other instances through', async () => {
    node = await boot({ IMGRELAY_STORE: 'none' });
    expect((await fetchImage(`${node.url}/?${SOURCES.a}`)).status).toBe(200);
    const answer = await purge(node, { urls: [SOURCES.a] });
    expect(answer.memory).toBe(1);
    expect(answer.store).toBeNull();
    expect(answer.instances).toMatch(/^not reached: IMGRELAY_STORE=none has no shared purge log/);
  });
});

describe('purge body validation', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an empty body', {}, /Nothing to purge/],
    ['empty lists', { urls: [], hosts: [] }, /Nothing to purge/],
    ['urls not an array', { urls: SOURCES.a }, /urls: expected an array of strings/],
    ['an unknown field', { url: [SOURCES.a] }, /unknown field/i],
    ['a non-http URL', { urls: ['ftp://example.com/a.png'] }, /http/],
    ['a relative URL', { urls: ['/a.png'] }, /absolute http\(s\) URL/],
    ['a bad proxy option', { urls: [`https://img.example.com/?url=${encodeURIComponent(SOURCES.a)}&w=abc`] }, /w/],
    ['all: false', { all: false }, /all: only `true`/],
    ['a host with a path', { hosts: ['example.com/x'] }, /hosts: each a host name/],
    ['a relative prefix', { prefixes: ['/2021/'] }, /prefixes: each an absolute http\(s\) source URL prefix/],
    ['a tag with spaces', { tags: ['a b'] }, /tags: letters, digits/],
    ['invalid JSON', '{"urls": [', /not valid JSON/],
  ];
  it.each(cases)('answers 400 E_BAD_REQUEST with the reason for %s', async (_what, body, reason) => {
    node = await boot({ IMGRELAY_STORE: 'none' });
    const response = await adminFetch(node, '/purge', { body });
    expect(response.status).toBe(400);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const problem = await response.json() as { code: string; detail: string };
    expect(problem.code).toBe('E_BAD_REQUEST');
    expect(problem.detail).toMatch(reason);
  });
});
