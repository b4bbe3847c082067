/**
 * The Node SourceFetcher: undici with a guarded connector (see connector.ts), manual redirects re-checked at
 * every hop, one total deadline over all hops and the body, a byte cap counted while streaming, and
 * per-host concurrency. Only header rules' headers (and validators) are sent upstream.
 */
import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createAddressPolicy } from './address-policy.js';
import { createGuardedConnector } from './connector.js';
import { BUILTIN_HEADER_RULES, headersFor, type HeaderRule } from './header-rules.js';
import { createHostLimiters, type HostLimiters } from './host-limiter.js';
import { createSourcePolicy, type SourcePolicy } from './source-policy.js';
import type { SourceFetcher, SourceHeaders, SourceRequest, SourceResponse, Validators } from './types.js';
import { toUpstreamError } from './upstream-errors.js';

export interface GuardedFetcherDeps {
  logger: Logger;
  /** From `loadHeaderRules` (user file + presets); defaults to the built-in presets. */
  headerRules?: readonly HeaderRule[];
}

type HopOutcome = { redirectTo: string } | { response: SourceResponse };

/** What every fetch of one fetcher shares. */
interface FetchContext {
  config: Config;
  logger: Logger;
  rules: readonly HeaderRule[];
  sourcePolicy: SourcePolicy;
  limiters: HostLimiters;
  agent: Agent;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function createGuardedFetcher(config: Config, deps: GuardedFetcherDeps): SourceFetcher {
  const { logger } = deps;
  const addressPolicy = createAddressPolicy(config.allowPrivateNetworks);
  const agent = new Agent({
    connect: createGuardedConnector({
      addressPolicy, resolveRules: config.resolve, connectTimeoutMs: config.connectTimeoutMs, logger,
    }),
    // The total deadline is the real bound; these only keep undici from waiting longer than it.
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
  });
  const context: FetchContext = {
    config, logger, agent,
    rules: deps.headerRules ?? BUILTIN_HEADER_RULES,
    sourcePolicy: createSourcePolicy(config, logger, addressPolicy),
    limiters: createHostLimiters(config.upstreamPerHost),
  };
  return {
    fetch: (request) => fetchWithDeadline(context, request),
    close: () => agent.destroy(),
  };
}

/** One deadline over every hop and the body; the caller's signal aborts too. Only RelayErrors escape. */
async function fetchWithDeadline(context: FetchContext, request: SourceRequest): Promise<SourceResponse> {
  const { upstreamTimeoutMs } = context.config;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(
    new RelayError('E_UPSTREAM_TIMEOUT', `Upstream did not answer within ${upstreamTimeoutMs} ms`),
  ), upstreamTimeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, deadline.signal]) : deadline.signal;
  try {
    return await followRedirects(context, request, signal);
  } catch (error) {
    const relayError = toUpstreamError(error, deadline.signal, request.signal);
    if (relayError.status >= 500) context.logger.debug({ source: request.url.href, err: error }, 'upstream fetch failed');
    throw relayError;
  } finally {
    clearTimeout(timer);
  }
}

/** Manual redirects: every hop re-checked by the source policy (and again by the connector). */
async function followRedirects(context: FetchContext, request: SourceRequest, signal: AbortSignal)
  : Promise<SourceResponse> {
  const { sourcePolicy, limiters, config } = context;
  let url = request.url;
  sourcePolicy.check(url);
  const seen = new Set([url.href]);
  for (let redirects = 0; ; redirects++) {
    const current = url;
    const outcome = await limiters.run(current.hostname, signal,
      () => fetchHop(context, current, request.validators, signal));
    if ('response' in outcome) return outcome.response;
    url = redirectTarget(current, outcome.redirectTo);
    if (seen.has(url.href)) throw new RelayError('E_UPSTREAM', 'Upstream redirect loop');
    sourcePolicy.check(url);
    if (redirects + 1 > config.maxRedirects) throw new RelayError('E_UPSTREAM', 'Too many upstream redirects');
    seen.add(url.href);
  }
}

/** One request, its body read under the cap; the host's concurrency slot is held until the body is in. */
async function fetchHop(context: FetchContext, url: URL, validators: Validators | undefined, signal: AbortSignal)
  : Promise<HopOutcome> {
  const conditional = conditionalHeaders(validators);
  const response = await context.agent.request({
    origin: url.origin, path: url.pathname + url.search, method: 'GET', signal,
    headers: { ...headersFor(url, context.rules), ...conditional },
  });
  const { statusCode: status, headers, body } = response;
  if (REDIRECT_STATUSES.has(status)) {
    await discard(body);
    const location = header(headers, 'location');
    if (!location) throw new RelayError('E_UPSTREAM', `Upstream redirect (${status}) without Location`);
    return { redirectTo: location };
  }
  if (status === 304 && Object.keys(conditional).length > 0) {
    await discard(body);
    return { response: { notModified: true, finalUrl: url.href, headers: pickSourceHeaders(headers) } };
  }
  if (status < 200 || status > 299) {
    await discard(body);
    if (status === 404 || status === 410) throw new RelayError('E_SOURCE_NOT_FOUND', `Upstream answered ${status}`);
    throw new RelayError('E_UPSTREAM', `Upstream answered ${status}`);
  }
  const bytes = await readCapped(response, context.config.maxSourceBytes);
  return { response: { notModified: false, finalUrl: url.href, body: bytes, headers: pickSourceHeaders(headers) } };
}

function redirectTarget(from: URL, location: string): URL {
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

/** Reads the body, failing before reading when the declared length is over the cap and while streaming. */
async function readCapped(response: Dispatcher.ResponseData, cap: number): Promise<Uint8Array> {
  const declared = Number(header(response.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    // undici's body emits an AbortError when destroyed unread; without a listener it would crash the process.
    response.body.on('error', () => {}).destroy();
    throw tooLarge(cap);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > cap) throw tooLarge(cap); // leaving the loop destroys the stream
    chunks.push(chunk);
  }
  // A fresh Uint8Array owning exactly these bytes (Buffer.concat may hand out a slice of a shared pool).
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function tooLarge(cap: number): RelayError {
  return new RelayError('E_SOURCE_TOO_LARGE', `Source is larger than ${cap} bytes`);
}

/** Drains a small body so the connection can be reused; undici's dump gives up (and closes) past 128 KiB. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  await body.dump().catch(() => {});
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function pickSourceHeaders(headers: Dispatcher.ResponseData['headers']): SourceHeaders {
  const picked: SourceHeaders = {
    contentType: header(headers, 'content-type'),
    cacheControl: header(headers, 'cache-control'),
    expires: header(headers, 'expires'),
    date: header(headers, 'date'),
    etag: header(headers, 'etag'),
    lastModified: header(headers, 'last-modified'),
  };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) as SourceHeaders;
}
