/**
 * Runs fuzz cases (mutate.ts) through the whole service — the compiled build as its own process, fetching each mutant
 * from a loopback origin, sniffing, probing, transforming — and judges every answer: an image of the asked format (the
 * relay: the very bytes), or a 4xx problem+json, within the deadline; never a 5xx, never a crash; RSS read from
 * /proc after every case and held to a bound. Shared by test/fuzz.test.ts (a few hundred cases) and `npm run fuzz`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MIME_TYPES, sniff } from '../../src/transform/sniff.js';
import { buildService, type ChildService, startChildService } from '../helpers/child-service.js';
import { type FuzzCase, fuzzCase, loadFixtures } from './mutate.js';

export const FUZZ_HOST = 'fuzz.test';
/** Transform slots of the fuzzed service; the runner never has more requests open (a 503 would be its own doing). */
export const FUZZ_WORKERS = 2;
/** The memory tier of the fuzzed service. */
export const FUZZ_MEMORY_CACHE_MB = 64;
/**
 * RSS once the cases are done: the tier plus docs/memory.md's 300 MiB for everything else. A leak (issue #14's
 * fuzzing left 1.3 GiB behind) ends far above it; measured after 2,500 cases: 234 MiB.
 */
export const STEADY_RSS_BOUND_MIB = FUZZ_MEMORY_CACHE_MB + 300;
/**
 * RSS at any moment: the steady budget plus what WORKERS decodes may hold at once. A source up to MAX_SOURCE_PIXELS
 * (50 MP) is legal, and a mutant's header can say so (a PNG has no shrink-on-load): 4 bytes a pixel. Measured peak:
 * 362–365 MiB in 2,500 cases, at a case whose size field was set to an extreme.
 */
export const PEAK_RSS_BOUND_MIB = STEADY_RSS_BOUND_MIB + Math.ceil((FUZZ_WORKERS * 50e6 * 4) / 2 ** 20);
/** A build of its own (child-service.ts): another test building dist/node at the same time cannot disturb it. */
const FUZZ_BUILD_DIR = 'dist/fuzz';

export interface FuzzOptions {
  seed: number;
  /** Cases 0 … count-1, or exactly `cases`. */
  count?: number;
  cases?: number[];
  /** Per-request bound; generous for a loaded CI machine: above the queue wait (30 s) + transform timeout (20 s). */
  deadlineMs?: number;
  /** RSS bounds (MiB): at any moment, and once the cases are done. */
  peakRssBoundMiB?: number;
  steadyRssBoundMiB?: number;
  log?: (line: string) => void;
  /** Called every PROGRESS_EVERY cases with the count so far and the service's RSS now. */
  progress?: (cases: number, rssMiB: number) => void;
}

const PROGRESS_EVERY = 250;

export interface FuzzFailure {
  index: number;
  problem: string;
  fixture: string;
  mutations: string[];
  request: string;
  replay: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  failures: FuzzFailure[];
  /** Answers by status (and problem code). */
  outcomes: Record<string, number>;
  peakRssMiB: number;
  /** After the last case. */
  endRssMiB: number;
  slowestMs: number;
  crashed: boolean;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const indices = options.cases ?? Array.from({ length: options.count ?? 300 }, (_, i) => i);
  const fixtures = loadFixtures();
  await buildService(FUZZ_BUILD_DIR);
  const bodies = new Map<string, Uint8Array>();
  const origin = await serveBodies(bodies);
  const service = await startChildService({
    IMGRELAY_RESOLVE: `${FUZZ_HOST}:80:127.0.0.1:${(origin.address() as AddressInfo).port}`,
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_WORKERS: String(FUZZ_WORKERS),
    IMGRELAY_MEMORY_CACHE_MB: String(FUZZ_MEMORY_CACHE_MB), IMGRELAY_TRANSFORM_TIMEOUT_S: '20',
    // Two requests at once can still queue: heavy jobs share one slot of two. On a loaded CI machine a transform may
    // take seconds, and the default 5 s wait would answer 503 for a reason that is the runner's, not the image's
    // (seen once in 2,500 cases; alone, that case was a 422 in 0.3 s). Waiting stays bounded, under the deadline.
    IMGRELAY_QUEUE_TIMEOUT_MS: '30000',
    IMGRELAY_AVIF_EFFORT: '0', // cheap AVIF (also the default): the cost is in decoding hostile input, not encoding
  }, FUZZ_BUILD_DIR);
  const report: FuzzReport = { seed: options.seed, cases: 0, failures: [], outcomes: {}, peakRssMiB: 0, endRssMiB: 0, slowestMs: 0,
    crashed: false };
  try {
    const queue = [...indices];
    const lane = async () => {
      for (let index = queue.shift(); index !== undefined && !report.crashed; index = queue.shift()) {
        const fuzz = fuzzCase(options.seed, index, fixtures);
        await runCase(fuzz, service, bodies, report, options);
      }
    };
    await Promise.all(Array.from({ length: FUZZ_WORKERS }, lane));
    if (!report.crashed) await checkAfterwards(service, report, options.steadyRssBoundMiB ?? STEADY_RSS_BOUND_MIB);
  } finally {
    await service.stop();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  }
  return report;
}

/** The loopback origin: `/c<index>` serves that case's bytes (as image/jpeg: the service sniffs, it never trusts). */
async function serveBodies(bodies: Map<string, Uint8Array>): Promise<Server> {
  const server = createServer((req, res) => {
    const body = bodies.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.byteLength }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function requestPath(fuzz: FuzzCase, seed: number): string {
  const source = `http://${FUZZ_HOST}/c${seed}-${fuzz.index}`;
  return fuzz.output === 'relay' ? `/?${source}` : `/?url=${encodeURIComponent(source)}&${fuzz.options}`;
}

async function runCase(fuzz: FuzzCase, service: ChildService, bodies: Map<string, Uint8Array>, report: FuzzReport,
  options: FuzzOptions): Promise<void> {
  const path = requestPath(fuzz, options.seed);
  bodies.set(`/c${options.seed}-${fuzz.index}`, fuzz.bytes);
  const started = performance.now();
  let problem: string | undefined;
  try {
    const response = await fetch(`${service.url}${path}`, { signal: AbortSignal.timeout(options.deadlineMs ?? 60_000) });
    const body = new Uint8Array(await response.arrayBuffer());
    const verdict = judge(fuzz, response, body);
    report.outcomes[verdict.outcome] = (report.outcomes[verdict.outcome] ?? 0) + 1;
    problem = verdict.problem;
  } catch (error) {
    problem = `no answer: ${(error as Error).name}: ${(error as Error).message}`;
  } finally {
    bodies.delete(`/c${options.seed}-${fuzz.index}`);
  }
  const elapsed = performance.now() - started;
  report.cases += 1;
  report.slowestMs = Math.max(report.slowestMs, elapsed);
  if (service.child.exitCode !== null || service.child.signalCode !== null) {
    report.crashed = true;
    problem = `the service died (exit ${service.child.exitCode}, signal ${service.child.signalCode})`;
  } else {
    const rss = service.memory().rssMiB;
    report.peakRssMiB = Math.max(report.peakRssMiB, rss);
    if (report.cases % PROGRESS_EVERY === 0) options.progress?.(report.cases, rss);
    const bound = options.peakRssBoundMiB ?? PEAK_RSS_BOUND_MIB;
    if (rss > bound && !problem) problem = `RSS ${rss.toFixed(0)} MiB over the ${bound} MiB bound`;
  }
  if (problem) fail(report, fuzz, path, problem, options);
}

function fail(report: FuzzReport, fuzz: FuzzCase, path: string, problem: string, options: FuzzOptions): void {
  const failure: FuzzFailure = { index: fuzz.index, problem, fixture: fuzz.fixture, mutations: fuzz.mutations,
    request: path, replay: `npm run fuzz -- --seed ${options.seed} --case ${fuzz.index}` };
  report.failures.push(failure);
  options.log?.(`FAIL case ${fuzz.index} (${fuzz.fixture}, ${fuzz.mutations.join('+')}): ${problem}\n  replay: ${failure.replay}`);
}

/** What a user may get: the image asked for, or a 4xx problem+json with a stable code and a Cache-Control. */
export function judge(fuzz: FuzzCase, response: Response, body: Uint8Array): { outcome: string; problem?: string } {
  const { status } = response;
  if (status === 200) {
    const format = sniff(body);
    if (fuzz.output === 'relay') {
      const same = body.length === fuzz.bytes.length && body.every((byte, i) => byte === fuzz.bytes[i]);
      return { outcome: '200 relay', problem: same && format ? undefined : 'the relay changed the bytes or relayed a non-image' };
    }
    const asked = MIME_TYPES[fuzz.output];
    return { outcome: `200 ${fuzz.output}`, problem: format === fuzz.output && response.headers.get('content-type') === asked
      ? undefined : `200 but the body sniffs as ${format ?? 'nothing'} (${response.headers.get('content-type')}), asked ${asked}` };
  }
  const code = problemCode(response, body);
  const outcome = `${status} ${code ?? '?'}`;
  if (status >= 400 && status < 500 && code && response.headers.get('cache-control')) return { outcome };
  return { outcome, problem: status >= 500 ? `${outcome}: a 5xx caused by the image` : `${outcome}: not a problem+json answer` };
}

function problemCode(response: Response, body: Uint8Array): string | undefined {
  if (response.headers.get('content-type') !== 'application/problem+json') return undefined;
  try {
    const code = (JSON.parse(new TextDecoder().decode(body)) as { code?: unknown }).code;
    return typeof code === 'string' && /^E_[A-Z_]+$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The service still answers, and gave back what the cases took (a failure here replays with the whole run). */
async function checkAfterwards(service: ChildService, report: FuzzReport, steadyBoundMiB: number): Promise<void> {
  const health = await fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  report.endRssMiB = service.memory().rssMiB;
  const problems = [
    ...(health?.status === 200 ? [] : ['the service no longer answers /healthz after the run']),
    ...(report.endRssMiB > steadyBoundMiB ? [`RSS ${report.endRssMiB.toFixed(0)} MiB after the run, over ${steadyBoundMiB} MiB`] : []),
  ];
  for (const problem of problems) {
    report.failures.push({ index: -1, problem, fixture: '', mutations: [], request: '/healthz',
      replay: `npm run fuzz -- --seed ${report.seed} --count ${report.cases}` });
  }
}
