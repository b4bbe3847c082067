/**
 * Workload 4 — coalescing: N identical cold requests at once. Counts origin GETs (at the origin) and sharp
 * outputs (inside the imgrelay child), and compares the waiters' median latency with lone cold requests',
 * interleaved (lone, burst, lone, burst …). ipx gets the same bursts once, for its origin-fetch count.
 */
import type { Child } from '../lib/child.js';
import { burst, closedLoop } from '../lib/client.js';
import { startImgrelay, startIpx } from '../lib/contenders.js';
import { type EncodeSpec, imgrelayPath, ipxPath } from '../lib/encode.js';
import { atMost, fmt, fmtRatio, type Section, type Table, type Target } from '../lib/report.js';
import { type Session, withChildren } from '../lib/session.js';
import { median, ratio } from '../lib/stats.js';

const SPEC: EncodeSpec = { format: 'jpeg', width: 800, quality: 80 };

interface BurstResult { n: number; originGets: number; sharpOutputs: number; waitersP50: number; loneP50: number; failures: number }

export async function coalescing(session: Session): Promise<Section> {
  const section: Section = {
    title: '4. Coalescing (N identical concurrent cold requests, 800w JPEG q80)',
    description: 'All N requests start together on N connections for one new source URL. Origin GETs are counted by ' +
      'the origin; sharp outputs by wrapping sharp in the imgrelay child. "lone" = one cold request alone, for ' +
      'another new URL of the same photo, measured in alternation with the bursts.',
    tables: [], targets: [], notes: [],
  };
  const photo = session.data.cold[0];
  const results: BurstResult[] = [];
  await withChildren(session, 'coalescing', { imgrelay: () => startImgrelay({ originPort: session.origin.port }) },
    async ({ imgrelay }) => {
      for (const n of session.settings.coalesce) results.push(await imgrelayBursts(session, imgrelay, photo, n));
    });
  const ipxGets = await withChildren(session, 'coalescing', { ipx: startIpx }, async ({ ipx }) => {
    const counts: string[] = [];
    for (const n of session.settings.coalesce) counts.push(await ipxBurst(session, ipx, photo, n));
    return counts;
  });
  section.tables.push(burstTable(results, ipxGets));
  section.targets.push(...results.flatMap(burstTargets));
  if (results.some((r) => r.failures > 0)) section.notes.push('Some burst requests failed (see the table): a coalesced burst should fail none.');
  return section;
}

async function imgrelayBursts(session: Session, imgrelay: Child, photo: string, n: number): Promise<BurstResult> {
  const url = (tag: string) => imgrelay.url + imgrelayPath(`${session.origin.imgrelayBase}/${photo}?${tag}`, SPEC);
  const lone: number[] = [];
  const waiters: number[] = [];
  let originGets = 0;
  let sharpOutputs = 0;
  let failures = 0;
  const rounds = session.settings.rounds;
  for (let round = 0; round < rounds; round++) {
    const loneTag = uniqueTag(`lone${n}-${round}`);
    lone.push((await closedLoop([url(loneTag)], { concurrency: 1 })).exchanges[0].latencyMs);
    const tag = uniqueTag(`burst${n}-${round}`);
    const before = await imgrelay.call<{ sharpOutputs: number }>('stats');
    const result = await burst(Array.from({ length: n }, () => url(tag)));
    const after = await imgrelay.call<{ sharpOutputs: number }>('stats');
    waiters.push(median(result.exchanges.map((e) => e.latencyMs)));
    originGets = Math.max(originGets, session.origin.gets(`/${photo}?${tag}`));
    sharpOutputs = Math.max(sharpOutputs, after.sharpOutputs - before.sharpOutputs);
    failures += result.failures.length;
  }
  session.log(`coalescing ${n}: worst round ${originGets} origin GETs, ${sharpOutputs} sharp outputs, ${failures} failures`);
  return { n, originGets, sharpOutputs, waitersP50: median(waiters), loneP50: median(lone), failures };
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
    title: 'Coalescing (worst round for counts, medians over rounds for latency)',
    headers: ['N', 'imgrelay origin GETs', 'imgrelay sharp outputs', 'ipx origin GETs', 'waiters p50 ms', 'lone p50 ms',
      'waiters ÷ lone', 'failed requests'],
    rows: results.map((r, i) => [String(r.n), String(r.originGets), String(r.sharpOutputs), ipxGets[i] ?? 'n/a',
      fmt(r.waitersP50, 0), fmt(r.loneP50, 0), fmtRatio(ratio(r.waitersP50, r.loneP50)), String(r.failures)]),
  };
}

function burstTargets(result: BurstResult): Target[] {
  const workload = `coalescing ×${result.n}`;
  const latency = ratio(result.waitersP50, result.loneP50);
  return [
    { workload, name: 'origin fetches', value: result.originGets, threshold: '= 1', pass: result.originGets === 1 },
    { workload, name: 'waiters p50 vs lone p50', value: latency, threshold: '≤ 1.20×', pass: atMost(latency, 1.2) },
  ];
}
