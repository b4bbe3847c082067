/**
 * Composition of the public app: routes, CORS preflight, health, and the uniform error surface.
 * Runtime-agnostic: the Node and Workers entries build the dependencies and hand them in.
 */
import { Hono } from 'hono';
import type { Config } from './config.js';
import { RelayError } from './errors.js';
import type { ImageService } from './images.js';
import type { Logger } from './logger.js';
import type { HitPath } from './http/hit-path.js';
import { imageRoute } from './http/image-route.js';
import { problemResponse } from './http/problem.js';
import type { RequestOptions } from './url/options.js';
import type { RequestLog } from './observe/request-log.js';

export interface Lifecycle {
  /** True once shutdown began: /readyz fails so the load balancer stops sending new requests. */
  draining: boolean;
}

export interface AppDeps {
  config: Config;
  images: ImageService;
  logger: Logger;
  lifecycle: Lifecycle;
  /** IMGRELAY_LEGACY_OPTIONS, parsed once by the entry. */
  legacyOptions?: RequestOptions;
  /** Learns served URLs for the entry's fast memory-hit path (Node). */
  hits?: HitPath;
  /** The request log, shared with the entry's fast hit path (Node); the image route makes its own otherwise. */
  requestLog?: RequestLog;
}

const PREFLIGHT_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': '*',
  'access-control-max-age': '86400',
  'cache-control': 'public, max-age=86400',
};

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const problem = (error: RelayError) => problemResponse(error, { negativeTtlS: deps.config.negativeTtlS });
  const images = imageRoute(deps);

  app.get('/healthz', () => new Response('ok', { headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } }));
  app.get('/readyz', () => deps.lifecycle.draining
    ? problem(new RelayError('E_OVERLOADED', 'Draining: shutting down', { retryAfter: 5 }))
    : new Response('ready', { headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } }));
  app.get('/', images);
  app.get('/cdn-cgi/image/*', images);
  app.options('*', () => new Response(null, { status: 204, headers: PREFLIGHT_HEADERS }));
  app.all('/', () => problem(new RelayError('E_METHOD_NOT_ALLOWED', 'Use GET or HEAD')));
  app.all('/cdn-cgi/image/*', () => problem(new RelayError('E_METHOD_NOT_ALLOWED', 'Use GET or HEAD')));
  app.notFound(() => problem(new RelayError('E_NOT_FOUND', 'No such route')));
  app.onError((error) => {
    deps.logger.error({ err: error }, 'unhandled error');
    return problemResponse(error, { negativeTtlS: deps.config.negativeTtlS });
  });
  return app;
}
