/**
 * IMGRELAY_MAX_INFLIGHT_MB against clients that leave (in process: real origin on loopback, real sockets). The
 * attack: variants of 25 MiB sources from many hosts, each client disconnecting as soon as its source starts to
 * stream. The source fetch is shared by every variant of that source, so it holds its own bytes against the budget
 * until it settles, and is cancelled once nobody waits for it: a client that leaves must neither leave a download
 * streaming uncounted (before: its hold was released while the fetch went on, so repeated over many hosts memory
 * grew without bound) nor leave bytes counted after the fetch is gone.
 */
import { request as httpRequest, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { until } from './helpers/admin.js';
import { bootImgrelay } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';

const MiB = 1024 * 1024;
const BUDGET_MB = 40;
const HOSTS = 12; // 12 × 25 MiB = 300 MiB asked for, against a 40 MiB budget
const BODY = new Uint8Array(25 * MiB);
BODY.set([0xff, 0xd8, 0xff, 0xe0]);
const CHUNK = 256 * 1024;
const host = (i: number) => `h${i}.leave.test`;

interface Stream { sent: number; done: boolean; complete: boolean }
const streams: Stream[] = [];

/** Streams BODY slowly (a chunk every 20 ms: ~2 s in all), with or without a Content-Length; records how far it got. */
function slowBody(res: ServerResponse, declare: boolean): void {
  const stream: Stream = { sent: 0, done: false, complete: false };
  streams.push(stream);
  res.writeHead(200, { 'content-type': 'image/jpeg', ...(declare ? { 'content-length': BODY.byteLength } : {}) });
  const timer = setInterval(() => {
    if (res.destroyed) return;
    res.write(BODY.subarray(stream.sent, stream.sent + CHUNK));
    stream.sent += CHUNK;
    if (stream.sent >= BODY.byteLength) {
      stream.complete = true;
      res.end();
    }
  }, 20);
  res.on('close', () => { clearInterval(timer); stream.done = true; });
  res.on('error', () => {});
}

let origin: TestOrigin;
let node: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  origin.route('/declared.jpg', (_req, res) => slowBody(res, true));
  origin.route('/streamed.jpg', (_req, res) => slowBody(res, false));
  node = await bootImgrelay({
    IMGRELAY_MAX_INFLIGHT_MB: String(BUDGET_MB),
    IMGRELAY_RESOLVE: Array.from({ length: HOSTS }, (_, i) => `${host(i)}:80:127.0.0.1:${origin.port}`).join(','),
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    IMGRELAY_UPSTREAM_TIMEOUT_MS: '30000',
  });
}, 30_000);
afterAll(async () => {
  await node?.close();
  await origin?.close();
});

describe('bytes in flight when clients leave', () => {
  it('variants of 25 MiB sources whose clients disconnect at once: downloads are cancelled, the budget is never exceeded and comes back to 0', async () => {
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, node.budget.usedBytes); }, 2);
    const clients = Array.from({ length: HOSTS }, (_, i) => {
      const req = httpRequest(`${node.url}/?url=${encodeURIComponent(`http://${host(i)}/${i % 2 ? 'streamed' : 'declared'}.jpg`)}&w=100`);
      req.on('error', () => {});
      req.end();
      return req;
    });
    // Every source was asked for and has started to stream (or was already cut, refused for lack of budget): the
    // clients leave.
    await until(() => streams.length === HOSTS && streams.every((s) => s.sent > 0 || s.done), 10_000);
    for (const req of clients) req.destroy();

    // Nobody waits any more: each download is cancelled long before its ~2 s body ends (sockets and bytes bounded).
    await until(() => streams.every((s) => s.done), 10_000);
    clearInterval(sampler);
    expect(streams.length).toBeGreaterThan(0);
    expect(streams.filter((s) => s.complete)).toEqual([]);
    expect(Math.max(...streams.map((s) => s.sent))).toBeLessThan(BODY.byteLength);
    expect(peak).toBeLessThanOrEqual(BUDGET_MB * MiB);
    await until(() => node.budget.usedBytes === 0, 5_000);
  });
});
