/** The rewrite's file handling on a real directory: what it refuses to read, and how it writes. */
import { lstat, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rewriteCommand } from './rewrite-command.js';

const OLD = 'https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/202107/a1_1024.jpg';
const BASE = 'https://img.example.com';
let dir: string;

beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'imgrelay-files-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

async function rewrite(...paths: string[]) {
  let text = '';
  const io = { out: (t: string) => { text += t; }, err: (t: string) => { text += t; } };
  const code = await rewriteCommand([...paths, '--base', BASE, '--metadata', 'http://127.0.0.1:9'], io);
  return { code, text };
}

describe('rewrite file handling', () => {
  it('refuses a post that is not UTF-8 (GBK) and leaves its bytes untouched, instead of replacing them with U+FFFD', async () => {
    const gbk = Buffer.concat([Buffer.from([0xc4, 0xe3, 0xba, 0xc3, 0x0a, 0x0a]), Buffer.from(`![x](${OLD})\n`)]);
    const file = join(dir, 'gbk.md');
    await writeFile(file, gbk);
    const run = await rewrite(file);
    expect(run.code).toBe(1);
    expect(run.text).toMatch(/REFUSED\s+\S+gbk\.md: not UTF-8 text/);
    expect((await readFile(file)).equals(gbk)).toBe(true);
  });

  it('keeps a byte order mark and writes a symlinked post through its link, leaving no temporary file', async () => {
    const real = join(dir, 'real.md');
    await writeFile(real, `\ufeff# 标题\n\n![x](${OLD})\n`);
    const link = join(dir, 'link.md');
    await symlink(real, link);
    const run = await rewrite(link);
    expect(run.code).toBe(0);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe(real);
    const bytes = await readFile(real);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bytes.toString('utf8')).toBe(`\ufeff# 标题\n\n![x](${BASE}/?http://zkres2.myzaker.com/202107/a1_1024.jpg)\n`);
    expect((await readdir(dir)).sort()).toEqual(['link.md', 'real.md']);
  });
});
