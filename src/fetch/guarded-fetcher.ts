/**
 * The Node SourceFetcher: undici with a guarded connector (see connector.ts), manual redirects re-checked at
 * every hop, one total deadline over all hops and the body, a byte cap counted while streaming, and
 * per-host concurrency. Only header rules' headers (and validators) are sent upstream. The deadline, the redirect
 * walk, the status mapping and header picking are the portable ones of fetch-fetcher.ts (shared with Workers).
 */
import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createAddressPolicy } from './address-policy.js';
import { createGuardedConnector } from './connector.js';
import { createDnsResolver } from './dns.js';
import { BUILTIN_HEADER_RULES, type HeaderRule } from './header-rules.js';
import { refuseUpstreamVia } from './loop-guard.js';
import { createHostLimiters, type HostLimiters } from './host-limiter.js';
import { createSourcePolicy, type SourcePolicy } from './source-policy.js';
import type { SourceFetcher, SourceRequest, SourceResponse } from './types.js';
import {
  hasValidators, type HopOutcome, pickSourceHeaders, REDIRECT_STATUSES, upstreamHeaders, upstreamStatusError,
  walkRedirects, withUpstreamDeadline,
} from './fetch-fetcher.js';
import { CappedBody, declaredLength } from './capped-body.js';
import type { ByteHold } from '../limits/byte-budget.js';

export interface GuardedFetcherDeps {
  logger: Logger;
  /** From `loadHeaderRules` (user file + presets); defaults to the built-in presets. */
  headerRules?: readonly HeaderRule[];
}

/** What every fetch of one fetcher shares. */
interface FetchContext {
  config: Config;
  logger: Logger;
  rules: readonly HeaderRule[];
  sourcePolicy: SourcePolicy;
  limiters: HostLimiters;
  agent: Agent;
}

export function createGuardedFetcher(config: Config, deps: GuardedFetcherDeps): SourceFetcher {
  const { logger } = deps;
  const addressPolicy = createAddressPolicy(config.allowPrivateNetworks);
  const dns = createDnsResolver({ servers: config.dnsServers, timeoutMs: config.connectTimeoutMs });
  const agent = new Agent({
    connect: createGuardedConnector({
      addressPolicy, resolveRules: config.resolve, connectTimeoutMs: config.connectTimeoutMs, logger,
      resolveName: (host) => dns.resolve(host),
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
    fetch: (request) => withUpstreamDeadline(config.upstreamTimeoutMs, request, logger,
      (signal) => followRedirects(context, request, signal)),
    close: () => {
      dns.close();
      return agent.destroy();
    },
  };
}

/** Manual redirects: every hop re-checked by the source policy (and again by the connector). */
function followRedirects(context: FetchContext, request: SourceRequest, signal: AbortSignal): Promise<SourceResponse> {
  const { sourcePolicy, limiters, config } = context;
  return walkRedirects(request.url, { policy: sourcePolicy, maxRedirects: config.maxRedirects }, (url) =>
    limiters.run(url.hostname, signal, () => fetchHop(context, url, request, signal)));
}

/** One request, its body read under the cap; the host's concurrency slot is held until the body is in. */
async function fetchHop(context: FetchContext, url: URL, request: SourceRequest, signal: AbortSignal)
  : Promise<HopOutcome> {
  const response = await context.agent.request({
    origin: url.origin, path: url.pathname + url.search, method: 'GET', signal,
    headers: upstreamHeaders(url, context.rules, request.validators, request.alternate),
  });
  const { statusCode: status, headers, body } = response;
  if (headers.via !== undefined) await refuseUpstreamVia(header(headers, 'via'), () => discard(body));
  const picked = () => pickSourceHeaders((name) => header(headers, name));
  if (REDIRECT_STATUSES.has(status)) {
    await discard(body);
    const location = header(headers, 'location');
    if (!location) throw new RelayError('E_UPSTREAM', `Upstream redirect (${status}) without Location`);
    return { redirectTo: location };
  }
  if (status === 304 && hasValidators(request.validators)) {
    await discard(body);
    return { response: { notModified: true, finalUrl: url.href, headers: picked() } };
  }
  if (status < 200 || status > 299) {
    await discard(body);
    throw upstreamStatusError(status);
  }
  const bytes = await readCapped(response, context.config.maxSourceBytes, request.hold);
  return { response: { notModified: false, finalUrl: url.href, body: bytes, headers: picked() } };
}

/**
 * Reads the body under the byte cap (refused before reading when the declared length is over it) and the miss's
 * hold on the in-flight budget: the declared length is reserved before the first byte, else each chunk as it comes.
 */
async function readCapped(response: Dispatcher.ResponseData, cap: number, hold?: ByteHold): Promise<Uint8Array> {
  let collected: CappedBody;
  try {
    collected = new CappedBody(declaredLength(header(response.headers, 'content-length')), cap, hold);
  } catch (error) {
    // undici's body emits an AbortError when destroyed unread; without a listener it would crash the process.
    response.body.on('error', () => {}).destroy();
    throw error;
  }
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    collected.add(chunk); // a throw leaves the loop, which destroys the stream
  }
  return collected.finish();
}

/** Drains a small body so the connection can be reused; undici's dump gives up (and closes) past 128 KiB. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  await body.dump().catch(() => {});
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
