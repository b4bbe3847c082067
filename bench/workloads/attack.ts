/**
 * Workload "attack" — bounded cost under attack (issue #14): cold-miss throughput of legitimate requests (distinct
 * 2000×1500 photos → 800w JPEG, 4 clients) while 4 attackers loop on the most expensive requests the service still
 * accepts (a photo stretched to 2048×2048 with blur just under the budget, a new sigma decimal per request so every
 * one is a new key), as a ratio to the same load without attackers. Interleaved A/B rounds in one imgrelay process.
 */
import { Agent, request } from 'undici';
import { closedLoop } from '../lib/client.js';
import { startImgrelay } from '../lib/contenders.js';
import { atLeast, fmt, fmtRatio, type Section } from '../lib/report.js';
import { interleave, type Sample, roundRatioSpread, summarise } from '../lib/rounds.js';
import { loopSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';
import type { Child } from '../lib/child.js';

const CLIENTS = 4;
const ATTACKERS = 4;
const GOAL = 0.7;
const LEGIT_PASSES = 3;
/**
 * Accepted at the default budget (estimate ~1.45 s of the 1.5 s: 3 MP decoded, 4.2 MP out, blur ~200) and the
 * costliest such request found for a 2000×1500 JPEG: blur on a 2048² output, just under the limit.
 */
const attackPath = (source: string, n: number) =>
  `/?url=${encodeURIComponent(source)}&w=2048&h=2048&fit=fill&output=jpeg&blur=${(199 + (n % 997) / 1000).toFixed(3)}`;

interface AttackTally {
  sent: number;
  accepted: number;
  statuses: Map<number, number>;
}

/** Four loops sending costly requests until `stop` resolves; what the service answered is tallied. */
function startAttack(server: Child, source: string, tally: AttackTally, salt: number) {
  const agent = new Agent({ connections: ATTACKERS, keepAliveTimeout: 30_000 });
  let stopped = false;
  let n = salt;
  const loop = async () => {
    while (!stopped) {
      const url = server.url + attackPath(`${source}?a=${n}`, n);
      n++;
      tally.sent++;
      try {
        const response = await request(url, { dispatcher: agent, headersTimeout: 120_000, bodyTimeout: 120_000 });
        await response.body.arrayBuffer();
        tally.statuses.set(response.statusCode, (tally.statuses.get(response.statusCode) ?? 0) + 1);
        if (response.statusCode === 200) tally.accepted++;
      } catch {
        tally.statuses.set(0, (tally.statuses.get(0) ?? 0) + 1);
      }
    }
  };
  const loops = Array.from({ length: ATTACKERS }, loop);
  return async () => {
    stopped = true;
    await Promise.all(loops);
    await agent.close();
  };
}

export async function attack(session: Session): Promise<Section> {
  const files = session.data.cold.slice(0, session.settings.coldPhotos.jpeg);
  const base = session.origin.imgrelayBase;
  const tally: AttackTally = { sent: 0, accepted: 0, statuses: new Map() };
  const samples = await withChildren(session, 'attack', {
    imgrelay: () => startImgrelay({ originPort: session.origin.port, env: { IMGRELAY_STORE: 'none' } }),
  }, async ({ imgrelay }) => {
    // Each photo LEGIT_PASSES times under distinct URLs: a round must outlast several attacker jobs (~1.2 s each),
    // or it measures whether one happened to start just before it.
    const legit = (round: number, tag: string) => Array.from({ length: LEGIT_PASSES }, (_, pass) => files.map((f) =>
      `${imgrelay.url}/?url=${encodeURIComponent(`${base}/${f}?r=${tag}-${round}-${pass}-${Date.now().toString(36)}`)}` +
      '&w=800&q=80&output=jpeg')).flat();
    return interleave(session.settings.rounds, {
      alone: async (round) => (await loopSample(imgrelay, legit(round, 'alone'), { concurrency: CLIENTS })).sample,
      'with 4 attackers': async (round) => {
        const stop = startAttack(imgrelay, `${base}/${files[0]}`, tally, round * 10_000 + 20_000);
        // Let the attackers fill their lane first: the legitimate load then meets the attack at full strength.
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          return (await loopSample(imgrelay, legit(round, 'attacked'), { concurrency: CLIENTS })).sample;
        } finally {
          await stop();
        }
      },
    }, session.roundLogger('ops/s'));
  });
  return report(samples, tally);
}

function report(samples: Record<'alone' | 'with 4 attackers', Sample[]>, tally: AttackTally): Section {
  const ratio = roundRatioSpread(samples['with 4 attackers'], samples.alone);
  const row = (name: 'alone' | 'with 4 attackers') => {
    const s = summarise(samples[name]);
    return [name, fmt(s.rate), fmt(s.p50Ms, 0), fmt(s.cpuMsPerOp, 1), String(s.errors)];
  };
  const statuses = [...tally.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}: ${count}`).join(', ');
  process.stdout.write(`attack: legitimate cold-miss throughput with attackers = ${fmtRatio(ratio.median)} of alone ` +
    `(rounds ${fmtRatio(ratio.low)}–${fmtRatio(ratio.high)}); attacker answers ${statuses}\n`);
  return {
    title: 'Bounded cost: cold misses under a cost attack',
    description: `${CLIENTS} clients request distinct 2000×1500 photos as 800w JPEG (cold misses), alone and while ` +
      `${ATTACKERS} attackers loop on the costliest request still accepted (2048² fill + blur ~200, a new key each time). ` +
      'Interleaved rounds, one imgrelay process (no store).',
    tables: [{ title: 'Legitimate cold misses', headers: ['run', 'ops/s', 'p50 ms', 'server CPU ms/op', 'errors'],
      rows: [row('alone'), row('with 4 attackers')] }],
    targets: [{ workload: 'attack', name: 'cold-miss throughput under attack vs alone', value: ratio.median,
      threshold: `≥ ${GOAL}×`, pass: atLeast(ratio.median, GOAL), range: [ratio.low, ratio.high] }],
    notes: [`Attackers sent ${tally.sent} requests; answers by status: ${statuses || 'none'}.`],
  };
}
