/**
 * deploy/varnish/cluster.vcl on a real varnishd, its three backends two real imgrelays and one faulty server:
 * - a backend that accepts and then cuts every image request (a process dying mid-drain) costs no client error:
 *   Varnish retries the fetch on the next backend;
 * - a backend whose /readyz fails (draining) leaves the rotation after the probe window and gets no more requests.
 * The whole scale-out (drain, restart, purge across instances) runs in test/scale-out.test.ts.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { eventually as until, solidPng } from './helpers/admin.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { type TestVarnishCluster, startVarnishCluster } from './helpers/varnish.js';

const PROBE_MS = 100;
let origin: TestOrigin;
let relays: RunningNode[];
let faulty: { server: Server; port: number; imageRequests: number; ready: boolean };
let varnish: TestVarnishCluster;

beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/c.png', await solidPng('#446688', 64, 48), 'image/png');
  relays = [await bootImgrelay(zakerAt(origin.port)), await bootImgrelay(zakerAt(origin.port))];
  faulty = { server: createServer(), port: 0, imageRequests: 0, ready: true };
  faulty.server.on('request', (req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(faulty.ready ? 200 : 503).end(faulty.ready ? 'ready' : 'draining');
      return;
    }
    faulty.imageRequests += 1;
    req.socket.destroy(); // no status line: to Varnish a failed fetch
  });
  await new Promise<void>((resolve) => faulty.server.listen(0, '127.0.0.1', resolve));
  faulty.port = (faulty.server.address() as AddressInfo).port;
  varnish = await startVarnishCluster([relays[0].port, relays[1].port, faulty.port], { probeIntervalMs: PROBE_MS });
  expect(await until(async () => (await varnish.healthy()).length === 4, 10_000)).toBe(true); // 3 backends + director
}, 60_000);

afterAll(async () => {
  await varnish?.close();
  await Promise.all(relays.map((relay) => relay.close()));
  faulty.server.closeAllConnections();
  await new Promise((resolve) => faulty.server.close(resolve));
  await origin.close();
});

/** `count` distinct variants (edge misses all) through Varnish; the statuses. */
async function missesThroughVarnish(count: number, firstWidth: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${varnish.url}/?url=${encodeURIComponent(`http://${ZAKER}/c.png`)}&w=${firstWidth + i}`);
    await response.arrayBuffer();
    statuses.push(response.status);
  }
  return statuses;
}

describe('cluster.vcl', () => {
  it('a backend that cuts connections costs no client error: the fetch is retried on the next backend', async () => {
    const failedBefore = await failedFetches();
    const statuses = await missesThroughVarnish(24, 10);
    const failed = await failedFetches() - failedBefore;
    if (statuses.some((s) => s !== 200)) console.log(await varnish.log('-g', 'request', '-q', 'BerespStatus == 503'));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Round robin sent about a third of the fetches to the faulty backend; each failed, was retried, reached no client.
    expect(faulty.imageRequests).toBeGreaterThanOrEqual(4);
    expect(failed).toBe(faulty.imageRequests);
  });

  it('a backend whose /readyz fails leaves the rotation and gets no more requests', async () => {
    faulty.ready = false;
    expect(await until(async () => !(await varnish.healthy()).includes('imgrelay3'), 10_000)).toBe(true);
    const before = faulty.imageRequests;
    const failedBefore = await failedFetches();
    const statuses = await missesThroughVarnish(24, 100);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(faulty.imageRequests - before).toBe(0);
    expect(await failedFetches() - failedBefore).toBe(0);
  });
});

/** Backend fetches that failed (each then retried by vcl_backend_error, or answered 503 past the retries). */
const failedFetches = async () => (await varnish.counters('MAIN.fetch_failed'))['MAIN.fetch_failed'];

