/**
 * Client hints (IMGRELAY_CLIENT_HINTS=true) against the real service: Accept-CH on eligible responses, the hinted
 * width rounded up to a bounded set, Vary naming exactly the hints used, the Node fast hit path never serving one
 * client's hinted image to another, and Chromium at device scale factors 1 and 2 fetching the width it asked for.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, zakerAt } from './helpers/imgrelay.js';
import { launchChromium } from './helpers/chromium.js';
import type { RunningNode } from '../src/node.js';

const photo = readFileSync(new URL('./fixtures/photo-wood.jpg', import.meta.url)); // 2560 × 1920

let origin: TestOrigin;
let hinted: RunningNode;
let rounded: RunningNode;
let plain: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg', 'f.jpg', 'page1.jpg', 'page2.jpg']) {
    origin.serve(`/img/${name}`, photo, 'image/jpeg');
  }
  hinted = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_CLIENT_HINTS: 'true' });
  rounded = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_CLIENT_HINTS: 'true', IMGRELAY_ALLOWED_WIDTHS: '300,900' });
  plain = await bootImgrelay(zakerAt(origin.port));
});
afterAll(async () => {
  await Promise.all([hinted.close(), rounded.close(), plain.close()]);
  await origin.close();
});

const src = (name: string) => encodeURIComponent(`http://${ZAKER}/img/${name}`);
const get = (relay: RunningNode, path: string, headers: Record<string, string> = {}) => fetch(`${relay.url}${path}`, { headers });
const widthOf = async (response: Response) => {
  expect(response.status).toBe(200);
  return (await sharp(await bytes(response)).metadata()).width;
};

describe('IMGRELAY_CLIENT_HINTS=true', () => {
  it('asks for the hints on output=auto and width-less transforms, never on the original bytes or a sized request', async () => {
    const ACCEPT_CH = 'Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width';
    expect((await get(hinted, `/?url=${src('a.jpg')}&output=auto`)).headers.get('accept-ch')).toBe(ACCEPT_CH);
    expect((await get(hinted, `/?url=${src('a.jpg')}&q=70`)).headers.get('accept-ch')).toBe(ACCEPT_CH);
    expect((await get(hinted, `/cdn-cgi/image/width=auto,format=webp/http://${ZAKER}/img/a.jpg`)).headers.get('accept-ch')).toBe(ACCEPT_CH);
    expect((await get(hinted, `/?url=${src('a.jpg')}`)).headers.get('accept-ch')).toBeNull();
    expect((await get(hinted, `/?url=${src('a.jpg')}&w=100&output=webp`)).headers.get('accept-ch')).toBeNull();
    expect((await get(plain, `/?url=${src('a.jpg')}&output=auto`)).headers.get('accept-ch')).toBeNull();
  });

  it('serves the hinted width rounded up to the built-in ladder, Vary naming exactly the hints used', async () => {
    const byWidth = await get(hinted, `/?url=${src('b.jpg')}&q=70`, { 'sec-ch-width': '500', 'sec-ch-dpr': '2' });
    expect(byWidth.headers.get('vary')).toBe('Sec-CH-Width');
    expect(await widthOf(byWidth)).toBe(640);
    const legacy = await get(hinted, `/?url=${src('b.jpg')}&q=70`, { width: '600' });
    expect(legacy.headers.get('vary')).toBe('Width');
    expect(legacy.headers.get('x-cache')).toBe('HIT-MEMORY'); // 600 → 640: the same variant
    const viewport = await get(hinted, `/?url=${src('b.jpg')}&output=auto`,
      { 'sec-ch-viewport-width': '400', 'sec-ch-dpr': '2', accept: 'image/webp' });
    expect(viewport.headers.get('vary')).toBe('Accept, Sec-CH-Viewport-Width, Sec-CH-DPR');
    expect(await widthOf(viewport)).toBe(828); // 400 CSS px × 2 = 800 device px → 828
  });

  it('rounds up to IMGRELAY_ALLOWED_WIDTHS when set, and never enlarges past the source', async () => {
    expect(await widthOf(await get(rounded, `/?url=${src('c.jpg')}&q=70`, { 'sec-ch-width': '301' }))).toBe(900);
    expect(await widthOf(await get(hinted, `/?url=${src('c.jpg')}&q=70`, { 'sec-ch-width': '3000' }))).toBe(2560);
  });

  it('a URL width with a DPR hint: the DPR multiplies it, stepped (1, 1.5, 2, 3, 4)', async () => {
    const response = await get(hinted, `/?url=${src('d.jpg')}&w=100&output=auto`, { 'sec-ch-dpr': '1.7' });
    expect(response.headers.get('vary')).toBe('Accept, Sec-CH-DPR');
    expect(await widthOf(response)).toBe(200);
  });

  it('the Node fast hit path never serves a hinted image to a request with other hints', async () => {
    const url = `/?url=${src('e.jpg')}&q=70`;
    for (let i = 0; i < 3; i++) expect(await widthOf(await get(hinted, url, { 'sec-ch-width': '500' }))).toBe(640);
    const other = await get(hinted, url, { 'sec-ch-width': '100' });
    expect(await widthOf(other)).toBe(128);
    const none = await get(hinted, url);
    expect(none.headers.get('vary')).toBeNull();
    expect(await widthOf(none)).toBe(2560);
  });
});

describe('in Chromium', () => {
  for (const scale of [1, 2]) {
    it(`at device scale factor ${scale}, the image fetched has the hinted width (sizes=200px → ${scale === 1 ? 256 : 640})`, async () => {
      const relayOrigin = hinted.url.replace(/\/$/, '');
      const image = `${relayOrigin}/?url=${src(`page${scale}.jpg`)}&output=auto`;
      origin.serve(`/page${scale}.html`, Buffer.from(`<!doctype html><html><head>
        <meta http-equiv="Delegate-CH" content="sec-ch-dpr ${relayOrigin}; sec-ch-width ${relayOrigin}; sec-ch-viewport-width ${relayOrigin}">
        </head><body><img id="i" src="${image}" sizes="200px" style="width:200px"></body></html>`), 'text/html');
      const browser = await launchChromium({ deviceScaleFactor: scale });
      try {
        const page = await browser.context.newPage();
        const served = page.waitForResponse((response) => response.url().startsWith(`${relayOrigin}/?url=`));
        await page.goto(`http://127.0.0.1:${origin.port}/page${scale}.html`);
        const response = await served;
        expect(response.headers()['vary']).toContain('Sec-CH-Width');
        await page.waitForFunction(() => (document.getElementById('i') as HTMLImageElement).complete);
        const natural = await page.evaluate(() => (document.getElementById('i') as HTMLImageElement).naturalWidth);
        expect(natural).toBe(scale === 1 ? 256 : 640);
      } finally {
        await browser.close();
      }
    }, 90_000);
  }
});
