/**
 * The hostile-mix corpus (issue #14 item 8), made once with a fixed seed and cached in bench/.data: fuzz-like
 * mutants of the test fixtures (bytes flipped after the header, truncations), animations (GIF and animated WebP), and
 * huge-but-legal sources (just under IMGRELAY_MAX_SOURCE_PIXELS and MAX_SOURCE_BYTES). Same bytes on every run, so
 * RSS of runs under different allocators compares the same work.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { DATA_DIR } from './data.js';
import { seededRandom } from './random.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const SEEDS = ['photo-ladybird.jpg', 'photo-wood.jpg', 'progressive.jpg', 'icc-odd.jpg', 'exif-orientation-6.jpg',
  'palette-alpha.png', 'display-p3.png', 'abstract-flow.png', 'sample.webp', 'tiny-256-lossy.webp', 'sample.avif',
  'rgba.tiff', 'animated-aero.gif', 'animated-alpha.gif'];
const MUTANTS_PER_SEED = 12;
export const HOSTILE_DIR = 'hostile';

export interface HostileCorpus {
  /** Files under `root` (relative), with the kind each one is. */
  files: { path: string; kind: 'mutant' | 'animation' | 'huge' }[];
  root: string;
}


/** Flips ~0.3 % of the bytes past the first 32 (the magic and most headers survive, so decoders get far); every
 * fourth mutant is also truncated somewhere past the middle. */
export function mutate(bytes: Uint8Array, random: () => number, index: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const flips = Math.max(4, Math.round(out.length * 0.003));
  for (let i = 0; i < flips; i++) out[32 + Math.floor(random() * (out.length - 32))] = Math.floor(random() * 256);
  return index % 4 === 3 ? out.subarray(0, Math.floor(out.length * (0.5 + random() * 0.5))) : out;
}

export async function prepareHostileCorpus(): Promise<HostileCorpus> {
  const dir = join(DATA_DIR, HOSTILE_DIR);
  mkdirSync(dir, { recursive: true });
  const files: HostileCorpus['files'] = [];
  const random = seededRandom(14_8);
  for (const seed of SEEDS) {
    const bytes = readFileSync(join(FIXTURES, seed));
    for (let i = 0; i < MUTANTS_PER_SEED; i++) {
      const path = `${HOSTILE_DIR}/m${i}-${seed}`;
      const mutant = mutate(bytes, random, i); // drawn even when cached, so later mutants stay the same bytes
      if (!existsSync(join(DATA_DIR, path))) writeFileSync(join(DATA_DIR, path), mutant);
      files.push({ path, kind: 'mutant' });
    }
  }
  files.push(...await animations(dir), ...await hugeSources(dir));
  return { files, root: DATA_DIR };
}

async function animations(dir: string): Promise<HostileCorpus['files']> {
  const out: HostileCorpus['files'] = [];
  for (const gif of ['animated-aero.gif', 'animated-alpha.gif']) {
    out.push({ path: `${HOSTILE_DIR}/${gif}`, kind: 'animation' });
    const copy = join(dir, gif);
    if (!existsSync(copy)) writeFileSync(copy, readFileSync(join(FIXTURES, gif)));
    const webp = join(dir, gif.replace(/\.gif$/, '.webp'));
    if (!existsSync(webp)) await sharp(join(FIXTURES, gif), { animated: true }).webp({ quality: 70 }).toFile(webp);
    out.push({ path: `${HOSTILE_DIR}/${gif.replace(/\.gif$/, '.webp')}`, kind: 'animation' });
  }
  return out;
}

/** 49 MP sources (the pixel limit is 50 MP): a grainy JPEG and a PNG, each under the 25 MiB byte cap. */
async function hugeSources(dir: string): Promise<HostileCorpus['files']> {
  const grain = { width: 7000, height: 7000, channels: 3 as const, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian' as const, mean: 128, sigma: 12 } };
  const jpeg = join(dir, 'huge-49mp.jpg');
  if (!existsSync(jpeg)) await sharp({ create: grain }).jpeg({ quality: 70 }).toFile(jpeg);
  const png = join(dir, 'huge-49mp.png');
  if (!existsSync(png)) {
    await sharp({ create: { width: 7000, height: 7000, channels: 4, background: { r: 40, g: 90, b: 160, alpha: 0.8 } } })
      .png({ compressionLevel: 6 }).toFile(png);
  }
  return [{ path: `${HOSTILE_DIR}/huge-49mp.jpg`, kind: 'huge' }, { path: `${HOSTILE_DIR}/huge-49mp.png`, kind: 'huge' }];
}
