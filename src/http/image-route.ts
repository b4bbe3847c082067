/**
 * The public image handler: parse → image service (tiers, single-flight, fetch, transform) → response.
 * Errors go to problem.ts; a `default=` fallback replaces source errors with a briefly cached stand-in.
 */
import type { Context } from 'hono';
import type { Config } from '../config.js';
import { RelayError, fail, toRelayError } from '../errors.js';
import { VIA_HEADER_VALUE, viaNamesImgrelay } from '../fetch/loop-guard.js';
import type { ImageResult, ImageService, RequestContext } from '../images.js';
import type { Logger } from '../logger.js';
import { applyVariantRules } from '../policy/variants.js';
import { type HintedRequest, applyClientHints } from '../policy/client-hints.js';
import type { RequestOptions } from '../url/options.js';
import { type ImageRequest, parseImageRequest, parseSourceUrl, splitRequestUrl } from '../url/request.js';
import type { HitPath } from './hit-path.js';
import { type CachePolicy, cachePolicy, responseFreshness, withRequestMaxAge } from './cache-control.js';
import { signaturePolicy } from '../policy/signature.js';
import { imageResponse } from './image-response.js';
import { problemResponse } from './problem.js';
import { clientIdentity, trustedProxies } from '../policy/client.js';
import { RequestLog, errorDetail } from '../observe/request-log.js';
import { type StageTimings, serverTiming } from '../observe/stage-timings.js';

export interface ImageRouteDeps {
  config: Config;
  images: ImageService;
  logger: Logger;
  legacyOptions?: RequestOptions;
  /** The fast path for repeat memory hits learns each URL served here (optional: the edge has none). */
  hits?: HitPath;
  /** One per process, shared with the Node fast hit path (one hit-sampling counter); made here when absent. */
  requestLog?: RequestLog;
}

/** Source failures a `default=` fallback may stand in for (not request errors, overload or E_RATE_LIMITED). */
const FALLBACK_CODES = new Set([
  'E_SOURCE_FORBIDDEN', 'E_SOURCE_NOT_FOUND', 'E_SOURCE_TOO_LARGE', 'E_UNSUPPORTED_MEDIA', 'E_IMAGE_INVALID',
  'E_UPSTREAM', 'E_UPSTREAM_TIMEOUT', 'E_UPSTREAM_PLACEHOLDER',
]);
const FALLBACK_MAX_AGE_S = 60;

export function imageRoute(deps: ImageRouteDeps) {
  const caching = cachePolicy(deps.config.cacheControl, deps.config.staleIfErrorS);
  const signatures = signaturePolicy(deps.config.signing);
  const trusted = trustedProxies(deps.config.missLimit.trustedProxies);
  const requestLog = deps.requestLog ?? new RequestLog(deps.logger, deps.config.observe.logHitSample);
  return async (c: Context): Promise<Response> => {
    const started = performance.now();
    const raw = c.req.raw;
    const url = raw.url;
    const requestId = crypto.randomUUID();
    const timings: StageTimings = {};
    let request: ImageRequest | undefined;
    try {
      if (url.length > deps.config.maxUrlBytes) fail('E_URL_TOO_LONG', `The URL is longer than ${deps.config.maxUrlBytes} bytes`);
      // An imgrelay (this one or another) fetching from us: refused before any work (loop-guard.ts).
      if (viaNamesImgrelay(raw.headers.get('via'))) fail('E_LOOP', 'The request came through an imgrelay: a proxy loop');
      const { pathname, rawQuery, pathAndQuery } = splitRequestUrl(url);
      request = parseImageRequest(pathname, rawQuery, deps.legacyOptions, deps.config.variants.presets)
        ?? fail('E_NOT_FOUND', 'No such route');
      await signatures.check(request); // before any work: a refused URL costs no fetch (policy/signature.ts)
      const hinted = applyClientHints(request, raw.headers, deps.config.clientHints, deps.config.variants);
      const allowed = applyVariantRules(hinted.request, deps.config.variants);
      const accept = raw.headers.get('accept') ?? undefined;
      const client = clientIdentity(peerAddress(c), raw.headers, trusted);
      const result = await getWithFallback(deps, allowed, accept, { signal: raw.signal, client, timings });
      const policy = withRequestMaxAge(caching, request.options.response.maxAgeS);
      const response = respond(raw, request, result, policy, started, timings, hinted);
      response.headers.set('x-request-id', requestId);
      // A hint-eligible URL's response depends on request headers the fast path does not key on: never learned.
      if (!result.fallbackFor && !hinted.acceptCh) learn(deps, pathAndQuery, request, result, policy);
      const bytes = raw.method === 'HEAD' || response.status !== 200 ? 0 : result.entry.body.byteLength;
      report(deps, request.form, response, result.state, started, bytes);
      if (requestLog.wants(result.state)) {
        requestLog.write({ requestId, form: request.form, host: request.source.host, cache: result.state,
          status: response.status, bytes, ms: performance.now() - started, stages: timings });
      }
      return response;
    } catch (error) {
      const response = redirectOnError(request, error)
        ?? failure(deps, error, url, { clientLeft: raw.signal.aborted, requestId, logged: true });
      report(deps, 'error', response, undefined, started, 0);
      const relayError = toRelayError(error);
      requestLog.write({ requestId, ...formAndHost(url, deps.legacyOptions), status: response.status, bytes: 0,
        ms: performance.now() - started, stages: timings, code: relayError.code, detail: errorDetail(relayError) });
      return response;
    }
  };
}

/** For a failed request's log line: its form and source host when its URL parses (errors only: parsed again). */
function formAndHost(url: string, legacyOptions?: RequestOptions): { form: string; host?: string } {
  try {
    const { pathname, rawQuery } = splitRequestUrl(url);
    const parsed = parseImageRequest(pathname, rawQuery, legacyOptions);
    return parsed ? { form: parsed.form, host: parsed.source.host } : { form: 'error' };
  } catch {
    return { form: 'error' };
  }
}

/** Teaches the fast path this URL → its canonical entry and response options. */
function learn(
  deps: ImageRouteDeps, pathAndQuery: string, request: ImageRequest, result: ImageResult, caching: CachePolicy,
): void {
  deps.hits?.remember(pathAndQuery, {
    form: request.form, source: request.source.href, canonicalSpec: result.canonicalSpec,
    varyAccept: result.varyAccept, caching, headerOptions: { filename: request.options.response.filename },
  });
}

/**
 * Cloudflare `onerror=redirect`: a source failure answers 302 to the source itself, so the browser shows the
 * original. `no-store`: the failure may be brief, and a cached redirect would bypass this service for its lifetime.
 */
export function redirectOnError(request: ImageRequest | undefined, error: unknown): Response | undefined {
  if (!request?.options.response.onErrorRedirect || !(error instanceof RelayError) || !FALLBACK_CODES.has(error.code)) return undefined;
  return new Response(null, {
    status: 302, headers: { location: request.source.href, 'cache-control': 'no-store', 'x-imgrelay-error': error.code },
  });
}

interface Served extends ImageResult {
  fallbackFor?: RelayError;
}

/** The connection's remote address on Node (@hono/node-server's `incoming`); undefined elsewhere. */
function peerAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

async function getWithFallback(deps: ImageRouteDeps, request: ImageRequest, accept: string | undefined,
  context: RequestContext): Promise<Served> {
  try {
    return await deps.images.get(request, accept, context);
  } catch (error) {
    const fallback = request.options.response.fallback;
    if (!fallback || !(error instanceof RelayError) || !FALLBACK_CODES.has(error.code)) throw error;
    const standIn: ImageRequest = { ...request, source: parseSourceUrl(fallback) };
    const result = await deps.images.get(standIn, accept, context).catch(() => { throw error; });
    return { ...result, fallbackFor: error };
  }
}

function respond(raw: Request, request: ImageRequest, result: Served, caching: CachePolicy, started: number,
  timings: StageTimings, hinted: HintedRequest): Response {
  const fallback = result.fallbackFor;
  // A stand-in keeps its own short lifetime: it says nothing about the real source's freshness.
  const freshness = fallback ? { cacheControl: `public, max-age=${FALLBACK_MAX_AGE_S}`, age: undefined }
    : responseFreshness(result.entry.meta, Date.now(), caching, result.state === 'STALE');
  return imageResponse(result.entry, {
    method: raw.method,
    ifNoneMatch: raw.headers.get('if-none-match'),
    state: result.state,
    varyAccept: result.varyAccept,
    ...freshness,
    filename: request.options.response.filename,
    serverTiming: serverTiming(result.state, timings, performance.now() - started),
    extra: { ...(fallback ? { 'x-imgrelay-fallback': fallback.code } : {}), ...hintHeaders(hinted, result.varyAccept) },
  });
}

/** `Accept-CH` on eligible responses; `Vary` naming exactly the hints used (and Accept when the format followed it). */
function hintHeaders(hinted: HintedRequest, varyAccept: boolean): Record<string, string> {
  if (!hinted.acceptCh) return {};
  const vary = [...(varyAccept ? ['Accept'] : []), ...hinted.vary];
  return { 'accept-ch': hinted.acceptCh, ...(vary.length > 0 ? { vary: vary.join(', ') } : {}) };
}

/** Metrics for one request (the image service's sink: a no-op unless the entry wired one). */
function report(
  deps: ImageRouteDeps, route: string, response: Response, cache: string | undefined, started: number, bytes: number,
) {
  const seconds = (performance.now() - started) / 1000;
  deps.images.metrics.request({ route, status: response.status, cache, seconds, bytesOut: response.status === 200 ? bytes : 0 });
}

export interface FailureOptions {
  /** The client went away first. */
  clientLeft?: boolean;
  /** The id the request's log line and response carry; a new one when absent. */
  requestId?: string;
  /** The caller writes the request's log line (with the code): a refusal needs no line of its own. */
  logged?: boolean;
}

/** The problem response for a failed image request, logged once: refusals by code, server failures whole. */
export function failure(deps: Pick<ImageRouteDeps, 'config' | 'logger'>, error: unknown, url: string,
  options: FailureOptions = {}): Response {
  const requestId = options.requestId ?? crypto.randomUUID();
  const status = error instanceof RelayError ? error.status : 500;
  const base = { requestId, url: url.slice(0, 2048), status };
  // Refusals are expected traffic: their code is enough. Server-side failures keep the whole error for diagnosis.
  // A client that left while its image was queued aborts only its own wait (single-flight.ts): nothing failed.
  if (options.clientLeft) deps.logger.info(base, 'client left before its image was ready');
  // A classified 5xx (upstream, timeout, overload, loop) is told whole by the request line (code, detail): a stack per
  // request would let a flood (a forged Via, an overload) write kilobytes each. Unclassified errors (bugs) keep theirs.
  else if (status >= 500 && !(options.logged && error instanceof RelayError)) {
    deps.logger.error({ ...base, err: error }, 'image request failed');
  } else if (!options.logged) deps.logger.info({ ...base, code: (error as RelayError).code }, 'image request refused');
  const response = problemResponse(error, { negativeTtlS: deps.config.negativeTtlS, requestId });
  response.headers.set('x-request-id', requestId);
  // Our token on a loop refusal lets the imgrelay that asked recognise the loop too (508 instead of a generic 502).
  if (error instanceof RelayError && error.code === 'E_LOOP') response.headers.set('via', VIA_HEADER_VALUE);
  return response;
}
