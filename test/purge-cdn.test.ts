/**
 * The Cloudflare target, as a contract test: the real Cloudflare API cannot be reached from here, so a local HTTP
 * server stands in for it (IMGRELAY_CF_API_BASE points at it) and checks the request shape the API documents:
 * `POST /client/v4/zones/<zone id>/purge_cache`, `Authorization: Bearer <token>`, a JSON body with `files`
 * (at most 30), `tags` (at most 30) or `purge_everything: true`, answered with `{ "success": true, … }`.
 * Also: a failing CDN is reported and retried in the background, and never blocks or undoes the local purge.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { surrogateKeys } from '../src/images.js';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { startHangingServer } from './helpers/s3.js';
import { TOKEN_A, eventually, fetchImage, memorySources, purge, solidPng } from './helpers/admin.js';

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const CF_TOKEN = 'cf-test-token-0123456789';

interface CfCall { method: string; url: string; authorization?: string; contentType?: string; body: Record<string, unknown> }

/** Stands in for api.cloudflare.com: records calls; answers like the API, or fails the first `failFirst` calls. */
async function startFakeCloudflare(failFirst = 0) {
  const calls: CfCall[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    calls.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization,
      contentType: req.headers['content-type'], body: JSON.parse(raw || '{}') as Record<string, unknown> });
    const failing = calls.length <= failFirst;
    res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(failing
      ? { success: false, errors: [{ code: 10000, message: 'Internal error' }], messages: [], result: null }
      : { success: true, errors: [], messages: [], result: { id: ZONE } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
  return { calls, base, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let origin: TestOrigin;
const open: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/a.png', await solidPng('#101010'), 'image/png');
});
afterAll(() => origin.close());
afterEach(async () => { await Promise.all(open.splice(0).reverse().map((item) => item.close())); });

async function bootWithCloudflare(apiBase: string): Promise<RunningNode> {
  const node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_ADMIN_TOKENS: TOKEN_A,
    IMGRELAY_CDN_PURGE: 'cloudflare', IMGRELAY_CF_ZONE_ID: ZONE, IMGRELAY_CF_API_TOKEN: CF_TOKEN,
    IMGRELAY_CF_API_BASE: apiBase });
  open.push(node);
  return node;
}

describe('Cloudflare purge (contract test against a stand-in for the API)', () => {
  it('sends files for proxy URLs, tags for sources, hosts and tags, and purge_everything for all', async () => {
    const cf = await startFakeCloudflare();
    open.push(cf);
    const node = await bootWithCloudflare(cf.base);
    const proxyUrls = Array.from({ length: 31 }, (_, i) => `https://img.example.com/?url=${encodeURIComponent(`http://${ZAKER}/a.png`)}&w=${i + 10}`);
    const answer = await purge(node, { urls: proxyUrls, hosts: ['img.example.org'], tags: ['campaign-7'] });
    expect(answer.cdn).toEqual([{ target: 'cloudflare', ok: true, detail: 'purged 31 file(s), 3 tag(s)' }]);
    for (const call of cf.calls) {
      expect(call.method).toBe('POST');
      expect(call.url).toBe(`/client/v4/zones/${ZONE}/purge_cache`);
      expect(call.authorization).toBe(`Bearer ${CF_TOKEN}`);
      expect(call.contentType).toBe('application/json');
    }
    const [srcKey] = await surrogateKeys(new URL(`http://${ZAKER}/a.png`));
    expect(cf.calls.map((c) => c.body)).toEqual([
      { files: proxyUrls.slice(0, 30) },
      { files: proxyUrls.slice(30) },
      { tags: expect.arrayContaining(['campaign-7', srcKey, 'host-img.example.org']) },
    ]);
    expect((cf.calls[2].body.tags as string[]).length).toBe(3);

    cf.calls.length = 0;
    await purge(node, { all: true });
    expect(cf.calls.map((c) => c.body)).toEqual([{ purge_everything: true }]);
  });

  it('reports a failing CDN, retries it in the background, and still purged every local tier', async () => {
    const cf = await startFakeCloudflare(1);
    open.push(cf);
    const node = await bootWithCloudflare(cf.base);
    expect((await fetchImage(`${node.url}/?http://${ZAKER}/a.png`)).status).toBe(200);
    const answer = await purge(node, { urls: [`http://${ZAKER}/a.png`] }, 207);
    expect(answer.memory).toBe(1);
    expect(memorySources(node).size).toBe(0);
    expect(answer.status).toBe('partial');
    expect(answer.unreached).toEqual(['cdn cloudflare: Cloudflare answered 500: 10000 Internal error (retrying in the background)']);
    expect(answer.cdn).toEqual([{ target: 'cloudflare', ok: false, retrying: true,
      detail: 'Cloudflare answered 500: 10000 Internal error' }]);
    // The retry (after about a second) reaches the API with the same request.
    expect(await eventually(async () => cf.calls.length >= 2, 15_000)).toBe(true);
    expect(cf.calls[1].body).toEqual(cf.calls[0].body);
  });

  it('a CDN that never answers does not hold the purge beyond its attempt deadline', async () => {
    const hanging = await startHangingServer();
    open.push({ close: () => hanging.stop() });
    const node = await bootWithCloudflare(`${hanging.endpoint}/client/v4`);
    expect((await fetchImage(`${node.url}/?http://${ZAKER}/a.png`)).status).toBe(200);
    const started = Date.now();
    const answer = await purge(node, { urls: [`http://${ZAKER}/a.png`] }, 207);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(answer.memory).toBe(1);
    expect(answer.cdn[0]).toMatchObject({ target: 'cloudflare', ok: false, retrying: true });
    expect((await fetchImage(`${node.url}/?http://${ZAKER}/a.png`)).cache).toBe('MISS');
  });
});
