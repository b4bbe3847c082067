/**
 * Node only: answers repeat memory hits straight from the `node:http` request, before the web-standard
 * Request/Response adapter is involved (that adapter costs more than the whole hit). Everything else — first
 * requests, stale entries, conditional requests, other routes — goes to the Hono listener unchanged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastHit, HitPath } from './hit-path.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function withFastHits(
  hits: HitPath, next: Listener, onHit?: (hit: FastHit, head: boolean, seconds: number) => void,
): Listener {
  return (req, res) => {
    const method = req.method;
    if ((method === 'GET' || method === 'HEAD') && req.headers['if-none-match'] === undefined) {
      const started = onHit ? performance.now() : 0;
      const hit = hits.lookup(req.url ?? '/', req.headers.accept);
      if (hit) {
        res.writeHead(200, hit.headers);
        res.end(method === 'HEAD' ? undefined : hit.body);
        onHit?.(hit, method === 'HEAD', (performance.now() - started) / 1000);
        return;
      }
    }
    return next(req, res);
  };
}
