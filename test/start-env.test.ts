/**
 * The start and test commands' shell steps, run by a real POSIX sh: `npm start` builds only when it must and can
 * (bin/build-if-stale.sh), `npm test` checks its system packages first (.ci/ensure-packages.sh), and the start
 * command's libuv pool size (bin/threadpool-env.sh, sourced by `npm start`):
 * WORKERS + 4, where WORKERS unset or 0 means one per CPU — 0 used to give a pool of 4, which lets two transforms
 * starve the fs store's I/O.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

});

/** Runs a copy of a bin/ or .ci/ script in a scratch directory laid out as `layout` says. */
function scratch(layout: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-scripts-'));
  chmodSync(dir, 0o755); // readable by the unprivileged user some cases run as
  for (const [path, content] of Object.entries(layout)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}
const script = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');
const sh = (dir: string, path: string, asNobody = false) => {
  const command = asNobody && process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'sh', path]
    : ['sh', path];
  return spawnSync(command[0]!, command.slice(1), { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
};
/** Runs one script copied into a fresh scratch layout, removing the scratch before any assertion can fail. */
const runOnce = (layout: Record<string, string>, path: string, asNobody = false) => {
  const dir = scratch(layout);
  try {
    return sh(dir, path, asNobody);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

describe('npm start: bin/build-if-stale.sh', () => {
  const buildIfStale = (layout: Record<string, string>) =>
    runOnce({ 'bin/build-if-stale.sh': script('bin/build-if-stale.sh'), ...layout }, 'bin/build-if-stale.sh');

  it('runs a production install (dist/, no src/, no compiler) as it is, without building', () => {
    const run = buildIfStale({ 'dist/node/node.js': '' });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
  });

  it('stops with what to do when there is neither a build nor a compiler', () => {
    const run = buildIfStale({ 'src/node.ts': '' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("dist/node/node.js is missing. Build it with 'npm run build'");
  });

  it('builds again when dist/node/node.js was deleted (tsc\'s incremental state alone would emit nothing)', () => {
    const dir = scratch({ 'bin/build-if-stale.sh': script('bin/build-if-stale.sh'),
      'tsconfig.json': JSON.stringify({ compilerOptions: { target: 'es2022', module: 'es2022', types: [] } }),
      'tsconfig.build.json': script('tsconfig.build.json'), 'src/node.ts': 'export const started = true;\n' });
    symlinkSync(fileURLToPath(new URL('node_modules', ROOT)), join(dir, 'node_modules'));
    expect(sh(dir, 'bin/build-if-stale.sh').status).toBe(0);
    expect(existsSync(join(dir, 'dist/node/node.js'))).toBe(true);
    rmSync(join(dir, 'dist/node/node.js'));
    const again = sh(dir, 'bin/build-if-stale.sh');
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(existsSync(join(dir, 'dist/node/node.js'))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('is what the start command runs before bin/start.sh', () => {
    const start = (JSON.parse(script('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toBe('sh ./bin/build-if-stale.sh && exec sh ./bin/start.sh');
  });
});

/**
 * bin/start.sh is the one start path: `npm start` and the container's ENTRYPOINT both run it (they used to carry
 * two copies of the env sourcing, which disagreed on whether an operator's MALLOC_ARENA_MAX wins).
 */
describe('bin/start.sh: npm start and the container image start the service the same way', () => {
  /** A stand-in dist/node/node.js that prints what the service would have been started with. */
  const probe = `process.stdout.write(JSON.stringify({ cwd: process.cwd(), args: process.argv.slice(2),
    arenas: process.env.MALLOC_ARENA_MAX, pool: process.env.UV_THREADPOOL_SIZE, trim: process.env.MALLOC_TRIM_THRESHOLD_ }));`;
  const start = (env: Record<string, string>) => {
    const dir = scratch({ 'bin/start.sh': script('bin/start.sh'), 'bin/malloc-env.sh': script('bin/malloc-env.sh'),
      'bin/threadpool-env.sh': script('bin/threadpool-env.sh'), 'dist/node/node.js': probe });
    // Run from elsewhere, as an ENTRYPOINT is: the script finds its own directory.
    const run = spawnSync('sh', [join(dir, 'bin/start.sh'), '--flag'], { cwd: tmpdir(), encoding: 'utf8',
      env: { PATH: process.env.PATH, LD_PRELOAD: '', ...env } });
    const home = realpathSync(dir);
    rmSync(dir, { recursive: true, force: true });
    expect(run.stderr).toBe('');
    return { home, out: JSON.parse(run.stdout) as Record<string, unknown> };
  };

  it('runs dist/node/node.js from the install, with two arenas, the pool size and the allocator thresholds', () => {
    const { home, out } = start({});
    expect(out).toEqual({ cwd: home, args: ['--flag'],
      arenas: '2', pool: String(cpus + 4), trim: '131072' });
  });

  it('lets the operator\'s own values win', () => {
    const { out } = start({ MALLOC_ARENA_MAX: '4', UV_THREADPOOL_SIZE: '3', MALLOC_TRIM_THRESHOLD_: '1' });
    expect(out).toMatchObject({ arenas: '4', pool: '3', trim: '1' });
  });

  it('is the container image\'s ENTRYPOINT', () => {
    expect(script('Containerfile')).toMatch(/^ENTRYPOINT \["\/bin\/sh", "\/app\/bin\/start\.sh"\]$/m);
  });
});

describe('npm test: .ci/ensure-packages.sh (pretest)', () => {
  const layout = (packages: string) => ({ '.ci/ensure-packages.sh': script('.ci/ensure-packages.sh'),
    '.ci/apt-packages': packages });

  it('is a no-op when every listed package is installed', () => {
    const run = runOnce(layout('# comment\ndpkg\n\n'), '.ci/ensure-packages.sh', true);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
  });

  it('stops at once, not as root, with the exact command that installs what is missing', () => {
    const run = runOnce(layout('dpkg\nimgrelay-no-such-package\n'), '.ci/ensure-packages.sh', true);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('not installed: imgrelay-no-such-package');
    expect(run.stderr).toContain('apt-get install -y --no-install-recommends imgrelay-no-such-package');
  });

  it('is the pretest step', () => {
    const scripts = (JSON.parse(script('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.pretest).toBe('sh ./.ci/ensure-packages.sh');
  });
});
