/**
 * The request log as an operator reads it: the service runs as its own process (`npm start`'s way) and every image
 * request writes one JSON line on stdout with the documented fields — request id (the X-Request-Id header, the
 * `instance` of an error body), form, source host, X-Cache, status, bytes, total ms and the stages that
 * Server-Timing shows. Hits, answered by the fast path, are sampled at IMGRELAY_LOG_HIT_SAMPLE; misses and errors
 * always have their line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZAKER, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { eventually, solidPng } from './helpers/admin.js';
import { type ChildService, startChildService } from './helpers/child-service.js';
import { ERROR_LINES_PER_S } from '../src/observe/request-log.js';
import { VIA_HEADER_VALUE } from '../src/fetch/loop-guard.js';

let origin: TestOrigin;
let service: ChildService;
let dir: string;
const lines: Array<Record<string, any>> = [];

beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/log.png', await solidPng('#823', 80, 60), 'image/png');
  origin.serve('/log2.png', await solidPng('#283', 80, 60), 'image/png');
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-reqlog-'));
  service = await startChildService({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_LOG_HIT_SAMPLE: '0.25' });
  let partial = '';
  service.child.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop()!;
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line));
  });
}, 180_000);
afterAll(async () => {
  await service?.stop();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

const requestLines = () => lines.filter((line) => line.msg === 'request');
const timingOf = (header: string | null, stage: string) => {
  const match = new RegExp(`${stage};dur=([\\d.]+)`).exec(header ?? '');
  return match ? Number(match[1]) : undefined;
};

describe('request log', () => {
  it('writes one line per miss with its id, form, host, X-Cache, bytes and the Server-Timing stages', async () => {
    const response = await fetch(`${service.url}/?url=${encodeURIComponent(`http://${ZAKER}/log.png`)}&w=40`);
    const body = new Uint8Array(await response.arrayBuffer());
    expect(response.status).toBe(200);
    const id = response.headers.get('x-request-id')!;
    expect(await eventually(async () => requestLines().some((l) => l.requestId === id), 10_000)).toBe(true);
    const line = requestLines().find((l) => l.requestId === id)!;
    expect(line).toMatchObject({ level: 30, form: 'query', host: ZAKER, cache: 'MISS', status: 200, bytes: body.byteLength });
    expect(line.ms).toBeGreaterThan(0);
    // The stages of a cold resize: the store was read (a miss), the source fetched, the job queued and transformed.
    expect(Object.keys(line.stages).sort()).toEqual(['fetch', 'queue', 'store', 'transform']);
    const timing = response.headers.get('server-timing');
    expect(timing).toMatch(/^cache;desc=MISS, fetch;dur=[\d.]+, queue;dur=[\d.]+, transform;dur=[\d.]+, store;dur=[\d.]+, total;dur=[\d.]+$/);
    for (const stage of ['fetch', 'queue', 'transform', 'store']) {
      expect(Math.abs(line.stages[stage] - timingOf(timing, stage)!), stage).toBeLessThanOrEqual(0.1);
    }
    expect(line.stages.fetch + line.stages.transform).toBeLessThanOrEqual(line.ms);
  });

  it('samples hits (1 in 4 here, marked `sample`) and logs every error with the id its body carries', async () => {
    const url = `${service.url}/?http://${ZAKER}/log2.png`;
    const before = requestLines().length;
    expect((await fetch(url)).headers.get('x-cache')).toBe('MISS');
    for (let i = 0; i < 8; i += 1) {
      const hit = await fetch(url);
      await hit.arrayBuffer();
      expect(hit.headers.get('x-cache')).toBe('HIT-MEMORY');
    }
    const refused = await fetch(`${service.url}/?http://${ZAKER}/nothing-here.png`);
    expect(refused.status).toBe(404);
    const problem = await refused.json() as { instance: string; code: string };
    const id = problem.instance.replace('urn:request:', '');
    expect(refused.headers.get('x-request-id')).toBe(id);
    expect(await eventually(async () => requestLines().some((l) => l.requestId === id), 10_000)).toBe(true);
    const mine = requestLines().slice(before);
    // One miss, 2 of the 8 hits, one error: 4 lines, each its own id.
    expect(mine.map((l) => l.cache ?? l.code)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY', 'E_SOURCE_NOT_FOUND']);
    expect(new Set(mine.map((l) => l.requestId)).size).toBe(4);
    expect(mine[1]).toMatchObject({ form: 'legacy', host: ZAKER, status: 200, sample: 0.25 });
    expect(mine[1].bytes).toBe(mine[0].bytes);
    expect(mine[3]).toMatchObject({ form: 'legacy', host: ZAKER, status: 404, bytes: 0 });
    // The refusal has no second line of its own: one line per request.
    expect(lines.filter((l) => l.requestId === id)).toHaveLength(1);
  });

  it('a flood of refused requests writes a bounded number of lines (the next one says how many were left out)', async () => {
    const flood = 600;
    const before = lines.length;
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < flood) {
        next += 1;
        const refused = await fetch(`${service.url}/?url=ftp%3A%2F%2F${ZAKER}%2Fa.png`);
        await refused.arrayBuffer();
        expect(refused.status).toBe(403); // E_SOURCE_FORBIDDEN: refused before any fetch
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const seconds = (performance.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 300)); // the child's last lines reach our pipe
    const refusals = lines.slice(before).filter((l) => l.msg === 'request' && l.code === 'E_SOURCE_FORBIDDEN');
    // At most ERROR_LINES_PER_S in each wall-clock second the flood touched, however many requests it made.
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.length).toBeLessThanOrEqual(ERROR_LINES_PER_S * (Math.ceil(seconds) + 1));
    if (seconds < 5) expect(refusals.length).toBeLessThan(flood / 2);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // a new second: the allowance is back
    const late = await fetch(`${service.url}/?url=ftp%3A%2F%2F${ZAKER}%2Fc.png`);
    const lateId = (await late.json() as { instance: string }).instance.replace('urn:request:', '');
    expect(await eventually(async () => lines.some((l) => l.requestId === lateId), 10_000)).toBe(true);
    const written = lines.slice(before).filter((l) => l.msg === 'request' && l.code === 'E_SOURCE_FORBIDDEN');
    const counted = written.length + written.reduce((sum, l) => sum + (l.suppressed ?? 0), 0);
    // Every refusal is either a line or counted in a later line's `suppressed`: the counts add up to the requests made.
    expect(counted).toBe(flood + 1);
  });

  it('a flood of forged loop requests (508) writes no stack traces: each is told by its request line, code and detail', async () => {
    const before = lines.length;
    const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const response = await fetch(`${service.url}/?http://${ZAKER}/log.png?loop=${i}`, { headers: { via: VIA_HEADER_VALUE } });
      await response.arrayBuffer();
      return response.status;
    }));
    expect(new Set(answers)).toEqual(new Set([508]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mine = lines.slice(before);
    expect(mine.filter((l) => l.level >= 50)).toEqual([]);
    const loops = mine.filter((l) => l.msg === 'request' && l.code === 'E_LOOP');
    expect(loops.length).toBeGreaterThan(0);
    expect(loops.length).toBeLessThan(201);
    expect(loops[0]).toMatchObject({ status: 508, form: 'legacy', host: ZAKER, detail: expect.stringContaining('loop') });
    expect(mine.reduce((bytes, l) => bytes + JSON.stringify(l).length, 0)).toBeLessThan(200 * 1024);
  });
});
