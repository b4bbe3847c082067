/**
 * The allocator environment `npm start` gives the service (bin/malloc-env.sh, sourced by sh exactly as npm does),
 * so the bench measures imgrelay under the allocator it runs with in production. Read once per bench run.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../bin/malloc-env.sh', import.meta.url));
const NAMES = ['LD_PRELOAD', 'MALLOC_CONF', 'MALLOC_ARENA_MAX', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_'];
let cached: Record<string, string> | undefined;

export function startAllocatorEnv(): Record<string, string> {
  if (cached) return cached;
  // A clean environment: what the script picks on this machine, not what the bench itself was started with.
  const out = execFileSync('sh', ['-c', `. "${SCRIPT}" && MALLOC_ARENA_MAX=2 env`], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  const picked = out.split('\n').map((line) => line.split('=')).filter(([name]) => NAMES.includes(name));
  cached = Object.fromEntries(picked.map(([name, ...value]) => [name, value.join('=')]));
  return cached;
}
