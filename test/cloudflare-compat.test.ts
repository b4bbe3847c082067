/**
 * docs/cloudflare-compat.md as tests: one `it` per table row (named by the row's option cell), against the real
 * service and a loopback origin. The first test keeps the doc and this file in step.
 */
import { readFileSync } from 'node:fs';
import sharp, { type Metadata } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, zakerAt } from './helpers/imgrelay.js';
import { COPYRIGHT, copyrighted, exifOf, gradient, quadrants } from './helpers/synthetic-images.js';
import type { RunningNode } from '../src/node.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const FIXTURES = { 'photo-wood.jpg': 'image/jpeg', 'animated-aero.gif': 'image/gif', 'palette-alpha.png': 'image/png' };

let origin: TestOrigin;
let relay: RunningNode;
/** A service whose animation budget the aero GIF (56 frames × 350 × 189 = 3.7 MP) exceeds. */
let tight: RunningNode;
let signed: Buffer; // copyrighted()
beforeAll(async () => {
  origin = await startOrigin();
  for (const [name, type] of Object.entries(FIXTURES)) origin.serve(`/img/${name}`, fixture(name), type);
  origin.serve('/img/quadrants.png', await quadrants(), 'image/png');
  origin.serve('/img/gradient.png', await gradient(), 'image/png');
  signed = await copyrighted();
  origin.serve('/img/copyrighted.jpg', signed, 'image/jpeg');
  origin.serve('/img/copyrighted.webp', await sharp(signed).keepExif().webp().toBuffer(), 'image/webp');
  relay = await bootImgrelay(zakerAt(origin.port));
  tight = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MAX_ANIMATION_PIXELS: '1000000' });
});
afterAll(async () => {
  await Promise.all([relay.close(), tight.close()]);
  await origin.close();
});

const src = (name: string) => `http://${ZAKER}/img/${name}`;
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${relay.url}${path}`, { headers, redirect: 'manual' });
const cf = (options: string, name = 'photo-wood.jpg') => get(`/cdn-cgi/image/${options}/${src(name)}`);
const weserv = (query: string, name = 'photo-wood.jpg') => get(`/?url=${encodeURIComponent(src(name))}&${query}`);

async function image(response: Response) {
  expect(response.status).toBe(200);
  const body = await bytes(response);
  return { body, meta: await sharp(body, { pages: -1 }).metadata() };
}
const size = ({ meta }: { meta: Metadata }) => [meta.width, meta.pageHeight ?? meta.height];

const colourAt = ([r, g, b]: number[]) =>
  ({ '100': 'red', '001': 'blue', '010': 'green', '111': 'white' } as Record<string, string>)[[r, g, b].map((c) => (c > 128 ? 1 : 0)).join('')];

async function pixel(response: Response, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(await bytes(response)).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + info.channels)];
}

/** The option is refused by name before the source is fetched. */
async function refused(options: string, name: string) {
  const before = origin.hits('/img/palette-alpha.png');
  const response = await cf(options, 'palette-alpha.png');
  expect(response.status).toBe(400);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  const problem = await response.json();
  expect(problem.code).toBe('E_BAD_REQUEST');
  expect(problem.detail).toContain(`"${name}"`);
  expect(problem.detail).toContain('not supported');
  expect(origin.hits('/img/palette-alpha.png')).toBe(before);
}

const ROWS: Record<string, () => Promise<void>> = {
  '`width`, `height`': async () => {
    expect(size(await image(await cf('width=320')))).toEqual([320, 240]);
    expect(size(await image(await cf('height=120')))).toEqual([160, 120]);
  },
  '`width=auto`': async () => {
    const response = await cf('width=auto,format=webp', 'palette-alpha.png');
    expect(size(await image(response))).toEqual([256, 256]);
  },
  '`dpr`': async () => {
    const doubled = await cf('width=100,dpr=2');
    expect(size(await image(doubled))).toEqual([200, 150]);
    expect((await cf('width=200')).headers.get('x-cache')).toBe('HIT-MEMORY');
  },
  '`fit=scale-down`': async () => {
    expect(size(await image(await cf('width=512,fit=scale-down', 'palette-alpha.png')))).toEqual([256, 256]);
    expect(size(await image(await cf('width=64,fit=scale-down', 'palette-alpha.png')))).toEqual([64, 64]);
  },
  '`fit=contain`': async () => {
    expect(size(await image(await cf('width=512,height=400,fit=contain', 'palette-alpha.png')))).toEqual([400, 400]);
  },
  '`fit=cover`': async () => {
    expect(size(await image(await cf('width=100,height=300,fit=cover')))).toEqual([100, 300]);
    expect(size(await image(await cf('width=512,height=300,fit=cover', 'palette-alpha.png')))).toEqual([512, 300]);
  },
  '`fit=crop`': async () => {
    expect(size(await image(await cf('width=100,height=300,fit=crop')))).toEqual([100, 300]);
    expect(size(await image(await cf('width=512,height=600,fit=crop', 'palette-alpha.png')))).toEqual([256, 256]);
  },
  '`fit=pad`': async () => {
    const padded = await cf('width=400,height=400,fit=pad,format=jpeg');
    const [r, g, b] = await pixel(padded, 200, 5);
    expect(Math.min(r, g, b)).toBeGreaterThan(245); // white bars above and below the 4:3 photo
  },
  '`fit=squeeze`': async () => {
    const squeezed = await image(await cf('width=100,height=300,fit=squeeze'));
    expect(size(squeezed)).toEqual([100, 300]);
    const covered = await bytes(await cf('width=100,height=300,fit=cover'));
    expect(Buffer.compare(Buffer.from(squeezed.body), Buffer.from(covered))).not.toBe(0);
  },
  '`gravity`': async () => {
    const left = await bytes(await cf('width=100,height=300,fit=cover,gravity=left'));
    const right = await bytes(await cf('width=100,height=300,fit=cover,gravity=right'));
    expect(Buffer.compare(Buffer.from(left), Buffer.from(right))).not.toBe(0);
    expect((await cf('width=100,height=300,fit=cover,gravity=auto')).status).toBe(200);
  },
  '`gravity=XxY`': async () => {
    const left = await cf('width=90,height=300,fit=cover,gravity=left');
    const point = await cf('width=90,height=300,fit=cover,gravity=0x0.5');
    expect(point.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(point.headers.get('etag')).toBe(left.headers.get('etag'));
    const other = await (await cf('width=90,height=300,fit=cover,gravity=0.3x0.7')).json();
    expect(other.detail).toContain('not supported');
  },
  '`gravity=face`': async () => {
    const response = await cf('width=100,height=100,fit=cover,gravity=face');
    expect(response.status).toBe(400);
    expect((await response.json()).detail).toContain('face are not supported');
  },
  '`quality`': async () => {
    const byDefault = await cf('width=300,metadata=none'); // the query form keeps no copyright tag
    expect(byDefault.status).toBe(200);
    const explicit = await weserv('w=300&q=85&n=-1'); // the same request spelled in the query form: one entry
    expect(explicit.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(explicit.headers.get('etag')).toBe(byDefault.headers.get('etag'));
    expect((await weserv('w=300&q=80&n=-1')).headers.get('etag')).not.toBe(byDefault.headers.get('etag'));
  },
  '`format`': async () => {
    expect((await image(await cf('width=64,format=webp'))).meta.format).toBe('webp');
    const baseline = await image(await cf('width=64,format=baseline-jpeg', 'palette-alpha.png'));
    expect([baseline.meta.format, baseline.meta.isProgressive]).toEqual(['jpeg', false]);
    const auto = await get(`/cdn-cgi/image/width=64,format=auto/${src('photo-wood.jpg')}`, { accept: 'image/avif,image/webp,*/*' });
    expect(auto.headers.get('content-type')).toBe('image/avif');
    expect(auto.headers.get('vary')).toMatch(/accept/i);
  },
  '`format=json`': async () => {
    const response = await cf('width=320,format=json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      width: 320, height: 240, original: { file_size: 525_520, width: 2560, height: 1920, format: 'image/jpeg' },
    });
    expect((await cf('width=320,format=json')).headers.get('x-cache')).toBe('HIT-MEMORY');
  },
  '`anim`': async () => {
    const kept = await image(await cf('width=100', 'animated-aero.gif'));
    expect([kept.meta.format, kept.meta.pages]).toEqual(['gif', 56]);
    const still = await image(await cf('width=100,anim=false', 'animated-aero.gif'));
    expect(still.meta.pages ?? 1).toBe(1);
    // The default keeps the animation only within the budget: over it, the first frame rather than an error.
    const overBudget = await fetch(`${tight.url}/cdn-cgi/image/width=350/${src('animated-aero.gif')}`);
    expect((await image(overBudget)).meta.pages ?? 1).toBe(1);
  },
  '`metadata`': async () => {
    expect((await image(await cf('width=64,metadata=keep'))).meta.exif).toBeDefined();
    expect((await image(await cf('width=64'))).meta.exif).toBeUndefined(); // default copyright: the source has none
    for (const [options, name] of [['width=32', 'jpg'], ['width=32,metadata=copyright', 'jpg'], ['width=32,format=jpeg', 'webp']]) {
      const kept = exifOf((await image(await cf(options, `copyrighted.${name}`))).meta); // WebP: libvips reads its EXIF
      expect(kept?.Image?.Copyright).toBe(COPYRIGHT);
      expect([kept?.Image?.Make, kept?.Image?.Model, kept?.GPSInfo]).toEqual([undefined, undefined, undefined]);
    }
    // `none` strips all; Cloudflare: WebP and PNG outputs discard metadata, only a JPEG keeps the copyright.
    for (const options of ['width=32,metadata=none', 'width=32,format=webp', 'width=32,format=png']) {
      expect((await image(await cf(options, 'copyrighted.jpg'))).meta.exif, options).toBeUndefined();
    }
    const everything = exifOf((await image(await cf('width=32,metadata=keep', 'copyrighted.jpg'))).meta);
    expect(everything?.Image?.Make).toBe('Acme');
    // `metadata=copyright` alone is Cloudflare's default, no change: the original bytes.
    expect(Buffer.compare(Buffer.from(await bytes(await cf('metadata=copyright', 'copyrighted.jpg'))), signed)).toBe(0);
  },
  '`onerror=redirect`': async () => {
    const missing = `http://${ZAKER}/img/missing.jpg`;
    const redirected = await get(`/cdn-cgi/image/width=100,onerror=redirect/${missing}`);
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe(missing);
    expect(redirected.headers.get('cache-control')).toBe('no-store');
    expect(redirected.headers.get('x-imgrelay-error')).toBe('E_SOURCE_NOT_FOUND');
    expect((await get(`/cdn-cgi/image/width=100/${missing}`)).status).toBe(404);
    expect((await cf('width=abc,onerror=redirect')).status).toBe(400); // a request error is never redirected
    expect((await cf('width=100,onerror=maybe')).status).toBe(400);
  },
  '`blur`': async () => {
    const plain = await bytes(await cf('width=100'));
    const blurred = await bytes(await cf('width=100,blur=5'));
    expect(Buffer.compare(Buffer.from(plain), Buffer.from(blurred))).not.toBe(0);
    expect((await cf('width=100,blur=251')).status).toBe(400);
  },
  '`sharpen`': async () => {
    const plain = await bytes(await cf('width=100'));
    const sharpened = await bytes(await cf('width=100,sharpen=2'));
    expect(Buffer.compare(Buffer.from(plain), Buffer.from(sharpened))).not.toBe(0);
  },
  '`background`': async () => {
    // palette-alpha.png has a transparent corner: flattened onto red in a JPEG.
    const [r, g, b] = await pixel(await cf('width=64,format=jpeg,background=%23ff0000', 'palette-alpha.png'), 0, 0);
    expect([r > 230, g < 30, b < 30]).toEqual([true, true, true]);
    expect((await cf('width=64,background=rgb(1 2 3)', 'palette-alpha.png')).status).toBe(400);
  },
  '`brightness`': async () => {
    const mean = async (options: string) => (await sharp(await bytes(await cf(options))).stats()).channels[0].mean;
    const plain = await mean('width=64');
    expect(await mean('width=64,brightness=1.5')).toBeGreaterThan(plain + 10);
    expect(await mean('width=64,brightness=0.5')).toBeLessThan(plain - 10);
    expect((await cf('width=64,brightness=1')).headers.get('etag')).toBe((await cf('width=64')).headers.get('etag'));
  },
  '`contrast`': async () => {
    const spread = async (options: string) =>
      (await sharp(await bytes(await cf(options, 'gradient.png'))).stats()).channels[0].stdev;
    expect(await spread('width=64,contrast=2')).toBeGreaterThan(await spread('width=64') * 1.3);
    expect(await spread('width=64,contrast=0.5')).toBeLessThan(await spread('width=64') * 0.8);
  },
  '`saturation`': async () => {
    const grey = await pixel(await cf('width=64,saturation=0,format=png', 'quadrants.png'), 5, 5);
    expect(Math.max(...grey) - Math.min(...grey)).toBeLessThan(3); // red became a grey
    expect((await cf('width=64,saturation=11')).status).toBe(400);
  },
  '`gamma`': async () => refused('width=64,gamma=0.5', 'gamma'),
  '`rotate`': async () => {
    expect(size(await image(await cf('width=120,rotate=90')))).toEqual([120, 160]); // 2560×1920 turned: 1920×2560
    expect(size(await image(await cf('width=120,rotate=180')))).toEqual([120, 90]);
    // A quarter turn clockwise brings the bottom-left (green) quadrant to the top left.
    expect(colourAt(await pixel(await cf('rotate=90,format=png', 'quadrants.png'), 5, 5))).toBe('green');
    expect((await cf('width=64,rotate=45')).status).toBe(400);
    const animated = await image(await cf('width=100,rotate=90', 'animated-aero.gif'));
    expect([animated.meta.pages ?? 1, animated.meta.width]).toEqual([1, 100]);
  },
  '`flip`': async () => {
    expect(colourAt(await pixel(await cf('flip=h,format=png', 'quadrants.png'), 5, 5))).toBe('blue');
    expect(colourAt(await pixel(await cf('flip=v,format=png', 'quadrants.png'), 5, 5))).toBe('green');
    expect(colourAt(await pixel(await cf('flip=hv,format=png', 'quadrants.png'), 5, 5))).toBe('white');
    expect((await cf('width=64,flip=x')).status).toBe(400);
  },
  '`trim`': async () => {
    await refused('width=64,trim=10', 'trim');
    await refused('width=64,trim.top=10', 'trim.top');
  },
  '`border`': async () => refused('width=64,border.width=5', 'border.width'),
  '`compression=fast`': async () => refused('width=64,compression=fast', 'compression'),
  '`zoom`, `segment`, `slow-connection-quality`': async () => {
    for (const name of ['zoom', 'segment', 'slow-connection-quality']) await refused(`width=64,${name}=1`, name);
  },
  '`q`': async () => {
    const byDefault = await weserv('w=300');
    expect(byDefault.status).toBe(200);
    const explicit = await weserv('w=300&q=80');
    expect(explicit.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(explicit.headers.get('etag')).toBe(byDefault.headers.get('etag'));
  },
  '`we`': async () => {
    expect(size(await image(await weserv('w=512', 'palette-alpha.png')))).toEqual([512, 512]);
    expect(size(await image(await weserv('w=512&we', 'palette-alpha.png')))).toEqual([256, 256]);
  },
  '`n`': async () => {
    expect((await image(await weserv('w=100', 'animated-aero.gif'))).meta.pages ?? 1).toBe(1);
    expect((await image(await weserv('w=100&n=-1', 'animated-aero.gif'))).meta.pages).toBe(56);
  },
  '`output=json`': async () => {
    const response = await weserv('output=json&w=10', 'animated-aero.gif');
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toMatchObject({ format: 'gif', width: 350, height: 189, pages: 56, bytes: 35_480 });
    // Other options do not change weserv's JSON: one entry.
    expect((await weserv('output=json', 'animated-aero.gif')).headers.get('x-cache')).toBe('HIT-MEMORY');
    // A decompression bomb is described from its header alone: answered at once, nothing decoded.
    origin.serve('/img/bomb.jpg', fixture('bomb-64250x64250.jpg'), 'image/jpeg');
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const bomb = await (await weserv('output=json', 'bomb.jpg')).json();
    expect(bomb).toMatchObject({ format: 'jpeg', width: 64_250, height: 64_250 });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024); // 4 GP decoded would be > 12 GB
    const photo = await (await weserv('output=json')).json();
    expect(photo).toMatchObject({ format: 'jpeg', width: 2560, height: 1920, pages: 1, bytes: 525_520, hasAlpha: false });
  },
};

describe('docs/cloudflare-compat.md', () => {
  it('has a test for every row, and every test is a row', () => {
    const doc = readFileSync(new URL('../docs/cloudflare-compat.md', import.meta.url), 'utf8');
    const rows = doc.split('\n').filter((line) => /^\| `/.test(line)).map((line) => line.split('|')[1].trim());
    expect(rows.sort()).toEqual(Object.keys(ROWS).sort());
  });

  for (const [row, test] of Object.entries(ROWS)) it(row, test, 30_000);
});
