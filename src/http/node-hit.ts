/**
 * Node only: answers repeat hits (memory, or store for a URL this process already served) straight from the
 * `node:http` request, before the web-standard Request/Response adapter is involved (that adapter costs more than
 * the whole hit). Everything else — first requests, stale entries, misses, conditional requests, other routes —
 * goes to the Hono listener unchanged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastHit, HitPath } from './hit-path.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function withFastHits(
  hits: HitPath, next: Listener, onHit?: (hit: FastHit, head: boolean, seconds: number) => void,
): Listener {
  const send = (res: ServerResponse, hit: FastHit, head: boolean, started: number) => {
    res.writeHead(200, hit.headers);
    res.end(head ? undefined : hit.body);
    onHit?.(hit, head, (performance.now() - started) / 1000);
  };
  return (req, res) => {
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || req.headers['if-none-match'] !== undefined) return next(req, res);
    const started = performance.now();
    const url = req.url ?? '/';
    const hit = hits.lookup(url, req.headers.accept);
    if (hit) return send(res, hit, method === 'HEAD', started);
    return hits.lookupStored(url, req.headers.accept).then(
      (stored) => (stored ? send(res, stored, method === 'HEAD', started) : next(req, res)),
      () => next(req, res),
    );
  };
}
