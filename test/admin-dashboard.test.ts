/**
 * The admin dashboard as an admin sees it, in headless Chromium: after a little real traffic (misses, hits, a
 * transform, a 404, a warm and a purge), the page fetches `GET /history` with the typed token, draws its uPlot charts
 * (series pixels on the canvases, not only axes), shows the same totals `/stats` reports, lists the origin host and
 * the recent purge and warm job, and runs under its strict CSP without a violation. A screenshot is saved for a
 * person to look at (its path is printed).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, adminFetch, fetchImage, purge, serveSolidPngs } from './helpers/admin.js';
import { type TestBrowser, launchChromium, recordProblems } from './helpers/chromium.js';

const SCREENSHOT = join(process.cwd(), 'test-results', 'admin-dashboard.png');
const src = (name: string) => `http://${ZAKER}/${name}`;

let origin: TestOrigin;
let node: RunningNode;
let browser: TestBrowser;
let page: Page;
let dir: string;
const problems: string[] = [];

beforeAll(async () => {
  origin = await startOrigin();
  await serveSolidPngs(origin, [['d1', '#a00'], ['d2', '#0a0'], ['d3', '#00a']], 120, 90);
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-dashboard-'));
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_ADMIN_TOKENS: TOKEN_A, IMGRELAY_STATS_SAMPLE_MS: '250' });
  // A little load spread over a few sampling intervals: misses, many hits, a resize, a 404.
  for (let round = 0; round < 4; round += 1) {
    for (const name of ['d1.png', 'd2.png']) {
      for (let i = 0; i < 5; i += 1) expect((await fetchImage(`${node.url}/?${src(name)}`)).status).toBe(200);
    }
    expect((await fetchImage(`${node.url}/?url=${encodeURIComponent(src('d1.png'))}&w=${40 + round}`)).cache).toBe('MISS');
    expect((await fetchImage(`${node.url}/?${src('gone.png')}`)).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  expect((await adminFetch(node, '/warm', { body: { urls: [src('d3.png'), src('gone2.png')] } })).status).toBe(200);
  await purge(node, { urls: [src('d2.png')] });
  await node.store!.writes.drain(10_000);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  recordProblems(page, problems);
  await page.goto(`${node.adminUrl}/`);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await node?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Pixels of a canvas close to `rgb` (a series' stroke colour), counted in the page. */
const pixelsOf = (chartId: string, rgb: [number, number, number]) => page.evaluate(([id, [r, g, b]]) => {
  const canvas = document.querySelector(`#${id} canvas`) as HTMLCanvasElement | null;
  if (!canvas) return -1;
  const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) count += 1;
  }
  return count;
}, [chartId, rgb] as const);

describe('admin dashboard in Chromium', () => {
  it('draws every chart from /history once the token is typed', async () => {
    await page.fill('#token', TOKEN_A);
    await page.click('#dash-start');
    await page.waitForFunction(() => Number(document.querySelector('#chart-requests')?.getAttribute('data-points')) >= 3,
      undefined, { timeout: 30_000 });
    const charts = await page.locator('.chart').evaluateAll((els) => els.map((el) => ({
      id: el.id, series: Number(el.getAttribute('data-series')), legend: el.querySelectorAll('.u-legend .u-series').length,
      canvas: el.querySelector('canvas') !== null })));
    expect(charts.map((c) => c.id)).toEqual(['chart-requests', 'chart-hit-ratio', 'chart-latency', 'chart-origin',
      'chart-transform', 'chart-memory', 'chart-store', 'chart-rss']);
    for (const chart of charts) {
      expect(chart.canvas, chart.id).toBe(true);
      expect(chart.legend, chart.id).toBe(chart.series + 1); // uPlot's legend: the time axis and each series
    }
    expect(charts[0].series).toBe(5);
    // Series lines, not only axes: the HIT-MEMORY (#1b6e2e) and MISS (#d9822b) strokes of the requests chart, the
    // memory tier's "used" line and the RSS line are on their canvases.
    expect(await pixelsOf('chart-requests', [0x1b, 0x6e, 0x2e])).toBeGreaterThan(20);
    expect(await pixelsOf('chart-requests', [0xd9, 0x82, 0x2b])).toBeGreaterThan(20);
    expect(await pixelsOf('chart-memory', [0x1b, 0x6e, 0x2e])).toBeGreaterThan(20);
    expect(await pixelsOf('chart-rss', [0x1b, 0x6e, 0x2e])).toBeGreaterThan(20);
  });

  it('shows the totals /stats reports, the origin host and the recent purge and warm job', async () => {
    const stats = await (await adminFetch(node, '/stats')).json() as Record<string, any>;
    // The traffic ended before the page loaded: the newest sample and /stats agree.
    const shown = async (id: string) => page.locator(`#${id}`).getAttribute('data-value');
    expect(Number(await shown('dash-served'))).toBe(stats.requests.served);
    expect(stats.requests.served).toBe(4 * 11); // 40 of d1/d2 and 4 resizes (404s are errors; warming is no request)
    expect(Number(await shown('dash-hit-ratio'))).toBe(stats.requests.hitRatio.overall);
    expect(Number(await shown('dash-memory'))).toBe(stats.memory.bytes);
    expect(await shown('dash-store')).toBe(stats.store.breaker);
    expect(await page.locator('#origin-hosts tbody tr').first().locator('td').first().textContent()).toBe(ZAKER);
    const purgeRows = await page.locator('#recent-purges tbody tr').allTextContents();
    expect(purgeRows).toHaveLength(1);
    expect(purgeRows[0]).toMatch(/"sources":1.*complete.*memory done 1 · store done 1/);
    const warmRows = await page.locator('#recent-warms tbody tr').allTextContents();
    expect(warmRows).toHaveLength(1);
    expect(warmRows[0]).toContain('1 of 2');
    expect(warmRows[0]).toContain('E_SOURCE_NOT_FOUND');
  });

  it('ran without script errors or CSP violations, and saved a screenshot', async () => {
    await mkdir(join(process.cwd(), 'test-results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`admin dashboard screenshot: ${SCREENSHOT}`);
    expect(problems).toEqual([]);
  });
});

describe('GET /history and the page assets', () => {
  it('needs the admin token; uPlot and the page script are served from the admin listener itself', async () => {
    const refused = await adminFetch(node, '/history', { token: null });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    const history = await (await adminFetch(node, '/history')).json() as { intervalMs: number; capacity: number;
      samples: Array<{ t: number }> };
    expect([history.intervalMs, history.capacity]).toEqual([250, 720]);
    expect(history.samples.length).toBeGreaterThan(3);
    // A poll asks only for what it lacks.
    const newest = history.samples.at(-1)!.t;
    const newer = await (await adminFetch(node, `/history?since=${newest}`)).json() as { samples: Array<{ t: number }> };
    expect(newer.samples.every((s) => s.t > newest)).toBe(true);
    const bad = await adminFetch(node, '/history?since=yesterday');
    expect(bad.status).toBe(400);
    expect((await bad.json() as { code: string }).code).toBe('E_BAD_REQUEST');
    for (const [path, type] of [['/assets/uplot.js', 'text/javascript'], ['/assets/uplot.css', 'text/css'], ['/dashboard.js', 'text/javascript']]) {
      const response = await fetch(`${node.adminUrl}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type'), path).toMatch(new RegExp(`^${type}`));
      expect((await response.text()).length, path).toBeGreaterThan(500);
    }
    const page = await fetch(`${node.adminUrl}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
  });
});
