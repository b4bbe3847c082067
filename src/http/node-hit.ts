/**
 * Node only: answers repeat hits (memory, or store for a URL this process already served) straight from the
 * `node:http` request, before the web-standard Request/Response adapter is involved (that adapter costs more than
 * the whole hit). Everything else — first requests, stale entries, misses, conditional requests, other routes —
 * goes to the Hono listener unchanged.
 *
 * Identical requests that arrive while the first of them is still on the full path wait for it and are then
 * answered like hits (as `MISS`, the entry was built for them): a burst of N identical cold requests costs one
 * full path and N−1 fast answers instead of N adapter round trips queued behind one another. They are released as
 * soon as the full path has the entry (it learns the URL before writing its own response), or when its response
 * ends without that (a failure, a fallback), whichever comes first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastHit, HitPath } from './hit-path.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
type OnHit = (hit: FastHit, head: boolean, seconds: number) => void;

/** Resolves once `res` is answered or abandoned, whichever comes first. */
function answered(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    res.once('finish', resolve);
    res.once('close', resolve);
  });
}

/** The three image forms (DESIGN.md routes); health checks and admin-free pages never wait for one another. */
const isImageUrl = (url: string) => url.startsWith('/?') || url.startsWith('/cdn-cgi/image/');

export function withFastHits(hits: HitPath, next: Listener, onHit?: OnHit): Listener {
  /** Raw URLs on the full path right now (GET/HEAD, unconditional): identical requests wait on `ready`. */
  const leaders = new Map<string, { ready: Promise<void>; release: () => void }>();
  hits.onLearned((url) => leaders.get(url)?.release());

  const send = (res: ServerResponse, hit: FastHit, head: boolean, started: number) => {
    res.writeHead(200, hit.headers);
    res.end(head ? undefined : hit.body);
    onHit?.(hit, head, (performance.now() - started) / 1000);
  };

  const lead = (req: IncomingMessage, res: ServerResponse, url: string) => {
    if (isImageUrl(url) && !leaders.has(url)) {
      let release = () => {};
      const ready = new Promise<void>((resolve) => { release = resolve; });
      leaders.set(url, { ready, release });
      void answered(res).then(() => {
        release();
        leaders.delete(url);
      });
    }
    return next(req, res);
  };

  const storedOrFull = (req: IncomingMessage, res: ServerResponse, url: string, started: number) =>
    hits.lookupStored(url, req.headers.accept).then(
      (stored) => (stored ? send(res, stored, req.method === 'HEAD', started) : lead(req, res, url)),
      () => lead(req, res, url),
    );

  const afterLeader = (req: IncomingMessage, res: ServerResponse, url: string, started: number) => {
    if (res.destroyed) return undefined;
    const built = hits.lookup(url, req.headers.accept, 'MISS');
    if (!built) return storedOrFull(req, res, url, started);
    // Like the full path's MISS, say how long this request waited (the prepared headers are shared, so a copy).
    const timing = `cache;desc=MISS, total;dur=${(performance.now() - started).toFixed(1)}`;
    return send(res, { ...built, headers: { ...built.headers, 'server-timing': timing } }, req.method === 'HEAD', started);
  };

  return (req, res) => {
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || req.headers['if-none-match'] !== undefined) return next(req, res);
    const started = performance.now();
    const url = req.url ?? '/';
    const hit = hits.lookup(url, req.headers.accept);
    if (hit) return send(res, hit, method === 'HEAD', started);
    const leader = leaders.get(url);
    const answer = leader ? leader.ready.then(() => afterLeader(req, res, url, started)) : storedOrFull(req, res, url, started);
    // Nothing here should throw; if something does, the full path answers (or the connection ends): never a crash.
    return answer.catch(() => (res.headersSent ? void res.destroy() : next(req, res)));
  };
}
