/**
 * Workload 3 — persistent-tier hit after a restart, memory tier off (IMGRELAY_MEMORY_CACHE_MB=0), so every
 * request reads the store. The ~60 KB image is stored under SOURCES distinct source URLs and wrk rotates over
 * them, so concurrent requests rarely share a key (single-flight would otherwise merge their reads).
 * fs store vs node:http + fs.readFile of a file imgrelay stored; S3 store (in an s3rver process) vs the AWS SDK
 * alone looping GetObject over the objects imgrelay stored.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, serverEntry, spawnChild } from '../lib/child.js';
import { compare } from '../lib/compare.js';
import { type ImgrelayChild, replayableHeaders, startImgrelay, startStatic } from '../lib/contenders.js';
import { get, getUntil, type Primed } from '../lib/prime.js';
import { atLeast, fmt, type Section } from '../lib/report.js';
import { interleave, type Contender } from '../lib/rounds.js';
import { childRunSample, wrkSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';
import { wrkLoad } from '../lib/settings.js';
import { median } from '../lib/stats.js';
import { profileHits } from './profile-hit.js';

const WORKLOAD = 'store hit';
const SOURCES = 32;
/** Concurrency of both S3 contenders: the emulator, not the client, is the bottleneck beyond a few. */
const S3_CONCURRENCY = 8;

export async function storeHit(session: Session): Promise<Section> {
  const section: Section = {
    title: '3. Store hit after restart (memory tier off)',
    description: `imgrelay stores the legacy-form ~60 KB image under ${SOURCES} source URLs, is stopped and started ` +
      'again on the same store with `IMGRELAY_MEMORY_CACHE_MB=0`, so every request is a `HIT-STORE`; wrk rotates ' +
      `over the ${SOURCES} URLs. Loads: wrk -t1 -c${session.settings.wrkConnections} (fs), -c${S3_CONCURRENCY} (S3).`,
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
    await withRestarted(session, env, async (imgrelay, hit, paths) => {
      const file = findFileHolding(dir, hit.body);
      section.notes.push(`fs: a hit reads a file like ${file.slice(dir.length + 1)} (${readFileSync(file).length} bytes) ` +
        `for a ${hit.body.length}-byte body.`);
      await withChildren(session, WORKLOAD, { raw: () => startStatic('file', file, replayableHeaders(hit.headers)) },
        async ({ raw }) => {
          await measurePair(session, section, 'fs store hit', {
            imgrelay: async (round) => (await wrkSample(imgrelay, imgrelay.url + paths[0], { ...wrkLoad(session.settings, round), paths })).sample,
            'node:http + fs.readFile': async (round) => (await wrkSample(raw, `${raw.url}/`, wrkLoad(session.settings, round))).sample,
          });
        });
    });
    if (session.settings.profile) {
      section.tables.push(...await profileHits(session, { label: 'fs store hit', env, paths: storedPaths(session),
        expect: 'HIT-STORE', load: wrkLoad(session.settings, 0) }));
    }
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
    await withRestarted(session, env, async (imgrelay, hit, paths) => {
      const { keys, size } = await locateObjects(sdk, target, hit.body);
      section.notes.push(`S3: imgrelay stored ${keys.length} objects like \`${keys[0]}\` (${size} bytes); both contenders ` +
        `run ${S3_CONCURRENCY} requests at a time over them.`);
      const getsPerHit: number[] = [];
      await measurePair(session, section, 'S3 store hit', {
        imgrelay: async (round) => {
          const before = await s3.call<number>('gets');
          const load = { ...wrkLoad(session.settings, round, S3_CONCURRENCY), paths };
          const { sample } = await wrkSample(imgrelay, imgrelay.url + paths[0], load);
          if (round >= 0) getsPerHit.push(((await s3.call<number>('gets')) - before) / sample.ops);
          return sample;
        },
        'SDK GetObject loop': (round) => childRunSample(sdk, 'run', { ...target, keys, concurrency: S3_CONCURRENCY,
          durationMs: wrkLoad(session.settings, round).durationS * 1000 }),
      });
      section.notes.push(`S3: s3rver received ${fmt(median(getsPerHit), 2)} GETs per imgrelay hit (median over rounds).`);
    });
  });
}

/** Stores SOURCES legacy URLs through one imgrelay, stops it, starts a second on the same store, checks HIT-STORE. */
async function withRestarted(session: Session, env: Record<string, string>,
  body: (imgrelay: ImgrelayChild, hit: Primed, paths: string[]) => Promise<void>): Promise<void> {
  const paths = storedPaths(session);
  const originPort = session.origin.port;
  await withChildren(session, WORKLOAD, { first: () => startImgrelay({ originPort, env, name: 'imgrelay (before restart)' }) },
    async ({ first }) => {
      for (const path of paths) await getUntil(first.url + path, 'MISS');
    });
  await withChildren(session, WORKLOAD, { imgrelay: () => startImgrelay({ originPort, env }) }, async ({ imgrelay }) => {
    const hit = await getUntil(imgrelay.url + paths[0], 'HIT-STORE');
    const answers = await Promise.all(paths.map((path) => get(imgrelay.url + path)));
    const notStored = answers.filter((a) => a.xCache !== 'HIT-STORE').length;
    if (notStored > 0) throw new Error(`${notStored} of ${paths.length} primed URLs were not HIT-STORE after the restart`);
    await body(imgrelay, hit, paths);
  });
}

const storedPaths = (session: Session) =>
  Array.from({ length: SOURCES }, (_, k) => `/?${session.origin.imgrelayBase}/${session.data.hit}?k=${k}`);

async function measurePair(session: Session, section: Section, label: string, contenders: Record<string, Contender>) {
  session.log(`${label}: ${session.settings.rounds} rounds`);
  const samples = await interleave(session.settings.rounds, contenders, session.roundLogger('req/s'));
  const comparison = compare(label, samples, 'imgrelay', 'req/s');
  section.tables.push(comparison.table);
  const limit = Object.keys(contenders).find((name) => name !== 'imgrelay') as string;
  const value = comparison.rateRatio[limit];
  section.targets.push({ workload: WORKLOAD, name: `${label} vs ${limit}`, value, threshold: '≥ 0.80×', pass: atLeast(value, 0.8),
    range: comparison.rateRange[limit] });
}

async function locateObjects(sdk: Child, target: { endpoint: string; bucket: string }, body: Buffer) {
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-bench-body-'));
  const bodyFile = join(dir, 'body');
  writeFileSync(bodyFile, body);
  try {
    return await sdk.call<{ keys: string[]; size: number }>('locate', { ...target, bodyFile });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A stored file whose bytes contain the served body (whatever framing the store adds around it). */
function findFileHolding(dir: string, body: Buffer): string {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
  const match = files.find((file) => readFileSync(file).includes(body));
  if (!match) throw new Error(`no file under ${dir} holds the served body (${files.length} files)`);
  return match;
}
