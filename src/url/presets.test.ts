import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { canonicalSpec } from './options.js';
import { parseLegacyWithPresets, parsePresets } from './presets.js';
import { parseImageRequest } from './request.js';

const PRESETS = parsePresets('thumb:w=300&h=300&fit=cover; hero:w=1600&output=auto');
const SOURCE = 'https://example.com/a.jpg';
const queryForm = (q: string) => parseImageRequest('/', `url=${encodeURIComponent(SOURCE)}&${q}`, undefined, PRESETS)!;
const pathForm = (options: string) => parseImageRequest(`/cdn-cgi/image/${options}/${SOURCE}`, '', undefined, PRESETS)!;
const keyOf = (request: { options: { spec: object } }) => canonicalSpec(request.options.spec);

describe('IMGRELAY_PRESETS definitions', () => {
  it('parses each named option set with the query-form names', () => {
    expect(PRESETS).toEqual({ thumb: { width: 300, height: 300, fit: 'cover' }, hero: { width: 1600, format: 'auto' } });
    expect(parsePresets('')).toEqual({});
  });

  it.each([
    ['thumb:w=abc', /preset "thumb": Invalid option "w"/],
    ['thumb:width=300', /preset "thumb": "width" is not a transform option/],
    ['thumb:p=hero', /"p" is not a transform option/],
    ['thumb:maxage=1d', /"maxage" is not a transform option/],
    ['thumb', /preset "thumb": no options/],
    ['a:w=1;a:w=2', /preset "a" is defined twice/],
    ['bad name:w=1', /expected name:options/],
  ])('refuses %s at start-up with a message naming the preset', (text, message) => {
    expect(() => parsePresets(text)).toThrow(message);
  });
});

describe('expansion while parsing', () => {
  it('the query form p= and the path form preset= give the options spelled out: one key', () => {
    const spelled = keyOf(queryForm('w=300&h=300&fit=cover'));
    expect(keyOf(queryForm('p=thumb'))).toBe(spelled);
    expect(keyOf(pathForm('preset=thumb'))).toBe(spelled);
  });

  it('explicit options override the preset wherever they stand (preset first, then the URL)', () => {
    expect(queryForm('w=400&p=thumb').options.spec).toEqual({ width: 400, height: 300, fit: 'cover' });
    expect(pathForm('preset=hero,format=webp').options.spec).toEqual({ width: 1600, format: 'webp' });
  });

  it('an unknown preset is a 400 naming it and the known ones', () => {
    expect(() => queryForm('p=huge')).toThrow(RelayError);
    expect(() => queryForm('p=huge')).toThrow(expect.objectContaining(
      { code: 'E_BAD_REQUEST', detail: expect.stringMatching(/Unknown preset "huge".*thumb, hero/) }));
    expect(() => pathForm('preset=nope')).toThrow(RelayError);
    expect(() => pathForm('preset=nope')).toThrow(expect.objectContaining({ detail: expect.stringMatching(/"nope"/) }));
  });

  it('with no presets configured p= stays an ignored parameter (URLs that carried one keep working)', () => {
    const request = parseImageRequest('/', `url=${encodeURIComponent(SOURCE)}&w=10&p=whatever`, undefined, {})!;
    expect(request.options.spec).toEqual({ width: 10 });
  });

  it('IMGRELAY_LEGACY_OPTIONS may name a preset', () => {
    expect(parseLegacyWithPresets('p=hero&q=70', PRESETS).spec).toEqual({ width: 1600, format: 'auto', quality: 70 });
  });
});
