/**
 * A JPEG's size and EXIF orientation, read in JS from the markers before its first scan, so that planning a JPEG
 * (most sources) needs no `sharp.metadata()`: that is a native call, a thread-pool round trip and libvips' own
 * header parse, all inside a pool slot. Measured old against new in one run (800w JPEG cold misses): 1.05× the
 * throughput, 2.75 ms less CPU per miss. Plain byte reading, nothing runtime-specific.
 *
 * It answers only where it reads what libvips reads, and returns undefined for everything else so the caller asks
 * sharp: no frame header before the scan, a frame type or precision other than 8-bit Huffman, a zero size (DNL),
 * several EXIF blocks, EXIF it cannot walk completely, or an Orientation that is not one in-range integer. libvips
 * reads Orientation from IFD0 only (foreign/exif.c), as here. What it returns is checked again while decoding: the
 * pipeline's limitInputPixels is computed from this size.
 */

export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF IFD0 Orientation (1–8), when the image has one. */
  orientation?: number;
  /** The APP1 EXIF block (`Exif\0\0` + TIFF), kept for `metadata=copyright` (copyright.ts). */
  exif?: Uint8Array;
}

const MARKER = 0xff;
const SOI = 0xd8;
const SOS = 0xda;
const APP1 = 0xe1;
/** Baseline, extended sequential and progressive frames (Huffman): the ones read here. */
const FRAMES: ReadonlySet<number> = new Set([0xc0, 0xc1, 0xc2]);
/** Any other SOFn (lossless, hierarchical, arithmetic) goes to libvips; DHT (C4), JPG (C8), DAC (CC) aren't frames. */
const isOtherFrame = (marker: number) => marker >= 0xc3 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
/**
 * How far the walk may go looking for the scan. Real headers (EXIF ≤ 64 KiB, ICC, XMP) end well before; a longer one
 * (a huge ICC profile, or hostile padding — fill bytes are walked one at a time on the main thread) goes to sharp,
 * whose header read runs in the pool.
 */
export const MAX_HEADER_BYTES = 256 * 1024;
const ORIENTATION_TAG = 0x0112;
/** The integer types libvips reads Orientation from (vips_exif_get_int): SHORT, LONG, SSHORT, SLONG. */
const SHORTS: ReadonlySet<number> = new Set([3, 8]);
const LONGS: ReadonlySet<number> = new Set([4, 9]);

interface Segments {
  frame?: Uint8Array;
  frames: number;
  exif?: Uint8Array;
  exifBlocks: number;
}

export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  const segments = segmentsBeforeScan(bytes);
  if (!segments?.frame || segments.frames !== 1 || segments.exifBlocks > 1) return undefined;
  const size = frameSize(segments.frame);
  if (!size) return undefined;
  if (!segments.exif) return size;
  const exif = readOrientation(segments.exif);
  if (!exif) return undefined;
  const withExif = { ...size, exif: segments.exif };
  return exif.orientation === undefined ? withExif : { ...withExif, orientation: exif.orientation };
}

/** Walks the marker segments from SOI to SOS, keeping the frame header and EXIF blocks; undefined if malformed. */
function segmentsBeforeScan(bytes: Uint8Array): Segments | undefined {
  if (bytes.length < 4 || bytes[0] !== MARKER || bytes[1] !== SOI) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: Segments = { frames: 0, exifBlocks: 0 };
  const limit = Math.min(bytes.length, MAX_HEADER_BYTES);
  let at = 2;
  while (at + 4 <= limit) {
    if (bytes[at] !== MARKER) return undefined;
    const marker = bytes[at + 1];
    if (marker === MARKER) { // fill byte before a marker
      at += 1;
      continue;
    }
    if (marker === SOS) return found;
    if (isOtherFrame(marker) || marker < 0xc0 || (marker >= 0xd0 && marker <= 0xd9)) return undefined;
    const end = at + 2 + view.getUint16(at + 2);
    if (end < at + 4 || end > bytes.length) return undefined;
    const body = bytes.subarray(at + 4, end);
    if (FRAMES.has(marker)) {
      found.frame = body;
      found.frames += 1;
    } else if (marker === APP1 && startsWith(body, 'Exif')) {
      found.exif = body;
      found.exifBlocks += 1;
    }
    at = end;
  }
  return undefined;
}

/** SOFn: precision, height, width, components (and 3 bytes per component). */
function frameSize(frame: Uint8Array): { width: number; height: number } | undefined {
  if (frame.length < 6) return undefined;
  const [precision, , , , , components] = frame;
  const height = (frame[1] << 8) | frame[2];
  const width = (frame[3] << 8) | frame[4];
  if (precision !== 8 || width === 0 || height === 0) return undefined;
  if (![1, 3, 4].includes(components) || frame.length < 6 + 3 * components) return undefined;
  return { width, height };
}

/** `Exif\0\0` then a TIFF header and IFD0; `{}` when IFD0 has no Orientation, undefined when unreadable. */
function readOrientation(app1: Uint8Array): { orientation?: number } | undefined {
  if (!startsWith(app1, 'Exif\0\0')) return undefined;
  const tiff = new DataView(app1.buffer, app1.byteOffset + 6, app1.byteLength - 6);
  if (tiff.byteLength < 8) return undefined;
  const order = String.fromCharCode(tiff.getUint8(0), tiff.getUint8(1));
  if (order !== 'II' && order !== 'MM') return undefined;
  const little = order === 'II';
  if (tiff.getUint16(2, little) !== 42) return undefined;
  const ifd0 = tiff.getUint32(4, little);
  if (ifd0 < 8 || ifd0 + 2 > tiff.byteLength) return undefined;
  const entries = tiff.getUint16(ifd0, little);
  if (ifd0 + 2 + 12 * entries > tiff.byteLength) return undefined;
  let orientation: number | undefined;
  for (let i = 0, entry = ifd0 + 2; i < entries; i += 1, entry += 12) {
    if (tiff.getUint16(entry, little) !== ORIENTATION_TAG) continue;
    const value = orientationValue(tiff, entry, little);
    if (orientation !== undefined || value === undefined || value < 1 || value > 8) return undefined;
    orientation = value;
  }
  return { orientation };
}

/** One integer, stored inline (any of the 4 bytes at +8 beyond its size are padding); undefined for other types. */
function orientationValue(tiff: DataView, entry: number, little: boolean): number | undefined {
  const type = tiff.getUint16(entry + 2, little);
  if (tiff.getUint32(entry + 4, little) !== 1) return undefined;
  if (SHORTS.has(type)) return type === 3 ? tiff.getUint16(entry + 8, little) : tiff.getInt16(entry + 8, little);
  if (LONGS.has(type)) return type === 4 ? tiff.getUint32(entry + 8, little) : tiff.getInt32(entry + 8, little);
  return undefined;
}

function startsWith(bytes: Uint8Array, text: string): boolean {
  if (bytes.length < text.length) return false;
  for (let i = 0; i < text.length; i += 1) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}
