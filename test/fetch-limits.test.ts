/**
 * The guarded fetcher against a real loopback origin: byte cap, deadline, redirects, upstream statuses,
 * resets, header rules, conditional requests, IMGRELAY_RESOLVE and per-host concurrency.
 */
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RelayError } from '../src/errors.js';
import { BROWSER_USER_AGENT } from '../src/fetch/header-rules.js';
import type { SourceResponse } from '../src/fetch/types.js';
import { buildFetcher, closeAll, pngLike, relayErrorOf, startTrackedOrigin, watchOutgoingSockets }
  from './helpers/fetch-harness.js';
import { TEST_TLS_CERT, TEST_TLS_KEY } from './helpers/fetch-tls-cert.js';
import type { TestOrigin } from './helpers/origin.js';

let origin: TestOrigin;
beforeEach(async () => { origin = await startTrackedOrigin('127.0.0.1'); });
afterEach(closeAll);

/** Loopback origin allowed, its ephemeral port allowed: the environment of a lab. */
const lab = (env: Record<string, string> = {}) => buildFetcher({
  IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_ALLOWED_PORTS: `80,443,${origin.port}`, ...env,
});
const at = (path: string) => ({ url: new URL(`${origin.url}${path}`) });
const bodyOf = (response: SourceResponse) => (response.notModified ? undefined : response.body);

async function expectError(promise: Promise<unknown>, code: RelayError['code'], status: number): Promise<RelayError> {
  const error = await relayErrorOf(promise);
  expect({ code: error.code, status: error.status }).toEqual({ code, status });
  return error;
}

describe('byte cap', () => {
  it('relays a body of exactly IMGRELAY_MAX_SOURCE_BYTES, byte for byte', async () => {
    const image = pngLike(1000);
    origin.serve('/a.png', image, 'image/png', { etag: '"v1"', 'cache-control': 'max-age=60' });
    const response = await lab({ IMGRELAY_MAX_SOURCE_BYTES: '1000' }).fetch(at('/a.png'));
    expect(response).toMatchObject({ notModified: false, finalUrl: `${origin.url}/a.png`,
      headers: { contentType: 'image/png', etag: '"v1"', cacheControl: 'max-age=60' } });
    expect(bodyOf(response)).toEqual(image);
  });

  it('refuses a declared Content-Length over the cap with 413', async () => {
    origin.serve('/big.png', pngLike(5000), 'image/png');
    await expectError(lab({ IMGRELAY_MAX_SOURCE_BYTES: '1000' }).fetch(at('/big.png')), 'E_SOURCE_TOO_LARGE', 413);
  });

  it('refuses a chunked body (no Content-Length) that grows over the cap with 413', async () => {
    origin.route('/stream.png', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      for (let i = 0; i < 10; i++) res.write(pngLike(500));
      res.end();
    });
    await expectError(lab({ IMGRELAY_MAX_SOURCE_BYTES: '1000' }).fetch(at('/stream.png')), 'E_SOURCE_TOO_LARGE', 413);
  });
});

describe('deadline', () => {
  it('answers 504 before a generous bound when the origin sends 1 byte a second', async () => {
    origin.route('/slow.png', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '100' });
      const timer = setInterval(() => res.write('x'), 1000);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    await expectError(lab({ IMGRELAY_UPSTREAM_TIMEOUT_MS: '1000' }).fetch(at('/slow.png')), 'E_UPSTREAM_TIMEOUT', 504);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('answers 504 before a generous bound when the origin never sends headers', async () => {
    origin.route('/silent.png', () => {});
    const started = Date.now();
    await expectError(lab({ IMGRELAY_UPSTREAM_TIMEOUT_MS: '1000' }).fetch(at('/silent.png')), 'E_UPSTREAM_TIMEOUT', 504);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('stops promptly when the caller aborts', async () => {
    origin.route('/silent.png', () => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await relayErrorOf(lab().fetch({ ...at('/silent.png'), signal: controller.signal }));
    expect(error.status).toBe(502);
    expect(Date.now() - started).toBeLessThan(5000); // well before the 10 s default deadline
  });
});

describe('redirects', () => {
  const redirect = (from: string, to: string, status = 302) => origin.route(from, (_req, res) => {
    res.writeHead(status, { location: to }).end();
  });

  it('follows up to IMGRELAY_MAX_REDIRECTS relative redirects and reports the final URL', async () => {
    redirect('/r1', '/r2', 301);
    redirect('/r2', `${origin.url}/r3`, 307);
    redirect('/r3', '/final.png', 308);
    origin.serve('/final.png', pngLike(64), 'image/png');
    const response = await lab({ IMGRELAY_MAX_REDIRECTS: '3' }).fetch(at('/r1'));
    expect(response.finalUrl).toBe(`${origin.url}/final.png`);
    expect(bodyOf(response)).toEqual(pngLike(64));
  });

  it('answers 502 to one redirect more than IMGRELAY_MAX_REDIRECTS', async () => {
    for (let i = 1; i <= 4; i++) redirect(`/r${i}`, `/r${i + 1}`);
    origin.serve('/r5', pngLike(64), 'image/png');
    await expectError(lab({ IMGRELAY_MAX_REDIRECTS: '3' }).fetch(at('/r1')), 'E_UPSTREAM', 502);
    expect(origin.hits('/r5')).toBe(0);
  });

  it('answers 502 to a redirect loop', async () => {
    redirect('/a', '/b');
    redirect('/b', '/a');
    await expectError(lab().fetch(at('/a')), 'E_UPSTREAM', 502);
    expect(origin.hits('/a') + origin.hits('/b')).toBeLessThanOrEqual(2);
  });

  it('answers 502 to a redirect to an unparseable Location', async () => {
    redirect('/broken', 'http://[::1');
    await expectError(lab().fetch(at('/broken')), 'E_UPSTREAM', 502);
  });

  it('answers 502 to a redirect without Location', async () => {
    origin.route('/nowhere', (_req, res) => void res.writeHead(302).end());
    await expectError(lab().fetch(at('/nowhere')), 'E_UPSTREAM', 502);
  });
});

describe('upstream statuses and failures', () => {
  it.each([404, 410])('answers 404 to an upstream %i', async (status) => {
    origin.route('/gone.png', (_req, res) => void res.writeHead(status).end('gone'));
    await expectError(lab().fetch(at('/gone.png')), 'E_SOURCE_NOT_FOUND', 404);
  });

  it.each([500, 503, 403])('answers 502 to an upstream %i', async (status) => {
    origin.route('/err.png', (_req, res) => void res.writeHead(status).end('nope'));
    await expectError(lab().fetch(at('/err.png')), 'E_UPSTREAM', 502);
  });

  it('answers 502 to a connection reset mid-body', async () => {
    origin.route('/cut.png', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '10000' });
      res.write(pngLike(100), () => res.socket?.destroy());
    });
    await expectError(lab().fetch(at('/cut.png')), 'E_UPSTREAM', 502);
  });

  it('answers 502 when nothing listens on the port', async () => {
    const port = origin.port;
    await origin.close();
    const fetcher = buildFetcher({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_ALLOWED_PORTS: `${port}` });
    await expectError(fetcher.fetch({ url: new URL(`http://127.0.0.1:${port}/x.png`) }), 'E_UPSTREAM', 502);
  });
});

describe('referrer-safe upstream headers', () => {
  /** A hotlink-protected CDN: any Referer or Origin is refused, as zkres*.myzaker.com does. */
  const refuseReferrers = (path: string) => origin.route(path, (req, res) => {
    if (req.headers.referer || req.headers.origin) return void res.writeHead(403).end('hotlinking');
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
  });

  it('passes a Referer-refusing origin reached through IMGRELAY_RESOLVE zkres2.myzaker.com:80 → loopback', async () => {
    refuseReferrers('/202107/abc_1024.jpg');
    const fetcher = buildFetcher({ IMGRELAY_RESOLVE: `zkres2.myzaker.com:80:127.0.0.1:${origin.port}`,
      IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    const response = await fetcher.fetch({ url: new URL('http://zkres2.myzaker.com/202107/abc_1024.jpg') });
    expect(bodyOf(response)).toEqual(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
    const seen = origin.requests[0].headers;
    expect(seen.host).toBe('zkres2.myzaker.com');
    expect([seen.referer, seen.origin, seen.cookie]).toEqual([undefined, undefined, undefined]);
    expect({ ua: seen['user-agent'], accept: seen.accept }).toEqual({ ua: BROWSER_USER_AGENT, accept: 'image/*' });
  });

  it('sends pixiv\'s Referer to i.pximg.net, which refuses requests without it', async () => {
    origin.route('/img/1.png', (req, res) => {
      if (req.headers.referer !== 'https://www.pixiv.net/') return void res.writeHead(403).end();
      res.writeHead(200, { 'content-type': 'image/png' }).end(pngLike(16));
    });
    const fetcher = buildFetcher({ IMGRELAY_RESOLVE: `i.pximg.net:80:127.0.0.1:${origin.port}`,
      IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    expect(bodyOf(await fetcher.fetch({ url: new URL('http://i.pximg.net/img/1.png') }))).toEqual(pngLike(16));
  });

  it('re-applies the rules of the new host after a redirect', async () => {
    origin.route('/to-pixiv', (_req, res) => void res.writeHead(302, { location: 'http://i.pximg.net/img/2.png' }).end());
    origin.serve('/img/2.png', pngLike(16), 'image/png');
    const fetcher = buildFetcher({ IMGRELAY_RESOLVE: `i.pximg.net:80:127.0.0.1:${origin.port}`,
      IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_ALLOWED_PORTS: `80,${origin.port}` });
    await fetcher.fetch(at('/to-pixiv'));
    const [first, second] = origin.requests;
    expect([first.headers.referer, second.headers.referer]).toEqual([undefined, 'https://www.pixiv.net/']);
  });
});

describe('conditional requests', () => {
  const revalidating = () => origin.route('/c.png', (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=5' }).end();
    res.writeHead(200, { 'content-type': 'image/png', etag: '"v1"' }).end(pngLike(32));
  });

  it('sends the validators and returns notModified for a 304', async () => {
    revalidating();
    const validators = { etag: '"v1"', lastModified: 'Wed, 01 Jan 2025 00:00:00 GMT' };
    const response = await lab().fetch({ ...at('/c.png'), validators });
    expect(response).toEqual({ notModified: true, finalUrl: `${origin.url}/c.png`,
      headers: expect.objectContaining({ etag: '"v1"', cacheControl: 'max-age=5' }) });
    expect(origin.requests[0].headers).toMatchObject({ 'if-none-match': '"v1"',
      'if-modified-since': 'Wed, 01 Jan 2025 00:00:00 GMT' });
  });

  it('returns the new body when the validator no longer matches', async () => {
    revalidating();
    const response = await lab().fetch({ ...at('/c.png'), validators: { etag: '"v0"' } });
    expect(bodyOf(response)).toEqual(pngLike(32));
  });

  it('answers 502 to a 304 nobody asked for', async () => {
    origin.route('/odd.png', (_req, res) => void res.writeHead(304).end());
    await expectError(lab().fetch(at('/odd.png')), 'E_UPSTREAM', 502);
  });
});

describe('per-host concurrency', () => {
  it('keeps at most IMGRELAY_UPSTREAM_PER_HOST=2 requests at the origin for 6 parallel fetches', async () => {
    let current = 0;
    let peak = 0;
    origin.route('/held.png', (_req, res) => {
      peak = Math.max(peak, ++current);
      setTimeout(() => {
        current--;
        res.writeHead(200, { 'content-type': 'image/png' }).end(pngLike(8));
      }, 100);
    });
    const fetcher = lab({ IMGRELAY_UPSTREAM_PER_HOST: '2' });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => fetcher.fetch(at(`/held.png?i=${i}`))));
    expect(results.map(bodyOf)).toEqual(Array(6).fill(pngLike(8)));
    expect(origin.hits('/held.png')).toBe(6);
    expect(peak).toBeLessThanOrEqual(2);
  });
});

describe('URL length', () => {
  it('answers 414 to a source URL over IMGRELAY_MAX_URL_BYTES without connecting', async () => {
    const watch = watchOutgoingSockets();
    const error = await expectError(lab({ IMGRELAY_MAX_URL_BYTES: '100' }).fetch(at(`/${'a'.repeat(200)}.png`)),
      'E_URL_TOO_LONG', 414).finally(watch.stop);
    expect(error.detail).toContain('100');
    expect(watch.count()).toBe(0);
  });
});

describe('addresses and TLS', () => {
  it('fetches from an IPv6 loopback origin when ::1/128 is allowed', async () => {
    const v6 = await startTrackedOrigin('::1');
    v6.serve('/six.png', pngLike(20), 'image/png');
    const fetcher = buildFetcher({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: '::1/128', IMGRELAY_ALLOWED_PORTS: `${v6.port}` });
    expect(bodyOf(await fetcher.fetch({ url: new URL(`${v6.url}/six.png`) }))).toEqual(pngLike(20));
  });

  it('keeps the original host as TLS servername through IMGRELAY_RESOLVE, and an untrusted certificate is a 502',
    async () => {
      const context = createSecureContext({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT });
      let servername: string | undefined;
      const server = createTlsServer({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT,
        SNICallback: (name, done) => { servername = name; done(null, context); } }, (socket) => socket.destroy());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const port = (server.address() as AddressInfo).port;
        const fetcher = buildFetcher({ IMGRELAY_RESOLVE: `i.pximg.net:443:127.0.0.1:${port}`,
          IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.1/32' });
        await expectError(fetcher.fetch({ url: new URL('https://i.pximg.net/img/1.png') }), 'E_UPSTREAM', 502);
        expect(servername).toBe('i.pximg.net');
      } finally {
        server.close();
      }
    });
});
