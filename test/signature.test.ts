/**
 * Signed URLs through the real service (issue #16 item 1): a real loopback origin, real sharp, an fs store, the
 * Node fast hit path; the signatures are made with plain node:crypto, the page-template function of the README
 * (examples/sign.mjs) and the `imgrelay sign` command, the way operators make them.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { RunningNode } from '../src/node.js';
import { fetchImage, hashOf, memorySources, solidPng, storeKeys } from './helpers/admin.js';
import { ZAKER, bootImgrelay } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';

const KEY_NEW = 'new-key-0123456789-0123456789-0123456789';
const KEY_OLD = 'old-key-0123456789-0123456789-0123456789';
const OTHER = 'img.other.test';
const PRESETS = 'tiny:w=14&h=14&fit=cover';
const BIN = fileURLToPath(new URL('../bin/imgrelay.js', import.meta.url));
const EXAMPLE = new URL('../examples/sign.mjs', import.meta.url);
const src = (name: string, host = ZAKER) => `http://${host}/${name}`;
/** What a page template computes (README "Signed URLs"): HMAC-SHA256, base64url, of href + "\n" + options. */
const hmac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('base64url');
const queryUrl = (relay: RunningNode, source: string, extra = '') => `${relay.url}/?url=${encodeURIComponent(source)}${extra}`;

let origin: TestOrigin;
let dir: string;
let relay: RunningNode;
const env = (port: number) => ({
  IMGRELAY_RESOLVE: `${ZAKER}:80:127.0.0.1:${port},${OTHER}:80:127.0.0.1:${port}`,
  IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_WORKERS: '1',
});

beforeAll(async () => {
  origin = await startOrigin();
  const png = await solidPng('#2a6');
  for (const name of ['u', 'r', 'k', 'w', 'f', 'e', 'c', 'l1', 'l2', 'q', 'p']) origin.serve(`/${name}.png`, png, 'image/png');
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-signature-'));
  relay = await bootImgrelay({ ...env(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}`, IMGRELAY_REQUIRE_SIGNATURE: 'transforms', IMGRELAY_PRESETS: PRESETS });
});
afterAll(async () => {
  await relay?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

async function problem(url: string, method = 'GET') {
  const response = await fetch(url, { method });
  const body = method === 'HEAD' ? {} : await response.json() as { code?: string };
  return { status: response.status, code: body.code, type: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control'), xCache: response.headers.get('x-cache') };
}
const REFUSED = { status: 403, code: 'E_SIGNATURE', type: 'application/problem+json', cacheControl: 'no-store', xCache: null };
const completed = () => relay.transformer.stats().completed;

describe('IMGRELAY_REQUIRE_SIGNATURE=transforms', () => {
  it('unsigned transform refused (403 E_SIGNATURE, no-store, origin never fetched)', async () => {
    const before = completed();
    expect(await problem(queryUrl(relay, src('u.png'), '&w=20'))).toEqual(REFUSED);
    expect(await problem(`${relay.url}/cdn-cgi/image/width=20/${src('u.png')}`)).toEqual(REFUSED);
    expect(await problem(`${relay.url}/cdn-cgi/image/width=20/${src('u.png')}`, 'HEAD')).toMatchObject({ status: 403 });
    expect(origin.hits('/u.png')).toBe(0);
    expect(completed()).toBe(before);
    expect(memorySources(relay).has(src('u.png'))).toBe(false);
  });

  it('relays without options (query form and legacy form) need no signature', async () => {
    expect((await fetchImage(queryUrl(relay, src('r.png')))).status).toBe(200);
    expect((await fetchImage(`${relay.url}/?${src('r.png')}`)).status).toBe(200);
  });

  it('wrong signature costs no fetch (origin hit count stays 0, no transform, nothing cached)', async () => {
    const before = completed();
    const forW21 = hmac(KEY_NEW, `${src('w.png')}\nwidth=21`);
    const wrong = [
      queryUrl(relay, src('w.png'), `&w=20&s=${forW21}`), // a real signature, for another width
      queryUrl(relay, src('w.png'), `&w=20&s=${'A'.repeat(43)}`),
      queryUrl(relay, src('w.png'), `&w=20&s=`),
      queryUrl(relay, src('w.png'), `&s=${forW21}`), // a relay needs none, but one that is present must be right
      `${relay.url}/cdn-cgi/image/width=20,sig=${hmac('not-a-configured-key-0123456789abcdef', `${src('w.png')}\nwidth=20`)}/${src('w.png')}`,
    ];
    // A flood of them: each is refused before any work, so the origin, the pool and the tiers never see one.
    const answers = await Promise.all(Array.from({ length: 10 }, () => wrong).flat().map((url) => problem(url)));
    expect(answers.every((a) => a.status === 403 && a.code === 'E_SIGNATURE' && a.cacheControl === 'no-store')).toBe(true);
    expect(origin.hits('/w.png')).toBe(0);
    expect(completed()).toBe(before);
    expect(memorySources(relay).has(src('w.png'))).toBe(false);
  });

  it('rotated key accepted: the old key still verifies, the new one signs', async () => {
    const byOld = hmac(KEY_OLD, `${src('e.png')}\nwidth=16`);
    expect((await fetchImage(queryUrl(relay, src('e.png'), `&w=16&s=${byOld}`))).status).toBe(200);
    const signed = await cli(['sign', queryUrl(relay, src('e.png'), '&w=18')]);
    expect(signed.out.trim().endsWith(`&s=${hmac(KEY_NEW, `${src('e.png')}\nwidth=18`)}`)).toBe(true);
    expect((await fetchImage(signed.out.trim())).status).toBe(200);
  });

  it('signature never in the cache key (two keys sign the same request → one transform, one stored object)', async () => {
    const before = completed();
    const text = `${src('k.png')}\nwidth=24`;
    const first = await fetchImage(queryUrl(relay, src('k.png'), `&w=24&s=${hmac(KEY_OLD, text)}`));
    // The other key, the other parameter order, the path form with its own alias: one canonical request.
    const second = await fetchImage(`${relay.url}/?w=24&url=${encodeURIComponent(src('k.png'))}&s=${hmac(KEY_NEW, text)}`);
    // The path form spells the query form's defaults (its own are Cloudflare's): it signs what it writes.
    const pathText = `${src('k.png')}\nkeepCopyright=false&keepMetadata=false&pages=1&quality=80&width=24`;
    const third = await fetchImage(`${relay.url}/cdn-cgi/image/w=24,anim=false,q=80,metadata=none,sig=${hmac(KEY_OLD, pathText)}/${src('k.png')}`);
    expect([first.status, second.status, third.status]).toEqual([200, 200, 200]);
    expect([first.cache, second.cache, third.cache]).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(new Set([first.digest, second.digest, third.digest]).size).toBe(1);
    expect(completed() - before).toBe(1);
    await relay.store!.writes.drain(10_000);
    const stored = await storeKeys(relay, `${await hashOf(src('k.png'))}/`);
    expect(stored.filter((key) => !key.endsWith('/source'))).toHaveLength(1);
    expect(stored).toHaveLength(2); // the source and the one variant
  });

  it('the fast hit path never serves a signed URL\'s entry to the same URL without its signature, or a wrong one', async () => {
    const s = hmac(KEY_NEW, `${src('f.png')}\nwidth=12`);
    const signed = queryUrl(relay, src('f.png'), `&w=12&s=${s}`);
    expect((await fetchImage(signed)).cache).toBe('MISS');
    expect((await fetchImage(signed)).cache).toBe('HIT-MEMORY'); // now learned by the fast path (exact path + query)
    expect(await problem(queryUrl(relay, src('f.png'), '&w=12'))).toEqual(REFUSED);
    expect(await problem(queryUrl(relay, src('f.png'), `&w=12&s=${s.slice(0, -1)}`))).toEqual(REFUSED);
    expect(await problem(queryUrl(relay, src('f.png'), `&w=12&s=${s}x`))).toEqual(REFUSED);
    expect(await problem(`${relay.url}/cdn-cgi/image/width=12/${src('f.png')}`, 'HEAD')).toMatchObject({ status: 403 });
    expect((await fetchImage(signed)).cache).toBe('HIT-MEMORY');
    expect(origin.hits('/f.png')).toBe(1);
  });

  it('a URL made by the README\'s page-template function (examples/sign.mjs) is served; an edited one is refused', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain((await readFile(EXAMPLE, 'utf8')).trim()); // the README shows exactly the tested code
    const { signedImageUrl } = await import(pathToFileURL(fileURLToPath(EXAMPLE)).href) as {
      signedImageUrl(relay: string, source: string, options: Record<string, unknown>, key: string): string };
    const url = signedImageUrl(relay.url, src('c.png'), { width: 10, format: 'webp', quality: 60 }, KEY_NEW);
    const served = await fetch(url);
    expect([served.status, served.headers.get('content-type')]).toEqual([200, 'image/webp']);
    expect(await problem(url.replace('width=10', 'width=11'))).toEqual(REFUSED);
  });
  it('a signed preset URL (imgrelay sign) is served in both forms; unsigned or edited, it is refused', async () => {
    const vars = { IMGRELAY_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}`, IMGRELAY_PRESETS: PRESETS };
    const query = (await cli(['sign', queryUrl(relay, src('p.png'), '&p=tiny')], vars)).out.trim();
    const path = (await cli(['sign', `${relay.url}/cdn-cgi/image/preset=tiny/${src('p.png')}`], vars)).out.trim();
    const served = [await fetchImage(query), await fetchImage(path)];
    expect(served.map((r) => r.status)).toEqual([200, 200]);
    expect(served[1].cache).toBe('HIT-MEMORY'); // one entry: the preset's options
    expect(await problem(queryUrl(relay, src('p.png'), '&p=tiny'))).toEqual(REFUSED);
    expect(await problem(query.replace('p=tiny', 'p=tiny&w=15'))).toEqual(REFUSED);
    expect(origin.hits('/p.png')).toBe(1);
  });
});

async function cli(args: string[], vars: Record<string, string> = { IMGRELAY_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}` }) {
  let out = '';
  let err = '';
  const code = await runCli(args, vars, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

describe('imgrelay sign', () => {
  it('exits 2 with the reason without keys, with a short key, on a legacy URL or a URL that is not imgrelay\'s', async () => {
    const legacy = `${relay.url}/?${src('q.png')}`;
    expect(await cli(['sign', queryUrl(relay, src('q.png'), '&w=5')], {})).toMatchObject({ code: 2, out: '' });
    expect((await cli(['sign', queryUrl(relay, src('q.png'))], {})).err).toContain('set IMGRELAY_SIGNING_KEYS');
    const short = await cli(['sign', queryUrl(relay, src('q.png'))], { IMGRELAY_SIGNING_KEYS: 'short-secret' });
    expect([short.code, short.err.includes('at least 32 bytes'), short.err.includes('short-secret')]).toEqual([2, true, false]);
    expect(await cli(['sign', legacy])).toMatchObject({ code: 2, out: '', err: expect.stringContaining('legacy') });
    expect(await cli(['sign', `${relay.url}/healthz`])).toMatchObject({ code: 2, err: expect.stringContaining('not an imgrelay image URL') });
    expect((await cli(['sign'])).code).toBe(2);
  });

  it('runs as the installed command (bin/imgrelay.js) and prints a URL the service serves', async () => {
    const { stdout } = await promisify(execFile)(process.execPath,
      [BIN, 'sign', `${relay.url}/cdn-cgi/image/width=8,format=png/${src('q.png')}`], {
        env: { PATH: process.env.PATH, IMGRELAY_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}` }, timeout: 60_000 });
    expect(stdout).toMatch(/\/cdn-cgi\/image\/width=8,format=png,sig=[\w-]{43}\/http:\/\/zkres2\.myzaker\.com\/q\.png\n$/);
    const served = await fetchImage(stdout.trim());
    expect([served.status, served.headers.get('content-type')]).toEqual([200, 'image/png']);
  });
});

describe('IMGRELAY_REQUIRE_SIGNATURE=all', () => {
  let strict: RunningNode;
  beforeAll(async () => {
    strict = await bootImgrelay({ ...env(origin.port), IMGRELAY_SIGNING_KEYS: KEY_NEW, IMGRELAY_REQUIRE_SIGNATURE: 'all',
      IMGRELAY_UNSIGNED_HOSTS: 'zkres*.myzaker.com' });
  });
  afterAll(() => strict?.close());

  it('legacy relay in all mode refused unless its host is in IMGRELAY_UNSIGNED_HOSTS', async () => {
    expect(await problem(`${strict.url}/?${src('l2.png', OTHER)}`)).toEqual(REFUSED);
    expect(origin.hits('/l2.png')).toBe(0);
    const allowed = await fetchImage(`${strict.url}/?${src('l1.png')}`);
    expect([allowed.status, allowed.cache]).toEqual([200, 'MISS']);
    expect(origin.hits('/l1.png')).toBe(1);
  });

  it('an unsigned relay in the query form is refused, even for an unsigned host; a signed one is served', async () => {
    expect(await problem(queryUrl(strict, src('l2.png', OTHER)))).toEqual(REFUSED);
    expect(await problem(queryUrl(strict, src('l1.png')))).toEqual(REFUSED);
    expect(origin.hits('/l2.png')).toBe(0);
    const signed = await fetchImage(queryUrl(strict, src('l2.png', OTHER), `&s=${hmac(KEY_NEW, `${src('l2.png', OTHER)}\n`)}`));
    expect(signed.status).toBe(200);
  });
});
