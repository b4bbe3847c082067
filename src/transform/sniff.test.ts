import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sniff } from './sniff.js';

const fixtures = new URL('../../test/fixtures/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, fixtures)));

const EXPECTED: Record<string, string> = {
  jpg: 'jpeg', png: 'png', gif: 'gif', webp: 'webp', avif: 'avif', tiff: 'tiff', svg: 'svg', bmp: 'bmp', jxl: 'jxl',
};

describe('sniff', () => {
  for (const name of readdirSync(fixtures, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith('.md')).map((e) => e.name)) {
    const ext = name.split('.').pop()!;
    it(`recognises ${name} as ${EXPECTED[ext]}`, () => {
      expect(sniff(read(name))).toBe(EXPECTED[ext]);
    });
  }

  it('does not take HTML served as image/jpeg for an image', () => {
    expect(sniff(new TextEncoder().encode('<!doctype html><html><body>hi</body></html>'))).toBeUndefined();
  });

  it('does not take JSON, empty or tiny bodies for images', () => {
    expect(sniff(new TextEncoder().encode('{"error":"denied"}'))).toBeUndefined();
    expect(sniff(new Uint8Array())).toBeUndefined();
    expect(sniff(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
  });

  it('recognises an SVG behind an XML declaration, comment and doctype', () => {
    const svg = '\uFEFF<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n<svg xmlns="http://www.w3.org/2000/svg"/>';
    expect(sniff(new TextEncoder().encode(svg))).toBe('svg');
  });

  it('recognises an SVG behind an xml-stylesheet processing instruction', () => {
    const svg = '<?xml version="1.0"?><?xml-stylesheet href="s.css"?><svg xmlns="http://www.w3.org/2000/svg"/>';
    expect(sniff(new TextEncoder().encode(svg))).toBe('svg');
  });

  it('tells HEIC apart from AVIF by the ftyp brand', () => {
    const box = (brand: string) => new Uint8Array([0, 0, 0, 24, ...Buffer.from(`ftyp${brand}\0\0\0\0mif1${brand}`)]);
    expect(sniff(box('heic'))).toBe('heif');
    expect(sniff(box('avif'))).toBe('avif');
  });
});
