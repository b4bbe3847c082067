/**
 * Benchmark inputs, generated once with sharp from the photos in test/fixtures and cached in bench/.data/.
 * Every cold-miss photo is a distinct crop + tint, so no layer can recognise a repeat.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const VERSION = 'v1';
export const DATA_DIR = fileURLToPath(new URL(`../.data/${VERSION}/`, import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const PHOTOS = ['photo-ladybird.jpg', 'photo-wood.jpg'];

export interface Dataset {
  /** Root folder; every path below is relative to it (and served by the origin under the same path). */
  root: string;
  cold: string[];
  hit: string;
  article: string[];
}

export async function prepareData(coldCount: number, articleCount = 12): Promise<Dataset> {
  mkdirSync(join(DATA_DIR, 'cold'), { recursive: true });
  mkdirSync(join(DATA_DIR, 'article'), { recursive: true });
  const cold: string[] = [];
  for (let i = 0; i < coldCount; i++) cold.push(await variant(`cold/photo-${pad(i)}.jpg`, i, 2000, 1500, 88));
  const article: string[] = [];
  for (let i = 0; i < articleCount; i++) article.push(await variant(`article/img-${pad(i)}.jpg`, i + 101, 1024, 683, 85));
  return { root: DATA_DIR, cold, hit: await hitImage(), article };
}

const pad = (n: number) => String(n).padStart(3, '0');

/** A distinct width×height photo: crop offset, hue, brightness and mirroring all vary with `seed`. */
async function variant(relative: string, seed: number, width: number, height: number, quality: number) {
  const path = join(DATA_DIR, relative);
  if (existsSync(path)) return relative;
  const source = join(FIXTURES, PHOTOS[seed % PHOTOS.length]);
  const meta = await sharp(source).metadata();
  const scale = 0.8 + ((seed * 7) % 20) / 100;
  const cropW = Math.min(meta.width ?? width, Math.round(width * scale * 1.2));
  const cropH = Math.min(meta.height ?? height, Math.round((cropW * height) / width));
  const left = ((seed * 97) % Math.max(1, (meta.width ?? width) - cropW + 1));
  const top = ((seed * 53) % Math.max(1, (meta.height ?? height) - cropH + 1));
  let image = sharp(source).extract({ left, top, width: cropW, height: cropH }).resize(width, height, { fit: 'cover' })
    .modulate({ hue: (seed * 37) % 360, brightness: 0.9 + (seed % 5) * 0.05 });
  if (seed % 2 === 1) image = image.flop();
  await image.jpeg({ quality }).toFile(path);
  return relative;
}

/** One ~60 KB JPEG (the typical article image relayed by the legacy form) for the cache-hit workloads. */
async function hitImage(targetBytes = 60 * 1024): Promise<string> {
  const relative = 'hit.jpg';
  const path = join(DATA_DIR, relative);
  if (existsSync(path)) return relative;
  const base = sharp(join(FIXTURES, PHOTOS[0])).resize({ width: 800 });
  let best = { quality: 80, size: Number.POSITIVE_INFINITY };
  for (let quality = 30; quality <= 95; quality += 5) {
    const size = (await base.clone().jpeg({ quality }).toBuffer()).length;
    if (Math.abs(size - targetBytes) < Math.abs(best.size - targetBytes)) best = { quality, size };
  }
  await base.clone().jpeg({ quality: best.quality }).toFile(path);
  return relative;
}
