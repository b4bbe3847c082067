/**
 * DNS off the shared thread pool (issue #14 item 4). The attack: a resolver that never answers (a UDP socket on
 * loopback that reads queries and stays silent, pointed to by IMGRELAY_DNS_SERVERS) receiving 8 concurrent lookups.
 * With getaddrinfo each would hold one of libuv's 4 pool threads, which sharp and the fs store share, for the system
 * resolver's timeout. Here the lookups run on c-ares: transforms and store hits of other hosts are served while they
 * hang, pool work completes with the pool sized to ONE thread, and the lookups end with 504 within the connect timeout.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from './helpers/admin.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { fixture } from './helpers/images.js';
import { bootImgrelay } from './helpers/imgrelay.js';
import { startOrigin, type TestOrigin } from './helpers/origin.js';

const CONNECT_TIMEOUT_MS = 1500;
/** Generous: the bound plus scheduling slack on a loaded 2-core machine. */
const SLACK_MS = 2500;
const PHOTO = fixture('abstract-flow.png');

let blackHole: TestDnsServer;
let origin: TestOrigin;
let dir: string;

beforeAll(async () => {
  [blackHole, origin] = await Promise.all([startDnsServer({ blackHole: true }), startOrigin()]);
  for (const name of ['a', 'b', 'c']) origin.serve(`/${name}.png`, PHOTO, 'image/png');
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-dns-'));
});
afterAll(async () => {
  await Promise.all([blackHole.close(), origin.close()]);
  await rm(dir, { recursive: true, force: true });
});

const namesAsked = (prefix: string) => new Set(blackHole.queries.map((q) => q.name).filter((n) => n.startsWith(prefix)));

describe('a black-holed resolver', () => {
  it('keeps serving transforms and store hits of other hosts while 8 lookups hang, and ends those with 504 in time', async () => {
    const env = {
      IMGRELAY_RESOLVE: `photos.example:80:127.0.0.1:${origin.port}`, IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir, IMGRELAY_DNS_SERVERS: blackHole.address,
      IMGRELAY_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
    };
    const primer = await bootImgrelay(env);
    for (const name of ['a', 'b']) await (await fetch(`${primer.url}/?url=http://photos.example/${name}.png`)).arrayBuffer();
    await primer.close(); // drains the write-behind queue: a and b are in the store, not in the new memory tier

    const relay = await bootImgrelay(env);
    try {
      let settled = 0;
      const started = performance.now();
      const hanging = Array.from({ length: 8 }, (_, i) => fetch(`${relay.url}/?url=http://hole-${i}.example/x.png&w=10`)
        .then(async (r) => ({ status: r.status, code: ((await r.json()) as { code: string }).code, ms: performance.now() - started }))
        .finally(() => { settled++; }));
      await until(() => namesAsked('hole-').size === 8, 5_000);

      const storeHit = await fetch(`${relay.url}/?url=http://photos.example/a.png`);
      const transformFromStore = await fetch(`${relay.url}/?url=http://photos.example/b.png&w=40&output=webp`);
      const fetchAndTransform = await fetch(`${relay.url}/?url=http://photos.example/c.png&w=30`);
      const served = await Promise.all([storeHit, transformFromStore, fetchAndTransform].map(async (r) =>
        [r.status, r.headers.get('x-cache'), (await r.arrayBuffer()).byteLength > 0]));
      expect(served).toEqual([[200, 'HIT-STORE', true], [200, 'MISS', true], [200, 'MISS', true]]);
      expect(settled).toBe(0); // all of that happened while every lookup was still hanging

      const outcomes = await Promise.all(hanging);
      expect(outcomes.map((o) => [o.status, o.code])).toEqual(Array(8).fill([504, 'E_UPSTREAM_TIMEOUT']));
      expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
    } finally {
      await relay.close();
    }
  });

  it('never occupies the thread pool: with UV_THREADPOOL_SIZE=1, fs and crypto work completes while 8 lookups hang', async () => {
    const report = await runProbe(blackHole.address, CONNECT_TIMEOUT_MS);
    // Control: this process's pool really has one thread (a read queued behind a slow hash waits for it) …
    expect(report.control.readDoneAt).toBeGreaterThanOrEqual(report.control.hashDoneAt);
    // … so had any lookup held that thread, the pool work below would have waited for the lookups to end.
    expect(report.pendingAfterPoolWork).toBe(8);
    expect(namesAsked('pool-probe-').size).toBe(8); // the queries really went to the black hole
    expect(report.outcomes).toEqual(Array(8).fill('E_UPSTREAM_TIMEOUT'));
    expect(report.lookupsMs).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  });
});

interface ProbeReport {
  control: { hashDoneAt: number; readDoneAt: number };
  poolWorkMs: number;
  pendingAfterPoolWork: number;
  outcomes: string[];
  lookupsMs: number;
}

function runProbe(server: string, timeoutMs: number): Promise<ProbeReport> {
  const probe = fileURLToPath(new URL('./helpers/dns-pool-probe.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', probe, server, String(timeoutMs)], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => { out += chunk; });
  child.stderr.on('data', (chunk: Buffer) => { err += chunk; });
  return new Promise((resolve, reject) => child.on('exit', (code) => {
    if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as ProbeReport);
    else reject(new Error(`probe exited ${code}: ${err}`));
  }));
}
