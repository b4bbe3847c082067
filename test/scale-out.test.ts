/**
 * Scale-out, run as a whole (docs/deploy.md): three imgrelay processes (the compiled build, started as `npm start`
 * starts it) share one S3 bucket (in-process s3rver) behind a real Varnish running deploy/varnish/cluster.vcl
 * (round-robin director, probes on /readyz, retries of failed fetches). A mixed load (sources × widths × Accept
 * buckets × URL forms, legacy relays) runs through Varnish with bounded concurrency while
 *   (a) one instance is stopped with SIGTERM, and restarted on the same port a moment later;
 *   (b) the origin's bytes for one source change and a purge by URL is sent to ONE instance's admin.
 * Outcomes, printed and asserted:
 *   - no client error: every answer is a 200 of the right image, no reset (Varnish retries on the next instance);
 *   - the origin is fetched once per source: once a source object is in the bucket, no instance fetches that source
 *     again (new variants on other instances, the restarted instance: all read it from the bucket). The changed source
 *     is fetched again after its purge, by misses until bytes whose work began past the purge's clock skew are stored
 *     (closer ones every instance refuses: src/cache/fenced-store.ts), and never once those are in the bucket (the
 *     purge's settle passes leave them);
 *   - no old bytes after the purge: from any instance directly once the purge answered plus one poll interval (and the
 *     poll's own duration: SLACK_MS), and through Varnish once the purge's settle pass banned again (two intervals).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/lib/random.js';
import { settleDelays } from '../src/admin/purge.js';
import { DEFAULT_SKEW_MS } from '../src/cache/purge-fence.js';
import { TOKEN_A, type PurgeAnswer, eventually as until } from './helpers/admin.js';
import { type ChildService, startChildService } from './helpers/child-service.js';
import { zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { S3_CREDENTIALS, type TestS3, startS3ForService } from './helpers/s3.js';
import { type Answer, BucketWatcher, LoadDriver, SOURCE_COUNT, VersionedSources, mixedRequest, sourceUrl } from './helpers/scale-load.js';
import { type TestVarnishCluster, startVarnishCluster } from './helpers/varnish.js';

const INSTANCES = 3;
const POLL_MS = 300;
/** A poll's own duration (a LIST and a GET on a loaded machine): part of the bound, not a timing. */
const SLACK_MS = 1500;
const STORE_TIMEOUT_MS = 2000;
const PROBE_MS = 100;
/**
 * The production VCL's probe timeout: with the interval's 100 ms, every instance of a loaded machine (CI, other
 * suites) could miss two probes at once, leaving Varnish no healthy instance and its clients 503s that say nothing
 * about the product. A draining instance answers /readyz 503 at once and a stopped one refuses: both still leave the
 * rotation within two intervals.
 */
const PROBE_TIMEOUT_MS = 1000;
const CONCURRENCY = 6;
const PURGED = 0;
/** A miss that read the bucket just before the new bytes landed reaches the origin within this (a deadline). */
const IN_FLIGHT_MS = 1000;

let origin: TestOrigin;
let s3: TestS3;
let varnish: TestVarnishCluster;
const sources = new VersionedSources();
const services: ChildService[] = [];

const envFor = (varnishUrl: string): Record<string, string> => ({
  ...zakerAt(origin.port), IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: s3.bucket, IMGRELAY_S3_ENDPOINT: s3.endpoint,
  IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_PURGE_POLL_MS: String(POLL_MS), IMGRELAY_ADMIN_TOKENS: TOKEN_A,
  IMGRELAY_CDN_PURGE: `varnish+${varnishUrl}`, IMGRELAY_WORKERS: '1', IMGRELAY_MEMORY_CACHE_MB: '32',
  // /readyz fails this long after SIGTERM while the instance still serves (15 probes: Varnish routes around it). A
  // version without the drain delay ignores it and closes its listener at once: Varnish's retries carry that case.
  IMGRELAY_DRAIN_DELAY_MS: '1500', IMGRELAY_SHUTDOWN_TIMEOUT_MS: '5000', IMGRELAY_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS),
  AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

beforeAll(async () => {
  origin = await startOrigin();
  await sources.install(origin);
  s3 = await startS3ForService();
  // Varnish first (its port goes into each instance's IMGRELAY_CDN_PURGE), its backends set once the instances listen.
  varnish = await startVarnishCluster(Array.from({ length: INSTANCES }, () => 9),
    { probeIntervalMs: PROBE_MS, probeTimeoutMs: PROBE_TIMEOUT_MS });
  for (let i = 0; i < INSTANCES; i++) services.push(await startChildService(envFor(varnish.url)));
  await Promise.all(services.map((service) => service.adminUrl));
  await varnish.useBackends(services.map((service) => service.port));
  const names = range(INSTANCES).map((i) => `imgrelay${i + 1}`);
  const allUp = async () => { const up = await varnish.healthy(); return names.every((n) => up.includes(n)); };
  expect(await until(allUp, 10_000)).toBe(true);
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((service) => service.stop()));
  await varnish?.close();
  await s3?.close();
  await origin?.close();
});

describe('three instances, one bucket, Varnish in front', () => {
  it('drains and restarts one instance and purges through another with no client error, one origin fetch per source, no old bytes after the bound', async () => {
    const watcher = new BucketWatcher(new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: S3_CREDENTIALS }), s3.bucket);
    await watcher.start();
    try {
      const run = await scenario(watcher);
      const report = await reportOf(run);
      console.log(`scale-out: ${JSON.stringify(report)}`);
      // No client error, before, during or after the drain: Varnish retried or routed around.
      expect(run.load.failures.slice(0, 5)).toEqual([]);
      expect(run.direct.failures.slice(0, 5)).toEqual([]);
      expect(report.drain.requestsDuring).toBeGreaterThan(20);
      expect(run.drain.exitCode).toBe(0);
      expectOneOriginFetchPerSource(run);
      expectNoOldBytesPastTheBounds(run);
    } finally {
      await watcher.stop();
    }
  }, 120_000);
});

/** Prime, then the mixed load through Varnish while instance 1 drains and restarts and instance 2 takes a purge. */
async function scenario(watcher: BucketWatcher): Promise<Run> {
  const random = seededRandom(17);
  const load = new LoadDriver(() => varnish.url, () => mixedRequest(random));
  const direct = new LoadDriver(() => '', () => ({ ...directRequest(random), source: PURGED }));
  // Prime: one request per source; then each source object lands in the bucket.
  for (let i = 0; i < SOURCE_COUNT; i++) await load.one({ path: `/?${sourceUrl(i)}`, accept: 'image/*', source: i });
  expect(await until(async () => range(SOURCE_COUNT).every((i) => watcher.landedAt(i, 1) !== undefined), 15_000)).toBe(true);
  const retriesBefore = await retryCount();
  const notAttemptedBefore = await notAttemptedCount();
  let stop = false;
  const running = load.run(CONCURRENCY, () => stop);
  await delay(1500);
  const drain = await drainAndRestart(1);
  await delay(1000);
  const purge = await purgeChanged(2);
  // Straight to every instance, past the instances' bound, while the load goes on through Varnish.
  let stopDirect = false;
  const directRun = direct.run(INSTANCES, () => stopDirect);
  const settle = await settlePasses(services[2]);
  stopDirect = true;
  await delay(1500);
  stop = true;
  await Promise.all([running, directRun]);
  // The write-behind lands what the last loads stored (each write within its deadline, across two attempts).
  await until(async () => servableSince(watcher, purge) !== undefined, 2 * STORE_TIMEOUT_MS + SLACK_MS);
  await watcher.stop();
  return { load, direct, drain, purge, settle, watcher, retries: await retryCount() - retriesBefore,
    notAttempted: await notAttemptedCount() - notAttemptedBefore };
}

/** Once a source is in the bucket, no instance fetches it again (the restarted one and new variants read it there). */
function expectOneOriginFetchPerSource({ watcher, purge }: Run): void {
  for (let i = 0; i < SOURCE_COUNT; i++) {
    expect(sources.count(i, 1), `source ${i}: fetches of its first bytes`).toBe(1);
    expect(sources.count(i, 1, watcher.landedAt(i, 1)!), `source ${i}: fetched after it was in the bucket`).toBe(0);
    if (i !== PURGED) expect(sources.count(i, 2)).toBe(0);
  }
  // The changed source: fetched again after its purge, until new bytes every instance serves are in the bucket;
  // from then on never, across the three instances and both settle passes. A load that began once every instance
  // applied the purge, past the clock skew, stores such bytes: so if none are in the bucket, none was fetched that
  // late (the instances serve the new bytes they hold in memory).
  expect(sources.count(PURGED, 2)).toBeGreaterThanOrEqual(1);
  const quietFrom = servableSince(watcher, purge) ?? purgeTime(purge) + DEFAULT_SKEW_MS + POLL_MS + SLACK_MS;
  expect(sources.count(PURGED, 2, quietFrom + IN_FLIGHT_MS), 'fetched after its new bytes were in the bucket').toBe(0);
}

/**
 * When the purged source's new bytes were first in the bucket in a form every instance serves: their work began at
 * least the clock skew after the purge (its time is in its log key, `_purge/<ms>-…`: the one all instances judge by).
 */
function servableSince(watcher: BucketWatcher, purge: { answer: PurgeAnswer }): number | undefined {
  return watcher.seenStartedFrom(PURGED, 2, purgeTime(purge) + DEFAULT_SKEW_MS);
}

function purgeTime(purge: { answer: PurgeAnswer }): number {
  const purgedAt = Number(/^_purge\/(\d{15})-/.exec(purge.answer.purgeLog ?? '')?.[1]);
  expect(purgedAt, `purge log key ${purge.answer.purgeLog}`).toBeGreaterThan(0);
  return purgedAt;
}

/** From the instances past one poll (+ its duration), through Varnish past the settle pass's ban: new bytes only. */
function expectNoOldBytesPastTheBounds({ load, direct, purge, settle }: Run): void {
  const lastOld = (answers: Answer[]) => Math.max(...answers.filter((a) => a.source === PURGED && a.version === 1).map((a) => a.sentAt));
  expect(purge.answer.cdn.every((c) => c.ok)).toBe(true);
  expect(lastOld(direct.answers)).toBeLessThanOrEqual(purge.answeredAt + POLL_MS + SLACK_MS);
  expect(lastOld(load.answers)).toBeLessThanOrEqual(settle.firstAt);
  // … and the checks had something to see: answers for the purged source past each bound.
  expect(direct.answers.filter((a) => a.sentAt > purge.answeredAt + POLL_MS + SLACK_MS).length).toBeGreaterThan(5);
  expect(load.answers.filter((a) => a.source === PURGED && a.sentAt > settle.firstAt).length).toBeGreaterThan(5);
}

/** Backend fetches that failed: each was retried on another instance (vcl_backend_error), as no client saw one. */
const retryCount = async () => (await varnish.counters('MAIN.fetch_failed'))['MAIN.fetch_failed'] ?? 0;
/** Fetches Varnish did not attempt because the director had no healthy instance (probes failing on every one). */
const notAttemptedCount = async () => (await varnish.counters('MAIN.backend_unhealthy'))['MAIN.backend_unhealthy'] ?? 0;

/** Waits (bounded) for the purging instance's settle passes (src/admin/purge.ts) to end; when the first and last did. */
async function settlePasses(service: ChildService) {
  const passes = settleDelays(POLL_MS, STORE_TIMEOUT_MS).length;
  let firstAt = 0;
  const done = await until(async () => {
    if (!firstAt && service.logCount('purge settle pass done') >= 1) firstAt = Date.now();
    return service.logCount('purge settle pass done') >= passes;
  }, 30_000);
  expect(done).toBe(true);
  return { passes, firstAt, lastAt: Date.now() };
}

interface Run {
  load: LoadDriver; direct: LoadDriver; watcher: BucketWatcher; retries: number; notAttempted: number;
  drain: Awaited<ReturnType<typeof drainAndRestart>>; purge: Awaited<ReturnType<typeof purgeChanged>>;
  settle: Awaited<ReturnType<typeof settlePasses>>;
}

/** The counts the test prints (times in ms since the purge answered). */
async function reportOf({ load, direct, drain, purge, settle, watcher, retries, notAttempted }: Run) {
  const since = (at: number) => at - purge.answeredAt;
  const lastOld = (answers: Answer[]) => Math.max(...answers.filter((a) => a.source === PURGED && a.version === 1).map((a) => since(a.sentAt)));
  const backends = await varnish.counters('VBE.');
  return {
    requests: load.answers.length + load.failures.length, failures: load.failures.length,
    edgeHits: load.answers.filter((a) => a.edge === 'HIT').length, failedFetchesRetried: retries,
    fetchesWithNoHealthyInstance: notAttempted,
    perBackend: Object.fromEntries(Object.entries(backends).filter(([k]) => k.endsWith('.req')).map(([k, v]) => [k.split('.')[2], v])),
    drain: { exitCode: drain.exitCode, stoppedInMs: drain.stoppedInMs, downForMs: drain.downForMs,
      requestsDuring: load.answers.filter((a) => a.sentAt >= drain.sigtermAt && a.sentAt <= drain.backAt).length },
    originFetches: range(SOURCE_COUNT).map((i) => ({ source: i, v1: sources.count(i, 1), v2: sources.count(i, 2) })),
    purge: { answeredInMs: purge.answeredAt - purge.sentAt, cdnOk: purge.answer.cdn.map((c) => c.ok),
      lastOldDirectMs: lastOld(direct.answers), lastOldViaVarnishMs: lastOld(load.answers),
      settlePassesDoneMs: [since(settle.firstAt), since(settle.lastAt)], directRequests: direct.answers.length,
      newBytesFetchedMs: sources.fetches.filter((f) => f.source === PURGED && f.version === 2).map((f) => since(f.at)),
      newBytesInBucketMs: [watcher.landedAt(PURGED, 2), servableSince(watcher, purge)].map((at) => at && since(at)) },
  };
}

/** SIGTERM to instance `index` (under load), a pause while it is down, then the same instance again on its port. */
async function drainAndRestart(index: number) {
  const victim = services[index];
  const sigtermAt = Date.now();
  const exited = new Promise<number | null>((resolve) => victim.child.once('exit', (code) => resolve(code)));
  await victim.stop();
  const exitCode = await exited;
  const stoppedInMs = Date.now() - sigtermAt;
  await delay(1000);
  services[index] = await startChildService({ ...envFor(varnish.url), IMGRELAY_PORT: String(victim.port) });
  await services[index].adminUrl;
  const name = `imgrelay${index + 1}`;
  const healthy = await until(async () => (await varnish.healthy()).includes(name), 10_000);
  expect(healthy).toBe(true);
  return { sigtermAt, backAt: Date.now(), exitCode, stoppedInMs, downForMs: Date.now() - sigtermAt };
}

/** The origin's bytes for PURGED change; the purge by source URL goes to instance `index`'s admin only. */
async function purgeChanged(index: number) {
  sources.versions[PURGED] = 2;
  const sentAt = Date.now();
  const response = await fetch(`${await services[index].adminUrl}/purge`, { method: 'POST',
    headers: { authorization: `Bearer ${TOKEN_A}`, 'content-type': 'application/json' },
    body: JSON.stringify({ urls: [sourceUrl(PURGED)] }) });
  const answer = await response.json() as PurgeAnswer;
  expect(response.status, JSON.stringify(answer)).toBe(200);
  return { sentAt, answeredAt: Date.now(), answer };
}

/** A request for the purged source straight to one of the instances (legacy or a new width). */
function directRequest(random: () => number) {
  const service = services[Math.floor(random() * INSTANCES)];
  const src = sourceUrl(PURGED);
  const path = random() < 0.5 ? `/?${src}` : `/?url=${encodeURIComponent(src)}&w=${16 + Math.floor(random() * 145)}`;
  return { path: `${service.url}${path}`, accept: 'image/*' };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

