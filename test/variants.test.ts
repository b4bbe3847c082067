/**
 * Allowed variants and presets through the real service (issue #16 item 2): cache-busting spellings (`w=801`,
 * `w=5000`, `q` on a PNG, `bg` where nothing is painted) land on one entry built by ONE transform from ONE origin
 * fetch, presets are ordinary options under another name, and presets-only refuses the rest before any work.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, zakerAt } from './helpers/imgrelay.js';
import { TOKEN_A, adminFetch } from './helpers/admin.js';
import type { RunningNode } from '../src/node.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const PRESETS = 'thumb:w=320&h=320&fit=cover;hero:w=1024&output=webp';

let origin: TestOrigin;
let rules: RunningNode;
let plain: RunningNode;
let only: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['rounded', 'dpr', 'legacy', 'capped', 'bg', 'preset', 'refused', 'unknown', 'only', 'warmed'])
    origin.serve(`/${name}.jpg`, fixture('photo-wood.jpg'), 'image/jpeg'); // 2560×1920, opaque
  origin.serve('/lossless.png', fixture('abstract-flow.png'), 'image/png');
  const common = { ...zakerAt(origin.port), IMGRELAY_WORKERS: '1' };
  rules = await bootImgrelay({ ...common, IMGRELAY_ALLOWED_WIDTHS: '320,640,1024', IMGRELAY_PRESETS: PRESETS,
    IMGRELAY_LEGACY_OPTIONS: 'w=700', IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  plain = await bootImgrelay({ ...common, IMGRELAY_MAX_OUTPUT_DIMENSION: '400' });
  only = await bootImgrelay({ ...common, IMGRELAY_PRESETS: PRESETS, IMGRELAY_PRESETS_ONLY: 'true' });
});
afterAll(async () => {
  await Promise.all([rules, plain, only].map((relay) => relay?.close()));
  await origin.close();
});

const source = (name: string) => encodeURIComponent(`http://${ZAKER}/${name}`);

/** GETs every path in order; returns the answers with their body's width, and how many transforms they cost. */
async function served(relay: RunningNode, paths: string[]) {
  const before = relay.transformer.stats().completed;
  const answers = [];
  for (const path of paths) {
    const response = await fetch(`${relay.url}${path}`);
    const body = await bytes(response);
    const width = response.status === 200 ? (await sharp(body).metadata()).width : undefined;
    answers.push({ status: response.status, cache: response.headers.get('x-cache'), etag: response.headers.get('etag'),
      width, response, body });
  }
  return { answers, transforms: relay.transformer.stats().completed - before };
}

describe('allowed widths', () => {
  it('w=801 is served from the w=1024 entry with one transform and one origin fetch', async () => {
    const { answers, transforms } = await served(rules, [
      `/?url=${source('rounded.jpg')}&w=801`, `/?url=${source('rounded.jpg')}&w=1024`, `/?url=${source('rounded.jpg')}&w=1000`,
    ]);
    expect(answers.map((a) => a.cache)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(answers.map((a) => a.width)).toEqual([1024, 1024, 1024]); // rounded UP: never smaller than asked
    expect(new Set(answers.map((a) => a.etag)).size).toBe(1);
    expect(transforms).toBe(1);
    expect(origin.hits('/rounded.jpg')).toBe(1);
  });

  it('w × dpr is what rounds: w=300&dpr=2 (600 px) is the w=640 entry', async () => {
    const { answers, transforms } = await served(rules, [
      `/?url=${source('dpr.jpg')}&w=300&dpr=2`, `/cdn-cgi/image/width=640,anim=false,quality=80,metadata=none/http://${ZAKER}/dpr.jpg`,
    ]);
    expect(answers.map((a) => [a.cache, a.width])).toEqual([['MISS', 640], ['HIT-MEMORY', 640]]);
    expect(transforms).toBe(1);
  });

  it('the legacy form with IMGRELAY_LEGACY_OPTIONS goes through the same rules (w=700 → the w=1024 entry)', async () => {
    const { answers, transforms } = await served(rules, [
      `/?http://${ZAKER}/legacy.jpg`, `/?url=${source('legacy.jpg')}&w=1024`,
    ]);
    expect(answers.map((a) => [a.cache, a.width])).toEqual([['MISS', 1024], ['HIT-MEMORY', 1024]]);
    expect(transforms).toBe(1);
  });

  it('a width above the largest allowed is capped by it', async () => {
    const { answers } = await served(rules, [`/?url=${source('rounded.jpg')}&w=2000`]);
    expect(answers.map((a) => [a.cache, a.width])).toEqual([['HIT-MEMORY', 1024]]);
  });
});

describe('one key per output, whatever the settings', () => {
  it('w above IMGRELAY_MAX_OUTPUT_DIMENSION shares the cap\'s entry', async () => {
    const { answers, transforms } = await served(plain, [
      `/?url=${source('capped.jpg')}&w=400`, `/?url=${source('capped.jpg')}&w=5000`,
      `/?url=${source('capped.jpg')}&w=401`, `/?url=${source('capped.jpg')}&w=16383`,
    ]);
    expect(answers.map((a) => a.cache)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(answers.map((a) => a.width)).toEqual([400, 400, 400, 400]);
    expect(transforms).toBe(1);
  });

  it('q on a PNG output shares one entry', async () => {
    const { answers, transforms } = await served(plain, [
      `/?url=${source('lossless.png')}&w=200&output=png&q=30`, `/?url=${source('lossless.png')}&w=200&output=png&q=95`,
      `/?url=${source('lossless.png')}&w=200&output=png`,
    ]);
    expect(answers.map((a) => a.cache)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(answers[0].response.headers.get('content-type')).toBe('image/png');
    expect(transforms).toBe(1);
  });

  it('bg on an opaque JPEG-to-JPEG resize without padding shares one entry; where contain pads, it counts', async () => {
    const shared = await served(plain, [
      `/?url=${source('bg.jpg')}&w=120&bg=ff0000`, `/?url=${source('bg.jpg')}&w=120&bg=00ff00`, `/?url=${source('bg.jpg')}&w=120`,
    ]);
    expect(shared.answers.map((a) => a.cache)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(shared.transforms).toBe(1);
    // The same bg values with padding paint different pixels: two entries, two transforms, different bytes.
    const padded = await served(plain, [
      `/?url=${source('bg.jpg')}&w=120&h=120&fit=contain&bg=ff0000`, `/?url=${source('bg.jpg')}&w=120&h=120&fit=contain&bg=0000ff`,
    ]);
    expect(padded.answers.map((a) => a.cache)).toEqual(['MISS', 'MISS']);
    expect(padded.answers[0].etag).not.toBe(padded.answers[1].etag);
    expect(padded.transforms).toBe(2);
  });
});

describe('presets', () => {
  it('a preset in path form and query form is one entry (and the options spelled out too)', async () => {
    const { answers, transforms } = await served(rules, [
      `/?url=${source('preset.jpg')}&p=thumb`, `/cdn-cgi/image/preset=thumb/http://${ZAKER}/preset.jpg`,
      `/?url=${source('preset.jpg')}&w=320&h=320&fit=cover`,
    ]);
    expect(answers.map((a) => a.cache)).toEqual(['MISS', 'HIT-MEMORY', 'HIT-MEMORY']);
    expect(answers.map((a) => a.width)).toEqual([320, 320, 320]);
    expect(transforms).toBe(1);
  });

  it('an unknown preset is a 400 naming it, before the origin is asked', async () => {
    const { answers, transforms } = await served(rules, [`/?url=${source('unknown.jpg')}&p=huge`]);
    const [answer] = answers;
    expect(answer.status).toBe(400);
    expect(answer.response.headers.get('content-type')).toBe('application/problem+json');
    expect(answer.response.headers.get('cache-control')).toBeTruthy();
    const problem = JSON.parse(Buffer.from(answer.body).toString()) as { code: string; detail: string };
    expect(problem.code).toBe('E_BAD_REQUEST');
    expect(problem.detail).toMatch(/Unknown preset "huge".*thumb, hero/);
    expect(origin.hits('/unknown.jpg')).toBe(0);
    expect(transforms).toBe(0);
  });
});

describe('admin warm', () => {
  it('warming a preset or an unrounded width fills the entry the public route serves', async () => {
    const urls = [`${rules.url}/?url=${source('warmed.jpg')}&p=thumb`, `${rules.url}/?url=${source('warmed.jpg')}&w=900`];
    const response = await adminFetch(rules, '/warm', { body: { urls } });
    expect(await response.json()).toMatchObject({ total: 2, ok: 2 });
    const { answers, transforms } = await served(rules, [
      `/cdn-cgi/image/width=320,height=320,fit=cover,anim=false,q=80,metadata=none/http://${ZAKER}/warmed.jpg`, `/?url=${source('warmed.jpg')}&w=1024`,
    ]);
    expect(answers.map((a) => [a.cache, a.width])).toEqual([['HIT-MEMORY', 320], ['HIT-MEMORY', 1024]]);
    expect(transforms).toBe(0);
  });
});

describe('IMGRELAY_PRESETS_ONLY', () => {
  it('presets_only refuses ad-hoc options with a 400 naming the presets: no origin fetch, no transform, nothing stored', async () => {
    const adHoc = [`/?url=${source('refused.jpg')}&w=801`, `/?url=${source('refused.jpg')}&p=thumb&w=321`,
      `/cdn-cgi/image/width=900/http://${ZAKER}/refused.jpg`];
    const { answers, transforms } = await served(only, adHoc);
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.response.headers.get('content-type')).toBe('application/problem+json');
      const problem = JSON.parse(Buffer.from(answer.body).toString()) as { code: string; detail: string };
      expect(problem).toMatchObject({ code: 'E_BAD_REQUEST' });
      expect(problem.detail).toMatch(/thumb, hero/);
    }
    expect(origin.hits('/refused.jpg')).toBe(0);
    expect(transforms).toBe(0);
    expect(only.memory.stats().entries).toBe(0);
  });

  it('serves the presets and the original bytes', async () => {
    const { answers } = await served(only, [`/?url=${source('only.jpg')}&p=hero`, `/?http://${ZAKER}/only.jpg`]);
    expect(answers.map((a) => [a.status, a.width])).toEqual([[200, 1024], [200, 2560]]);
    expect(answers[0].response.headers.get('content-type')).toBe('image/webp');
  });
});
