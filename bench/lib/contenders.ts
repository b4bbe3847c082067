/** Starting each contender as its own child process, with the environment the workloads share. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, serverEntry, spawnChild } from './child.js';
import { ORIGIN_HOST } from './origin.js';
import { startAllocatorEnv } from './allocator.js';

export interface ImgrelayOptions {
  originPort: number;
  env?: Record<string, string>;
  nodeArgs?: string[];
  name?: string;
  /** Allocator variables as given in `env` only (the hostile-mix candidates), not those of `npm start`. */
  ownAllocator?: boolean;
}

export interface ImgrelayChild extends Child {
  /** The fs store folder when IMGRELAY_STORE=fs (a fresh temp dir unless IMGRELAY_CACHE_DIR was given). */
  cacheDir?: string;
}

/** imgrelay as an operator would run it in a lab: loopback origin exempted, quiet logs, default tiers. */
export function imgrelayEnv(originPort: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    IMGRELAY_PORT: '0',
    IMGRELAY_HOST: '127.0.0.1',
    IMGRELAY_ADMIN_PORT: '0',
    IMGRELAY_LOG_LEVEL: 'silent',
    IMGRELAY_RESOLVE: `${ORIGIN_HOST}:80:127.0.0.1:${originPort}`,
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    IMGRELAY_MEMORY_CACHE_MB: '256',
    ...extra,
  };
}

export async function startImgrelay(options: ImgrelayOptions): Promise<ImgrelayChild> {
  // Under the allocator `npm start` picks (bin/malloc-env.sh), unless the workload compares allocators itself.
  const env = { ...(options.ownAllocator ? {} : startAllocatorEnv()), ...imgrelayEnv(options.originPort, options.env) };
  const store = env.IMGRELAY_STORE ?? 'fs';
  const ownsDir = store === 'fs' && !env.IMGRELAY_CACHE_DIR;
  if (ownsDir) env.IMGRELAY_CACHE_DIR = mkdtempSync(join(tmpdir(), 'imgrelay-bench-'));
  const child = await spawnChild(options.name ?? 'imgrelay', serverEntry('imgrelay.ts'), { env, nodeArgs: options.nodeArgs });
  const stop = child.stop;
  return {
    ...child,
    cacheDir: store === 'fs' ? env.IMGRELAY_CACHE_DIR : undefined,
    stop: async () => {
      await stop();
      if (ownsDir) rmSync(env.IMGRELAY_CACHE_DIR, { recursive: true, force: true });
    },
  };
}

export const startIpx = () => spawnChild('ipx', serverEntry('ipx.ts'));

export const startRawSharp = () => spawnChild('raw sharp', serverEntry('raw-sharp.ts'));

export const startIoFloor = () => spawnChild('I/O floor', serverEntry('io-floor.ts'));

/** A bare node:http server answering with `file`'s bytes, from memory or read from disk on every request. */
export function startStatic(mode: 'memory' | 'file', file: string, headers: Record<string, string>): Promise<Child> {
  const name = mode === 'memory' ? 'node:http (memory)' : 'node:http + fs.readFile';
  return spawnChild(name, serverEntry('static-http.ts'),
    { env: { BENCH_MODE: mode, BENCH_FILE: file, BENCH_HEADERS: JSON.stringify(headers) } });
}

/** Headers a hit response would carry, copied from a real imgrelay answer minus per-connection ones. */
export function replayableHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const skip = new Set(['content-length', 'connection', 'keep-alive', 'date', 'transfer-encoding']);
  return Object.fromEntries(Object.entries(headers)
    .filter(([name, value]) => !skip.has(name) && value !== undefined)
    .map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]));
}
