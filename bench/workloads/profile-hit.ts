/**
 * Where a memory hit's CPU goes: imgrelay under `node --cpu-prof` on the same wrk load, top self-time functions.
 * Run with `--profile`; the .cpuprofile is kept in bench/results/profiles/ for a closer look in DevTools.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startImgrelay } from '../lib/contenders.js';
import { hotFunctions } from '../lib/cpuprofile.js';
import { getUntil } from '../lib/prime.js';
import { fmt, type Table } from '../lib/report.js';
import type { Session } from '../lib/session.js';
import { wrk, type WrkOptions } from '../lib/wrk.js';

const PROFILE_DIR = fileURLToPath(new URL('../results/profiles/', import.meta.url));

export async function profileHits(session: Session, path: string, load: WrkOptions): Promise<Table> {
  mkdirSync(PROFILE_DIR, { recursive: true });
  const startedAt = Date.now();
  const imgrelay = await startImgrelay({ originPort: session.origin.port, name: 'imgrelay (--cpu-prof)',
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] });
  let rps = Number.NaN;
  try {
    await getUntil(imgrelay.url + path, 'HIT-MEMORY');
    rps = (await wrk(imgrelay.url + path, { ...load, durationS: load.durationS * 2 })).rps;
  } finally {
    await session.retire('memory hit (profiled)', imgrelay);
  }
  const file = newestProfile(startedAt);
  if (!file) throw new Error(`no .cpuprofile written in ${PROFILE_DIR}`);
  const { functions, busyMs } = hotFunctions(file);
  session.log(`profile written to ${file}`);
  return {
    title: `imgrelay CPU profile on the memory-hit load (${fmt(rps, 0)} req/s under the profiler, ` +
      `${fmt(busyMs, 0)} ms busy; file bench/results/profiles/${file.split('/').pop()})`,
    headers: ['function', 'where', 'self ms', 'share of busy'],
    rows: functions.map((f) => [f.name, f.location, fmt(f.selfMs, 0), `${(f.share * 100).toFixed(1)}%`]),
  };
}

function newestProfile(since: number): string | undefined {
  return readdirSync(PROFILE_DIR)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(PROFILE_DIR, name))
    .filter((file) => statSync(file).mtimeMs >= since)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}
