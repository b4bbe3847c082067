/**
 * The portable SourceFetcher, on the global `fetch` (Workers; any runtime with web fetch), plus the parts of
 * fetching that do not depend on the HTTP client and are shared with the Node fetcher (guarded-fetcher.ts):
 * one total deadline over every hop and the body, manual redirects re-checked at every hop by the source policy,
 * conditional validators, the upstream status mapping (404/410 → 404, other non-2xx → 502) and header picking.
 *
 * What this fetcher cannot do that the Node one does: check the address actually connected to. On Workers the
 * runtime itself refuses private destinations at connect time (docs/edge.md); IP literals are still refused here
 * by the source policy, before any connection, and `IMGRELAY_RESOLVE` has no meaning (there is no resolver hook).
 */
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { BUILTIN_HEADER_RULES, headersFor, type HeaderRule } from './header-rules.js';
import { createHostLimiters, type HostLimiters } from './host-limiter.js';
import { refuseUpstreamVia, VIA_HEADER_VALUE } from './loop-guard.js';
import { createSourcePolicy, SOURCE_FORBIDDEN_DETAIL, type SourcePolicy } from './source-policy.js';
import type { SourceFetcher, SourceHeaders, SourceRequest, SourceResponse, Validators } from './types.js';
import { toUpstreamError } from './upstream-errors.js';
import type { ByteHold } from '../limits/byte-budget.js';
import { CappedBody, declaredLength } from './capped-body.js';

export type FetchFetcherConfig = Pick<Config, 'allowedHosts' | 'blockedHosts' | 'allowedPorts' | 'maxUrlBytes'
  | 'allowPrivateNetworks' | 'upstreamTimeoutMs' | 'maxRedirects' | 'maxSourceBytes' | 'upstreamPerHost'>
  & Partial<Pick<Config, 'publicHosts'>>;

export interface FetchFetcherDeps {
  logger?: Logger;
  /** From `loadHeaderRules`; defaults to the built-in presets. */
  headerRules?: readonly HeaderRule[];
  /** The fetch to use (defaults to the global one). */
  fetch?: typeof fetch;
}

/** What one hop ended with: a redirect to follow, or the final answer. */
export type HopOutcome = { redirectTo: string } | { response: SourceResponse };

export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export function createFetchFetcher(config: FetchFetcherConfig, deps: FetchFetcherDeps = {}): SourceFetcher {
  const logger = deps.logger ?? silentLogger;
  const policy = createSourcePolicy(config, logger);
  const limiters = createHostLimiters(config.upstreamPerHost);
  const rules = deps.headerRules ?? BUILTIN_HEADER_RULES;
  const fetchImpl = deps.fetch ?? ((input, init) => fetch(input, init));
  return {
    fetch: (request) => withUpstreamDeadline(config.upstreamTimeoutMs, request, logger, (signal) =>
      walkRedirects(request.url, { policy, maxRedirects: config.maxRedirects }, (url) =>
        limiters.run(url.hostname, signal, () => fetchHop(fetchImpl, url, {
          headers: upstreamHeaders(url, rules, request.validators, request.alternate),
          conditional: hasValidators(request.validators), signal, maxBytes: config.maxSourceBytes, hold: request.hold,
        })))),
  };
}

/**
 * Runs `run` under one total deadline (504 when it passes) and the caller's signal; whatever it throws leaves as
 * the RelayError a client should see (toUpstreamError). Shared by both fetchers.
 */
export async function withUpstreamDeadline<T>(timeoutMs: number, request: SourceRequest, logger: Logger,
  run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  // A RelayError as the reason (not AbortSignal.timeout's DOMException) so that toUpstreamError reports 504.
  const timer = setTimeout(() => deadline.abort(
    new RelayError('E_UPSTREAM_TIMEOUT', `Upstream did not answer within ${timeoutMs} ms`),
  ), timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, deadline.signal]) : deadline.signal;
  try {
    return await run(signal);
  } catch (error) {
    const relayError = toUpstreamError(error, deadline.signal, request.signal);
    if (relayError.status >= 500) logger.debug({ source: request.url.href, err: error }, 'upstream fetch failed');
    throw relayError;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What goes upstream: the host's header rules, our `Via` token (after the rules, so no rule can drop it: it is what
 * lets another imgrelay, or this one, recognise a loop) and the validators.
 */
export function upstreamHeaders(url: URL, rules: readonly HeaderRule[], validators: Validators | undefined,
  alternate = false): Record<string, string> {
  return { ...headersFor(url, rules, alternate), via: VIA_HEADER_VALUE, ...conditionalHeaders(validators) };
}

/**
 * Follows redirects by hand: every hop's URL is checked by the source policy; loops and excess are 502; an https
 * source redirected to plain http is refused (403): the bytes would travel unauthenticated, open to tampering.
 */
export async function walkRedirects(start: URL, limits: { policy: SourcePolicy; maxRedirects: number },
  hop: (url: URL) => Promise<HopOutcome>): Promise<SourceResponse> {
  let url = start;
  limits.policy.check(url);
  const seen = new Set([url.href]);
  for (let redirects = 0; ; redirects++) {
    const outcome = await hop(url);
    if ('response' in outcome) return outcome.response;
    const from = url;
    url = redirectTarget(url, outcome.redirectTo);
    if (from.protocol === 'https:' && url.protocol === 'http:') {
      throw new RelayError('E_SOURCE_FORBIDDEN', SOURCE_FORBIDDEN_DETAIL);
    }
    if (seen.has(url.href)) throw new RelayError('E_UPSTREAM', 'Upstream redirect loop');
    limits.policy.check(url);
    if (redirects + 1 > limits.maxRedirects) throw new RelayError('E_UPSTREAM', 'Too many upstream redirects');
    seen.add(url.href);
  }
}

export function redirectTarget(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (error) {
    throw new RelayError('E_UPSTREAM', 'Upstream redirect to an invalid URL', { cause: error });
  }
  next.hash = ''; // fragments are never sent; dropping them also makes loop detection exact
  return next;
}

function conditionalHeaders(validators: Validators | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (validators?.etag) headers['if-none-match'] = validators.etag;
  if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;
  return headers;
}

export const hasValidators = (validators: Validators | undefined) => Boolean(validators?.etag || validators?.lastModified);

/** The failure for a final non-2xx upstream status (redirects and 304 are handled before). */
export function upstreamStatusError(status: number): RelayError {
  if (status === 404 || status === 410) return new RelayError('E_SOURCE_NOT_FOUND', `Upstream answered ${status}`);
  return new RelayError('E_UPSTREAM', `Upstream answered ${status}`);
}

/** The upstream headers the core keeps, read through `get` (undici's header object or web Headers). */
export function pickSourceHeaders(get: (name: string) => string | undefined): SourceHeaders {
  const picked: SourceHeaders = {
    contentType: get('content-type'), cacheControl: get('cache-control'), expires: get('expires'),
    date: get('date'), age: get('age'), etag: get('etag'), lastModified: get('last-modified'),
  };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) as SourceHeaders;
}

interface HopOptions {
  headers: Record<string, string>;
  conditional: boolean;
  signal: AbortSignal;
  maxBytes: number;
  hold?: ByteHold;
}

/** One request with `redirect: 'manual'`; the body is read under the byte cap. */
async function fetchHop(fetchImpl: typeof fetch, url: URL, options: HopOptions): Promise<HopOutcome> {
  const response = await fetchImpl(url.href, {
    method: 'GET', headers: options.headers, redirect: 'manual', signal: options.signal,
  });
  const { status } = response;
  if (response.headers.has('via')) await refuseUpstreamVia(response.headers.get('via'), () => discard(response));
  const headers = pickSourceHeaders((name) => response.headers.get(name) ?? undefined);
  if (REDIRECT_STATUSES.has(status)) {
    await discard(response);
    const location = response.headers.get('location');
    if (!location) throw new RelayError('E_UPSTREAM', `Upstream redirect (${status}) without Location`);
    return { redirectTo: location };
  }
  if (status === 304 && options.conditional) {
    await discard(response);
    return { response: { notModified: true, finalUrl: url.href, headers } };
  }
  if (status < 200 || status > 299) {
    await discard(response);
    throw upstreamStatusError(status);
  }
  const body = await readBodyCapped(response, options.maxBytes, options.hold);
  return { response: { notModified: false, finalUrl: url.href, body, headers } };
}

/**
 * Reads a web Response body, refusing a declared length over `cap` up front and counting while streaming; `hold`
 * (the miss's share of IMGRELAY_MAX_INFLIGHT_MB) covers the bytes as they arrive (capped-body.ts).
 */
export async function readBodyCapped(response: Response, cap: number, hold?: ByteHold): Promise<Uint8Array> {
  let collected: CappedBody;
  try {
    collected = new CappedBody(decodedLength(response.headers), cap, hold);
  } catch (error) {
    await discard(response);
    throw error;
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    try {
      collected.add(value);
    } catch (error) {
      await reader.cancel().catch(() => {});
      throw error;
    }
  }
  return collected.finish();
}

/**
 * The declared length of the body as web fetch hands it over: unknown when a Content-Encoding was decoded (the
 * header then counts the encoded bytes).
 */
function decodedLength(headers: Headers): number | undefined {
  const encoding = headers.get('content-encoding');
  return encoding && encoding.trim().toLowerCase() !== 'identity' ? undefined : declaredLength(headers.get('content-length'));
}

/** Releases an unread body (redirects, errors): the runtime can reuse or close the connection. */
async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}
