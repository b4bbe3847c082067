/**
 * The JS JPEG header reader against libvips itself (sharp.metadata() is the oracle): what it answers must be what
 * libvips reads, and whatever it is unsure of must come back undefined (the planner then asks sharp).
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture, orientedJpeg } from '../../test/helpers/images.js';
import { MAX_HEADER_BYTES, readJpegHeader } from './jpeg-header.js';

const CORPUS_JPEGS = ['photo-wood.jpg', 'photo-ladybird.jpg', 'progressive.jpg', 'icc-odd.jpg', 'exif-orientation-6.jpg',
  'cmyk-truncated.jpg', 'bomb-64250x64250.jpg'];

async function libvipsReads(bytes: Uint8Array) {
  const { width, height, orientation } = await sharp(bytes, { limitInputPixels: false }).metadata();
  return orientation === undefined ? { width, height } : { width, height, orientation };
}

/** The size and orientation read in JS (the EXIF block it keeps is checked on its own, below). */
function sizeOf(bytes: Uint8Array) {
  const header = readJpegHeader(bytes);
  if (!header) return header;
  const { exif: _exif, ...size } = header;
  return size;
}

type Entry = [tag: number, type: number, count: number, value: number];

/** An APP1 EXIF segment holding one IFD0 with `entries` (values inline), in either byte order. */
function exifSegment(order: 'II' | 'MM', entries: Entry[], declared = entries.length): Uint8Array {
  const little = order === 'II';
  const tiff = new DataView(new ArrayBuffer(8 + 2 + 12 * entries.length + 4));
  tiff.setUint8(0, order.charCodeAt(0));
  tiff.setUint8(1, order.charCodeAt(1));
  tiff.setUint16(2, 42, little);
  tiff.setUint32(4, 8, little);
  tiff.setUint16(8, declared, little);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + 12 * i;
    tiff.setUint16(at, tag, little);
    tiff.setUint16(at + 2, type, little);
    tiff.setUint32(at + 4, count, little);
    if (type === 3 || type === 8) tiff.setUint16(at + 8, value, little); // SHORT, SSHORT
    else tiff.setUint32(at + 8, value, little);
  });
  const payload = new Uint8Array([...Buffer.from('Exif\0\0', 'latin1'), ...new Uint8Array(tiff.buffer)]);
  return new Uint8Array([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload]);
}

/** `jpeg` with `segments` inserted right after its SOI marker. */
const withSegments = (jpeg: Uint8Array, ...segments: Uint8Array[]) =>
  new Uint8Array(Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]));

let plain: Uint8Array; // 90×60, no EXIF
beforeAll(async () => {
  const image = sharp({ create: { width: 90, height: 60, channels: 3, background: '#336699' } });
  plain = new Uint8Array(await image.jpeg().toBuffer());
});

describe('reads what libvips reads', () => {
  it.each(CORPUS_JPEGS)('corpus %s', async (name) => {
    const bytes = fixture(name);
    expect(sizeOf(bytes)).toEqual(await libvipsReads(bytes));
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('EXIF orientation %i as libvips writes it', async (orientation) => {
    const bytes = await orientedJpeg(orientation);
    expect(sizeOf(bytes)).toEqual(await libvipsReads(bytes));
  });

  it.each(['II', 'MM'] as const)('orientation 6 among other IFD0 tags, %s byte order', async (order) => {
    const entries: Entry[] = [[0x010f, 2, 4, 0x414243], [0x0112, 3, 1, 6], [0x011a, 5, 1, 0]];
    const bytes = withSegments(plain, exifSegment(order, entries));
    expect(sizeOf(bytes)).toEqual({ width: 90, height: 60, orientation: 6 });
    expect(await libvipsReads(bytes)).toEqual({ width: 90, height: 60, orientation: 6 });
  });

  it.each([[4, 'LONG'], [8, 'SSHORT'], [9, 'SLONG']])('an Orientation stored as type %i (%s), as cameras do', async (type) => {
    const bytes = withSegments(plain, exifSegment('MM', [[0x0112, type, 1, 8]]));
    expect(sizeOf(bytes)).toEqual({ width: 90, height: 60, orientation: 8 });
    expect(await libvipsReads(bytes)).toEqual({ width: 90, height: 60, orientation: 8 });
  });

  it('EXIF without an Orientation tag: no orientation', async () => {
    const bytes = withSegments(plain, exifSegment('II', [[0x010f, 2, 4, 0x414243]]));
    expect(sizeOf(bytes)).toEqual({ width: 90, height: 60 });
    expect(await libvipsReads(bytes)).toEqual({ width: 90, height: 60 });
  });
});

describe('leaves to sharp what it cannot read exactly', () => {
  it('two EXIF blocks (which one counts is libvips\' choice: the first, in this version)', async () => {
    const bytes = withSegments(plain, exifSegment('II', [[0x0112, 3, 1, 6]]), exifSegment('II', [[0x0112, 3, 1, 3]]));
    expect(readJpegHeader(bytes)).toBeUndefined();
    expect((await libvipsReads(bytes)).orientation).toBe(6);
  });

  it.each<[string, Entry[], number?]>([
    ['an Orientation stored as a RATIONAL', [[0x0112, 5, 1, 6]]],
    ['an Orientation with two values', [[0x0112, 3, 2, 6]]],
    ['an Orientation out of range', [[0x0112, 3, 1, 9]]],
    ['two Orientation entries', [[0x0112, 3, 1, 6], [0x0112, 3, 1, 8]]],
    ['more entries declared than the block holds', [[0x0112, 3, 1, 6]], 40],
  ])('%s', (_, entries, declared) => {
    expect(readJpegHeader(withSegments(plain, exifSegment('MM', entries, declared)))).toBeUndefined();
  });

  it('frame types other than 8-bit Huffman (here arithmetic, SOF9)', () => {
    const bytes = plain.slice();
    const sof = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xc0);
    bytes[sof + 1] = 0xc9;
    expect(readJpegHeader(bytes)).toBeUndefined();
  });

  it('a zero height (size given later by DNL)', () => {
    const bytes = plain.slice();
    const sof = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xc0);
    bytes[sof + 5] = 0;
    bytes[sof + 6] = 0;
    expect(readJpegHeader(bytes)).toBeUndefined();
  });

  it('not a JPEG, or no frame header before the scan', () => {
    expect(readJpegHeader(fixture('sample.webp'))).toBeUndefined();
    expect(readJpegHeader(new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toBeUndefined();
  });

  it('a header that does not reach its scan within MAX_HEADER_BYTES (padding, or a huge profile)', async () => {
    const padding = new Uint8Array(MAX_HEADER_BYTES).fill(0xff); // fill bytes, walked one at a time
    const padded = new Uint8Array(Buffer.concat([plain.subarray(0, 2), padding, plain.subarray(2)]));
    expect(readJpegHeader(padded)).toBeUndefined();
    const justInside = new Uint8Array(Buffer.concat([plain.subarray(0, 2), padding.subarray(0, 1000), plain.subarray(2)]));
    expect(sizeOf(justInside)).toEqual({ width: 90, height: 60 });
    expect(await libvipsReads(justInside)).toEqual({ width: 90, height: 60 }); // fill bytes are legal
  });

  it('never throws on a truncated or damaged header, and never answers differently from the whole file', () => {
    const bytes = withSegments(fixture('photo-wood.jpg'), exifSegment('II', [[0x0112, 3, 1, 6]]));
    const whole = readJpegHeader(bytes);
    for (let length = 0; length < 1200; length += 1) {
      const answer = readJpegHeader(bytes.subarray(0, length));
      if (answer !== undefined) expect(answer).toEqual(whole);
    }
    for (let at = 2; at < 400; at += 1) {
      const damaged = bytes.slice(0, 4096);
      damaged[at] ^= 0xff;
      expect(() => readJpegHeader(damaged)).not.toThrow();
    }
  });
  it('keeps the EXIF block as libvips reads it (metadata=copyright parses it, no second header read)', async () => {
    for (const name of ['exif-orientation-6.jpg', 'photo-wood.jpg']) {
      const bytes = fixture(name);
      const { exif } = await sharp(bytes, { limitInputPixels: false }).metadata();
      expect(exif).toBeDefined();
      expect(Buffer.from(readJpegHeader(bytes)!.exif!)).toEqual(exif);
    }
    expect(readJpegHeader(plain)?.exif).toBeUndefined();
  });
});
