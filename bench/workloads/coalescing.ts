/**
 * Workload 4 — coalescing: N identical cold requests at once. Counts origin GETs (at the origin) and sharp
 * outputs (inside the imgrelay child), and compares the waiters' median latency with lone cold requests',
 * interleaved (lone, burst, lone, burst …). ipx gets the same bursts once, for its origin-fetch count. A bare
 * node:http server answering the same bytes gives the harness floor (what N concurrent responses cost the client).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Child } from '../lib/child.js';
import { burst, closedLoop, type Exchange, headerValue } from '../lib/client.js';
import { startImgrelay, startIpx, startStatic } from '../lib/contenders.js';
import { type EncodeSpec, imgrelayPath, ipxPath } from '../lib/encode.js';
import { get } from '../lib/prime.js';
import { atMost, fmt, fmtRatio, type Section, type Table, type Target } from '../lib/report.js';
import { type Session, withChildren } from '../lib/session.js';
import { median, ratio } from '../lib/stats.js';

const SPEC: EncodeSpec = { format: 'jpeg', width: 800, quality: 80 };

interface BurstResult {
  n: number;
  originGets: number;
  sharpOutputs: number;
  failures: number;
  /** Client-side latencies: median over rounds of each round's median (or slowest) waiter; lone requests' median. */
  waitersP50: number;
  waitersMax: number;
  loneP50: number;
  /** The same seen by imgrelay (Server-Timing total), which leaves out connection set-up and delivery. */
  waitersServerP50: number;
  loneServerP50: number;
}

export async function coalescing(session: Session): Promise<Section> {
  const section: Section = {
    title: '4. Coalescing (N identical concurrent cold requests, 800w JPEG q80)',
    description: 'All N requests start together on N already-open connections for one new source URL. Origin GETs are counted by ' +
      'the origin; sharp outputs by wrapping sharp in the imgrelay child. "lone" = one cold request alone, for ' +
      'another new URL of the same photo, measured in alternation with the bursts.',
    tables: [], targets: [], notes: [],
  };
  const photo = session.data.cold[0];
  const results: BurstResult[] = [];
  let output: Buffer = Buffer.alloc(0);
  await withChildren(session, 'coalescing', { imgrelay: () => startImgrelay({ originPort: session.origin.port }) },
    async ({ imgrelay }) => {
      for (const n of session.settings.coalesce) results.push(await imgrelayBursts(session, imgrelay, photo, n));
      output = (await get(imgrelay.url + imgrelayPath(`${session.origin.imgrelayBase}/${photo}?${uniqueTag('body')}`, SPEC))).body;
    });
  const floors = await harnessFloors(session, output);
  const ipxGets = await withChildren(session, 'coalescing', { ipx: startIpx }, async ({ ipx }) => {
    const counts: string[] = [];
    for (const n of session.settings.coalesce) counts.push(await ipxBurst(session, ipx, photo, n));
    return counts;
  });
  section.tables.push(burstTable(results, ipxGets), floorTable(floors));
  section.targets.push(...results.flatMap((result) => burstTargets(result, floors.find((f) => f.n === result.n))));
  section.notes.push(...floorNotes(results, floors));
  if (results.some((r) => r.failures > 0)) section.notes.push('Some burst requests failed (see the table): a coalesced burst should fail none.');
  return section;
}

async function imgrelayBursts(session: Session, imgrelay: Child, photo: string, n: number): Promise<BurstResult> {
  const url = (tag: string) => imgrelay.url + imgrelayPath(`${session.origin.imgrelayBase}/${photo}?${tag}`, SPEC);
  const lone: Exchange[] = [];
  const waiters: Exchange[][] = [];
  let originGets = 0;
  let sharpOutputs = 0;
  // Connections are opened (on /healthz) before the clock starts, for lone and burst alike.
  const lonely = { concurrency: 1, preconnectUrl: `${imgrelay.url}/healthz` };
  await closedLoop([url(uniqueTag(`warmup${n}`))], lonely);
  for (let round = 0; round < session.settings.rounds; round++) {
    lone.push((await closedLoop([url(uniqueTag(`lone${n}-${round}`))], lonely)).exchanges[0]);
    const tag = uniqueTag(`burst${n}-${round}`);
    const before = await imgrelay.call<{ sharpOutputs: number }>('stats');
    waiters.push((await burst(Array.from({ length: n }, () => url(tag)), { preconnectUrl: lonely.preconnectUrl })).exchanges);
    const after = await imgrelay.call<{ sharpOutputs: number }>('stats');
    originGets = Math.max(originGets, session.origin.gets(`/${photo}?${tag}`));
    sharpOutputs = Math.max(sharpOutputs, after.sharpOutputs - before.sharpOutputs);
  }
  const failures = waiters.flat().filter((e) => e.status !== 200).length;
  session.log(`coalescing ${n}: worst round ${originGets} origin GETs, ${sharpOutputs} sharp outputs, ${failures} failures`);
  return {
    n, originGets, sharpOutputs, failures,
    waitersP50: median(waiters.map((round) => median(round.map((e) => e.latencyMs)))),
    waitersMax: median(waiters.map((round) => Math.max(...round.map((e) => e.latencyMs)))),
    loneP50: median(lone.map((e) => e.latencyMs)),
    waitersServerP50: median(waiters.map((round) => median(round.map(serverTotalMs)))),
    loneServerP50: median(lone.map(serverTotalMs)),
  };
}

/** imgrelay's own view of a request's duration: `Server-Timing: …, total;dur=<ms>`. */
function serverTotalMs(exchange: Exchange): number {
  const match = /(?:^|,)\s*total;dur=([\d.]+)/.exec(headerValue(exchange, 'server-timing'));
  return match ? Number(match[1]) : Number.NaN;
}

/** ipx's origin traffic for one burst, as "GETs (all requests)": it also sends a HEAD per request. */
async function ipxBurst(session: Session, ipx: Child, photo: string, n: number): Promise<string> {
  const tag = uniqueTag(`ipx${n}`);
  await burst(Array.from({ length: n }, () => ipx.url + ipxPath(`${session.origin.ipxBase}/${photo}?${tag}`, SPEC)));
  const path = `/${photo}?${tag}`;
  return `${session.origin.gets(path)} (${session.origin.requests(path)} requests)`;
}

const uniqueTag = (label: string) => `r=${label}-${Date.now().toString(36)}`;

function burstTable(results: BurstResult[], ipxGets: string[]): Table {
  return {
    title: 'Coalescing (worst round for counts; medians over rounds for latency)',
    headers: ['N', 'imgrelay origin GETs', 'imgrelay sharp outputs', 'ipx origin GETs', 'waiters p50 ms', 'slowest waiter ms',
      'lone p50 ms', 'waiters ÷ lone', 'server-timing waiters / lone ms', 'failed requests'],
    rows: results.map((r, i) => [String(r.n), String(r.originGets), String(r.sharpOutputs), ipxGets[i] ?? 'n/a',
      fmt(r.waitersP50, 0), fmt(r.waitersMax, 0), fmt(r.loneP50, 0), fmtRatio(ratio(r.waitersP50, r.loneP50)),
      `${fmt(r.waitersServerP50, 0)} / ${fmt(r.loneServerP50, 0)}`, String(r.failures)]),
  };
}

interface Floor { n: number; burstP50: number; loneP50: number }

/**
 * What the harness itself adds: the same lone request and N-burst (pre-connected) against a bare node:http server
 * answering the same output bytes from memory. Waiters cannot beat lone + (this burst − this lone).
 */
async function harnessFloors(session: Session, body: Buffer): Promise<Floor[]> {
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-bench-floor-'));
  writeFileSync(join(dir, 'body'), body);
  try {
    return await withChildren(session, 'coalescing', { bare: () => startStatic('memory', join(dir, 'body'), { 'content-type': 'image/jpeg' }) },
      async ({ bare }) => {
        const floors: Floor[] = [];
        const preconnectUrl = `${bare.url}/`;
        for (const n of session.settings.coalesce) {
          const lone: number[] = [];
          const bursts: number[] = [];
          for (let round = -1; round < session.settings.rounds; round++) {
            lone.push((await closedLoop([preconnectUrl], { concurrency: 1, preconnectUrl })).exchanges[0].latencyMs);
            bursts.push(median((await burst(Array(n).fill(preconnectUrl), { preconnectUrl })).exchanges.map((e) => e.latencyMs)));
          }
          floors.push({ n, burstP50: median(bursts.slice(1)), loneP50: median(lone.slice(1)) });
        }
        return floors;
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function floorTable(floors: Floor[]): Table {
  return {
    title: `Harness floor: the same requests against bare node:http serving the output bytes from memory`,
    headers: ['N', 'burst p50 ms', 'lone p50 ms', 'burst − lone ms'],
    rows: floors.map((f) => [String(f.n), fmt(f.burstP50, 1), fmt(f.loneP50, 1), fmt(f.burstP50 - f.loneP50, 1)]),
  };
}

/**
 * The best ratio any server could reach in this harness: the lone request plus what N concurrent exchanges of the
 * same bytes cost on this machine (client and server on the same 2 cores), over the lone request.
 */
function floorNotes(results: BurstResult[], floors: Floor[]): string[] {
  return results.flatMap((r) => {
    const floor = floors.find((f) => f.n === r.n);
    if (!floor) return [];
    const best = bestRatio(r, floor);
    const overhead = r.waitersP50 - r.loneP50 - (floor.burstP50 - floor.loneP50);
    return [`N=${r.n}: delivering ${r.n} responses at once costs ${fmt(floor.burstP50 - floor.loneP50, 1)} ms in this ` +
      `harness even from bare node:http, so no server can beat ${fmtRatio(best)} here; imgrelay's waiters spent ` +
      `${fmt(overhead, 1)} ms beyond that.`];
  });
}

const bestRatio = (result: BurstResult, floor: Floor) =>
  ratio(result.loneP50 + floor.burstP50 - floor.loneP50, result.loneP50);

function burstTargets(result: BurstResult, floor?: Floor): Target[] {
  const workload = `coalescing ×${result.n}`;
  const latency = ratio(result.waitersP50, result.loneP50);
  const best = floor && bestRatio(result, floor);
  return [
    { workload, name: 'origin fetches', value: result.originGets, threshold: '= 1', pass: result.originGets === 1 },
    { workload, name: 'waiters p50 vs lone p50', value: latency, threshold: '≤ 1.20×', pass: atMost(latency, 1.2),
      bound: best === undefined ? undefined : { value: best, by: 'bare node:http', pass: atMost(best, 1.2) } },
  ];
}
