import { describe, expect, it } from 'vitest';
import { parseImageRequest } from '../url/request.js';
import { ACCEPT_CH, LADDER, applyClientHints, hintedWidth } from './client-hints.js';

const SRC = 'https://images.example.com/a.jpg';
const query = (q: string) => parseImageRequest('/', `url=${encodeURIComponent(SRC)}&${q}`)!;
const ON = { enabled: true };
const NO_RULES = { widths: [] as number[], presetsOnly: false };

describe('hintedWidth', () => {
  it('takes Sec-CH-Width (device pixels) first, then legacy Width, then viewport × DPR', () => {
    expect(hintedWidth(new Headers({ 'sec-ch-width': '412.5', width: '9', 'sec-ch-dpr': '3' })))
      .toEqual({ width: 413, used: ['Sec-CH-Width'] });
    expect(hintedWidth(new Headers({ width: '300' }))).toEqual({ width: 300, used: ['Width'] });
    expect(hintedWidth(new Headers({ 'viewport-width': '400', dpr: '1.5' })))
      .toEqual({ width: 600, used: ['Viewport-Width', 'DPR'] });
  });

  it('ignores junk, zero, negative and absurd values', () => {
    for (const value of ['abc', '0', '-5', '1e9', '']) expect(hintedWidth(new Headers({ 'sec-ch-width': value }))).toBeUndefined();
  });
});

describe('applyClientHints', () => {
  it('does nothing when disabled or for the original bytes, JSON or a sized request without DPR', () => {
    const headers = new Headers({ 'sec-ch-width': '500', 'sec-ch-dpr': '2' });
    const off = applyClientHints(query('q=70'), headers, { enabled: false }, NO_RULES);
    expect([off.acceptCh, off.vary, off.request.options.spec]).toEqual([undefined, [], { quality: 70 }]);
    expect(applyClientHints(query(''), headers, ON, NO_RULES).acceptCh).toBeUndefined();
    expect(applyClientHints(query('output=json'), headers, ON, NO_RULES).acceptCh).toBeUndefined();
    expect(applyClientHints(query('w=10&q=70'), headers, ON, NO_RULES).acceptCh).toBeUndefined();
    // IMGRELAY_PRESETS_ONLY: a hinted width would make a preset an ad-hoc (refused) variant.
    expect(applyClientHints(query('q=70'), headers, ON, { widths: [], presetsOnly: true }).request.options.spec).toEqual({ quality: 70 });
  });

  it('rounds every hinted width up to the ladder, so at most LADDER.length variants come from hints', () => {
    const widths = new Set<number>();
    for (let hint = 1; hint <= 5000; hint += 7) {
      const { request } = applyClientHints(query('q=70'), new Headers({ 'sec-ch-width': String(hint) }), ON, NO_RULES);
      widths.add(request.options.spec.width!);
      expect(request.options.spec.width).toBeGreaterThanOrEqual(Math.min(hint, LADDER.at(-1)!));
    }
    expect(widths.size).toBeLessThanOrEqual(LADDER.length);
  });

  it('a width-less request without hints still gets Accept-CH and no Vary', () => {
    expect(applyClientHints(query('q=70'), new Headers(), ON, NO_RULES)).toMatchObject({ acceptCh: ACCEPT_CH, vary: [] });
  });
});
