/**
 * The admin page as an admin uses it, in headless Chromium (playwright-core, Debian's chromium): type the token,
 * paste URLs and purge, paste an article's HTML and warm, refresh the stats; the page shows what happened and the
 * server's tiers changed accordingly. The page runs under its strict CSP without a single violation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, fetchImage, memorySources, serveSolidPngs, storeDirs, hashOf } from './helpers/admin.js';
import { type TestBrowser, launchChromium, recordProblems } from './helpers/chromium.js';
import { bootOnSharedBucket } from './helpers/s3-scope.js';

const src = (name: string) => `http://${ZAKER}/${name}`;

let origin: TestOrigin;
let node: RunningNode;
let browser: TestBrowser;
let page: Page;
let dir: string;
const problems: string[] = [];

beforeAll(async () => {
  origin = await startOrigin();
  await serveSolidPngs(origin, [['p1', '#a00'], ['p2', '#0a0'], ['p3', '#00a']]);
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-page-'));
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  browser = await launchChromium();
  page = await browser.context.newPage();
  recordProblems(page, problems);
  await page.goto(`${node.adminUrl}/`);
});
afterAll(async () => {
  await browser?.close();
  await node?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

const resultOf = async (id: string, pattern: RegExp) => {
  await page.waitForFunction(([selector, source]) => new RegExp(source).test(document.querySelector(selector)?.textContent ?? ''),
    [`#${id}`, pattern.source] as const, { timeout: 20_000 });
  return page.locator(`#${id}`).textContent();
};

describe('admin page in Chromium', () => {
  it('purges the pasted URLs from every tier and says so', async () => {
    for (const name of ['p1.png', 'p2.png']) expect((await fetchImage(`${node.url}/?${src(name)}`)).status).toBe(200);
    await storeDirs(node); // writes landed
    await page.fill('#token', TOKEN_A);
    await page.selectOption('#purge-kind', 'urls');
    await page.fill('#purge-input', `https://cors.zfour.workers.dev/?${src('p1.png')}\n`);
    await page.click('#purge-form button[type=submit]');
    const text = await resultOf('purge-result', /^Purged: /);
    expect(text).toBe('Purged: memory 1, store 1; other instances: logged');
    expect(memorySources(node)).toEqual(new Set([src('p2.png')]));
    expect(await storeDirs(node)).toEqual(new Set([await hashOf(src('p2.png'))]));
    expect(await page.locator('#purge-json').textContent()).toContain('"purgeLog"');
    // The per-tier report: one row per tier and instance, with what was removed and fenced.
    await expect.poll(() => page.locator('#purge-tiers').isVisible()).toBe(true);
    const rows = await page.locator('#purge-tiers tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent)));
    expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([['memory', 'done', '1'], ['store', 'done', '1'],
      ['instances', 'done', '']]);
    expect(rows[0][1]).toBe(node.admin.instanceId);
  });

  it('shows on the store row how many objects of a shared bucket the purge left alone', async () => {
    const shared = await bootOnSharedBucket(origin.port, 'scope1');
    const other = await browser.context.newPage();
    other.on('pageerror', (error) => problems.push(error.message));
    try {
      // Another tool's object in the source's own folder under imgrelay's prefix: a purge by URL meets it.
      await shared.putForeign(`scope1/${await hashOf(src('p2.png'))}/notes.txt`);
      await other.goto(`${shared.node.adminUrl}/`);
      await other.fill('#token', TOKEN_A);
      await other.selectOption('#purge-kind', 'urls');
      await other.fill('#purge-input', `${src('p2.png')}\n`);
      await other.click('#purge-form button[type=submit]');
      await other.waitForFunction(() => /^Purged: /.test(document.querySelector('#purge-result')?.textContent ?? ''),
        undefined, { timeout: 20_000 });
      expect(await other.locator('#purge-result').textContent())
        .toBe('Purged: memory 0, store 0 (skipped 1 object(s) that are not imgrelay keys); other instances: logged');
      const header = await other.locator('#purge-tiers thead th').allTextContents();
      const rows = await other.locator('#purge-tiers tbody tr').evaluateAll((trs) =>
        trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent)));
      const store = rows.find((row) => row[0] === 'store');
      expect(store?.[header.indexOf('Skipped')]).toBe('1');
    } finally {
      await other.close();
      await shared.close();
    }
  });

  it('warms every image of pasted HTML', async () => {
    await page.fill('#warm-input', `<p>Hello</p><img src="${src('p3.png')}"><img src="/?${src('p1.png')}">`);
    await page.fill('#warm-base', 'https://img.example.com/post.html');
    await page.click('#warm-form button[type=submit]');
    expect(await resultOf('warm-result', /^Warmed /)).toBe('Warmed 2 of 2');
    expect(memorySources(node)).toEqual(new Set([src('p1.png'), src('p2.png'), src('p3.png')]));
    expect((await fetchImage(`${node.url}/?${src('p3.png')}`)).cache).toBe('HIT-MEMORY');
  });

  it('shows stats, and a refusal when the token is wrong', async () => {
    await page.click('#stats-refresh');
    expect(await resultOf('stats-result', /^Memory: /)).toMatch(/^Memory: 3 entries, \d+ bytes; served \d+/);
    await page.fill('#token', 'wrong-token-0123456789');
    await page.click('#stats-refresh');
    expect(await resultOf('stats-result', /^Error/)).toBe('Error 401: Invalid token');
  });

  it('ran without script errors or CSP violations', async () => {
    await page.screenshot({ path: join(tmpdir(), 'imgrelay-admin-page.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
