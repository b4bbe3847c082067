/**
 * Workload 3 — persistent-tier hit after a restart, memory tier off (IMGRELAY_MEMORY_CACHE_MB=0), so every
 * request reads the store. fs store vs node:http + fs.readFile of the very file imgrelay stored; S3 store (in an
 * s3rver process) vs the AWS SDK alone looping GetObject on the very object imgrelay stored.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, serverEntry, spawnChild } from '../lib/child.js';
import { compare } from '../lib/compare.js';
import { type ImgrelayChild, replayableHeaders, startImgrelay, startStatic } from '../lib/contenders.js';
import { getUntil, type Primed } from '../lib/prime.js';
import { atLeast, type Section, type Target } from '../lib/report.js';
import { interleave, type Contender, withServerCpu } from '../lib/rounds.js';
import { wrkSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';

const WORKLOAD = 'store hit';
/** Concurrency of both S3 contenders: the emulator, not the client, is the bottleneck beyond a few. */
const S3_CONCURRENCY = 8;

export async function storeHit(session: Session): Promise<Section> {
  const section: Section = {
    title: '3. Store hit after restart (memory tier off)',
    description: 'imgrelay is primed, stopped and started again on the same store with `IMGRELAY_MEMORY_CACHE_MB=0`, ' +
      'so each request of the legacy-form ~60 KB image is a `HIT-STORE`. Loads: wrk -t1 -c32 (fs), -c8 (S3).',
    tables: [], targets: [], notes: [],
  };
  await runPair(section, 'fs store hit vs raw file read', () => fsPair(session, section));
  await runPair(section, 'S3 store hit vs raw SDK GetObject', () => s3Pair(session, section));
  return section;
}

async function runPair(section: Section, name: string, pair: () => Promise<void>): Promise<void> {
  try {
    await pair();
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 200);
    section.targets.push({ workload: WORKLOAD, name, value: Number.NaN, threshold: '≥ 0.80×', pass: undefined,
      note: `not run: ${reason}` });
    section.notes.push(`${name}: not run: ${reason}`);
  }
}

async function fsPair(session: Session, section: Section): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-bench-fs-'));
  try {
    const env = { IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir, IMGRELAY_MEMORY_CACHE_MB: '0' };
    await withRestarted(session, env, async (imgrelay, hit, url) => {
      const file = findFileHolding(dir, hit.body);
      section.notes.push(`fs: the hit reads ${file.slice(dir.length + 1)} (${readFileSync(file).length} bytes) for a ${hit.body.length}-byte body.`);
      await withChildren(session, WORKLOAD, { raw: () => startStatic('file', file, replayableHeaders(hit.headers)) },
        async ({ raw }) => {
          const load = { threads: 1, connections: session.settings.wrkConnections, durationS: session.settings.wrkSeconds };
          await measurePair(session, section, 'fs store hit', {
            imgrelay: async () => (await wrkSample(imgrelay, url, load)).sample,
            'node:http + fs.readFile': async () => (await wrkSample(raw, `${raw.url}/`, load)).sample,
          });
        });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function s3Pair(session: Session, section: Section): Promise<void> {
  await withChildren(session, WORKLOAD, {
    s3: () => spawnChild('s3rver', serverEntry('s3.ts'), { env: { NODE_OPTIONS: '--openssl-legacy-provider' } }),
    sdk: () => spawnChild('SDK GetObject loop', serverEntry('s3-get-loop.ts')),
  }, async ({ s3, sdk }) => {
    const target = { endpoint: s3.url, bucket: String(s3.info.bucket) };
    const env = {
      IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: target.bucket, IMGRELAY_S3_ENDPOINT: target.endpoint,
      IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_MEMORY_CACHE_MB: '0', AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', NODE_OPTIONS: '--openssl-legacy-provider',
    };
    await withRestarted(session, env, async (imgrelay, hit, url) => {
      const { key } = await locateObject(sdk, target, hit.body);
      section.notes.push(`S3: the hit reads object \`${key}\`; both contenders run ${S3_CONCURRENCY} requests at a time.`);
      const durationMs = session.settings.wrkSeconds * 1000;
      await measurePair(session, section, 'S3 store hit', {
        imgrelay: async () => (await wrkSample(imgrelay, url, { threads: 1, connections: S3_CONCURRENCY, durationS: session.settings.wrkSeconds })).sample,
        'SDK GetObject loop': () => sdkRound(sdk, { ...target, key, concurrency: S3_CONCURRENCY, durationMs }),
      });
    });
  });
}

/** Primes the legacy URL in one imgrelay, stops it, starts a second on the same store and checks HIT-STORE. */
async function withRestarted(session: Session, env: Record<string, string>,
  body: (imgrelay: ImgrelayChild, hit: Primed, url: string) => Promise<void>): Promise<void> {
  const path = `/?${session.origin.imgrelayBase}/${session.data.hit}`;
  await withChildren(session, WORKLOAD, { first: () => startImgrelay({ originPort: session.origin.port, env, name: 'imgrelay (before restart)' }) },
    async ({ first }) => void await getUntil(first.url + path, 'MISS'));
  await withChildren(session, WORKLOAD, { imgrelay: () => startImgrelay({ originPort: session.origin.port, env }) },
    async ({ imgrelay }) => body(imgrelay, await getUntil(imgrelay.url + path, 'HIT-STORE'), imgrelay.url + path));
}

async function measurePair(session: Session, section: Section, label: string, contenders: Record<string, Contender>) {
  session.log(`${label}: ${session.settings.rounds} rounds`);
  const samples = await interleave(session.settings.rounds, contenders,
    (name, round, s) => session.log(`  ${name} round ${round + 1}: ${s.rate.toFixed(0)} req/s, ${s.errors} errors`));
  const comparison = compare(label, samples, 'imgrelay', 'req/s');
  section.tables.push(comparison.table);
  const limit = Object.keys(contenders).find((name) => name !== 'imgrelay') as string;
  const value = comparison.rateRatio[limit];
  const target: Target = { workload: WORKLOAD, name: `${label} vs ${limit}`, value, threshold: '≥ 0.80×', pass: atLeast(value, 0.8) };
  section.targets.push(target);
}

async function sdkRound(sdk: Child, request: Record<string, unknown>) {
  const { value, cpuMs } = await withServerCpu(sdk, () =>
    sdk.call<{ ops: number; elapsedMs: number; errors: number }>('run', request));
  return { rate: (value.ops * 1000) / value.elapsedMs, cpuMsPerOp: cpuMs / value.ops, p50Ms: Number.NaN,
    ops: value.ops, errors: value.errors };
}

async function locateObject(sdk: Child, target: { endpoint: string; bucket: string }, body: Buffer) {
  const bodyFile = join(mkdtempSync(join(tmpdir(), 'imgrelay-bench-body-')), 'body');
  writeFileSync(bodyFile, body);
  try {
    return await sdk.call<{ key: string; size: number }>('locate', { ...target, bodyFile });
  } finally {
    rmSync(bodyFile, { force: true });
  }
}

/** The stored file whose bytes contain the served body (whatever framing the store adds around it). */
function findFileHolding(dir: string, body: Buffer): string {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
  const match = files.find((file) => readFileSync(file).includes(body));
  if (!match) throw new Error(`no file under ${dir} holds the served body (${files.length} files)`);
  return match;
}
