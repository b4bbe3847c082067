/**
 * The `imgrelay purge` and `imgrelay warm` commands against a running service's admin API: in-process through
 * runCli (output captured), and once as the real `bin/imgrelay.js` executable in a child process.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, fetchImage, memorySources, solidPng } from './helpers/admin.js';
import { bootOnSharedBucket } from './helpers/s3-scope.js';

const BIN = fileURLToPath(new URL('../bin/imgrelay.js', import.meta.url));
const src = (name: string) => `http://${ZAKER}/${name}`;

let origin: TestOrigin;
let node: RunningNode;
let dir: string;

beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['c1', 'c2', 'c3']) origin.serve(`/${name}.png`, await solidPng('#345'), 'image/png');
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-cli-'));
});
afterAll(async () => {
  await node.close();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, { IMGRELAY_ADMIN_URL: node.adminUrl, IMGRELAY_ADMIN_TOKEN: TOKEN_A, ...env },
    { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

describe('imgrelay warm / purge', () => {
  it('warms the images of an HTML file and a list file, then purges a URL', async () => {
    const html = join(dir, 'post.html');
    await writeFile(html, `<img src="${src('c1.png')}"><img src="/?${src('c2.png')}">`);
    const list = join(dir, 'urls.txt');
    await writeFile(list, `# images\n${src('c3.png')}\n`);
    const warmed = await cli(['warm', html, list, '--base', 'https://img.example.com/post.html']);
    expect(warmed).toMatchObject({ code: 0, err: '' });
    expect(warmed.out).toContain('warmed 2 of 2');
    expect(warmed.out).toContain('warmed 1 of 1');
    expect(memorySources(node)).toEqual(new Set([src('c1.png'), src('c2.png'), src('c3.png')]));

    const purged = await cli(['purge', `https://cors.zfour.workers.dev/?${src('c1.png')}`]);
    expect(purged).toMatchObject({ code: 0, err: '' });
    expect(purged.out).toMatch(/^purged: memory 1, store none\nother instances: not reached: IMGRELAY_STORE=none/);
    expect(purged.out).toMatch(/\ncomplete, per tier:\n  memory [0-9a-f]+: done, removed 1, fenced 0 \(purged\)\n  store none: none/);
    expect(memorySources(node).has(src('c1.png'))).toBe(false);

    const json = await cli(['purge', '--host', ZAKER, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ memory: 2, store: null });
  });

  it('says how many objects of a shared bucket the purge left alone, in the summary and on the store row', async () => {
    const shared = await bootOnSharedBucket(origin.port, 'scope1');
    try {
      await shared.putForeign('scope1/0notes.txt'); // another tool's object under imgrelay's prefix
      const purged = await cli(['purge', '--all'], { IMGRELAY_ADMIN_URL: shared.node.adminUrl });
      expect(purged).toMatchObject({ code: 0, err: '' });
      expect(purged.out).toMatch(/^purged: memory 0, store 0 \(skipped 1 object\(s\) that are not imgrelay keys\)\n/);
      expect(purged.out).toMatch(/\n {2}store s3: done, removed 0, fenced 0, skipped 1 \(purged\)\n/);
    } finally {
      await shared.close();
    }
  });

  it('exits 1 with the reason when a warm fails or the token is wrong; 2 on usage errors', async () => {
    const missing = await cli(['warm', src('nope.png')]);
    expect(missing.code).toBe(1);
    expect(missing.out).toContain('404 E_SOURCE_NOT_FOUND');
    const refused = await cli(['purge', src('c1.png')], { IMGRELAY_ADMIN_TOKEN: 'wrong-token-0123456789' });
    expect(refused).toMatchObject({ code: 1, out: '' });
    expect(refused.err).toContain('purge failed: 401 E_UNAUTHORIZED Invalid token');
    expect((await cli(['purge'])).code).toBe(2);
    expect((await cli(['purge', '--nope'])).err).toContain('unknown option --nope');
    expect((await cli(['frobnicate'])).code).toBe(2);
    const unreachable = await cli(['purge', src('c1.png')], { IMGRELAY_ADMIN_URL: 'http://127.0.0.1:1' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toContain('cannot reach the admin API at http://127.0.0.1:1');
  });

  it('runs as the installed command (bin/imgrelay.js)', async () => {
    expect((await fetchImage(`${node.url}/?${src('c2.png')}`)).status).toBe(200);
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'purge', src('c2.png')], {
      env: { PATH: process.env.PATH, IMGRELAY_ADMIN_URL: node.adminUrl, IMGRELAY_ADMIN_TOKEN: TOKEN_A }, timeout: 60_000,
    });
    expect(stdout).toMatch(/^purged: memory 1, store none/);
    expect(memorySources(node).has(src('c2.png'))).toBe(false);
  });
});
