/**
 * The seeded random driver of the purge-fence property test (test/purge-fence.test.ts): a versioned, stalling origin
 * and a driver that interleaves requests, pauses and purges of every kind, and checks every response's version.
 */
import sharp from 'sharp';
import { surrogateKeys } from '../../src/images.js';
import type { RunningNode } from '../../src/node.js';
import { purge } from './admin.js';
import { ZAKER } from './imgrelay.js';
import type { TestOrigin } from './origin.js';

export const OTHER = 'img.other-site.com';
export const SOURCES = [`http://${ZAKER}/2021/a.png`, `http://${ZAKER}/2021/b.png`, `http://${ZAKER}/2022/c.png`,
  `http://${OTHER}/x/d.png`];
export const POLL_MS = 100;
/** Wall-clock budget of one scenario's random phase (three scenarios: the file stays well under 40 s). */
export const BUDGET_MS = 7000;
export const MAX_IN_FLIGHT = 10;
export const MIN_PURGES = 4;


/** The origin: version `v` of source `i` is a PNG whose pixels are (v, 10 + 40 i, 77); bodies stall mid-way. */
export class VersionedOrigin {
  readonly versions = SOURCES.map(() => 1);
  private readonly pngs = new Map<string, Buffer>();
  constructor(private readonly origin: TestOrigin, private readonly random: () => number) {}

  async png(source: number, version: number): Promise<Buffer> {
    const id = `${source}:${version}`;
    let png = this.pngs.get(id);
    if (!png) {
      png = await sharp({ create: { width: 24, height: 16, channels: 3, background: { r: version, g: 10 + 40 * source, b: 77 } } })
        .png().toBuffer();
      this.pngs.set(id, png);
    }
    return png;
  }

  install(): void {
    SOURCES.forEach((source, i) => this.origin.route(new URL(source).pathname, async (req, res) => {
      const version = this.versions[i];
      const body = await this.png(i, version);
      const etag = `"v${version}"`;
      // Mostly short stalls; some long enough to outlast a purge (the resize that ends after the purge).
      const stall = this.random() < 0.3 ? 600 + Math.floor(this.random() * 900) : 30 + Math.floor(this.random() * 300);
      if (req.headers['if-none-match'] === etag) {
        await delay(stall);
        res.writeHead(304, { etag, 'cache-control': 'max-age=1' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.byteLength, etag, 'cache-control': 'max-age=1' });
      res.write(body.subarray(0, 40));
      await delay(stall);
      res.end(body.subarray(40));
    }));
  }
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The version a response carries, read from its first pixel (variants are PNG: lossless). */
export async function versionOf(body: Buffer): Promise<{ version: number; source: number }> {
  const pixel = await sharp(body).raw().toBuffer();
  return { version: pixel[0], source: Math.round((pixel[1] - 10) / 40) };
}

/** `covers`: the sources the purge raised; its `versions` of the others are only a snapshot, which an instance that
 * did not poll the purges before it has not applied yet (so they must not count against that instance). */
interface AppliedPurge { answeredAt: number; by: RunningNode; versions: number[]; covers: number[]; body: object }

/** One scenario's driver: the instances, the purges answered so far, and what went wrong. */
export class Driver {
  readonly purges: AppliedPurge[] = [];
  readonly violations: string[] = [];
  readonly inFlight = new Set<Promise<void>>();
  counts = { requests: 0, purges: 0, interleavings: 0, checked: 0 };

  constructor(readonly nodes: RunningNode[], readonly origin: VersionedOrigin, readonly random: () => number) {}

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  /** The oldest version `node` may serve for source `i` now: purges it has applied (its own at once, others' once it polled). */
  required(node: RunningNode, i: number): number {
    const polledAt = node.admin.purgeLog?.stats().lastPollAt ?? -Infinity;
    let min = 0;
    for (const p of this.purges) {
      if (p.covers.includes(i) && (p.by === node || polledAt >= p.answeredAt)) min = Math.max(min, p.versions[i]);
    }
    return min;
  }

  /** The first purge that raised source `i` to `version`, described (for failure messages). */
  describePurge(i: number, version: number, sentAt: number, node: RunningNode): string {
    const p = this.purges.find((q) => q.covers.includes(i) && q.versions[i] === version);
    if (!p) return 'no purge';
    return `sent ${sentAt - p.answeredAt} ms after the purge ${JSON.stringify(p.body)} answered on instance `
      + `${this.nodes.indexOf(p.by)}; this instance polled last at answer${(node.admin.purgeLog?.stats().lastPollAt ?? 0) - p.answeredAt} ms`;
  }

  url(node: RunningNode, i: number, variant: boolean): string {
    return variant ? `${node.url}/?url=${encodeURIComponent(SOURCES[i])}&w=${this.pick([8, 12])}&output=png`
      : `${node.url}/?${SOURCES[i]}`;
  }

  request(node: RunningNode, i: number, variant: boolean): Promise<void> {
    const url = this.url(node, i, variant);
    const required = this.required(node, i);
    const sentAt = Date.now();
    this.counts.requests += 1;
    const work = fetch(url).then(async (response) => {
      const body = Buffer.from(await response.arrayBuffer());
      if (response.status !== 200) return void this.violations.push(`${url}: ${response.status} ${body.toString().slice(0, 200)}`);
      const got = await versionOf(body);
      this.counts.checked += 1;
      if (got.source !== i || got.version < required) {
        this.violations.push(`instance ${this.nodes.indexOf(node)}: ${url}: version ${got.version} (source ${got.source}) after`
          + ` a purge that requires ${required} (${response.headers.get('x-cache')}; `
          + `${this.describePurge(i, required, sentAt, node)})`);
      }
    }).finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
    return work;
  }

  /** A random selector; the origin's covered images change, then the purge is sent and awaited. */
  async purge(): Promise<void> {
    const { body, covers } = await this.selector();
    SOURCES.forEach((_, i) => { if (covers.includes(i)) this.origin.versions[i] += 1; });
    const versions = [...this.origin.versions];
    const by = this.pick(this.nodes);
    this.counts.purges += 1;
    this.counts.interleavings += this.inFlight.size;
    await purge(by, body);
    this.purges.push({ answeredAt: Date.now(), by, versions, covers, body });
  }

  private async selector(): Promise<{ body: object; covers: number[] }> {
    const i = Math.floor(this.random() * SOURCES.length);
    const host = new URL(SOURCES[i]).hostname;
    const sameHost = SOURCES.flatMap((s, j) => (new URL(s).hostname === host ? [j] : []));
    const [srcTag] = await surrogateKeys(new URL(SOURCES[i]));
    switch (this.pick(['urls', 'proxy-url', 'hosts', 'prefixes', 'src-tag', 'host-tag', 'all'])) {
      case 'urls': return { body: { urls: [SOURCES[i]] }, covers: [i] };
      case 'proxy-url': return { body: { urls: [`https://cdn.example/?${SOURCES[i]}`] }, covers: [i] };
      case 'hosts': return { body: { hosts: [host] }, covers: sameHost };
      case 'prefixes': {
        const prefix = SOURCES[i].slice(0, SOURCES[i].lastIndexOf('/') + 1);
        return { body: { prefixes: [prefix] }, covers: SOURCES.flatMap((s, j) => (s.startsWith(prefix) ? [j] : [])) };
      }
      case 'src-tag': return { body: { tags: [srcTag] }, covers: [i] };
      case 'host-tag': return { body: { tags: [`host-${host}`] }, covers: sameHost };
      default: return { body: { all: true }, covers: SOURCES.map((_, j) => j) };
    }
  }

  /**
   * Random requests, pauses and purges until the budget is spent and at least MIN_PURGES purges answered (purges are
   * slow on a loaded machine: a store purge waits for queued writes), within twice the budget; then all settles.
   */
  async run(budgetMs: number): Promise<void> {
    const end = Date.now() + budgetMs;
    const cap = end + budgetMs;
    while (Date.now() < end || (this.counts.purges < MIN_PURGES && Date.now() < cap)) {
      const roll = this.random();
      if (roll < 0.12) await this.purge();
      else if (roll < 0.7 && this.inFlight.size < MAX_IN_FLIGHT) {
        void this.request(this.pick(this.nodes), Math.floor(this.random() * SOURCES.length), this.random() < 0.5);
      } else await delay(10 + Math.floor(this.random() * 120));
    }
    await Promise.all([...this.inFlight]);
  }

  /** After every instance polled: every form of every image is the newest version everywhere. */
  async finalCheck(): Promise<void> {
    await delay(POLL_MS * 3 + 500);
    for (const node of this.nodes) {
      for (let i = 0; i < SOURCES.length; i++) {
        for (const variant of [false, true]) {
          const url = this.url(node, i, variant);
          const got = await versionOf(Buffer.from(await (await fetch(url)).arrayBuffer()));
          if (got.version !== this.origin.versions[i]) {
            this.violations.push(`final: ${url}: version ${got.version}, the origin serves ${this.origin.versions[i]}`);
          }
        }
      }
    }
  }
}
