/**
 * Mutations of real images for the fuzz test (test/fuzz.test.ts, `npm run fuzz`): truncations, bit flips, scattered
 * byte noise (the bench's hostile corpus mutation, reused), chunk duplication, garbage insertion, and the width/height
 * fields of JPEG SOF, PNG IHDR (CRC fixed, so the decoder reads on), GIF LSD and WebP VP8X/VP8/VP8L headers set to
 * extremes. Every case is a pure function of (seed, case number), so one case replays without running the others.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { mutate as scatterNoise } from '../../bench/lib/hostile-corpus.js';
import { seededRandom } from '../../bench/lib/random.js';

export const FIXTURES_DIR = new URL('../fixtures/', import.meta.url);

export interface Fixture {
  name: string;
  bytes: Uint8Array;
}

/** Every image fixture, decodable or not (the bombs, the truncated and unsupported ones are inputs worth mutating). */
export function loadFixtures(): Fixture[] {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.endsWith('.md')).map((entry) => entry.name).sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, FIXTURES_DIR))) }));
}

type Random = () => number;
type Mutation = (bytes: Uint8Array, random: Random) => Uint8Array;

const int = (random: Random, below: number) => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)];
const splice = (bytes: Uint8Array, at: number, insert: Uint8Array) => {
  const out = new Uint8Array(bytes.length + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at), at + insert.length);
  return out;
};

/** 16-bit and 32-bit sizes a decoder must refuse or survive: zero, one, huge, and sign-bit traps. */
const EXTREME_16 = [0, 1, 2, 0x7fff, 0x8000, 0xffff];
const EXTREME_32 = [0, 1, 0xffff, 100_000, 0x7fffffff, 0x80000000, 0xffffffff];

export const MUTATIONS: Readonly<Record<string, Mutation>> = {
  truncate: (bytes, random) => bytes.slice(0, 1 + int(random, Math.max(1, bytes.length - 1))),
  bitflips: (bytes, random) => {
    const out = Uint8Array.from(bytes);
    for (let n = 1 + int(random, 16); n > 0; n--) out[int(random, out.length)] ^= 1 << int(random, 8);
    return out;
  },
  scatter: (bytes, random) => scatterNoise(bytes, random, int(random, 4)),
  duplicateChunk: (bytes, random) => {
    const start = int(random, bytes.length);
    const chunk = bytes.slice(start, start + 1 + int(random, 4096));
    const times = 1 + int(random, 4);
    let out = bytes;
    for (let i = 0; i < times; i++) out = splice(out, int(random, out.length + 1), chunk);
    return out;
  },
  garbage: (bytes, random) => {
    const junk = Uint8Array.from({ length: 1 + int(random, 512) }, () => int(random, 256));
    return splice(bytes, int(random, bytes.length + 1), junk);
  },
  extremeSize: (bytes, random) => setExtremeSize(bytes, random) ?? MUTATIONS.bitflips(bytes, random),
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

/** The size fields of the formats that have one where a JS reader finds it; undefined for other formats. */
function setExtremeSize(bytes: Uint8Array, random: Random): Uint8Array | undefined {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  const field = pick(random, ['width', 'height', 'both'] as const);
  const sets = (which: 'width' | 'height') => field === 'both' || field === which;
  if (out.length >= 33 && out[0] === 0x89 && out[1] === 0x50) { // PNG IHDR, CRC recomputed
    if (sets('width')) view.setUint32(16, pick(random, EXTREME_32));
    if (sets('height')) view.setUint32(20, pick(random, EXTREME_32));
    view.setUint32(29, crc32(out.subarray(12, 29)));
    return out;
  }
  if (out.length >= 10 && out[0] === 0x47 && out[1] === 0x49 && out[2] === 0x46) { // GIF logical screen
    if (sets('width')) view.setUint16(6, pick(random, EXTREME_16), true);
    if (sets('height')) view.setUint16(8, pick(random, EXTREME_16), true);
    return out;
  }
  if (out.length >= 30 && text(out, 0, 'RIFF') && text(out, 8, 'WEBP')) return setWebpSize(out, random, sets);
  if (out.length >= 4 && out[0] === 0xff && out[1] === 0xd8) return setJpegSize(out, view, random, sets);
  return undefined;
}

const text = (bytes: Uint8Array, at: number, value: string) =>
  [...value].every((c, i) => bytes[at + i] === c.charCodeAt(0));

function setWebpSize(out: Uint8Array, random: Random, sets: (w: 'width' | 'height') => boolean): Uint8Array {
  const view = new DataView(out.buffer);
  if (text(out, 12, 'VP8X')) { // 24-bit canvas size minus one
    const put = (at: number) => { const v = pick(random, [0, 1, 0x3fff, 0xffffff]); out.set([v & 255, (v >> 8) & 255, v >> 16], at); };
    if (sets('width')) put(24);
    if (sets('height')) put(27);
  } else if (text(out, 12, 'VP8 ')) { // 14-bit sizes with 2 scale bits
    if (sets('width')) view.setUint16(26, pick(random, EXTREME_16), true);
    if (sets('height')) view.setUint16(28, pick(random, EXTREME_16), true);
  } else if (text(out, 12, 'VP8L')) { // 14+14 bits after the signature byte
    view.setUint32(21, int(random, 2) ? 0xffffffff : (view.getUint32(21, true) | 0x0fffc000) >>> 0, true);
  }
  return out;
}

/** The first SOFn frame header: precision, height, width (16-bit big-endian). */
function setJpegSize(out: Uint8Array, view: DataView, random: Random, sets: (w: 'width' | 'height') => boolean)
  : Uint8Array | undefined {
  for (let at = 2; at + 9 < out.length;) {
    if (out[at] !== 0xff) return undefined;
    const marker = out[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      if (sets('height')) view.setUint16(at + 5, pick(random, EXTREME_16));
      if (sets('width')) view.setUint16(at + 7, pick(random, EXTREME_16));
      return out;
    }
    if (marker === 0xda) return undefined;
    at += 2 + view.getUint16(at + 2);
  }
  return undefined;
}

/** Output classes, one per case in turn: every transform output format, and the legacy relay (no transform). */
export const OUTPUTS = ['jpeg', 'png', 'webp', 'avif', 'gif', 'relay'] as const;
export type Output = (typeof OUTPUTS)[number];

export interface FuzzCase {
  index: number;
  fixture: string;
  mutations: string[];
  output: Output;
  /** The query options after `url=` (empty for a relay). */
  options: string;
  bytes: Uint8Array;
}

/** Case `index` of the run seeded `seed`: its own PRNG, so `--case K` rebuilds exactly the bytes of a full run. */
export function fuzzCase(seed: number, index: number, fixtures: readonly Fixture[]): FuzzCase {
  const random = seededRandom((Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const fixture = pick(random, fixtures);
  const mutations = [MUTATION_NAMES[index % MUTATION_NAMES.length]];
  if (random() < 0.25) mutations.push(pick(random, MUTATION_NAMES));
  let bytes = fixture.bytes;
  for (const name of mutations) bytes = MUTATIONS[name](bytes, random);
  const output = OUTPUTS[Math.floor(index / MUTATION_NAMES.length) % OUTPUTS.length];
  return { index, fixture: fixture.name, mutations, output, options: optionsFor(output, random), bytes };
}

/** A small output (the cost is in decoding the hostile input, not in encoding), sometimes animated or cropped. */
function optionsFor(output: Output, random: Random): string {
  if (output === 'relay') return '';
  const params = [`w=${1 + int(random, 400)}`, `output=${output}`];
  if (random() < 0.3) params.push(`h=${1 + int(random, 400)}`, `fit=${pick(random, ['cover', 'contain', 'fill', 'inside'])}`);
  if ((output === 'gif' || output === 'webp') && random() < 0.4) params.push('n=-1');
  if (random() < 0.2) params.push(`q=${1 + int(random, 100)}`);
  return params.join('&');
}
