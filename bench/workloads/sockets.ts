/**
 * Workload `sockets` — normal requests while sockets are held open against the service: the memory-hit load of
 * workload 2 (wrk -t1 -c32), alone and with 500 idle keep-alive connections and 200 header-trickling connections
 * open, interleaved round by round, in one imgrelay child with its default socket bounds. Every attacking socket
 * the service closes (the tricklers at the header deadline) is reopened at once, so the pressure stays constant.
 * Reports the attacked run's p50/p99 latency and throughput as ratios to the quiet run of the same round.
 */
import { type Socket, connect } from 'node:net';
import { startImgrelay } from '../lib/contenders.js';
import { getUntil } from '../lib/prime.js';
import { atLeast, atMost, fmt, fmtRatioRange, type Section } from '../lib/report.js';
import { interleave, type Sample } from '../lib/rounds.js';
import { wrkSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';
import { wrkLoad } from '../lib/settings.js';
import { median, spread } from '../lib/stats.js';

const IDLE = 500;
const TRICKLING = 200;
/** One header line per trickler per second: the slowest a real client could be, and far under any header limit. */
const TRICKLE_EVERY_MS = 1000;
const SETTLE_MS = 1000;

interface Pressure {
  /** Attacking sockets the service closed during the run (each reopened at once). */
  closedByServer: number;
  open(): number;
  stop(): void;
}

export async function socketPressure(session: Session): Promise<Section> {
  const section: Section = {
    title: `Sockets: memory hits with ${IDLE} idle + ${TRICKLING} trickling connections open`,
    description: `The memory-hit load of workload 2 (wrk -t1 -c32, \`/?http://origin.test/hit.jpg\`), alone ("quiet") and ` +
      `while the bench process holds ${IDLE} idle keep-alive connections (one request each, then nothing) and ${TRICKLING} ` +
      `connections sending one header line per second, never finishing (reopened whenever the service closes them), ` +
      'interleaved round by round against one imgrelay with its default socket bounds (src/http/node-server.ts).',
    tables: [], targets: [], notes: [],
  };
  const { settings } = session;
  const path = `/?${session.origin.imgrelayBase}/${session.data.hit}`;
  await withChildren(session, 'sockets', { imgrelay: () => startImgrelay({ originPort: session.origin.port }) },
    async ({ imgrelay }) => {
      await getUntil(imgrelay.url + path, 'MISS');
      await getUntil(imgrelay.url + path, 'HIT-MEMORY');
      const port = Number(new URL(imgrelay.url).port);
      const p99 = { quiet: [] as number[], attacked: [] as number[] };
      const notes: string[] = [];
      const run = async (round: number, attacked: boolean): Promise<Sample> => {
        const pressure = attacked ? await startPressure(port) : undefined;
        // Let the set-up burst (700 handshakes, 500 answers, their garbage) pass: the load is measured while they sit.
        if (pressure) await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        try {
          const held = pressure?.open() ?? 0;
          const { sample, result } = await wrkSample(imgrelay, imgrelay.url + path, wrkLoad(settings, round));
          if (round >= 0) p99[attacked ? 'attacked' : 'quiet'].push(result.latencyP99Ms);
          if (pressure && round >= 0) {
            notes.push(`round ${round + 1}: ${held} attacking sockets open at the start, ${pressure.open()} at the end, ` +
              `${pressure.closedByServer} closed by the service and reopened`);
            session.log(`  ${notes[notes.length - 1]}`);
          }
          return sample;
        } finally {
          pressure?.stop();
        }
      };
      session.log(`sockets: ${settings.rounds} rounds × ${settings.wrkSeconds} s, quiet and under ${IDLE}+${TRICKLING} held sockets`);
      const samples = await interleave(settings.rounds, {
        quiet: (round) => run(round, false),
        attacked: (round) => run(round, true),
      }, session.roundLogger('req/s'));
      report(section, samples, p99);
      section.notes.push(...notes);
    });
  return section;
}

function report(section: Section, samples: Record<'quiet' | 'attacked', Sample[]>,
  p99: Record<'quiet' | 'attacked', number[]>): void {
  const ratio = (pick: (i: number, kind: 'quiet' | 'attacked') => number) =>
    spread(samples.attacked.map((_, i) => pick(i, 'attacked') / pick(i, 'quiet')));
  const p50 = ratio((i, kind) => samples[kind][i].p50Ms);
  const tail = ratio((i, kind) => p99[kind][i]);
  const rate = ratio((i, kind) => samples[kind][i].rate);
  const cpu = ratio((i, kind) => samples[kind][i].cpuMsPerOp);
  const row = (kind: 'quiet' | 'attacked') => [kind, fmt(median(samples[kind].map((s) => s.rate)), 0),
    fmt(median(samples[kind].map((s) => s.p50Ms)), 2), fmt(median(p99[kind]), 2),
    String(samples[kind].reduce((n, s) => n + s.errors, 0)), String(samples[kind].length)];
  section.tables.push({
    title: 'Memory hits, quiet vs. attacked (same child, interleaved)',
    headers: ['run', 'median req/s', 'p50 ms', 'p99 ms', 'errors', 'rounds'],
    rows: [row('quiet'), row('attacked')],
  }, {
    title: 'Attacked ÷ quiet, per round (median; rounds\' range)',
    headers: ['p50 latency', 'p99 latency', 'throughput', 'server CPU per hit'],
    rows: [[fmtRatioRange(p50.median, [p50.low, p50.high]), fmtRatioRange(tail.median, [tail.low, tail.high]),
      fmtRatioRange(rate.median, [rate.low, rate.high]), fmtRatioRange(cpu.median, [cpu.low, cpu.high])]],
  });
  section.targets.push(
    { workload: 'sockets', name: `hit p50 latency, ${IDLE} idle + ${TRICKLING} trickling open ÷ none`, value: p50.median,
      threshold: '≤ 1.25×', pass: atMost(p50.median, 1.25), range: [p50.low, p50.high] },
    { workload: 'sockets', name: `hit throughput, ${IDLE} idle + ${TRICKLING} trickling open ÷ none`, value: rate.median,
      threshold: '≥ 0.80×', pass: atLeast(rate.median, 0.8), range: [rate.low, rate.high] },
  );
}

/** Opens the idle and trickling sockets (in batches, under the listen backlog) and keeps them open until stop(). */
async function startPressure(port: number): Promise<Pressure> {
  const sockets = new Set<Socket>();
  let stopping = false;
  const pressure: Pressure = { closedByServer: 0, open: () => sockets.size, stop: () => {
    stopping = true;
    for (const socket of sockets) socket.destroy();
  } };
  const keep = (socket: Socket, reopen: () => Promise<unknown>) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => {
      sockets.delete(socket);
      if (stopping) return;
      pressure.closedByServer++;
      void reopen().catch(() => {});
    });
  };
  const idle = async (): Promise<void> => {
    const socket = await opened(port);
    keep(socket, idle);
    await new Promise<void>((resolve) => {
      socket.once('data', () => resolve()); // the answer; after it, the connection sits idle
      socket.once('close', () => resolve());
      socket.write('GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n');
    });
  };
  const trickling = async (): Promise<void> => {
    const socket = await opened(port);
    keep(socket, trickling);
    socket.resume(); // reads (and drops) the 408 the service sends at the header deadline
    socket.write('GET /healthz HTTP/1.1\r\nHost: bench\r\n');
    const timer = setInterval(() => socket.writable && socket.write('X-Trickle: 1\r\n'), TRICKLE_EVERY_MS);
    socket.once('close', () => clearInterval(timer));
  };
  for (let i = 0; i < IDLE; i += 50) await Promise.all(Array.from({ length: Math.min(50, IDLE - i) }, idle));
  for (let i = 0; i < TRICKLING; i += 50) await Promise.all(Array.from({ length: Math.min(50, TRICKLING - i) }, trickling));
  return pressure;
}

function opened(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}
