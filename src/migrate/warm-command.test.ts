import { describe, expect, it } from 'vitest';
import { MigrateUsageError, parseMigrateArgs, parseWidths } from './args.js';
import { proxyUrls } from './warm-command.js';

const BASE = 'https://img.example.com';
const SRC = 'http://zkres2.myzaker.com/202107/abc_1024.jpg';
const Q = `${BASE}/?url=${encodeURIComponent(SRC)}`;

describe('proxyUrls', () => {
  it('finds src, every srcset candidate (entities decoded), CSS backgrounds and front matter, each once', () => {
    const page = `---\nheadimg: ${BASE}/?${SRC}\n---\n<div style="background-image: url('${BASE}/?${SRC}')"></div>`
      + `<img src="${BASE}/?${SRC}" srcset="${Q}&amp;w=480 480w, ${Q}&amp;w=800 800w, ${BASE}/?${SRC} 1024w">`
      + `<a href="https://example.com/page">not an image</a> <img src="https://other.example/x.jpg">`;
    expect(proxyUrls(page)).toEqual([`${BASE}/?${SRC}`, `${Q}&w=480`, `${Q}&w=800`]);
  });
  it('adds the query-form widths of each legacy source with --widths', () => {
    expect(proxyUrls(`![x](${BASE}/?${SRC})`, [480, 800])).toEqual([`${BASE}/?${SRC}`, `${Q}&w=480`, `${Q}&w=800`]);
  });
});

describe('arguments', () => {
  it('reads values inline or separate, flags, and refuses unknown options', () => {
    const p = parseMigrateArgs(['a', '--base=https://x', '--widths', '800,480', '--dry-run', 'b'], ['base', 'widths'], ['dry-run']);
    expect(p.positional).toEqual(['a', 'b']);
    expect(p.values.get('base')).toBe('https://x');
    expect(parseWidths(p.values.get('widths'), [])).toEqual([480, 800]);
    expect(p.flags.has('dry-run')).toBe(true);
    expect(() => parseMigrateArgs(['--bogus'], [], [])).toThrow(MigrateUsageError);
    expect(() => parseMigrateArgs(['--base'], ['base'], [])).toThrow('--base needs a value');
    expect(() => parseWidths('480,wide', [])).toThrow('--widths');
  });
});
