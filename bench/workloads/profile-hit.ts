/**
 * Where a hit's CPU goes: a separate imgrelay under `node --cpu-prof`, the same wrk load for twice the round
 * length, then the top self-time functions of its main thread. Run with `--profile`; the .cpuprofile files stay in
 * bench/results/profiles/ for a closer look in Chrome DevTools.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startImgrelay } from '../lib/contenders.js';
import { hotFunctions } from '../lib/cpuprofile.js';
import { getUntil } from '../lib/prime.js';
import { fmt, type Table } from '../lib/report.js';
import type { Session } from '../lib/session.js';
import { wrk, type WrkOptions } from '../lib/wrk.js';

const PROFILE_DIR = fileURLToPath(new URL('../results/profiles/', import.meta.url));

export interface ProfileRequest {
  label: string;
  /** imgrelay environment on top of the bench defaults (e.g. a primed store). */
  env?: Record<string, string>;
  /** Paths to load (rotated); the first is primed until it answers `expect`. */
  paths: string[];
  expect: 'HIT-MEMORY' | 'HIT-STORE';
  load: WrkOptions;
}

export async function profileHits(session: Session, request: ProfileRequest): Promise<Table[]> {
  mkdirSync(PROFILE_DIR, { recursive: true });
  const imgrelay = await startImgrelay({ originPort: session.origin.port, env: request.env,
    name: `imgrelay (--cpu-prof, ${request.label})`, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] });
  let rps = Number.NaN;
  const load = { ...request.load, durationS: request.load.durationS * 2, paths: request.paths };
  try {
    await getUntil(imgrelay.url + request.paths[0], request.expect);
    rps = (await wrk(imgrelay.url + request.paths[0], load)).rps;
  } finally {
    await session.retire(`${request.label} (profiled)`, imgrelay);
  }
  const file = mainThreadProfile(imgrelay.pid);
  if (!file) throw new Error(`no main-thread .cpuprofile of pid ${imgrelay.pid} in ${PROFILE_DIR}`);
  // Only the load's window: start-up (module loading, JIT warm-up) precedes it.
  const { functions, modules, busyMs } = hotFunctions(file, 15, load.durationS * 1000);
  session.log(`profile written to ${file}`);
  const title = `imgrelay main-thread CPU profile, ${request.label}: ${fmt(rps, 0)} req/s under the profiler, ` +
    `${fmt(busyMs, 0)} ms busy in ${load.durationS} s (bench/results/profiles/${file.split('/').pop()})`;
  const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
  return [
    { title: `${title}: top functions by self time`, headers: ['function', 'where', 'self ms', 'share of busy'],
      rows: functions.map((f) => [f.name, f.location, fmt(f.selfMs, 0), percent(f.share)]) },
    { title: `${title}: self time by module`, headers: ['module', 'self ms', 'share of busy'],
      rows: modules.map((m) => [m.module, fmt(m.selfMs, 0), percent(m.share)]) },
  ];
}

/**
 * Node names profiles `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`; thread 0 is the main thread (a worker
 * thread, were there one, would write another).
 */
function mainThreadProfile(pid: number): string | undefined {
  const name = readdirSync(PROFILE_DIR).find((entry) => entry.endsWith('.cpuprofile') && entry.includes(`.${pid}.0.`));
  return name ? join(PROFILE_DIR, name) : undefined;
}
