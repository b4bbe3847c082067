/**
 * The lab the workerd suite runs against, on the Node side (global setup and the pool's outbound service).
 *
 * Code inside workerd cannot reach arbitrary hosts here (no network but loopback) and must never try, so every
 * outbound fetch of the Worker under test goes through `labRouter`, miniflare's `outboundService`: like the Node
 * tests' IMGRELAY_RESOLVE, it connects public-looking names to REAL servers on loopback — the image host
 * `zkres2.myzaker.com` to a real HTTP origin (test/helpers/origin.ts) and `origin.imgrelay.test` to the real Node
 * imgrelay (sharp and all, with its own IMGRELAY_RESOLVE to the same origin). Nothing is faked; only the route to
 * loopback is, because workerd cannot be pointed at loopback by name. Any other host gets a 502 from the router
 * and never reaches a network.
 */
import { fetch as miniflareFetch, Response as MiniflareResponse, type Request as MiniflareRequest } from 'miniflare';
import { IMAGE_HOST, NODE_ORIGIN_HOST } from './lab-hosts.js';

export interface LabAddresses {
  /** `http://127.0.0.1:<port>` of the image origin. */
  imageOrigin: string;
  /** `http://127.0.0.1:<port>` of the Node imgrelay. */
  nodeOrigin: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabAddresses;
  }
}

/** Routes the Worker's outbound requests to the lab's loopback servers by host name. */
export function labRouter(lab: LabAddresses) {
  const routes: Record<string, string> = { [IMAGE_HOST]: lab.imageOrigin, [NODE_ORIGIN_HOST]: lab.nodeOrigin };
  return async (request: MiniflareRequest): Promise<MiniflareResponse> => {
    const url = new URL(request.url);
    const target = routes[url.hostname];
    if (!target) return new MiniflareResponse(`lab: no route to ${url.hostname}`, { status: 502 });
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      if (name !== 'host') headers[name] = value;
    });
    return miniflareFetch(target + url.pathname + url.search, {
      method: request.method, headers, redirect: 'manual',
      body: request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer(),
    });
  };
}
