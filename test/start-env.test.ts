/**
 * The start command's libuv pool size (bin/threadpool-env.sh, sourced by `npm start`), run by a real POSIX sh:
 * WORKERS + 4, where WORKERS unset or 0 means one per CPU — 0 used to give a pool of 4, which lets two transforms
 * starve the fs store's I/O.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url);

function poolSize(env: Record<string, string>): number {
  const { UV_THREADPOOL_SIZE: _, IMGRELAY_WORKERS: __, ...base } = process.env;
  const out = execFileSync('sh', ['-c', '. ./bin/threadpool-env.sh && echo "$UV_THREADPOOL_SIZE"'],
    { cwd: ROOT, env: { ...base, ...env }, encoding: 'utf8' });
  return Number(out.trim());
}

const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());

describe('npm start: UV_THREADPOOL_SIZE', () => {
  it('is CPUs + 4 when WORKERS is 0 or unset (0 means one per CPU, not zero slots)', () => {
    expect(poolSize({ IMGRELAY_WORKERS: '0' })).toBe(cpus + 4);
    expect(poolSize({})).toBe(cpus + 4);
  });

  it('is WORKERS + 4 for an explicit count, and the operator\'s own value wins', () => {
    expect(poolSize({ IMGRELAY_WORKERS: '6' })).toBe(10);
    expect(poolSize({ IMGRELAY_WORKERS: '6', UV_THREADPOOL_SIZE: '3' })).toBe(3);
  });

  it('is what the start command uses', () => {
    const start = (JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { scripts: Record<string, string> })
      .scripts.start;
    expect(start).toContain('. ./bin/threadpool-env.sh &&');
    expect(start).not.toContain('UV_THREADPOOL_SIZE=');
  });
});
