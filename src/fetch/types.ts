/** The contract between the core and a source fetcher (undici-guarded on Node, `fetch` on Workers). */
import type { ByteHold } from '../limits/byte-budget.js';

/** Upstream validators kept with a cached source so it can be revalidated with a conditional request. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

export interface SourceRequest {
  /** Canonical source URL, parsed once; exactly this is fetched. */
  url: URL;
  /** Aborts the whole fetch (client gone, shutdown). The fetcher adds its own total deadline. */
  signal?: AbortSignal;
  /** When present, sent as If-None-Match / If-Modified-Since; a 304 comes back as `notModified`. */
  validators?: Validators;
  /** The miss's share of the in-flight byte budget: the fetcher grows it as the body streams in (503 over it). */
  hold?: ByteHold;
  /** The retry after a hotlink placeholder: the matching header rules' `alternate` headers are sent (placeholder.ts). */
  alternate?: boolean;
}

/** The upstream headers the core uses (freshness, validators); nothing else is kept. */
export interface SourceHeaders {
  contentType?: string;
  cacheControl?: string;
  expires?: string;
  date?: string;
  /** Seconds the upstream's answer already spent in caches (subtracted from its max-age). */
  age?: string;
  etag?: string;
  lastModified?: string;
}

export type SourceResponse =
  | { notModified: false; finalUrl: string; body: Uint8Array; headers: SourceHeaders }
  | { notModified: true; finalUrl: string; headers: SourceHeaders };

/**
 * Fetches a source image. Failures are thrown as RelayError:
 * E_SOURCE_FORBIDDEN (scheme/userinfo/host/port/address, any hop), E_URL_TOO_LONG, E_SOURCE_NOT_FOUND (404/410),
 * E_SOURCE_TOO_LARGE (byte cap), E_UPSTREAM (other statuses, resets, redirect trouble, DNS), E_UPSTREAM_TIMEOUT,
 * E_UPSTREAM_PLACEHOLDER (a known hotlink placeholder, when wrapped by placeholder.ts).
 */
export interface SourceFetcher {
  fetch(request: SourceRequest): Promise<SourceResponse>;
  /** Releases sockets (Node); optional. */
  close?(): Promise<void>;
}
