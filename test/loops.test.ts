/**
 * Loops and downgrades (issue #14 item 6), one test per attack, named by its outcome. The real service on loopback;
 * each loop test also counts what reached the origin (or the service itself), which is the resource a loop burns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFetchFetcher } from '../src/fetch/fetch-fetcher.js';
import { VIA_HEADER_VALUE } from '../src/fetch/loop-guard.js';
import type { RunningNode } from '../src/node.js';
import { closeAll, relayErrorOf, startTrackedOrigin } from './helpers/fetch-harness.js';
import { TEST_TLS_CERT } from './helpers/fetch-tls-cert.js';
import { fixture } from './helpers/images.js';
import { bootImgrelay } from './helpers/imgrelay.js';
import type { TestOrigin } from './helpers/origin.js';

const PNG = fixture('abstract-flow.png');
const PUBLIC = 'img.relay.example';

let origin: TestOrigin;
let relay: RunningNode;
/** A TCP forwarder to the service itself: `self.example` resolves here, so a source on it is the service. */
let selfProxy: { server: Server; connections: number; port: number };

beforeAll(async () => {
  origin = await startTrackedOrigin();
  origin.serve('/a.png', PNG, 'image/png');
  origin.serve(`/?url=http://${PUBLIC}/a.png`, PNG, 'image/png');
  origin.serve('/?url=http://photos.example/a.png', PNG, 'image/png');
  selfProxy = await startForwarder();
  const hosts = ['photos.example', 'cdn.example', 'weserv.example', PUBLIC].map((h) => `${h}:80:127.0.0.1:${origin.port}`);
  relay = await bootImgrelay({
    IMGRELAY_RESOLVE: [...hosts, `self.example:80:127.0.0.1:${selfProxy.port}`].join(','),
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_PUBLIC_HOSTS: `${PUBLIC},*.relay.example`,
  });
  forwardTo(selfProxy.server, relay.port);
});
afterAll(async () => {
  await relay.close();
  selfProxy.server.close();
  await closeAll();
});
afterEach(() => { origin.requests.length = 0; });

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${relay.url}${path}`, { headers });

async function expectLoop(response: Response): Promise<void> {
  const body = await response.json() as { code: string };
  expect({ status: response.status, code: body.code, type: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control') })
    .toEqual({ status: 508, code: 'E_LOOP', type: 'application/problem+json', cacheControl: 'no-store' });
}

describe('a source that points back at this service', () => {
  it('refuses a source on an IMGRELAY_PUBLIC_HOSTS name with 508 and fetches nothing', async () => {
    for (const path of [`/?url=http://${PUBLIC}/a.png`, `/?http://${PUBLIC.toUpperCase()}./a.png`,
      `/cdn-cgi/image/width=10/http://cdn.relay.example/a.png`]) {
      await expectLoop(await get(path));
    }
    expect(origin.requests).toHaveLength(0);
  });

  it('refuses a source reaching the service under an unlisted name with 508 after exactly one extra request', async () => {
    const before = selfProxy.connections;
    const started = performance.now();
    // An imgrelay URL on a name not in IMGRELAY_PUBLIC_HOSTS (an IP, a CDN alias): allowed at parse time, so it
    // connects once; the inner request carries our Via token and is refused there, and its 508 names the loop here.
    await expectLoop(await get(`/?url=${encodeURIComponent('http://self.example/?url=http://photos.example/a.png')}&w=10`));
    expect(origin.requests).toHaveLength(0);
    // Without the Via guard each level would fetch the next until the deadline; here the service saw one.
    expect(selfProxy.connections - before).toBe(1);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('refuses a request that already passed through an imgrelay (its Via token) with 508 before fetching', async () => {
    for (const via of [VIA_HEADER_VALUE, '1.1 varnish, 1.1 imgrelay', 'HTTP/1.1 IMGRELAY']) {
      await expectLoop(await get('/?url=http://photos.example/a.png', { via }));
    }
    expect(origin.requests).toHaveLength(0);
    // Controls: another proxy's hop, and Varnish on a machine named imgrelay (its hop carries a comment).
    for (const via of ['1.1 varnish', '1.1 imgrelay (Varnish/7.1)']) {
      const control = await get('/?url=http://photos.example/a.png', { via });
      expect(control.status).toBe(200);
      await control.arrayBuffer();
    }
  });

  it('refuses an upstream answer carrying the imgrelay Via token with 508 and caches nothing', async () => {
    origin.serve('/via.png', PNG, 'image/png', { via: '1.1 imgrelay' });
    await expectLoop(await get('/?url=http://photos.example/via.png'));
    await expectLoop(await get('/?url=http://photos.example/via.png'));
    expect(origin.hits('/via.png')).toBe(2); // not negatively cached: a loop is a configuration fault, not the image
  });

  it('refuses a redirect onto a public host with 508 without following it', async () => {
    origin.route('/away.png', (_req, res) => void res.writeHead(302, { location: `http://${PUBLIC}/a.png` }).end());
    await expectLoop(await get('/?url=http://photos.example/away.png'));
    expect(origin.hits('/a.png')).toBe(0);
  });

  it('refuses a redirect answered through an imgrelay with 508 without following it', async () => {
    origin.route('/hop.png', (_req, res) => void res.writeHead(302, { location: '/a.png', via: '1.0 imgrelay' }).end());
    await expectLoop(await get('/?url=http://photos.example/hop.png'));
    expect(origin.hits('/a.png')).toBe(0);
  });
});

describe('nested image-proxy URLs', () => {
  it('refuses a foreign proxy URL whose inner source is on a public host with 508 and fetches nothing', async () => {
    const inner = encodeURIComponent(`http://weserv.example/?url=http://${PUBLIC}/a.png`);
    await expectLoop(await get(`/?url=${inner}`));
    await expectLoop(await get(`/cdn-cgi/image/width=10/http://cdn.example/cdn-cgi/image/w=1/http://${PUBLIC}/a.png`));
    await expectLoop(await get(`/?http://weserv.example/?http%3A%2F%2F${PUBLIC}%2Fa.png`));
    expect(origin.requests).toHaveLength(0);
  });

  it('refuses image-proxy URLs nested three deep on foreign hosts with 508 and fetches nothing', async () => {
    const deep = 'http://a.example/?url=' + encodeURIComponent('http://b.example/cdn-cgi/image/w=1/http://c.example/?http://d.example/x.png');
    await expectLoop(await get(`/?url=${encodeURIComponent(deep)}`));
    expect(origin.requests).toHaveLength(0);
  });

  it('fetches a single foreign proxy URL (weserv, Cloudflare) as an ordinary source', async () => {
    const response = await get(`/?url=${encodeURIComponent('http://weserv.example/?url=http://photos.example/a.png')}`);
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(PNG);
  });
});

describe('upstream requests', () => {
  it('carries Via: 1.1 imgrelay on every upstream request, redirect hops included', async () => {
    origin.route('/moved.png', (_req, res) => void res.writeHead(301, { location: '/a.png' }).end());
    const response = await get('/?url=http://photos.example/moved.png&w=7');
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    expect(origin.requests.map((r) => [r.url, r.headers.via])).toEqual([['/moved.png', '1.1 imgrelay'], ['/a.png', '1.1 imgrelay']]);
  });
});

describe('downgrades on Node (the guarded fetcher, real TLS)', () => {
  it('refuses an https source redirected to http with 403 and never requests the http URL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgrelay-ca-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), TEST_TLS_CERT);
      const probe = fileURLToPath(new URL('./helpers/downgrade-probe.ts', import.meta.url));
      const child = spawnSync(process.execPath, ['--import', 'tsx', probe], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }, encoding: 'utf8', timeout: 20_000 });
      expect(child.status, child.stderr).toBe(0);
      const report = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      // The control proves the https hop itself works (so the 403 is the downgrade rule, not a TLS failure).
      expect(report).toEqual({ control: '200 secure', downgrade: '403 E_SOURCE_FORBIDDEN', plainRequests: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('downgrades (the portable redirect walk, which Workers use too)', () => {
  /** The portable fetcher, its `fetch` sending every host to the loopback origin (a stand-in for DNS on Workers). */
  function portableFetcher() {
    return createFetchFetcher({ allowedHosts: ['*'], blockedHosts: [], allowedPorts: [80, 443], maxUrlBytes: 8192,
      allowPrivateNetworks: [], upstreamTimeoutMs: 5000, maxRedirects: 5, maxSourceBytes: 1 << 20, upstreamPerHost: 4,
      publicHosts: [PUBLIC] }, {
      fetch: (input, init) => {
        const url = new URL(String(input));
        return fetch(`${origin.url}${url.pathname}${url.search}`, { ...init, headers: { ...init?.headers as object, 'x-scheme': url.protocol } });
      },
    });
  }

  it('refuses an https source redirected to http with 403 and never requests the http URL', async () => {
    origin.route('/secure.png', (_req, res) => void res.writeHead(302, { location: 'http://photos.example/plain.png' }).end());
    const error = await relayErrorOf(portableFetcher().fetch({ url: new URL('https://photos.example/secure.png') }));
    expect([error.status, error.code]).toEqual([403, 'E_SOURCE_FORBIDDEN']);
    expect(origin.hits('/plain.png')).toBe(0);
  });

  it('still follows an http source redirected to https, and https to https', async () => {
    origin.route('/up.png', (_req, res) => void res.writeHead(302, { location: 'https://photos.example/a.png' }).end());
    const response = await portableFetcher().fetch({ url: new URL('http://photos.example/up.png') });
    expect(response.notModified === false && response.body.byteLength).toBe(PNG.byteLength);
    expect(origin.requests.map((r) => r.headers['x-scheme'])).toEqual(['http:', 'https:']);
    expect(origin.requests.map((r) => r.headers.via)).toEqual(['1.1 imgrelay', '1.1 imgrelay']);
  });

  it('refuses a redirect onto a public host with 508 in the portable walk too', async () => {
    origin.route('/out.png', (_req, res) => void res.writeHead(302, { location: `http://${PUBLIC}/a.png` }).end());
    const error = await relayErrorOf(portableFetcher().fetch({ url: new URL('http://photos.example/out.png') }));
    expect([error.status, error.code]).toEqual([508, 'E_LOOP']);
    expect(origin.hits('/a.png')).toBe(0);
  });
});

async function startForwarder(): Promise<{ server: Server; connections: number; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state = { server, connections: 0, port: (server.address() as AddressInfo).port };
  server.on('connection', () => { state.connections++; });
  return state;
}

function forwardTo(server: Server, port: number): void {
  server.on('connection', (client: Socket) => {
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
}
