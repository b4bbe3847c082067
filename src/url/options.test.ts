import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import {
  OPTIONS, canonicalSpec, isIdentity, parseCfOptions, parseLegacyOptions, parseQueryOptions,
} from './options.js';
import type { TransformSpec } from '../transform/types.js';

const query = (q: string) => parseQueryOptions(new URLSearchParams(q));
const querySpec = (q: string) => query(q).spec;
const pathSpec = (segment: string) => parseCfOptions(segment).spec;

function rejection(fn: () => unknown): RelayError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RelayError);
    return error as RelayError;
  }
  throw new Error('expected a rejection');
}

/** The one message shape: names the option, the expectation and what was received. */
const SHAPE = /^Invalid option "[^"]+": expected .+, received ".*"$/;

describe('query form (weserv names): every option parses valid values', () => {
  const cases: [string, TransformSpec][] = [
    ['w=300', { width: 300 }], ['h=16383', { height: 16383 }], ['dpr=2.5', { dpr: 2.5 }],
    ['fit=cover', { fit: 'cover' }], ['fit=outside', { fit: 'outside' }], ['we', { withoutEnlargement: true }],
    ['we=1', { withoutEnlargement: true }], ['we=false', { withoutEnlargement: false }],
    ['a=top-left', { gravity: 'top-left' }], ['a=attention', { gravity: 'attention' }], ['a=Entropy', { gravity: 'entropy' }],
    ['q=1', { quality: 1 }], ['q=100', { quality: 100 }],
    ['output=jpg', { format: 'jpeg' }], ['output=jpeg', { format: 'jpeg' }], ['output=auto', { format: 'auto' }],
    ['output=avif', { format: 'avif' }], ['n=-1', { pages: -1 }], ['n=3', { pages: 3 }], ['il', { interlace: true }],
    ['blur', { blur: 1 }], ['blur=5', { blur: 5 }], ['sharp=0.5', { sharpen: 0.5 }],
    ['bg=fff', { background: '#ffffff' }], ['bg=%23FF000080', { background: '#ff000080' }],
    ['bg=black', { background: '#000000' }], ['bg=00ff00ff', { background: '#00ff00' }],
  ];
  it.each(cases)('%s', (q, expected) => expect(querySpec(q)).toEqual(expected));
});

describe('path form (Cloudflare names): every option parses valid values', () => {
  const cases: [string, TransformSpec][] = [
    ['width=300', { width: 300 }], ['height=200', { height: 200 }], ['w=10,h=20', { width: 10, height: 20 }],
    ['fit=scale-down', { fit: 'inside', withoutEnlargement: true }], ['fit=contain', { fit: 'inside' }],
    ['fit=cover', { fit: 'cover' }], ['fit=crop', { fit: 'cover', withoutEnlargement: true }], ['fit=pad', { fit: 'contain' }],
    ['quality=75', { quality: 75 }], ['format=auto', { format: 'auto' }], ['format=jpeg', { format: 'jpeg' }],
    ['format=baseline-jpeg', { format: 'jpeg' }], ['dpr=2', { dpr: 2 }], ['gravity=auto', { gravity: 'attention' }],
    ['gravity=left', { gravity: 'left' }], ['anim=true', { pages: -1 }], ['anim=false', { pages: 1 }],
    ['metadata=keep', { keepMetadata: true }], ['metadata=copyright', { keepMetadata: false, keepCopyright: true }],
    ['metadata=none', { keepMetadata: false, keepCopyright: false }], ['blur=10', { blur: 10 }], ['sharpen=2', { sharpen: 2 }],
    ['background=%23000', { background: '#000000' }],
  ];
  it.each(cases)('%s', (segment, expected) => expect(pathSpec(decodeURIComponent(segment))).toEqual(expected));
});

describe('invalid values are 400 with one message shape', () => {
  const queryCases = ['w=abc', 'w=0', 'w=16384', 'w=-5', 'w=1.5', 'h=', 'dpr=0.5', 'dpr=9', 'dpr=x', 'fit=stretch',
    'we=maybe', 'a=focal', 'q=0', 'q=101', 'output=tiff', 'output=xml', 'n=0', 'n=-2', 'il=2', 'blur=0.1',
    'blur=2000', 'sharp=11', 'bg=nope', 'bg=12345'];
  it.each(queryCases)('query %s', (q) => {
    const error = rejection(() => querySpec(q));
    expect(error.code).toBe('E_BAD_REQUEST');
    expect(error.status).toBe(400);
    expect(error.message).toMatch(SHAPE);
    expect(error.message).toContain(`"${q.split('=')[0]}"`);
  });

  const pathCases = ['width=abc', 'fit=inside', 'format=tiff', 'gravity=face', 'gravity=0.3x0.7',
    'anim=yes-please', 'metadata=all', 'quality=high', 'dpr=10'];
  it.each(pathCases)('path %s', (segment) => {
    const error = rejection(() => pathSpec(segment));
    expect(error.code).toBe('E_BAD_REQUEST');
    expect(error.message).toMatch(SHAPE);
  });

  it('says the range and what was received, sharp style', () => {
    expect(rejection(() => querySpec('w=abc')).message)
      .toBe('Invalid option "w": expected an integer between 1 and 16383, received "abc"');
    expect(rejection(() => pathSpec('gravity=0.3x0.7')).message).toBe('Invalid option "gravity": expected auto, left, '
      + 'right, top, bottom, center, or XxY coordinates with X and Y each 0, 0.5 or 1 (other coordinates and face are '
      + 'not supported), received "0.3x0.7"');
  });

  it('truncates a huge received value', () => {
    const message = rejection(() => querySpec(`w=${'9'.repeat(5000)}`)).message;
    expect(message.length).toBeLessThan(200);
  });
});

describe('canonicalSpec: one request, three spellings, one key', () => {
  it('query form, path form and legacy options agree', () => {
    const fromQuery = canonicalSpec(querySpec('w=300&h=200&fit=cover&q=70&output=webp&a=attention&n=-1'));
    const fromPath = canonicalSpec(pathSpec('width=300,height=200,fit=cover,quality=70,format=webp,gravity=auto,anim=true'));
    const fromLegacy = canonicalSpec(parseLegacyOptions('output=webp&n=-1&a=attention&q=70&fit=cover&h=200&w=300').spec);
    expect(fromQuery).toBe('fit=cover&format=webp&gravity=attention&height=200&pages=-1&quality=70&width=300');
    expect(fromPath).toBe(fromQuery);
    expect(fromLegacy).toBe(fromQuery);
  });

  it('scale-down equals contain + we', () => {
    expect(canonicalSpec(pathSpec('width=500,fit=scale-down'))).toBe(canonicalSpec(querySpec('w=500&we')));
  });

  it('drops defaults and folds dpr into the box', () => {
    expect(canonicalSpec(querySpec('w=300&dpr=1&q=80&fit=inside&a=center&n=1&we=0&il=0'))).toBe('width=300');
    expect(canonicalSpec(querySpec('w=300&dpr=2'))).toBe(canonicalSpec(querySpec('w=600')));
    expect(canonicalSpec(querySpec('w=0300'))).toBe('width=300');
    expect(canonicalSpec(querySpec('dpr=2'))).toBe('');
  });

  it('drops what has no effect: gravity outside cover/contain, fit and we without a size', () => {
    expect(canonicalSpec(querySpec('w=300&a=top'))).toBe('width=300');
    expect(canonicalSpec(querySpec('fit=cover&we&a=top'))).toBe('');
    expect(canonicalSpec(querySpec('w=300&fit=cover&a=top'))).toContain('gravity=top');
  });

  it('junk parameters and response options never change it', () => {
    const plain = canonicalSpec(querySpec('w=300&output=png'));
    const noisy = query('utm_source=x&w=300&foo=bar&output=png&filename=pic&maxage=7d&default=example.com/a.png&_=123');
    expect(canonicalSpec(noisy.spec)).toBe(plain);
    expect(canonicalSpec(pathSpec('width=300,format=png,onerror=redirect,utm=1'))).toBe(plain);
  });

  it('a repeated option: the last one wins', () => {
    expect(querySpec('w=100&w=200')).toEqual({ width: 200 });
    expect(pathSpec('width=100,w=200')).toEqual({ width: 200 });
  });

  it("'' and isIdentity mean no transform", () => {
    expect(canonicalSpec({})).toBe('');
    expect(isIdentity(querySpec('foo=bar&q=80'))).toBe(true);
    expect(isIdentity(querySpec('output=auto'))).toBe(false);
  });
});

describe('response options', () => {
  it('filename, maxage (weserv units), default', () => {
    expect(query('filename=cat&maxage=31d&default=https://example.com/x.png').response)
      .toEqual({ filename: 'cat', maxAgeS: 31 * 86400, fallback: 'https://example.com/x.png' });
    expect(query('maxage=3600').response.maxAgeS).toBe(3600);
    expect(query('maxage=1w').response.maxAgeS).toBe(604800);
    expect(query('default=example.com/x.png').response.fallback).toBe('http://example.com/x.png');
  });

  it.each(['maxage=abc', 'maxage=2y', 'maxage=0', 'default=ftp://example.com/x', 'default=http://'])('rejects %s', (q) => {
    const error = rejection(() => query(q));
    expect(error.code).toBe('E_BAD_REQUEST');
    expect(error.message).toMatch(SHAPE);
  });
});

describe('the table', () => {
  it('has one row per TransformSpec field, each reachable from at least one form', () => {
    for (const [key, def] of Object.entries(OPTIONS)) {
      expect(def.field).toBe(key);
      // `describe` is spelled by the format options (`output=json`, `format=json`).
      expect('query' in def || 'path' in def || key === 'describe' || key === 'keepCopyright').toBe(true);
    }
    expect(querySpec('output=json')).toEqual({ describe: 'weserv' });
    expect(pathSpec('format=json')).toEqual({ describe: 'cloudflare' });
  });
});

describe('requests that produce the same bytes share one key', () => {
  it('q is dropped where the encoder takes none (PNG, GIF) and kept for every lossy or undecided output', () => {
    expect(canonicalSpec(querySpec('w=300&output=png&q=40'))).toBe(canonicalSpec(querySpec('w=300&output=png')));
    expect(canonicalSpec(querySpec('w=300&output=gif&q=40'))).toBe(canonicalSpec(querySpec('w=300&output=gif')));
    for (const output of ['jpg', 'webp', 'avif', 'auto']) {
      expect(canonicalSpec(querySpec(`w=300&output=${output}&q=40`))).toContain('quality=40');
    }
    expect(canonicalSpec(querySpec('w=300&q=40'))).toContain('quality=40'); // the source's family may be JPEG
  });

  it('bg counts only where it is painted: contain padding, or flattening onto an explicit JPEG', () => {
    expect(canonicalSpec(querySpec('w=300&h=200&bg=ff0000'))).toBe(canonicalSpec(querySpec('w=300&h=200')));
    expect(canonicalSpec(querySpec('w=300&output=webp&bg=000'))).toBe(canonicalSpec(querySpec('w=300&output=webp')));
    expect(canonicalSpec(querySpec('w=300&h=200&fit=contain&bg=000'))).toContain('background=#000000');
    expect(canonicalSpec(querySpec('w=300&output=jpg&bg=000'))).toContain('background=#000000');
    expect(canonicalSpec(querySpec('fit=contain&bg=000'))).toBe(''); // no box: nothing is padded
  });
});
