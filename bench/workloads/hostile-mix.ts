/**
 * Workload "hostile" — hostile-mix soak (issue #14 item 8): does memory come back? One imgrelay per allocator
 * candidate is fed the fuzz-like corpus (bench/lib/hostile-corpus.ts: mutated fixtures, animations, 49 MP sources)
 * through every output format, each request a new source: the same fixed sequence of requests (seeded) for every
 * candidate, at 4 concurrent clients; then it sits idle for 60 s. Reported per candidate: RSS at start, peak (VmHWM), at the end of the load and after the idle
 * minute, and 5xx answers (there must be none). Candidates run one after another: RSS compares, wall time does not.
 * `HOSTILE_CANDIDATES=glibc,jemalloc` picks candidates by id (default: all available); `HOSTILE_BATCHES=N` sets the
 * length of the load in batches of 48 requests (default 10 with --quick, 50 otherwise).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Child } from '../lib/child.js';
import { closedLoop } from '../lib/client.js';
import { startImgrelay } from '../lib/contenders.js';
import { type HostileCorpus, prepareHostileCorpus } from '../lib/hostile-corpus.js';
import { seededRandom } from '../lib/random.js';
import { mib } from '../lib/proc.js';
import { atMost, fmt, type Section } from '../lib/report.js';
import type { Session } from '../lib/session.js';
import { startOrigin, type TestOrigin } from '../../test/helpers/origin.js';

const TIER_MIB = 256;
const BUDGET_MIB = TIER_MIB + 300;
const IDLE_S = 60;
const BATCH = 48;
const OPTIONS = ['w=300&output=jpg', 'w=640&output=webp', 'w=200&output=avif', 'w=400&output=png',
  'w=800&h=800&fit=cover&output=webp', 'w=300&blur=5&output=jpg', 'n=-1&w=200&output=webp', 'n=-1&w=300&output=gif'];
const JEMALLOC = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2']
  .find((path) => existsSync(path));

interface Candidate { id: string; label: string; env: Record<string, string> }

/** The allocator settings compared; the first is what `npm start` runs. */
export const CANDIDATES: Candidate[] = [
  { id: 'glibc', label: 'glibc, MALLOC_ARENA_MAX=2', env: { MALLOC_ARENA_MAX: '2' } },
  { id: 'glibc-thresholds', label: 'glibc, arenas 2, trim+mmap thresholds 128 KiB',
    env: { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '131072' } },
  ...(JEMALLOC ? [{ id: 'jemalloc', label: 'jemalloc (narenas 2, decay 1 s, background thread)', env: {
    LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2' } }] : []),
];

interface Run {
  candidate: Candidate;
  requests: number;
  serverErrors: number;
  startMiB: number;
  peakMiB: number;
  endOfLoadMiB: number;
  idleMiB: number;
  /** After the idle minute: what JS holds (heap used + ArrayBuffers) and glibc's main-arena `[heap]` resident. */
  jsMiB: number;
  brkHeapMiB: number;
  /** Bodies the memory tier holds after the idle minute (inside the documented budget: tier + 300 MiB). */
  tierMiB: number;
  /** RSS 3 s after a forced full GC, following the idle minute: what was garbage V8 had not collected. */
  afterGcMiB: number;
}

export async function hostileMix(session: Session): Promise<Section> {
  const corpus = await prepareHostileCorpus();
  const origin = await serveCorpus(corpus);
  const batches = Number(process.env.HOSTILE_BATCHES ?? (session.settings.mode === 'quick' ? 10 : 50));
  const wanted = process.env.HOSTILE_CANDIDATES?.split(',');
  const runs: Run[] = [];
  try {
    for (const candidate of CANDIDATES.filter((c) => !wanted || wanted.includes(c.id))) {
      runs.push(await runCandidate(session, origin, corpus, candidate, batches));
    }
  } finally {
    await origin.close();
  }
  return hostileSection(runs, corpus, batches * BATCH);
}

async function serveCorpus(corpus: HostileCorpus): Promise<TestOrigin> {
  const origin = await startOrigin();
  for (const { path } of corpus.files) origin.serve(`/${path}`, readFileSync(join(corpus.root, path)), 'application/octet-stream');
  return origin;
}

async function runCandidate(session: Session, origin: TestOrigin, corpus: HostileCorpus, candidate: Candidate,
  batches: number): Promise<Run> {
  const imgrelay = await startImgrelay({ originPort: origin.port, env: candidate.env, name: `imgrelay (${candidate.id})`,
    nodeArgs: ['--expose-gc'], ownAllocator: true });
  try {
    const startMiB = rssMiB(imgrelay);
    session.log(`hostile ${candidate.id}: ${batches * BATCH} requests, then ${IDLE_S} s idle (RSS at start ${fmt(startMiB, 0)} MiB)`);
    const { requests, serverErrors } = await load(imgrelay, corpus, candidate.id, batches);
    const endOfLoadMiB = rssMiB(imgrelay);
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000));
    const js = await imgrelay.call<Record<'heapUsedBytes' | 'arrayBuffersBytes' | 'memoryTierBytes', number>>('stats');
    const run = { candidate, requests, serverErrors, startMiB, peakMiB: mib(imgrelay.memory().hwmKb), endOfLoadMiB,
      idleMiB: rssMiB(imgrelay), jsMiB: (js.heapUsedBytes + js.arrayBuffersBytes) / 1048576,
      brkHeapMiB: brkHeapRssMiB(imgrelay.pid), tierMiB: js.memoryTierBytes / 1048576, afterGcMiB: await afterGc(imgrelay) };
    session.log(`hostile ${candidate.id}: ${requests} requests, ${serverErrors} × 5xx; RSS peak ${fmt(run.peakMiB, 0)}, ` +
      `end of load ${fmt(endOfLoadMiB, 0)}, after ${IDLE_S} s idle ${fmt(run.idleMiB, 0)} MiB ` +
      `(tier ${fmt(run.tierMiB, 0)}, JS ${fmt(run.jsMiB, 0)}, [heap] ${fmt(run.brkHeapMiB, 0)}); ` +
      `after a forced GC ${fmt(run.afterGcMiB, 0)} MiB`);
    return run;
  } finally {
    await imgrelay.stop();
  }
}

const rssMiB = (child: Child) => mib(child.memory().rssKb);

async function afterGc(imgrelay: Child): Promise<number> {
  await imgrelay.call('gc');
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return rssMiB(imgrelay);
}

/** Resident KiB of the `[heap]` mapping (glibc's main arena, grown by brk; jemalloc leaves it nearly empty). */
function brkHeapRssMiB(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
  return heap ? Number(heap[1]) / 1024 : 0;
}

/** `batches` of BATCH (file × options) requests drawn from a fixed seed, every source new (a unique query). */
async function load(imgrelay: Child, corpus: HostileCorpus, runId: string, batches: number) {
  const random = seededRandom(1408);
  let requests = 0;
  let serverErrors = 0;
  for (let batch = 0; batch < batches; batch++) {
    const urls = Array.from({ length: BATCH }, (_, i) => {
      const file = corpus.files[Math.floor(random() * corpus.files.length)];
      const options = OPTIONS[(batch * BATCH + i) % OPTIONS.length];
      const source = `http://origin.test/${file.path}?r=${runId}-${batch}-${i}`;
      return `${imgrelay.url}/?url=${encodeURIComponent(source)}&${options}`;
    });
    const result = await closedLoop(urls, { concurrency: 4 });
    requests += urls.length;
    serverErrors += result.exchanges.filter((e) => e.status === 0 || (e.status >= 500 && e.status !== 503)).length;
  }
  return { requests, serverErrors };
}

function hostileSection(runs: Run[], corpus: HostileCorpus, requests: number): Section {
  const kinds = (kind: string) => corpus.files.filter((f) => f.kind === kind).length;
  const adopted = runs[0];
  return {
    title: 'Hostile-mix soak (memory that comes back)',
    description: `${kinds('mutant')} mutated fixtures (fixed seed), ${kinds('animation')} animations and ` +
      `${kinds('huge')} 49 MP sources, requested as new sources through ${OPTIONS.length} option sets (every output ` +
      `format, animated outputs): the same ${requests} requests (fixed seed) from 4 clients, then ${IDLE_S} s idle. One imgrelay per allocator ` +
      `candidate, run one after another (${TIER_MIB} MiB memory tier, fs store).`,
    tables: [{
      title: 'RSS per allocator candidate (MiB)',
      headers: ['candidate', 'requests', '5xx', 'RSS at start', 'peak RSS', 'RSS at end of load', `RSS after ${IDLE_S} s idle`,
        'memory tier', 'idle RSS − tier', 'JS heap + ArrayBuffers', 'glibc [heap]', 'RSS after a forced GC'],
      rows: runs.map((r) => [r.candidate.label, String(r.requests), String(r.serverErrors), fmt(r.startMiB, 0),
        fmt(r.peakMiB, 0), fmt(r.endOfLoadMiB, 0), fmt(r.idleMiB, 0), fmt(r.tierMiB, 0),
        fmt(r.idleMiB - r.tierMiB, 0), fmt(r.jsMiB, 0), fmt(r.brkHeapMiB, 0), fmt(r.afterGcMiB, 0)]),
    }],
    targets: adopted ? [
      { workload: 'hostile', name: `peak RSS ≤ ${TIER_MIB} MiB tier + 300 MiB (${adopted.candidate.id})`,
        value: adopted.peakMiB, threshold: `≤ ${BUDGET_MIB} MiB`, pass: atMost(adopted.peakMiB, BUDGET_MIB) },
      { workload: 'hostile', name: `no 5xx under the hostile mix (${adopted.candidate.id})`, value: adopted.serverErrors,
        threshold: '0', pass: adopted.serverErrors === 0 },
    ] : [],
    notes: ['5xx counts exclude 503 (load shedding is an answer); status 0 = connection failed.'],
  };
}
