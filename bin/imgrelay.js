#!/usr/bin/env node
// The `imgrelay` command: TypeScript sources run through tsx (no build step to forget).
//
// `imgrelay serve` runs under jemalloc when the library is installed (docs/memory.md): glibc's malloc fragments
// under libvips' allocation pattern and keeps ~100 MiB more resident in a long soak. The allocator can only be
// chosen before the process starts, so serve relaunches itself once with LD_PRELOAD set. It does not when the
// operator set LD_PRELOAD already, set IMGRELAY_ALLOCATOR=system, or no jemalloc is found; then glibc runs with
// MALLOC_ARENA_MAX=2 (sharp's advice). bench/lib/child.ts starts its imgrelay children with the same environment.
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
 * The allocator variables `imgrelay serve` runs with, given the environment it was started with: what to add
 * (empty when nothing changes) and whether a relaunch is needed to apply them.
 */
export function allocatorEnv(env = process.env, exists = existsSync) {
  const glibc = env.MALLOC_ARENA_MAX ? {} : { MALLOC_ARENA_MAX: '2' };
  const choice = (env.IMGRELAY_ALLOCATOR ?? 'jemalloc').toLowerCase();
  if (process.platform !== 'linux' || choice === 'system' || env[RELAUNCHED] || env.LD_PRELOAD) return glibc;
  const library = JEMALLOC_PATHS.find((path) => exists(path));
  if (!library) return glibc;
  return { ...glibc, LD_PRELOAD: library, MALLOC_CONF: env.MALLOC_CONF ?? JEMALLOC_CONF, [RELAUNCHED]: '1' };
}

/** Runs this same command again with `extra` in its environment and mirrors its signals and exit status. */
function relaunch(extra) {
  const env = { ...process.env, ...extra };
  const args = [...process.execArgv, ...process.argv.slice(1)];
  // Node ≥ 22.15 can replace the process outright: no parent left behind, the PID stays the operator's.
  if (typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...args], env);
  const child = spawn(process.execPath, args, { env, stdio: 'inherit' });
  // A second SIGINT from the terminal's process group is harmless: the service ignores signals while draining.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`imgrelay: could not relaunch with ${extra.LD_PRELOAD}: ${error.message}\n`);
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
    if (extra.LD_PRELOAD) return relaunch(extra);
    Object.assign(process.env, extra); // MALLOC_ARENA_MAX only: read by glibc when the first threads start
  }
  const { register } = await import('tsx/esm/api');
  register();
  const { runCli } = await import('../src/cli.ts');
  process.exitCode = await runCli(args);
}

// Only as the command itself (npm's .bin link included): bench/lib/child.ts imports allocatorEnv from here.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await run(process.argv.slice(2));
