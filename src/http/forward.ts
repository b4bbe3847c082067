/**
 * Transform requests at the edge (DESIGN.md "Edge"): the Workers build cannot resize, so it fetches
 * `<IMGRELAY_ORIGIN_URL>/<same path and query>` from the Node origin with the client's Accept and serves the
 * answer with the same headers as the Node service (image-response.ts builds both). The origin's answer is a
 * cache entry like any other: keyed by the canonical source and variant material — the output-format bucket
 * included — in memory, the Cache API and R2 (tiered.ts: single-flight, stale-while-revalidate, revalidated with
 * If-None-Match against the origin). The origin's errors keep their status and code, and `onerror=redirect`
 * answers the same 302 to the source as the origin (its own 302 included).
 *
 * Requests with `default=` are relayed from the origin without caching here: the origin may answer with its
 * stand-in image, which must not be stored as the variant.
 */
import type { Config } from '../config.js';
import { ERROR_CODES, type ErrorCode, RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { cacheKey, etagOf, variantMaterial } from '../cache/keys.js';
import { expiryFor, type TtlBounds } from '../cache/freshness.js';
import type { MemoryTier } from '../cache/memory.js';
import { boundStale } from '../cache/stale-bound.js';
import type { Loader, TieredCache } from '../cache/tiered.js';
import type { StoredEntry } from '../cache/types.js';
import { pickSourceHeaders, readBodyCapped } from '../fetch/fetch-fetcher.js';
import { surrogateKeys } from '../images.js';
import { acceptBucket, dependsOnAccept } from '../transform/negotiate.js';
import { canonicalSpec, type RequestOptions } from '../url/options.js';
import { capOutputSize } from '../url/output-limit.js';
import type { PresetTable } from '../url/presets.js';
import { applyVariantRules } from '../policy/variants.js';
import { type ImageRequest, parseImageRequest, splitRequestUrl } from '../url/request.js';
import { cachePolicy, responseFreshness, withRequestMaxAge } from './cache-control.js';
import { imageResponse } from './image-response.js';
import { failure, redirectOnError } from './image-route.js';
import { ByteBudget } from '../limits/byte-budget.js';

export interface ForwarderDeps {
  config: Config;
  /** Base URL of the Node origin (IMGRELAY_ORIGIN_URL); a path prefix is kept. */
  originUrl: string;
  cache: TieredCache;
  memory: MemoryTier;
  policy: { check(url: URL): void };
  logger: Logger;
  fetch?: typeof fetch;
  now?: () => number;
  /** The isolate's in-flight budget: an origin answer being read holds its bytes (503 E_OVERLOADED over it). */
  budget?: ByteBudget;
}

export interface Forwarder {
  handle(raw: Request, image: ImageRequest): Promise<Response>;
}

/**
 * The parsed request when it asks for a transform (options that change the bytes, or legacy options), for GET
 * and HEAD only; undefined for relays, other routes and unparseable URLs (the app answers those, errors included).
 */
export function transformRequestOf(raw: Request, legacyOptions?: RequestOptions, presets?: PresetTable): ImageRequest | undefined {
  if (raw.method !== 'GET' && raw.method !== 'HEAD') return undefined;
  const { pathname, rawQuery } = splitRequestUrl(raw.url);
  try {
    const image = parseImageRequest(pathname, rawQuery, legacyOptions, presets);
    return image && canonicalSpec(image.options.spec) !== '' ? image : undefined;
  } catch {
    return undefined;
  }
}

export function createForwarder(deps: ForwarderDeps): Forwarder {
  const now = deps.now ?? Date.now;
  const fetchImpl = deps.fetch ?? ((input, init) => fetch(input, init));
  const base = deps.originUrl.replace(/\/+$/, '');
  const { defaultTtlS, maxTtlS } = deps.config;
  const origin = { fetchImpl, config: deps.config, now, budget: deps.budget ?? new ByteBudget(0),
    ttlBounds: { defaultTtlS, maxTtlS, minTtlS: 0 } };
  const caching = cachePolicy(deps.config.cacheControl, deps.config.staleIfErrorS);
  return {
    async handle(raw, image) {
      const started = performance.now();
      const target = base + splitRequestUrl(raw.url).pathAndQuery;
      const accept = raw.headers.get('accept') ?? undefined;
      try {
        deps.policy.check(image.source);
        if (image.options.response.fallback) return await relayUncached(origin, target, accept);
        // Keyed as the origin keys it (allowed variants, then the output cap): `w=801` is the edge's `w=1024` too.
        // Presets-only refuses here too (400), or a rounded ad-hoc request would be served a preset's cached entry.
        const spec = capOutputSize(applyVariantRules(image, deps.config.variants).options.spec, deps.config.maxOutputDimension);
        const varyAccept = dependsOnAccept(spec);
        // The bucket is in the key (not left to Vary): one entry per output format a client can get.
        const bucket = varyAccept ? acceptBucket(accept) : undefined;
        const key = cacheKey(image.source.href, variantMaterial(canonicalSpec(spec), bucket));
        const loader = originLoader(origin, target, accept, image.source);
        // The Cache API keeps an expired entry for days: STALE only within IMGRELAY_STALE_IF_ERROR_S, as on Node.
        const loaded = await deps.memory.remembering(key.memory,
          async () => boundStale(deps.cache, key, loader, await deps.cache.get(key, loader), now(), deps.config));
        const policy = withRequestMaxAge(caching, image.options.response.maxAgeS);
        return imageResponse(loaded.entry, {
          method: raw.method, ifNoneMatch: raw.headers.get('if-none-match'), state: loaded.state, varyAccept,
          ...responseFreshness(loaded.entry.meta, now(), policy, loaded.state === 'STALE'),
          filename: image.options.response.filename,
          serverTiming: `cache;desc=${loaded.state}, total;dur=${(performance.now() - started).toFixed(1)}`,
        });
      } catch (error) {
        // Cloudflare `onerror=redirect`: the same 302 to the source as the Node service, whoever failed.
        return redirectOnError(image, error) ?? failure(deps, error, raw.url);
      }
    },
  };
}

interface Origin {
  fetchImpl: typeof fetch;
  config: Config;
  now: () => number;
  budget: ByteBudget;
  /** The config's TTL bounds without MIN_TTL_S (expiryOf says why), built once rather than per origin answer. */
  ttlBounds: TtlBounds;
}

/** A miss asks the origin; an expired entry is revalidated with If-None-Match (a 304 keeps the bytes). */
function originLoader(origin: Origin, target: string, accept: string | undefined, source: URL): Loader {
  return {
    load: async () => toEntry(origin, await askOrigin(origin, target, accept), source),
    revalidate: async (stale) => {
      const response = await askOrigin(origin, target, accept, stale.meta.validators?.etag ?? stale.meta.etag);
      if (response.status !== 304) return toEntry(origin, response, source);
      await response.body?.cancel();
      const expiresAt = expiryOf(origin, response);
      return { body: stale.body, meta: { ...stale.meta, expiresAt, ttlMs: expiresAt - origin.now() } };
    },
  };
}

/** One request to the origin: only Accept (and the validator) is sent; the deadline covers a cold transform. */
async function askOrigin(origin: Origin, target: string, accept?: string, ifNoneMatch?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (accept) headers.accept = accept;
  if (ifNoneMatch) headers['if-none-match'] = ifNoneMatch;
  const { upstreamTimeoutMs, transformTimeoutS } = origin.config;
  let response: Response;
  try {
    response = await origin.fetchImpl(target, {
      headers, redirect: 'manual', signal: AbortSignal.timeout(upstreamTimeoutMs + transformTimeoutS * 1000),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new RelayError(timedOut ? 'E_UPSTREAM_TIMEOUT' : 'E_UPSTREAM',
      timedOut ? 'The origin did not answer in time' : 'The origin could not be reached', { cause: error });
  }
  if (response.status === 200 || (response.status === 304 && ifNoneMatch)) return response;
  throw await redirectedFailure(response) ?? await originFailure(response);
}

/**
 * The origin's `onerror=redirect` answer (302, `X-Imgrelay-Error`) as the failure it stands for. Rebuilt per request
 * by redirectOnError (same Location, `no-store` and code), never stored: the edge may remember the failure for
 * its negative TTL, and a request of the same variant without `onerror=redirect` must get the error, not a 302.
 */
async function redirectedFailure(response: Response): Promise<RelayError | undefined> {
  const code = response.headers.get('x-imgrelay-error');
  if (response.status !== 302 || !code || !Object.hasOwn(ERROR_CODES, code)) return undefined;
  await response.body?.cancel();
  return new RelayError(code as ErrorCode, `The origin could not use the source (${code})`);
}

/** The origin's problem (same code, status and detail) or, for anything else it says, a 502. */
async function originFailure(response: Response): Promise<RelayError> {
  const text = await response.text().catch(() => '');
  let problem: { code?: unknown; detail?: unknown } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch { /* not a problem document */ }
  const code = typeof problem.code === 'string' && Object.hasOwn(ERROR_CODES, problem.code)
    ? problem.code as ErrorCode : undefined;
  if (!code) return new RelayError('E_UPSTREAM', `The origin answered ${response.status}`);
  const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
  return new RelayError(code, typeof problem.detail === 'string' ? problem.detail : ERROR_CODES[code].title,
    Number.isFinite(retryAfter) ? { retryAfter } : {});
}

async function toEntry(origin: Origin, response: Response, source: URL): Promise<StoredEntry> {
  const body = await readBodyHeld(origin, response);
  const etag = await etagOf(body);
  const now = origin.now();
  const expiresAt = expiryOf(origin, response);
  return {
    body,
    meta: {
      contentType: response.headers.get('content-type') ?? 'application/octet-stream', etag, storedAt: now,
      expiresAt, ttlMs: expiresAt - now, sourceUrl: source.href, size: body.byteLength,
      validators: { etag: response.headers.get('etag') ?? etag }, tags: await surrogateKeys(source),
      varyAccept: (response.headers.get('vary') ?? '').toLowerCase().includes('accept'),
    },
  };
}

/** The answer's bytes, held against the budget while they stream in (refused before reading when it is spent). */
async function readBodyHeld(origin: Origin, response: Response): Promise<Uint8Array> {
  let hold;
  try {
    hold = origin.budget.open();
  } catch (error) {
    await response.body?.cancel();
    throw error;
  }
  try {
    return await readBodyCapped(response, origin.config.maxSourceBytes, hold);
  } finally {
    hold.release();
  }
}

/**
 * Freshness as a shared cache reads the origin's answer (s-maxage first), at most MAX_TTL_S. Never raised to
 * MIN_TTL_S: the origin already clamped its lifetime, and what it sends short is short on purpose (a STALE answer,
 * an entry near its end); raising it would make it a fresh edge entry served as a HIT. An origin `X-Cache: STALE`
 * answer is expired here at once, so the edge serves it STALE and revalidates, as the origin does.
 */
function expiryOf(origin: Origin, response: Response): number {
  const now = origin.now();
  if (response.headers.get('x-cache')?.toUpperCase() === 'STALE') return now;
  const headers = pickSourceHeaders((name) => response.headers.get(name) ?? undefined);
  return expiryFor(headers, now, origin.ttlBounds);
}

/** `default=` requests: the origin's answer as it is (status, headers, body), never stored at the edge. */
async function relayUncached(origin: Origin, target: string, accept?: string): Promise<Response> {
  const response = await askOrigin(origin, target, accept);
  return new Response(response.body, { status: response.status, headers: response.headers });
}
