#!/usr/bin/env node
// The `imgrelay` command: TypeScript sources run through tsx (no build step to forget).
//
// `imgrelay serve` can run under jemalloc: IMGRELAY_ALLOCATOR=jemalloc (docs/memory.md). The allocator can only be
// chosen before the process starts, so serve then relaunches itself once with LD_PRELOAD and a tuned MALLOC_CONF,
// unless the operator set LD_PRELOAD already or no jemalloc is installed. The default stays glibc with
// MALLOC_ARENA_MAX=2 (sharp's advice; `npm start` sets it): in the soak, tuned jemalloc lowered RSS between bursts
// but not the peak, and its untuned defaults raised the peak. bench/lib/child.ts starts its children the same way.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where Debian/Ubuntu (libjemalloc2), Fedora/RHEL and Alpine put the shared library. */
const JEMALLOC_PATHS = [
  `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libjemalloc.so.2`,
  '/usr/lib64/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2', '/usr/local/lib/libjemalloc.so.2',
];

/**
 * Return freed pages to the kernel within a second (a background thread does it, not the request path), and keep
 * two arenas like MALLOC_ARENA_MAX=2: measured in docs/memory.md. An operator's own MALLOC_CONF wins.
 */
export const JEMALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2';

/** Set in the relaunched process so that it never relaunches again, whatever the dynamic loader did. */
const RELAUNCHED = 'IMGRELAY_ALLOCATOR_RELAUNCHED';

/**
 * The allocator variables `imgrelay serve` must start with, given the environment it was started in; empty when
 * nothing is missing. glibc reads them only at process start, hence the relaunch when there are any.
 */
export function allocatorEnv(env = process.env, exists = existsSync) {
  if (env[RELAUNCHED]) return {};
  const extra = env.MALLOC_ARENA_MAX ? {} : { MALLOC_ARENA_MAX: '2' };
  const wanted = process.platform === 'linux' && !env.LD_PRELOAD && env.IMGRELAY_ALLOCATOR === 'jemalloc';
  const library = wanted ? JEMALLOC_PATHS.find((path) => exists(path)) : undefined;
  if (library) Object.assign(extra, { LD_PRELOAD: library }, env.MALLOC_CONF ? {} : { MALLOC_CONF: JEMALLOC_CONF });
  else if (wanted) process.stderr.write('imgrelay: IMGRELAY_ALLOCATOR=jemalloc but no libjemalloc.so.2 found; using glibc\n');
  return extra;
}

/** Runs this same command again with `extra` in its environment and mirrors its signals and exit status. */
function relaunch(extra) {
  const env = { ...process.env, ...extra, [RELAUNCHED]: '1' };
  const args = [...process.execArgv, ...process.argv.slice(1)];
  // Node ≥ 22.15 can replace the process outright: no parent left behind, the PID stays the operator's.
  if (typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...args], env);
  const child = spawn(process.execPath, args, { env, stdio: 'inherit' });
  // A second SIGINT from the terminal's process group is harmless: the service ignores signals while draining.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`imgrelay: could not relaunch itself: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}

async function run(args) {
  if (args[0] === 'serve') {
    const extra = allocatorEnv();
    // Only for jemalloc: on Node 20 a relaunch leaves a ~44 MiB parent, more than MALLOC_ARENA_MAX alone is worth.
    if (extra.LD_PRELOAD) return relaunch(extra);
  }
  const { register } = await import('tsx/esm/api');
  register();
  const { runCli } = await import('../src/cli.ts');
  process.exitCode = await runCli(args);
}

// Only as the command itself (npm's .bin link included): bench/lib/child.ts imports allocatorEnv from here.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await run(process.argv.slice(2));
