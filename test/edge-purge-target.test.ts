/**
 * The Node admin's purge reaching the real Worker (IMGRELAY_CDN_PURGE=worker+http://…): the bundle
 * `wrangler deploy --dry-run` builds runs in workerd through Miniflare, listening on loopback with a local R2 bucket
 * and the Cache API, and the real Node service's POST /purge calls its purge route as one more CDN target. The
 * admin's answer reports the Worker's result, and the Worker stops serving the purged image; a wrong token is
 * reported as a failure (and retried), and the edge keeps its entry.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fetch as miniflareFetch, Miniflare, type Request as MiniflareRequest, Response as MiniflareResponse } from 'miniflare';
import type { RunningNode } from '../src/node.js';
import { bootImgrelay, zakerAt, ZAKER } from './helpers/imgrelay.js';
import { fixture } from './helpers/images.js';
import { startOrigin, type TestOrigin } from './helpers/origin.js';
import { purge, TOKEN_A } from './helpers/admin.js';

const run = promisify(execFile);
const EDGE_TOKEN = 'edge-purge-token-0123456789';
const WRANGLER_ENV = {
  ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_API_TOKEN: '', CLOUDFLARE_ACCOUNT_ID: '', CI: 'true',
};

let outdir: string;
let origin: TestOrigin;
let mf: Miniflare;
let edgeUrl: URL;
const nodes: RunningNode[] = [];

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), 'imgrelay-edge-target-'));
  await run('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', outdir], { env: WRANGLER_ENV, timeout: 120_000 });
  origin = await startOrigin();
  origin.serve('/a.jpg', fixture('photo-wood.jpg'), 'image/jpeg');
  origin.serve('/b.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg');
  const toml = await readFile('wrangler.toml', 'utf8');
  mf = new Miniflare({
    modules: true, modulesRoot: outdir, scriptPath: join(outdir, 'worker.js'), cf: false,
    compatibilityDate: /compatibility_date\s*=\s*"([^"]+)"/.exec(toml)?.[1],
    host: '127.0.0.1', port: 0,
    bindings: { IMGRELAY_LOG_LEVEL: 'silent', IMGRELAY_EDGE_PURGE_TOKEN: EDGE_TOKEN, IMGRELAY_PURGE_POLL_MS: '100' },
    r2Buckets: ['IMGRELAY_R2'],
    // The image host is connected to the loopback origin, as IMGRELAY_RESOLVE does on Node; nothing else.
    outboundService: async (request: MiniflareRequest) => {
      const url = new URL(request.url);
      if (url.hostname !== ZAKER) return new MiniflareResponse('no route', { status: 502 });
      return miniflareFetch(origin.url + url.pathname + url.search);
    },
  });
  edgeUrl = await mf.ready;
}, 150_000);

afterAll(async () => {
  await mf?.dispose();
  await origin?.close();
  await rm(outdir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close()));
});

async function bootAdmin(edgeToken: string): Promise<RunningNode> {
  const node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_ADMIN_TOKENS: TOKEN_A,
    IMGRELAY_CDN_PURGE: `worker+${edgeUrl.origin}`, IMGRELAY_EDGE_PURGE_TOKEN: edgeToken });
  nodes.push(node);
  return node;
}

/** One request to the Worker; returns X-Cache (the body is read: nothing is left pending). */
async function edgeState(path: string): Promise<string | null> {
  const response = await mf.dispatchFetch(new URL(`/?http://${ZAKER}${path}`, edgeUrl));
  expect(response.status).toBe(200);
  await response.arrayBuffer();
  return response.headers.get('x-cache');
}

describe('admin purge → the Worker (worker+http:// CDN target)', () => {
  it('reaches the Worker, reports its result, and the Worker fetches the purged image again', async () => {
    const node = await bootAdmin(EDGE_TOKEN);
    expect(await edgeState('/a.jpg')).toBe('MISS');
    expect(await edgeState('/a.jpg')).toBe('HIT-MEMORY');
    expect(await edgeState('/b.jpg')).toBe('MISS');

    const answer = await purge(node, { urls: [`http://${ZAKER}/a.jpg`] });
    expect(answer.cdn).toEqual([{ target: `worker ${edgeUrl.host}`, ok: true,
      detail: expect.stringMatching(/^purged 1 tag\(s\) \(_purge\/\d{15}-edge[0-9a-f]{8}-[a-z0-9]+\)$/) }]);
    const hits = origin.hits('/a.jpg');
    expect(await edgeState('/a.jpg')).toBe('MISS');
    expect(origin.hits('/a.jpg')).toBe(hits + 1);
    expect(await edgeState('/b.jpg')).toBe('HIT-MEMORY');
  });

  it('reports a wrong token as a failure (retried in the background), and the edge keeps its entry', async () => {
    const node = await bootAdmin(`${EDGE_TOKEN}-wrong`);
    await edgeState('/b.jpg');
    expect(await edgeState('/b.jpg')).toBe('HIT-MEMORY');
    // A CDN target not reached makes the purge partial: 207 (docs/admin.md).
    const answer = await purge(node, { urls: [`http://${ZAKER}/b.jpg`] }, 207);
    expect(answer.status).toBe('partial');
    expect(answer.cdn).toEqual([{ target: `worker ${edgeUrl.host}`, ok: false, retrying: true,
      detail: expect.stringContaining('401 E_UNAUTHORIZED') }]);
    expect(await edgeState('/b.jpg')).toBe('HIT-MEMORY');
  });
});
