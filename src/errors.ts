/**
 * The one error type of imgrelay. Every failure that reaches a client is a RelayError with a stable
 * `E_*` code; `src/http/problem.ts` is the only place that turns it into a response.
 */

/** Stable codes (a contract: see DESIGN.md) with their HTTP status and short title. */
export const ERROR_CODES = {
  E_BAD_REQUEST: { status: 400, title: 'Bad request' },
  E_UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  E_SOURCE_FORBIDDEN: { status: 403, title: 'Source not allowed' },
  E_SIGNATURE: { status: 403, title: 'Signature missing or wrong' },
  E_SOURCE_NOT_FOUND: { status: 404, title: 'Source not found' },
  E_NOT_FOUND: { status: 404, title: 'Not found' },
  E_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  E_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  E_SOURCE_TOO_LARGE: { status: 413, title: 'Source too large' },
  E_URL_TOO_LONG: { status: 414, title: 'URL too long' },
  E_UNSUPPORTED_MEDIA: { status: 415, title: 'Unsupported media' },
  E_IMAGE_INVALID: { status: 422, title: 'Invalid image' },
  E_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  E_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  E_INTERNAL: { status: 500, title: 'Internal error' },
  E_NOT_IMPLEMENTED: { status: 501, title: 'Not implemented' },
  E_UPSTREAM: { status: 502, title: 'Upstream failure' },
  E_UPSTREAM_PLACEHOLDER: { status: 502, title: 'Upstream sent a hotlink placeholder' },
  E_OVERLOADED: { status: 503, title: 'Overloaded' },
  E_LOOP: { status: 508, title: 'Loop detected' },
  E_ADMIN_DISABLED: { status: 503, title: 'Admin API disabled' },
  E_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout' },
  E_TRANSFORM_TIMEOUT: { status: 504, title: 'Transform timeout' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RelayErrorOptions {
  /** Seconds, sent as `Retry-After` (503, 429). */
  retryAfter?: number;
  cause?: unknown;
}

export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, detail: string, options: RelayErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.title = ERROR_CODES[code].title;
    this.retryAfter = options.retryAfter;
  }

  get detail(): string {
    return this.message;
  }
}

export const isRelayError = (e: unknown): e is RelayError => e instanceof RelayError;

/** Shorthand for `throw new RelayError(…)` in expression position. */
export function fail(code: ErrorCode, detail: string, options?: RelayErrorOptions): never {
  throw new RelayError(code, detail, options);
}

/** Anything thrown that is not a RelayError is a bug; it becomes E_INTERNAL, never a crash. */
export function toRelayError(e: unknown): RelayError {
  if (e instanceof RelayError) return e;
  return new RelayError('E_INTERNAL', 'Unexpected internal error', { cause: e });
}
