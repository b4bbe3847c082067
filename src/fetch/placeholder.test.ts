import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { placeholderPng, placeholderReencoded, PLACEHOLDER_SIZE } from '../../test/helpers/placeholder-image.js';
import { fuzzCase, loadFixtures } from '../../test/fuzz/mutate.js';
import { dhashHex, differenceHash } from '../transform/dhash.js';
import { readHeaderSize } from '../transform/header-size.js';
import { HeaderRulesError, headersFor, loadHeaderRules } from './header-rules.js';
import { runCli } from '../cli.js';
import { placeholderEntries } from './placeholder-hash.js';
import { matchesAny } from './placeholder.js';
import type { PlaceholderSignature } from './placeholder-rules.js';

const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url));
const sha256 = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

/** Counts decodes, so a test can show that an image of another size is never decoded. */
function countingDhash() {
  const counter = { calls: 0, dhash: (body: Uint8Array) => { counter.calls++; return differenceHash(body); } };
  return counter;
}

describe('header size (read without decoding)', () => {
  it.each(['photo-wood.jpg', 'progressive.jpg', 'exif-orientation-6.jpg', 'palette-alpha.png', 'display-p3.png',
    'animated-aero.gif', 'sample.webp', 'tiny-256-lossy.webp'])('reads %s as sharp does', async (name) => {
    const { width, height } = await sharp(fixture(name)).metadata();
    expect(readHeaderSize(fixture(name))).toEqual({ width, height });
  });

  it('reads lossless and extended WebP headers', async () => {
    const lossless = await sharp(fixture('palette-alpha.png')).webp({ lossless: true }).toBuffer();
    const { width, height } = await sharp(lossless).metadata();
    expect(readHeaderSize(lossless)).toEqual({ width, height });
    const animated = await sharp(fixture('animated-aero.gif'), { animated: true }).webp().toBuffer();
    const meta = await sharp(animated).metadata();
    expect(readHeaderSize(animated)).toEqual({ width: meta.width, height: meta.height });
  });

  it('never throws on hostile bytes (it runs on every body of a host with perceptual entries)', () => {
    const fixtures = loadFixtures();
    const sizes = Array.from({ length: 600 }, (_, i) => readHeaderSize(fuzzCase(7, i, fixtures).bytes));
    expect(sizes.every((size) => size === undefined || (size.width > 0 && size.height > 0))).toBe(true);
  });

  it('answers undefined for what it cannot read', () => {
    expect(readHeaderSize(fixture('sample.avif'))).toBeUndefined();
    expect(readHeaderSize(new Uint8Array([0x89, 0x50]))).toBeUndefined();
  });
});

describe('matching', () => {
  it('an exact entry matches the very file, not another of the same length', async () => {
    const png = await placeholderPng();
    const entry: PlaceholderSignature = { bytes: png.byteLength, sha256: sha256(png) };
    expect(await matchesAny(png, [entry])).toBe(true);
    const flipped = Uint8Array.from(png);
    flipped[flipped.length - 20] ^= 1;
    expect(await matchesAny(flipped, [entry])).toBe(false);
  });

  it('a perceptual entry catches the placeholder re-encoded as JPEG or WebP at any quality', async () => {
    const [, perceptual] = await placeholderEntries(await placeholderPng());
    for (const [format, quality] of [['jpeg', 20], ['jpeg', 90], ['webp', 30], ['webp', 95]] as const) {
      expect(await matchesAny(await placeholderReencoded(format, quality), [perceptual], differenceHash),
        `${format} q${quality}`).toBe(true);
    }
  });

  it('other pictures of exactly the placeholder size do not match', async () => {
    const [, perceptual] = await placeholderEntries(await placeholderPng());
    for (const name of ['photo-wood.jpg', 'photo-ladybird.jpg', 'abstract-flow.png', 'logo.svg', 'sample.webp']) {
      const same = await sharp(fixture(name)).resize(PLACEHOLDER_SIZE.width, PLACEHOLDER_SIZE.height, { fit: 'fill' })
        .jpeg().toBuffer();
      expect(await matchesAny(same, [perceptual], differenceHash), name).toBe(false);
    }
  });

  it('an image of another size is never decoded, nor digested unless its length matches', async () => {
    const [exact, perceptual] = await placeholderEntries(await placeholderPng());
    const counter = countingDhash();
    expect(await matchesAny(fixture('photo-wood.jpg'), [exact, perceptual], counter.dhash)).toBe(false);
    expect(counter.calls).toBe(0);
  });

  it('the entries printed by placeholder-hash are what the rules file accepts', async () => {
    const entries = await placeholderEntries(await placeholderPng());
    expect(entries[1]).toMatchObject({ ...PLACEHOLDER_SIZE, dhash: dhashHex((await differenceHash(await placeholderPng()))!) });
    const [rule] = loadHeaderRules([{ host: 'mmbiz.qpic.cn', headers: {}, placeholders: entries }]);
    expect(rule.placeholders).toHaveLength(2);
  });
});

describe('rules file', () => {
  it('refuses malformed placeholder entries at start-up, naming each', () => {
    const load = () => loadHeaderRules([{ host: 'mmbiz.qpic.cn', headers: {}, placeholders: [
      { bytes: 10, sha256: 'abc' },
      { width: 300, height: 200, dhash: 'zz' },
      { width: 300, height: 200, dhash: '0123456789abcdef', distance: 40 },
      { bytes: 10, width: 3 },
    ] }]);
    expect(load).toThrow(HeaderRulesError);
    try {
      load();
    } catch (error) {
      expect((error as HeaderRulesError).problems.map((p) => p.split(':')[0]))
        .toEqual(['rules.0.placeholders.0.sha256', 'rules.0.placeholders.1.dhash', 'rules.0.placeholders.2.distance',
          'rules.0.placeholders.3']);
    }
  });

  it('lays alternate headers over the rule only for the retry', () => {
    const rules = loadHeaderRules([{ host: 'mmbiz.qpic.cn', headers: { referer: null },
      alternate: { referer: 'https://mp.weixin.qq.com/' } }]);
    const url = new URL('https://mmbiz.qpic.cn/a/640');
    expect(headersFor(url, rules).referer).toBeUndefined();
    expect(headersFor(url, rules, true).referer).toBe('https://mp.weixin.qq.com/');
  });
});

describe('imgrelay placeholder-hash', () => {
  const run = async (args: string[]) => {
    const io = { out: '', err: '' };
    const code = await runCli(args, {}, { out: (t) => { io.out += t; }, err: (t) => { io.err += t; } });
    return { code, ...io };
  };

  it('prints the entries of a saved placeholder, ready for the rules file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'imgrelay-ph-')), 'ph.png');
    writeFileSync(file, await placeholderPng());
    const { code, out } = await run(['placeholder-hash', file]);
    expect(code).toBe(0);
    const entries = JSON.parse(out) as PlaceholderSignature[];
    expect(entries).toEqual(await placeholderEntries(await placeholderPng(), 'placeholder saved as ph.png'));
    expect(loadHeaderRules([{ host: 'mmbiz.qpic.cn', headers: {}, placeholders: entries }])[0].placeholders).toHaveLength(2);
  });

  it('says what is wrong with a missing file (1) or no file (2)', async () => {
    expect(await run(['placeholder-hash', '/nonexistent/ph.png'])).toMatchObject({ code: 1, err: expect.stringContaining('cannot read') });
    expect((await run(['placeholder-hash'])).code).toBe(2);
  });
});
