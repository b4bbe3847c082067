/**
 * Parts of the scale-out test (test/scale-out.test.ts): an origin whose sources carry their version in their pixels and
 * log every fetch, a watcher of the shared bucket that notes when each source object lands, and a load driver with
 * bounded concurrency that records every answer (status, version, times) or failure.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { sha256Hex } from '../../src/cache/keys.js';
import { ZAKER } from './imgrelay.js';
import type { TestOrigin } from './origin.js';

export const SOURCE_COUNT = 4;
export const sourceUrl = (i: number) => `http://${ZAKER}/scale/${i}.png`;

/** Version 1 is red, version 2 green; blue tells the source apart. Far apart, so lossy AVIF/WebP keep them readable. */
const colour = (source: number, version: number) =>
  ({ r: version === 1 ? 230 : 25, g: version === 1 ? 25 : 230, b: 30 + 60 * source });

export interface OriginFetch { source: number; version: number; at: number }

/** The origin: `versions[i]` is what source i serves now; every fetch is logged with the version it got. */
export class VersionedSources {
  readonly versions = Array.from({ length: SOURCE_COUNT }, () => 1);
  readonly fetches: OriginFetch[] = [];

  async install(origin: TestOrigin): Promise<void> {
    const pngs = new Map<string, Buffer>();
    for (let i = 0; i < SOURCE_COUNT; i++) {
      for (const v of [1, 2]) {
        pngs.set(`${i}:${v}`, await sharp({ create: { width: 64, height: 48, channels: 3, background: colour(i, v) } }).png().toBuffer());
      }
    }
    for (let i = 0; i < SOURCE_COUNT; i++) {
      origin.route(new URL(sourceUrl(i)).pathname, (_req, res) => {
        const version = this.versions[i];
        this.fetches.push({ source: i, version, at: Date.now() });
        const body = pngs.get(`${i}:${version}`)!;
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.byteLength,
          'cache-control': 'public, max-age=86400', etag: `"s${i}v${version}"` }).end(body);
      });
    }
  }

  count(source: number, version?: number, after = -Infinity): number {
    return this.fetches.filter((f) => f.source === source && (version === undefined || f.version === version) && f.at > after).length;
  }
}

/** The source and version an answer shows, read from its first pixel (PNG, WebP or AVIF). */
export async function versionOf(body: Uint8Array): Promise<{ source: number; version: number }> {
  const pixel = await sharp(body).raw().toBuffer();
  return { version: pixel[0] > pixel[1] ? 1 : 2, source: Math.round((pixel[2] - 30) / 60) };
}

/**
 * When each version of each source object (`<prefix><sha256 of the source>/source`) was first seen in the bucket: the
 * object's meta carries the origin's ETag (`"s<i>v<version>"`), read once per distinct S3 ETag of the object.
 */
export class BucketWatcher {
  /**
   * Each distinct object seen (a purge deletes it, a write puts a new one): its version, when its work began (meta
   * `startedAt`), when the listing that showed it was sent (`at`) and when it answered (`seenAt`: surely landed).
   */
  private readonly events: Array<{ source: number; version: number; startedAt: number; at: number; seenAt: number }> = [];
  private readonly read = new Set<string>();
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly client: S3Client, private readonly bucket: string) {}

  async start(everyMs = 25): Promise<void> {
    const keys = await Promise.all(Array.from({ length: SOURCE_COUNT }, async (_, i) => `${await sha256Hex(sourceUrl(i))}/source`));
    this.loop = (async () => {
      while (this.running) {
        const now = Date.now(); // before the listing: what it shows existed at or after this time
        const listed = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket })).catch(() => undefined);
        const seenAt = Date.now();
        for (const object of listed?.Contents ?? []) {
          const source = keys.findIndex((key) => object.Key?.endsWith(key));
          if (source < 0 || !object.ETag || this.read.has(object.ETag)) continue;
          const stored = await this.versionStored(object.Key!, source);
          if (stored === undefined) continue; // deleted meanwhile: seen again if it comes back
          this.read.add(object.ETag);
          this.events.push({ source, ...stored, at: now, seenAt });
        }
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
  }

  /**
   * The version and `startedAt` in the object's meta; undefined when it went meanwhile (a purge deleting it mid-read
   * cuts the body).
   */
  private async versionStored(key: string, source: number): Promise<{ version: number; startedAt: number } | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const text = Buffer.from(await object.Body?.transformToByteArray() ?? []).toString('latin1');
      const match = new RegExp(`s${source}v(\\d+)`).exec(text);
      const startedAt = /"startedAt":(\d+)/.exec(text);
      return match ? { version: Number(match[1]), startedAt: startedAt ? Number(startedAt[1]) : 0 } : undefined;
    } catch {
      return undefined;
    }
  }

  /** When `version` of `source` was first seen in the bucket in a listing sent after `after`, if it was. */
  landedAt(source: number, version: number, after = -Infinity): number | undefined {
    return this.events.find((e) => e.source === source && e.version === version && e.at > after)?.at;
  }

  /**
   * When an object of `version` of `source` whose work began at or after `startedFrom` was first seen in the bucket
   * (the listing's answer: it had surely landed by then), if one was.
   */
  seenStartedFrom(source: number, version: number, startedFrom: number): number | undefined {
    return this.events.find((e) => e.source === source && e.version === version && e.startedAt >= startedFrom)?.seenAt;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

export interface Answer { path: string; source: number; version: number; sentAt: number; edge: string | null }

/** One request of the mix: a legacy relay, or a variant in the query or path form with an Accept bucket. */
export interface LoadRequest { path: string; accept: string; source: number }

const ACCEPTS = ['image/avif,image/webp,image/apng,image/*,*/*;q=0.8', 'image/webp,image/*,*/*;q=0.8', 'image/png,image/*;q=0.8'];

/**
 * Half the requests come from a small hot set (edge hits after the first), half from widths 16–160 (edge and
 * instance misses all along, so the instances keep working while one drains): new variants of stored sources.
 */
export function mixedRequest(random: () => number): LoadRequest {
  const source = Math.floor(random() * SOURCE_COUNT);
  const accept = ACCEPTS[Math.floor(random() * ACCEPTS.length)];
  const hot = random() < 0.5;
  const width = hot ? [24, 48][Math.floor(random() * 2)] : 16 + Math.floor(random() * 145);
  const form = Math.floor(random() * (hot ? 4 : 3));
  const src = sourceUrl(source);
  const path = form === 0 ? `/?url=${encodeURIComponent(src)}&w=${width}&output=auto`
    : form === 1 ? `/cdn-cgi/image/width=${width},format=auto/${src}`
      : form === 2 ? `/?url=${encodeURIComponent(src)}&w=${width}`
        : `/?${src}`;
  return { path, accept, source };
}

/** Runs `next()` requests against `base` with `concurrency` loops until `stop()`; records answers and failures. */
export class LoadDriver {
  readonly answers: Answer[] = [];
  readonly failures: Array<{ path: string; sentAt: number; what: string }> = [];

  constructor(private readonly base: () => string, private readonly next: () => LoadRequest) {}

  run(concurrency: number, stop: () => boolean): Promise<void> {
    return Promise.all(Array.from({ length: concurrency }, async () => {
      while (!stop()) await this.one(this.next());
    })).then(() => undefined);
  }

  async one(request: LoadRequest): Promise<void> {
    const sentAt = Date.now();
    try {
      const response = await fetch(`${this.base()}${request.path}`, { headers: { accept: request.accept } });
      const body = new Uint8Array(await response.arrayBuffer());
      if (response.status !== 200) {
        this.failures.push({ path: request.path, sentAt, what: `${response.status} ${Buffer.from(body).toString().slice(0, 160)}` });
        return;
      }
      const got = await versionOf(body);
      if (got.source !== request.source) this.failures.push({ path: request.path, sentAt, what: `source ${got.source}` });
      this.answers.push({ path: request.path, source: request.source, version: got.version, sentAt,
        edge: response.headers.get('x-edge-cache') });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      this.failures.push({ path: request.path, sentAt, what: `network: ${cause?.code ?? cause?.message ?? String(error)}` });
    }
  }
}
