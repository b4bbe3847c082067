/**
 * Maps whatever a fetch threw to the RelayError a client sees: deadline → 504, caller abort, DNS failure,
 * refused or reset connection, TLS failure → 502. RelayErrors (403, 404, 413, …) pass through unchanged.
 */
import { RelayError } from '../errors.js';

/** undici's own timeouts: the connect or the headers/body of one request took too long. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function toUpstreamError(error: unknown, deadline: AbortSignal, callerSignal?: AbortSignal): RelayError {
  if (error instanceof RelayError) return error;
  if (deadline.aborted && deadline.reason instanceof RelayError) return deadline.reason;
  if (callerSignal?.aborted) return new RelayError('E_UPSTREAM', 'Upstream fetch aborted', { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    return new RelayError('E_UPSTREAM_TIMEOUT', 'Upstream did not answer in time', { cause: error });
  }
  return new RelayError('E_UPSTREAM', 'Upstream request failed', { cause: error });
}
