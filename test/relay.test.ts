/**
 * The drop-in relay: `/?<url>` as the old CORS worker took it, byte for byte, with DESIGN.md's headers and
 * the memory tier. A real loopback origin stands in for the hotlink-protected CDN (reached through IMGRELAY_RESOLVE).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, digest, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';
import { expectContractHeaders } from './helpers/contract.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const corpus = readdirSync(fixtures, { withFileTypes: true })
  .filter((entry) => entry.isFile() && !entry.name.endsWith('.md')).map((entry) => entry.name);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, fixtures)));

let origin: TestOrigin;
let relay: RunningNode;

beforeAll(async () => {
  origin = await startOrigin();
  for (const name of corpus) origin.serve(`/202107/${name}`, read(name), 'application/octet-stream');
  relay = await bootImgrelay(zakerAt(origin.port));
});
afterAll(async () => {
  await relay?.close();
  await origin?.close();
});

const article = (path: string) => `http://${ZAKER}${path}`;
const get = (query: string, init?: RequestInit) => fetch(`${relay.url}/?${query}`, init);

describe('legacy /?<url> relay', () => {
  for (const name of corpus) {
    it(`relays ${name} byte for byte, raw and percent-encoded once and twice`, async () => {
      const source = article(`/202107/${name}`);
      const forms = [source, encodeURIComponent(source), encodeURIComponent(encodeURIComponent(source))];
      for (const query of forms) {
        const response = await get(query);
        expect(response.status, query).toBe(200);
        expect(digest(await bytes(response))).toBe(digest(read(name)));
      }
    });
  }

  it('sends every header of the contract, with the content type from the magic bytes', async () => {
    const response = await get(article('/202107/photo-ladybird.jpg'));
    const h = response.headers;
    expect(h.get('content-type')).toBe('image/jpeg');
    expect(h.get('content-length')).toBe(String(read('photo-ladybird.jpg').byteLength));
    expectContractHeaders(h, ZAKER);
    expect(h.get('x-cache')).toMatch(/^(MISS|HIT-MEMORY)$/);
  });

  it('answers If-None-Match with 304 and the same caching headers', async () => {
    const first = await get(article('/202107/photo-wood.jpg'));
    const etag = first.headers.get('etag')!;
    const second = await get(article('/202107/photo-wood.jpg'), { headers: { 'if-none-match': etag } });
    expect(second.status).toBe(304);
    expect(await second.text()).toBe('');
    for (const name of ['etag', 'cache-control', 'x-cache', 'surrogate-key', 'last-modified']) {
      expect(second.headers.get(name), name).toBe(name === 'x-cache' ? 'HIT-MEMORY' : first.headers.get(name));
    }
  });

  it('answers HEAD with the length and no body', async () => {
    const response = await get(article('/202107/sample.webp'), { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(read('sample.webp').byteLength));
    expect(response.headers.get('content-type')).toBe('image/webp');
    expect((await bytes(response)).byteLength).toBe(0);
  });

  it('answers a CORS preflight', async () => {
    const response = await fetch(`${relay.url}/?${article('/x.jpg')}`, {
      method: 'OPTIONS', headers: { origin: 'https://blog.example', 'access-control-request-method': 'GET' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-methods')).toContain('GET');
  });

  it('serves the second request from memory without touching the origin', async () => {
    origin.serve('/memo.png', read('palette-alpha.png'), 'image/png');
    const first = await get(article('/memo.png'));
    expect(first.headers.get('x-cache')).toBe('MISS');
    const second = await get(article('/memo.png'));
    expect(second.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(digest(await bytes(second))).toBe(digest(read('palette-alpha.png')));
    expect(origin.hits('/memo.png')).toBe(1);
  });

  it('makes exactly one origin request for 50 concurrent identical cold requests', async () => {
    origin.route('/slow-cold.jpg', (_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(read('icc-odd.jpg')), 150);
    });
    const responses = await Promise.all(Array.from({ length: 50 }, () => get(article('/slow-cold.jpg'))));
    const bodies = await Promise.all(responses.map(bytes));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(bodies.every((b) => b.byteLength === read('icc-odd.jpg').byteLength)).toBe(true);
    expect(new Set(responses.map((r) => r.headers.get('x-cache')))).toEqual(new Set(['MISS']));
    expect(origin.hits('/slow-cold.jpg')).toBe(1);
  });

  it('keeps the whole rest of the query, & and ? included, and raw %2F, as the source URL', async () => {
    origin.serve('/a%2Fb.jpg?x=1&y=2?z', read('icc-odd.jpg'), 'image/jpeg');
    const response = await get(article('/a%2Fb.jpg?x=1&y=2?z'));
    expect(response.status).toBe(200);
    expect(origin.requests.at(-1)!.url).toBe('/a%2Fb.jpg?x=1&y=2?z');
  });

  it('never forwards the client Referer, Origin or cookies to a hotlink-protected origin', async () => {
    origin.route('/protected.jpg', (req, res) => {
      if (req.headers.referer || req.headers.origin) return void res.writeHead(403).end('hotlinking denied');
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(read('icc-odd.jpg'));
    });
    const response = await get(article('/protected.jpg'), {
      headers: { referer: 'https://blog.example/post/1', origin: 'https://blog.example', cookie: 'session=secret' },
    });
    expect(response.status).toBe(200);
    const seen = origin.requests.filter((r) => r.url === '/protected.jpg');
    expect(seen).toHaveLength(1);
    expect(seen[0].headers.referer).toBeUndefined();
    expect(seen[0].headers.origin).toBeUndefined();
    expect(seen[0].headers.cookie).toBeUndefined();
    expect(seen[0].headers.accept).toBe('image/*');
  });
});

describe('relay errors are problem+json with explicit caching', () => {
  const problem = async (response: Response) => {
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('x-cache')).toBeNull();
    return (await response.json()) as { code: string; status: number; detail: string; title: string; type: string };
  };

  it('turns an upstream 404 into a briefly cacheable 404', async () => {
    const response = await get(article('/missing.jpg'));
    expect(response.status).toBe(404);
    expect((await problem(response)).code).toBe('E_SOURCE_NOT_FOUND');
    expect(response.headers.get('cache-control')).toBe('public, max-age=60');
  });

  it('turns an upstream 500 into an uncached 502', async () => {
    origin.route('/boom.jpg', (_req, res) => void res.writeHead(500).end('oops'));
    const response = await get(article('/boom.jpg'));
    expect(response.status).toBe(502);
    expect((await problem(response)).code).toBe('E_UPSTREAM');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses HTML served as image/jpeg with 415', async () => {
    origin.serve('/fake.jpg', '<!doctype html><title>login</title>', 'image/jpeg');
    const response = await get(article('/fake.jpg'));
    expect(response.status).toBe(415);
    expect((await problem(response)).code).toBe('E_UNSUPPORTED_MEDIA');
  });

  it('answers a malformed percent sequence with 400', async () => {
    const response = await get('http%3A%2F%2Fexample.com%2F%E0%A4%A.jpg');
    expect(response.status).toBe(400);
    expect((await problem(response)).code).toBe('E_BAD_REQUEST');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('answers a query that is neither form with 400', async () => {
    const response = await get('foo=bar');
    expect(response.status).toBe(400);
    expect((await problem(response)).code).toBe('E_BAD_REQUEST');
  });

  it('answers an over-long URL with 414', async () => {
    const response = await get(article(`/${'a'.repeat(9000)}.jpg`));
    expect(response.status).toBe(414);
    expect((await problem(response)).code).toBe('E_URL_TOO_LONG');
  });

  it('answers unknown routes with 404 and other methods with 405', async () => {
    const unknown = await fetch(`${relay.url}/nope`);
    expect(unknown.status).toBe(404);
    expect((await problem(unknown)).code).toBe('E_NOT_FOUND');
    const post = await fetch(`${relay.url}/?${article('/x.jpg')}`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect((await problem(post)).code).toBe('E_METHOD_NOT_ALLOWED');
  });
});

describe('health', () => {
  it('is live and ready while serving', async () => {
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
  });
});

describe('repeat hits (the fast memory path) answer exactly like the full path', () => {
  it('serves the same bytes and headers on the first hit and the tenth', async () => {
    origin.serve('/repeat.png', read('palette-alpha.png'), 'image/png');
    await (await get(article('/repeat.png'))).arrayBuffer();
    const first = await get(article('/repeat.png'));
    const firstBody = digest(await bytes(first));
    let last = first;
    for (let i = 0; i < 9; i++) {
      last = await get(article('/repeat.png'));
      expect(digest(await bytes(last))).toBe(firstBody);
    }
    const names = (r: Response) => [...r.headers.keys()].filter((n) => !['date', 'server-timing', 'connection', 'keep-alive'].includes(n));
    expect(names(last).sort()).toEqual(names(first).sort());
    for (const name of names(first)) expect(last.headers.get(name), name).toBe(first.headers.get(name));
    expect(last.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(origin.hits('/repeat.png')).toBe(1);
  });

  it('answers HEAD and If-None-Match on a repeat hit', async () => {
    origin.serve('/repeat2.png', read('palette-alpha.png'), 'image/png');
    const full = await get(article('/repeat2.png'));
    await full.arrayBuffer();
    const head = await get(article('/repeat2.png'), { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(read('palette-alpha.png').byteLength));
    expect((await bytes(head)).byteLength).toBe(0);
    const conditional = await get(article('/repeat2.png'), { headers: { 'if-none-match': full.headers.get('etag')! } });
    expect(conditional.status).toBe(304);
  });

  it('stops serving a URL from memory once its entry is purged from the memory tier', async () => {
    origin.serve('/repeat3.png', read('palette-alpha.png'), 'image/png');
    await (await get(article('/repeat3.png'))).arrayBuffer();
    expect((await get(article('/repeat3.png'))).headers.get('x-cache')).toBe('HIT-MEMORY');
    relay.memory.deleteWhere((source) => source.endsWith('/repeat3.png'));
    expect((await get(article('/repeat3.png'))).headers.get('x-cache')).toBe('MISS');
  });
});
