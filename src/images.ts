/**
 * The image service: from a canonical request to cached bytes. It wires the stages —
 * guarded fetch → sniff → transform (bounded pool) — into loaders for the tiered cache, so every stage runs once
 * per key however many requests wait on it. Portable: dependencies are injected by the entries.
 */
import type { Config } from './config.js';
import { RelayError, fail } from './errors.js';
import type { SourceFetcher, SourceRequest, SourceResponse } from './fetch/types.js';
import { etagOf, cacheKey, SOURCE_VARIANT, variantMaterial, sha256Hex, type CacheKey, type TextDigest }
  from './cache/keys.js';
import { expiryFor } from './cache/freshness.js';
import { boundStale } from './cache/stale-bound.js';
import type { Loaded, Loader, TieredCache } from './cache/tiered.js';
import type { StoredEntry } from './cache/types.js';
import { MIME_TYPES, sniff } from './transform/sniff.js';
import type { ImageFormat, TransformResult, TransformSpec, Transformer } from './transform/types.js';
import { acceptBucket, dependsOnAccept, resolveOutput } from './transform/negotiate.js';
import { canonicalSpec } from './url/options.js';
import { capOutputSize } from './url/output-limit.js';
import type { ImageRequest } from './url/request.js';
import type { MemoryTier } from './cache/memory.js';
import { type Metrics, noopMetrics } from './metrics.js';
import { ByteBudget, type ByteHold } from './limits/byte-budget.js';
import { type MissGate, withMissGate } from './policy/miss-gate.js';
import { type StageTimings, addStage } from './observe/stage-timings.js';

/** Without a configured budget every hold is granted (still counted, so nothing else changes). */
const UNBOUNDED = new ByteBudget(0);

/** A variant's source is read as an input: the memory tier keeps variants, the store keeps sources (tiered.ts). */
const AS_INPUT = { input: true } as const;

export interface ImageServiceDeps {
  config: Config;
  fetcher: SourceFetcher;
  transformer: Transformer;
  cache: TieredCache;
  memory: MemoryTier;
  /** Parse-time source checks (scheme, userinfo, port, host lists, literal addresses), run before any tier. */
  policy: { check(url: URL): void };
  now?: () => number;
  /** Strong ETag of a body; defaults to the portable Web Crypto one (Node passes node:crypto's, same value). */
  etag?: (body: Uint8Array) => string | Promise<string>;
  /** Hex SHA-256 of a string (surrogate keys); Web Crypto by default, node:crypto's on Node (same value). */
  digest?: TextDigest;
  /** Stage latencies and origin fetches are reported here (the public route reports requests to it too). */
  metrics?: Metrics;
  /** IMGRELAY_MAX_INFLIGHT_MB: every miss holds its source bytes against it (503 over it); none = unbounded. */
  budget?: ByteBudget;
  /** IMGRELAY_MISS_RATE: a client's request that must fetch or transform passes here first (policy/miss-gate.ts). */
  missGate?: MissGate;
}

/** Who asks, for bounded cost: the request's signal (a job nobody waits for is dropped) and the client's address. */
export interface RequestContext {
  signal?: AbortSignal;
  /**
   * The client (policy/client.ts: an address or IPv6 /64, through trusted proxies): its misses are limited (missGate)
   * and waiting for a transform slot is fair between clients. Absent = one shared queue, never limited.
   */
  client?: string;
  /** Filled with the stages this request ran (fetch, queue, transform, store), for Server-Timing and the log. */
  timings?: StageTimings;
}

export interface ImageResult extends Loaded {
  /** True when the output format was chosen from Accept (the response carries Vary: Accept). */
  varyAccept: boolean;
  /** The canonical options of the entry served ('' = the original bytes). */
  canonicalSpec: string;
}


export class ImageService {
  private readonly now: () => number;

  constructor(private readonly deps: ImageServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  private etagOf(body: Uint8Array): string | Promise<string> {
    return (this.deps.etag ?? etagOf)(body);
  }

  get metrics(): Metrics {
    return this.deps.metrics ?? noopMetrics;
  }

  /** One origin fetch, timed and counted by host. */
  private async fetchSource(request: SourceRequest, timings?: StageTimings): Promise<SourceResponse> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const response = await this.deps.fetcher.fetch(request);
      this.metrics.originFetch(request.url.hostname, response.notModified ? 0 : response.body.byteLength,
        response.notModified ? 'not-modified' : 'ok', seconds());
      return response;
    } catch (error) {
      this.metrics.originFetch(request.url.hostname, 0, 'error', seconds());
      throw error;
    } finally {
      this.metrics.stage('fetch', seconds());
      addStage(timings, 'fetch', performance.now() - started);
    }
  }

  /** The bytes for `request` as the client with `accept` should get them. */
  async get(asked: ImageRequest, accept: string | undefined, context: RequestContext = {}): Promise<ImageResult> {
    const request = withOutputCap(asked, this.deps.config.maxOutputDimension);
    this.deps.policy.check(request.source);
    this.deps.transformer.check?.(request.options.spec);
    try {
      return await this.getChecked(request, accept, context);
    } catch (error) {
      // Operator-imposed legacy options must never break an old article: relay what cannot be transformed.
      if (!isLegacyTransformFailure(request, error)) throw error;
      return this.getChecked({ ...request, options: { spec: {}, response: request.options.response } }, accept, context);
    }
  }

  private async getChecked(request: ImageRequest, accept: string | undefined, context: RequestContext): Promise<ImageResult> {
    const spec = request.options.spec;
    const canonical = canonicalSpec(spec);
    const varyAccept = dependsOnAccept(spec);
    const bucket = varyAccept ? acceptBucket(accept) : undefined;
    const key = cacheKey(request.source.href, variantMaterial(canonical, bucket));
    const loader = canonical === '' ? this.sourceLoader(request.source, context.timings)
      : this.variantLoader(request.source, spec, bucket ?? 'base', context);
    // Remembered per variant: a source too big to transform may still be relayed as it is.
    const loaded = await this.deps.memory.remembering(key.memory, () => this.lookup(key, loader, context));
    return { ...loaded, varyAccept, canonicalSpec: canonical };
  }

  /** The tiers, then `loader` on a miss: charged to this request's client (policy/miss-gate.ts says when). */
  private lookup(key: CacheKey, loader: Loader, context: RequestContext): Promise<Loaded> {
    return withMissGate(loader, this.deps.missGate, context.client, async (gated) => boundStale(this.deps.cache, key,
      gated, await this.deps.cache.get(key, gated, { signal: context.signal, timings: context.timings }), this.now(),
      this.deps.config));
  }

  private sourceKey(url: URL): CacheKey {
    return cacheKey(url.href, SOURCE_VARIANT);
  }

  /**
   * The original bytes: fetched once, sniffed, kept with the upstream's validators and freshness. The load holds its
   * own share of the in-flight budget from the first fetched byte until the fetch settles, never a caller's: the
   * flight is shared, so a caller that leaves (and releases its hold) must not leave the bytes still streaming
   * uncounted. `signal` (the flight's) aborts the fetch only once every request waiting for THIS source left.
   */
  private sourceLoader(url: URL, timings?: StageTimings): Loader {
    return {
      load: (signal) => this.holding(async (hold) => this.sourceEntry(url, await this.fetchSource({ url, hold, signal }, timings))),
      revalidate: (stale) => this.holding(async (hold) => {
        const response = await this.fetchSource({ url, validators: stale.meta.validators, hold }, timings);
        if (!response.notModified) return this.sourceEntry(url, response);
        // RFC 9111 §4.3.4: a 304 updates the stored freshness only with the headers it carries. An entry of an older
        // version has no lifetime to keep: it gets what a response without caching headers gets (the default TTL).
        const now = this.now();
        const { cacheControl, expires } = response.headers;
        const ttlMs = cacheControl || expires || stale.meta.ttlMs === undefined
          ? expiryFor(response.headers, now, this.deps.config) - now : stale.meta.ttlMs;
        return { body: stale.body, meta: { ...stale.meta, expiresAt: now + ttlMs, ttlMs } };
      }),
    };
  }

  /**
   * Runs `work` with a hold of its own opened now (503 E_OVERLOADED before any work when the budget is spent) and
   * released when `work` ends.
   */
  private async holding<T>(work: (hold: ByteHold) => Promise<T>): Promise<T> {
    const own = (this.deps.budget ?? UNBOUNDED).open();
    try {
      return await work(own);
    } finally {
      own.release();
    }
  }

  private async sourceEntry(url: URL, response: SourceResponse): Promise<StoredEntry> {
    if (response.notModified) fail('E_UPSTREAM', 'Upstream answered 304 to an unconditional request');
    const format = sniff(response.body);
    if (!format) fail('E_UNSUPPORTED_MEDIA', 'The source is not an image');
    const now = this.now();
    const { etag, lastModified } = response.headers;
    const expiresAt = expiryFor(response.headers, now, this.deps.config);
    return {
      body: response.body,
      meta: {
        contentType: MIME_TYPES[format], etag: await this.etagOf(response.body), storedAt: now,
        expiresAt, ttlMs: expiresAt - now, sourceUrl: url.href,
        validators: etag || lastModified ? { etag, lastModified } : undefined,
        size: response.body.byteLength, tags: await surrogateKeys(url, this.deps.digest),
      },
    };
  }

  /**
   * A variant: built from the source entry (any tier), so a new size of a known source never refetches it. The
   * source's own load counts its bytes while they stream in; from then on the variant's hold covers them until the
   * transform has let go of them (the hold is opened first, so a spent budget refuses the miss before any work).
   */
  private variantLoader(url: URL, spec: TransformSpec, bucket: 'avif' | 'webp' | 'base', context: RequestContext): Loader {
    const sourceKey = this.sourceKey(url);
    const { client, timings } = context;
    const sourceLoader = this.sourceLoader(url, timings);
    return {
      load: (signal) => this.holding(async (hold) => {
        const { entry } = await this.deps.cache.get(sourceKey, sourceLoader, { ...AS_INPUT, signal, timings });
        hold.cover(entry.body.byteLength);
        return this.transform(entry, spec, bucket, { signal, client, timings });
      }),
      revalidate: (stale) => this.holding(async (hold) => {
        const source = await this.currentSource(sourceKey, sourceLoader);
        if (source.meta.etag !== stale.meta.sourceEtag) {
          hold.cover(source.body.byteLength);
          return this.transform(source, spec, bucket);
        }
        // The variant carries its source's freshness: same expiry, same lifetime (so the same Age downstream).
        return { body: stale.body, meta: { ...stale.meta, expiresAt: source.meta.expiresAt, ttlMs: source.meta.ttlMs } };
      }),
    };
  }

  /** The source entry, revalidated first when it is past its expiry. */
  private async currentSource(key: CacheKey, loader: Loader): Promise<StoredEntry> {
    const { entry } = await this.deps.cache.get(key, loader, AS_INPUT);
    return this.deps.cache.isStale(entry) ? this.deps.cache.refresh(key, loader, entry, AS_INPUT) : entry;
  }

  private async transform(source: StoredEntry, spec: TransformSpec, bucket: 'avif' | 'webp' | 'base',
    context: RequestContext = {}): Promise<StoredEntry> {
    const sourceFormat = sniff(source.body) as ImageFormat;
    const output = resolveOutput(spec, bucket, sourceFormat);
    const started = performance.now();
    let ranFrom: number | undefined;
    const { timings, ...job } = context;
    let result: TransformResult;
    try {
      result = await this.deps.transformer.transform({ source: source.body, sourceFormat, spec, output, ...job,
        onStart: () => { ranFrom = performance.now(); } });
      // One that ran with no pool to report its start (no onStart) counts all as `transform`.
      ranFrom ??= started;
    } finally {
      const ended = performance.now();
      this.metrics.stage('transform', (ended - started) / 1000);
      // The pool says when the job left its queue; a job that never started waited all along (refused, or its
      // caller left).
      const ran = ranFrom ?? ended;
      addStage(timings, 'queue', ran - started);
      addStage(timings, 'transform', ended - ran);
    }
    return {
      body: result.body,
      meta: {
        ...source.meta, contentType: result.contentType, etag: await this.etagOf(result.body), storedAt: this.now(),
        size: result.body.byteLength, validators: undefined, sourceEtag: source.meta.etag,
        varyAccept: dependsOnAccept(spec),
      },
    };
  }
}

/** Key and pipeline both get the capped size: `w=9000` is the entry of `w=<cap>` (output-limit.ts says why). */
function withOutputCap(request: ImageRequest, max: number): ImageRequest {
  const spec = capOutputSize(request.options.spec, max);
  return spec === request.options.spec ? request : { ...request, options: { ...request.options, spec } };
}

function isLegacyTransformFailure(request: ImageRequest, error: unknown): boolean {
  return request.form === 'legacy' && canonicalSpec(request.options.spec) !== '' && error instanceof RelayError
    && (error.code === 'E_UNSUPPORTED_MEDIA' || error.code === 'E_IMAGE_INVALID');
}

/** Surrogate keys naming the source (every variant of it) and its host, for CDN purges by tag. */
export async function surrogateKeys(url: URL, digest: TextDigest = sha256Hex): Promise<string[]> {
  return [`src-${(await digest(url.href)).slice(0, 24)}`, `host-${url.hostname}`];
}
