/**
 * The process as an operator runs it: configuration errors reported together with a non-zero exit, and a
 * graceful SIGTERM (in-flight requests finish, then exit 0). The legacy options and the header-rules file are part of
 * the configuration: checked at start-up with the rest. Spawns the production build (`npm run build`:
 * dist/node/node.js under plain node, as `npm start` runs it), built first so it is the current source.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, digest, zakerAt } from './helpers/imgrelay.js';
import { listeningPort } from './helpers/child-service.js';

const root = new URL('../', import.meta.url);
const entry = new URL('dist/node/node.js', root).pathname;
const photo = readFileSync(new URL('./fixtures/icc-odd.jpg', import.meta.url));

function spawnService(env: Record<string, string>, script = entry): ChildProcess {
  return spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH, IMGRELAY_HOST: '127.0.0.1', IMGRELAY_PORT: '0', IMGRELAY_ADMIN_PORT: '0',
      IMGRELAY_STORE: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startOrigin();
});
afterAll(() => origin.close());

describe('process lifecycle', () => {
  it('reports every invalid variable at start-up and exits non-zero', async () => {
    const child = spawnService({ IMGRELAY_PORT: 'x', IMGRELAY_MAX_QUEUE: '-3', IMGRELAY_LOG_LEVEL: 'loud' });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    for (const name of ['IMGRELAY_PORT', 'IMGRELAY_MAX_QUEUE', 'IMGRELAY_LOG_LEVEL']) expect(stderr).toContain(name);
  });

  it('checks the legacy options and the header-rules file with the other variables: one list, exit 1, no stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgrelay-rules-'));
    const rules = join(dir, 'rules.json');
    writeFileSync(rules, JSON.stringify([{ host: 'cdn.example', headers: 'not an object' }]));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"rules": [');
    const run = async (env: Record<string, string>) => {
      const child = spawnService(env);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const [code] = await once(child, 'exit');
      return { code, stderr };
    };
    try {
      const bad = await run({ IMGRELAY_PORT: 'eighty', IMGRELAY_LEGACY_OPTIONS: 'w=abc&fit=nope', IMGRELAY_HEADER_RULES: rules });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^Invalid configuration:\n/);
      expect(bad.stderr).toContain('IMGRELAY_PORT="eighty"');
      expect(bad.stderr).toContain('IMGRELAY_LEGACY_OPTIONS="w=abc&fit=nope"');
      expect(bad.stderr).toContain(`IMGRELAY_HEADER_RULES="${rules}": rules.0.headers`);
      expect(bad.stderr).not.toMatch(/^\s+at /m);
      // A file that is not JSON, or not there, is named the same way.
      const unreadable = await run({ IMGRELAY_HEADER_RULES: broken });
      expect(unreadable.stderr).toContain(`IMGRELAY_HEADER_RULES="${broken}": not valid JSON`);
      const missing = await run({ IMGRELAY_HEADER_RULES: join(dir, 'nope.json') });
      expect(missing.stderr).toContain('cannot read the file (ENOENT)');
      // Placeholder entries and presets are checked too, with the rest, in the same list.
      const placeholders = join(dir, 'placeholders.json');
      writeFileSync(placeholders, JSON.stringify([{ host: 'cdn.example', headers: {},
        placeholders: [{ bytes: 1234, sha256: 'not-hex' }, { width: 10, height: 10, dhash: '0123456789abcdef', distance: 40 }] }]));
      const presets = await run({ IMGRELAY_HEADER_RULES: placeholders, IMGRELAY_PRESETS: 'hero:w=1600',
        IMGRELAY_LEGACY_OPTIONS: 'p=nosuch', IMGRELAY_MAX_QUEUE: '-1' });
      expect(presets.stderr).toContain(`IMGRELAY_HEADER_RULES="${placeholders}": rules.0.placeholders.0`);
      expect(presets.stderr).toContain(`IMGRELAY_HEADER_RULES="${placeholders}": rules.0.placeholders.1`);
      expect(presets.stderr).toMatch(/IMGRELAY_LEGACY_OPTIONS="p=nosuch": .*nosuch/);
      expect(presets.stderr).toContain('IMGRELAY_MAX_QUEUE');
      for (const outcome of [unreadable, missing, presets]) {
        expect(outcome.code).toBe(1);
        expect(outcome.stderr).not.toMatch(/^\s+at /m);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a port in use in one line, exit 1, no stack', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const child = spawnService({ IMGRELAY_PORT: String((taken.address() as AddressInfo).port) });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const [code] = await once(child, 'exit');
    taken.close();
    expect(code).toBe(1);
    expect(stderr).toMatch(/^imgrelay failed to start: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/);
  });

  it('starts when run through a symlinked release directory (it exited 0 without starting)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgrelay-release-'));
    symlinkSync(new URL('.', root).pathname, join(dir, 'current'));
    const child = spawnService({ IMGRELAY_DRAIN_DELAY_MS: '0' }, join(dir, 'current/dist/node/node.js'));
    try {
      const port = await listeningPort(child);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finishes an in-flight request on SIGTERM, then exits 0', async () => {
    origin.route('/slow.jpg', (_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo), 700);
    });
    const child = spawnService({ ...zakerAt(origin.port), IMGRELAY_DRAIN_DELAY_MS: '300' });
    const port = await listeningPort(child);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const inFlight = fetch(`http://127.0.0.1:${port}/?http://${ZAKER}/slow.jpg`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(digest(new Uint8Array(await response.arrayBuffer()))).toBe(digest(photo));
    const [code] = await exited;
    expect(code).toBe(0);
  });
});
