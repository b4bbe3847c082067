/**
 * A closed-loop HTTP client for the slow (transforming) workloads: `concurrency` workers each send their next
 * request as soon as the previous answer is fully read. Keep-alive connections, one per worker.
 * (Cache-hit throughput uses wrk instead: a Node client would saturate its own core first.)
 */
import { Agent, request } from 'undici';

export interface Exchange {
  url: string;
  status: number;
  latencyMs: number;
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
}

export interface LoopResult {
  elapsedMs: number;
  exchanges: Exchange[];
  /** Requests that did not answer 200 (status 0 = network error). */
  failures: Exchange[];
}

export interface LoopOptions {
  concurrency: number;
  headers?: Record<string, string>;
  /** Open every connection first with one request each to this (cheap) URL, so timing excludes TCP set-up. */
  preconnectUrl?: string;
}

export async function closedLoop(urls: readonly string[], options: LoopOptions): Promise<LoopResult> {
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 30_000, pipelining: 1 });
  if (options.preconnectUrl) {
    const preconnect = options.preconnectUrl;
    await Promise.all(Array.from({ length: options.concurrency }, () => fetchOne(preconnect, agent)));
  }
  const exchanges: Exchange[] = new Array(urls.length);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < urls.length) {
      const index = next++;
      exchanges[index] = await fetchOne(urls[index], agent, options.headers);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsedMs = performance.now() - started;
  await agent.close();
  return { elapsedMs, exchanges, failures: exchanges.filter((e) => e.status !== 200) };
}

/** Fires all requests at once (one connection each), e.g. N identical cold requests for coalescing. */
export function burst(urls: readonly string[], options: Omit<LoopOptions, 'concurrency'> = {}): Promise<LoopResult> {
  return closedLoop(urls, { ...options, concurrency: urls.length });
}

async function fetchOne(url: string, agent: Agent, headers?: Record<string, string>): Promise<Exchange> {
  const started = performance.now();
  try {
    const response = await request(url, { dispatcher: agent, headers, headersTimeout: 120_000, bodyTimeout: 120_000 });
    const body = await response.body.arrayBuffer();
    return { url, status: response.statusCode, latencyMs: performance.now() - started, bytes: body.byteLength,
      headers: response.headers };
  } catch {
    return { url, status: 0, latencyMs: performance.now() - started, bytes: 0, headers: {} };
  }
}

export const headerValue = (exchange: Exchange, name: string): string =>
  String(exchange.headers[name.toLowerCase()] ?? '');
