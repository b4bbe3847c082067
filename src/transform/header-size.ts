/**
 * An image's pixel size read from its header bytes in JS, for the formats hotlink placeholders come in (JPEG, PNG,
 * GIF, WebP): the placeholder check compares it with its perceptual entries before deciding to decode anything, so
 * an ordinary image costs a few byte reads. Undefined for any other format or a header it cannot read (such a body is
 * then simply not a perceptual match). Portable: plain byte reading, no `node:` imports.
 */
import type { Size } from './cost.js';
import { readJpegHeader } from './jpeg-header.js';

const ascii = (bytes: Uint8Array, at: number, text: string) =>
  bytes.length >= at + text.length && [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));
const u16le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u24le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
const u32be = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

export function readHeaderSize(bytes: Uint8Array): Size | undefined {
  const size = pngSize(bytes) ?? gifSize(bytes) ?? webpSize(bytes) ?? jpegSize(bytes);
  return size && size.width > 0 && size.height > 0 ? size : undefined;
}

/** The signature, then IHDR as the first chunk: width and height big-endian. */
function pngSize(b: Uint8Array): Size | undefined {
  if (b.length < 24 || b[0] !== 0x89 || !ascii(b, 1, 'PNG\r\n\x1a\n') || !ascii(b, 12, 'IHDR')) return undefined;
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

/** The logical screen descriptor (every frame is drawn inside it). */
function gifSize(b: Uint8Array): Size | undefined {
  if (b.length < 10 || !(ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a'))) return undefined;
  return { width: u16le(b, 6), height: u16le(b, 8) };
}

/** The first chunk: VP8X (canvas), VP8L (lossless) or VP8 (lossy key frame). */
function webpSize(b: Uint8Array): Size | undefined {
  if (b.length < 30 || !ascii(b, 0, 'RIFF') || !ascii(b, 8, 'WEBP')) return undefined;
  if (ascii(b, 12, 'VP8X')) return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  if (ascii(b, 12, 'VP8L') && b[20] === 0x2f) {
    const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (ascii(b, 12, 'VP8 ') && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  return undefined;
}

function jpegSize(b: Uint8Array): Size | undefined {
  const header = readJpegHeader(b);
  return header && { width: header.width, height: header.height };
}
