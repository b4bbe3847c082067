/**
 * The one place where errors become responses: `application/problem+json` (RFC 9457) with a stable `code`
 * and an explicit Cache-Control — `no-store` for request-caused errors and 5xx, a short max-age for 404 and 422
 * (the source is gone or broken: worth a brief negative cache, never a long one).
 */
import { type RelayError, toRelayError } from '../errors.js';

const BRIEFLY_CACHEABLE = new Set(['E_SOURCE_NOT_FOUND', 'E_IMAGE_INVALID']);

export interface ProblemOptions {
  /** Seconds for the short negative cache of 404/422. */
  negativeTtlS: number;
  requestId?: string;
}

export function problemBody(error: RelayError, requestId?: string): string {
  return JSON.stringify({
    type: `https://imgrelay.dev/errors/${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.detail,
    code: error.code,
    ...(requestId ? { instance: `urn:request:${requestId}` } : {}),
  });
}

/** The headers of a problem response (also written raw by src/http/node-server.ts, before any request exists). */
export function problemHeaders(error: RelayError, options: ProblemOptions): Record<string, string> {
  const cacheable = BRIEFLY_CACHEABLE.has(error.code) && options.negativeTtlS > 0;
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    'cache-control': cacheable ? `public, max-age=${options.negativeTtlS}` : 'no-store',
    'access-control-allow-origin': '*',
    'x-content-type-options': 'nosniff',
  };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  return headers;
}

export function problemResponse(thrown: unknown, options: ProblemOptions): Response {
  const error = toRelayError(thrown);
  return new Response(problemBody(error, options.requestId), { status: error.status, headers: problemHeaders(error, options) });
}
