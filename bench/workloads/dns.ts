/**
 * Workload "dns" — a black-holed resolver must not slow anyone else down (issue #14 item 4). imgrelay runs with
 * `IMGRELAY_DNS_SERVERS` pointing at a UDP socket on loopback that reads queries and never answers, the fs store and
 * the memory tier off (every hit reads the store through libuv's pool) and libuv's default pool of 4 threads. Each
 * round measures, one request at a time, store hits and transforms (a new width each time, built from the stored
 * source: pool-bound fs read + sharp) twice: quiet, and while 8 attackers keep 8 lookups of fresh names hanging.
 * The figure is the attacked latency as a ratio to the quiet one, per round (interleaved, order alternating), then
 * the median. With getaddrinfo the 8 lookups would hold all 4 pool threads for the resolver's timeout.
 */
import { createSocket } from 'node:dgram';
import { type ImgrelayChild, startImgrelay } from '../lib/contenders.js';
import { ORIGIN_HOST } from '../lib/origin.js';
import { get, getUntil } from '../lib/prime.js';
import { atMost, fmt, fmtRatioRange, type Section } from '../lib/report.js';
import { type Session, withChildren } from '../lib/session.js';
import { median, pairedRatios, spread } from '../lib/stats.js';

const WORKLOAD = 'dns black hole';
const ATTACKERS = 8;
const CONNECT_TIMEOUT_MS = 2000;
const STORED = 8;
const THRESHOLD = 1.25;

interface Phase { storeHitMs: number; transformMs: number }

export async function dnsBlackHole(session: Session): Promise<Section> {
  const perRequest = session.settings.mode === 'quick' ? 12 : 30;
  const section: Section = {
    title: 'DNS black hole: store hits and transforms while 8 lookups hang',
    description: `imgrelay with \`IMGRELAY_DNS_SERVERS\` on a silent UDP socket, \`IMGRELAY_CONNECT_TIMEOUT_MS=${CONNECT_TIMEOUT_MS}\`, ` +
      'fs store, memory tier off, libuv\'s default 4 pool threads. Per round and phase, ' +
      `${perRequest} sequential store hits and ${perRequest} sequential transforms (new width each); the attacked phase ` +
      `keeps ${ATTACKERS} requests for fresh unresolvable names in flight. Ratio = attacked / quiet median latency, per round.`,
    tables: [], targets: [], notes: [],
  };
  const hole = await startBlackHole();
  try {
    const env = { IMGRELAY_STORE: 'fs', IMGRELAY_MEMORY_CACHE_MB: '0', IMGRELAY_DNS_SERVERS: hole.address,
      IMGRELAY_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) };
    await withChildren(session, WORKLOAD, { imgrelay: () => startImgrelay({ originPort: session.origin.port, env }) },
      async ({ imgrelay }) => {
        const paths = Array.from({ length: STORED }, (_, k) => `/?http://${ORIGIN_HOST}/${session.data.hit}?k=${k}`);
        for (const path of paths) await get(imgrelay.url + path);
        for (const path of paths) await getUntil(imgrelay.url + path, 'HIT-STORE');
        const rounds = await measureRounds(session, imgrelay, paths, hole, perRequest);
        report(section, rounds, hole.queries());
      });
  } finally {
    hole.close();
  }
  return section;
}

async function measureRounds(session: Session, imgrelay: ImgrelayChild, paths: string[],
  hole: BlackHole, perRequest: number): Promise<{ quiet: Phase[]; attacked: Phase[] }> {
  const quiet: Phase[] = [];
  const attacked: Phase[] = [];
  const widths = { next: 100 };
  for (let round = -1; round < session.settings.rounds; round++) {
    const order = round % 2 === 0 ? ['attacked', 'quiet'] : ['quiet', 'attacked'];
    for (const mode of order) {
      const phase = mode === 'quiet'
        ? await measurePhase(imgrelay, paths, widths, perRequest)
        : await underAttack(imgrelay, hole, () => measurePhase(imgrelay, paths, widths, perRequest));
      session.log(`  ${mode} ${round < 0 ? 'warm-up' : `round ${round + 1}`}: store hit ${fmt(phase.storeHitMs, 2)} ms, ` +
        `transform ${fmt(phase.transformMs, 2)} ms (medians)`);
      if (round >= 0) (mode === 'quiet' ? quiet : attacked).push(phase);
    }
  }
  return { quiet, attacked };
}

/** Sequential store hits (rotating over the stored URLs) and transforms (a new width each), median latencies. */
async function measurePhase(imgrelay: ImgrelayChild, paths: string[], widths: { next: number }, count: number): Promise<Phase> {
  const hits: number[] = [];
  const transforms: number[] = [];
  for (let i = 0; i < count; i++) {
    hits.push(await timed(imgrelay.url + paths[i % paths.length], 'HIT-STORE'));
    transforms.push(await timed(`${imgrelay.url}${paths[i % paths.length]}`.replace('/?http', '/?url=http') + `&w=${widths.next++}`, 'MISS'));
  }
  return { storeHitMs: median(hits), transformMs: median(transforms) };
}

async function timed(url: string, expected: string): Promise<number> {
  const started = performance.now();
  const answer = await get(url);
  const ms = performance.now() - started;
  if (answer.status !== 200 || answer.xCache !== expected) {
    throw new Error(`${url} answered ${answer.status} X-Cache: ${answer.xCache || '(none)'} (wanted ${expected})`);
  }
  return ms;
}

/** Runs `measure` while ATTACKERS loops keep a lookup of a fresh name hanging; waits for the last ones to end. */
async function underAttack<T>(imgrelay: ImgrelayChild, hole: BlackHole, measure: () => Promise<T>): Promise<T> {
  let stop = false;
  let counter = 0;
  const before = hole.names();
  const attacker = async () => {
    while (!stop) {
      const answer = await get(`${imgrelay.url}/?url=http://hole-${Date.now()}-${counter++}.example/x.jpg&w=10`);
      if (answer.status !== 504) throw new Error(`a black-holed lookup answered ${answer.status}, not 504`);
    }
  };
  const attackers = Array.from({ length: ATTACKERS }, attacker);
  const deadline = Date.now() + 5000;
  while (hole.names() - before < ATTACKERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  try {
    return await measure();
  } finally {
    stop = true;
    await Promise.all(attackers);
  }
}

function report(section: Section, rounds: { quiet: Phase[]; attacked: Phase[] }, queries: number): void {
  const rows: string[][] = [];
  for (const [label, key] of [['store hit', 'storeHitMs'], ['transform', 'transformMs']] as const) {
    const ratios = pairedRatios(rounds.attacked.map((p) => p[key]), rounds.quiet.map((p) => p[key]));
    const { median: value, low, high } = spread(ratios);
    rows.push([label, fmt(median(rounds.quiet.map((p) => p[key])), 2), fmt(median(rounds.attacked.map((p) => p[key])), 2),
      fmtRatioRange(value, [low, high])]);
    section.targets.push({ workload: WORKLOAD, name: `${label} latency with 8 hanging lookups / without`, value,
      threshold: `≤ ${THRESHOLD.toFixed(2)}×`, pass: atMost(value, THRESHOLD), range: [low, high] });
  }
  section.tables.push({ title: 'Latency with a black-holed resolver (medians, ms)',
    headers: ['request', 'quiet', 'attacked', 'attacked / quiet'], rows });
  section.notes.push(`The black hole received ${queries} queries (A and AAAA, with c-ares retries); every attacker ` +
    'request ended 504 within the connect timeout.');
}

interface BlackHole {
  address: string;
  /** Distinct names asked so far. */
  names(): number;
  queries(): number;
  close(): void;
}

function startBlackHole(): Promise<BlackHole> {
  const socket = createSocket('udp4');
  const names = new Set<string>();
  let queries = 0;
  socket.on('message', (packet: Buffer) => {
    queries++;
    names.add(packet.subarray(12, packet.indexOf(0, 12)).toString('latin1'));
  });
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve({
    address: `127.0.0.1:${socket.address().port}`, names: () => names.size, queries: () => queries,
    close: () => socket.close(),
  })));
}
