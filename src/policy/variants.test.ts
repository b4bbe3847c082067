import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { ConfigError, parseConfig } from '../config.js';
import { startInputsOf } from '../start-inputs.js';
import { canonicalSpec } from '../url/options.js';
import { parseImageRequest } from '../url/request.js';
import { allowedSpec, applyVariantRules, nearest, roundUp } from './variants.js';

const rulesOf = (env: Record<string, string>) => parseConfig(env).variants;
const RULES = rulesOf({
  IMGRELAY_ALLOWED_WIDTHS: '1024,320,640', IMGRELAY_ALLOWED_HEIGHTS: '240,480', IMGRELAY_ALLOWED_QUALITIES: '50,75,90',
});
const request = (query: string, env = RULES) =>
  applyVariantRules(parseImageRequest('/', `url=https%3A%2F%2Fexample.com%2Fa.jpg&${query}`, undefined, env.presets)!, env);

describe('rounding', () => {
  it('widths and heights round up to the next allowed value, the largest caps', () => {
    expect(roundUp(801, [320, 640, 1024])).toBe(1024);
    expect(roundUp(640, [320, 640, 1024])).toBe(640);
    expect(roundUp(1, [320, 640, 1024])).toBe(320);
    expect(roundUp(5000, [320, 640, 1024])).toBe(1024);
    expect(roundUp(700, [])).toBe(700);
  });

  it('qualities go to the nearest allowed value, the higher on a tie', () => {
    expect(nearest(60, [50, 75, 90])).toBe(50);
    expect(nearest(63, [50, 75, 90])).toBe(75);
    expect(nearest(100, [50, 75, 90])).toBe(90);
    expect(nearest(undefined, [50, 75, 90])).toBeUndefined();
  });

  it('w=801 becomes the w=1024 variant; heights and q too; an absent q stays the default', () => {
    expect(request('w=801&h=300&q=60').options.spec).toEqual({ width: 1024, height: 480, quality: 50 });
    expect(request('w=801').options.spec).toEqual({ width: 1024 });
  });

  it('dpr: the OUTPUT size (w × dpr) is what rounds, and the rounded spec carries no dpr', () => {
    expect(allowedSpec({ width: 300, dpr: 2 }, RULES)).toEqual({ width: 640 });
    expect(canonicalSpec(request('w=300&dpr=2').options.spec)).toBe(canonicalSpec(request('w=640').options.spec));
    expect(allowedSpec({ width: 600, dpr: 3 }, RULES)).toEqual({ width: 1024 }); // 1800 px capped at 1024
  });

  it('a request already on allowed values is returned as it is (no copy)', () => {
    const spec = { width: 640, height: 240 };
    expect(allowedSpec(spec, RULES)).toBe(spec);
    const none = rulesOf({});
    const odd = { width: 801, quality: 63, dpr: 1.5 };
    expect(allowedSpec(odd, none)).toBe(odd);
    const parsed = parseImageRequest('/', 'url=https%3A%2F%2Fexample.com%2Fa.jpg&w=801', undefined, none.presets)!;
    expect(applyVariantRules(parsed, none)).toBe(parsed); // the default configuration changes nothing
  });
});

describe('IMGRELAY_PRESETS_ONLY', () => {
  const ONLY = rulesOf({ IMGRELAY_PRESETS: 'thumb:w=300&h=300&fit=cover;hero:w=1600', IMGRELAY_PRESETS_ONLY: 'true' });

  it('refuses ad-hoc options with a 400 naming the presets', () => {
    let error: unknown;
    try { request('w=300', ONLY); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(RelayError);
    expect((error as RelayError).code).toBe('E_BAD_REQUEST');
    expect((error as RelayError).detail).toMatch(/thumb, hero/);
    expect(() => request('p=thumb&q=90', ONLY)).toThrow(/Only presets/);
  });

  it('admits a preset, its spelled-out options and the original bytes', () => {
    expect(request('p=thumb', ONLY).options.spec).toEqual({ width: 300, height: 300, fit: 'cover' });
    expect(() => request('w=300&h=300&fit=cover', ONLY)).not.toThrow();
    expect(request('', ONLY).options.spec).toEqual({});
  });
});

describe('configuration', () => {
  it('refuses presets-only without presets, and a preset outside the allowed values', () => {
    expect(() => rulesOf({ IMGRELAY_PRESETS_ONLY: 'true' })).toThrow(/IMGRELAY_PRESETS_ONLY=true: requires IMGRELAY_PRESETS/);
    expect(() => rulesOf({ IMGRELAY_PRESETS: 'thumb:w=300', IMGRELAY_ALLOWED_WIDTHS: '320' }))
      .toThrow(/preset "thumb" asks for 300.*IMGRELAY_ALLOWED_WIDTHS/);
    expect(() => rulesOf({ IMGRELAY_PRESETS: 'thumb:w=abc' })).toThrow(/IMGRELAY_PRESETS=.*preset "thumb": Invalid option "w"/);
    expect(() => rulesOf({ IMGRELAY_ALLOWED_WIDTHS: '320,0' })).toThrow(/IMGRELAY_ALLOWED_WIDTHS/);
  });
});

describe('presets-only with IMGRELAY_LEGACY_OPTIONS', () => {
  const env = { IMGRELAY_PRESETS: 'thumb:w=300&h=300&fit=cover;hero:w=1600&output=auto', IMGRELAY_PRESETS_ONLY: 'true' };
  const startWith = (legacy: string, vars: Record<string, string> = env) => {
    try {
      return startInputsOf('', legacy, rulesOf(vars)).legacyOptions?.spec;
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };

  it('legacy options that presets-only would refuse stop the start-up (not a 400 on every old article)', () => {
    expect(startWith('w=1600')).toEqual([expect.stringMatching(
      /^IMGRELAY_LEGACY_OPTIONS="w=1600": with IMGRELAY_PRESETS_ONLY=true every legacy .* one of: thumb, hero/)]);
    expect(startWith('w=1600', { IMGRELAY_PRESETS: env.IMGRELAY_PRESETS })).toEqual({ width: 1600 }); // not presets-only
  });

  it('a preset, its options spelled out, or none start, and legacy URLs are then served', () => {
    expect(startWith('p=hero')).toEqual({ width: 1600, format: 'auto' });
    expect(startWith('output=auto&w=1600')).toEqual({ width: 1600, format: 'auto' });
    expect(startWith('')).toBeUndefined();
    const legacy = { spec: { width: 1600, format: 'auto' as const }, response: {} };
    const parsed = parseImageRequest('/', 'https://example.com/a.jpg', legacy, rulesOf(env).presets)!;
    expect(applyVariantRules(parsed, rulesOf(env)).options.spec).toEqual(legacy.spec);
  });
});
