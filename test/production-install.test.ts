/**
 * The production install (README, "Production install"): a directory holding package.json, bin/, the built dist/
 * and a node_modules with ONLY the production dependency tree (what `npm ci --omit=dev` installs: the packages
 * `npm ls --omit=dev` lists, linked from this checkout's, so no network) runs the service with `npm start` and the
 * CLI with `imgrelay`: no TypeScript, no tsx, no source. A runtime import of a devDependency fails here.
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, zakerAt } from './helpers/imgrelay.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'production-install-token-0123456789';
const photo = readFileSync(new URL('./fixtures/photo-ladybird.jpg', import.meta.url));
const run = promisify(execFile);

let dir: string;
let origin: TestOrigin;

/** The production tree, as `npm ls --omit=dev --all --parseable` lists it (no devDependency, none of theirs). */
function productionPackages(): string[] {
  // npm ls also exits 1 over problems of the dev tree (an extraneous package); the production list is printed still.
  const { stdout: out, status } = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
  if (!out.includes(`${ROOT}node_modules/sharp`)) throw new Error(`npm ls failed (${status})`);
  return out.split('\n').map((line) => line.trim()).filter((path) => path && path !== ROOT.replace(/\/$/, ''));
}

/**
 * Copies each package (hard links: same bytes, no I/O; nothing here writes to them) without its nested
 * node_modules; nested production packages are listed on their own, after their parent.
 */
function assemble(target: string): void {
  cpSync(join(ROOT, 'package.json'), join(target, 'package.json'));
  cpSync(join(ROOT, 'bin'), join(target, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'node'), join(target, 'dist', 'node'), { recursive: true });
  const packages = productionPackages().sort((a, b) => a.length - b.length);
  for (const path of packages) {
    const copy = join(target, relative(ROOT, path));
    mkdirSync(join(copy, '..'), { recursive: true });
    try {
      execFileSync('cp', ['-al', realpathSync(path), copy], { stdio: 'ignore' });
    } catch {
      rmSync(copy, { recursive: true, force: true });
      execFileSync('cp', ['-a', realpathSync(path), copy]); // another file system: a real copy
    }
    rmSync(join(copy, 'node_modules'), { recursive: true, force: true });
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imgrelay-prod-'));
  assemble(dir);
  origin = await startOrigin();
  origin.serve('/ladybird.jpg', photo, 'image/jpeg');
}, 120_000);
afterAll(async () => {
  await origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `npm start` in the install, in a process group of its own so SIGTERM reaches npm's shell and node alike. */
function npmStart(env: Record<string, string>): ChildProcess {
  return spawn('npm', ['start', '--silent'], {
    cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: dir, IMGRELAY_HOST: '127.0.0.1', IMGRELAY_PORT: '0', IMGRELAY_ADMIN_PORT: '0',
      IMGRELAY_STORE: 'none', IMGRELAY_DRAIN_DELAY_MS: '0', ...env },
  });
}

/** The ports from the two "listening" log lines. */
function listening(child: ChildProcess): Promise<{ port: number; adminPort: number }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      const main = lines.find((line) => line.msg === 'imgrelay listening');
      const admin = lines.find((line) => line.msg === 'imgrelay admin listening');
      if (main && admin) resolve({ port: main.port, adminPort: admin.port });
    });
    child.once('exit', (code) => reject(new Error(`npm start exited ${code}:\n${out}\n${err}`)));
  });
}

describe('production install (package.json, bin/, dist/, production dependencies only)', () => {
  it('holds no compiler, no tsx and no other devDependency', () => {
    for (const name of ['typescript', 'tsx', 'esbuild', 'vitest', '@types/node', 'wrangler']) {
      expect(existsSync(join(dir, 'node_modules', name)), name).toBe(false);
    }
    expect(existsSync(join(dir, 'node_modules', 'sharp'))).toBe(true);
    expect(existsSync(join(dir, 'src'))).toBe(false);
  });

  it('runs the imgrelay command (compiled CLI)', async () => {
    const help = await run(process.execPath, [join(dir, 'bin/imgrelay.js'), '--help'], { cwd: dir });
    expect(help.stdout).toContain('imgrelay purge <url');
  });

  it('serves and resizes an image with `npm start`, purges it with `imgrelay purge`, stops on SIGTERM', async () => {
    const child = npmStart({ ...zakerAt(origin.port), IMGRELAY_ADMIN_TOKENS: TOKEN });
    const exited = once(child, 'exit');
    try {
      const { port, adminPort } = await listening(child);
      const source = `http://${ZAKER}/ladybird.jpg`;
      const response = await fetch(`http://127.0.0.1:${port}/?url=${encodeURIComponent(source)}&w=120`);
      expect(response.status).toBe(200);
      const meta = await sharp(new Uint8Array(await response.arrayBuffer())).metadata();
      expect(meta.width).toBe(120);

      const purge = await run(process.execPath, [join(dir, 'bin/imgrelay.js'), 'purge', source], { cwd: dir,
        env: { PATH: process.env.PATH, IMGRELAY_ADMIN_URL: `http://127.0.0.1:${adminPort}`, IMGRELAY_ADMIN_TOKEN: TOKEN } });
      expect(purge.stdout).toMatch(/^purged: memory [1-9]/); // the resized variant and the source it was made from
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    const [code, signal] = await exited;
    expect(signal === 'SIGTERM' || code === 0).toBe(true);
  }, 60_000);
});
