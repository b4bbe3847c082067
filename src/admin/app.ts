/**
 * The admin app (its own listener, IMGRELAY_ADMIN_HOST:IMGRELAY_ADMIN_PORT; DESIGN.md "Admin"): purge, warm,
 * stats, metrics and a small page. Never open: with no token configured every route answers 503, and every route
 * but the static page needs a bearer token. Every response is `Cache-Control: no-store`; every action is logged
 * with the token's id. It never serves images (that is the public port's job, and the public app has no admin route).
 */
import { Hono, type Context } from 'hono';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { problemResponse } from '../http/problem.js';
import type { RequestOptions } from '../url/options.js';
import type { VariantRules } from '../policy/variants-config.js';
import type { ImageService } from '../images.js';
import type { TokenChecker } from './auth.js';
import type { PromMetrics } from './metrics.js';
import { PAGE_CSP, PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import { DASHBOARD_JS } from './dashboard-page.js';
import type { AdminAssets } from './assets.js';
import type { AdminJournal } from './journal.js';
import type { Purger } from './purge.js';
import { resolvePurge } from './selectors.js';
import { warm } from './warm.js';

export interface AdminAppDeps {
  tokens: TokenChecker;
  purger: Purger;
  images: ImageService;
  metrics: PromMetrics;
  stats: () => Record<string, unknown>;
  logger: Logger;
  legacyOptions?: RequestOptions;
  variants?: VariantRules;
  warmConcurrency?: number;
  /** The dashboard: its samples (`GET /history`), recent purges and warms, and the charting library it loads. */
  history: (since?: number) => Record<string, unknown>;
  journal: AdminJournal;
  assets: AdminAssets;
}

/** A warm body carries a whole article: generous, but bounded. */
const MAX_BODY_CHARS = 6 * 1024 * 1024;

const problem = (error: RelayError, extra: Record<string, string> = {}) => {
  const response = problemResponse(error, { negativeTtlS: 0 });
  for (const [name, value] of Object.entries(extra)) response.headers.set(name, value);
  return response;
};

type Env = { Variables: { tokenId: string } };

export function createAdminApp(deps: AdminAppDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('cache-control', 'no-store');
    c.res.headers.set('x-content-type-options', 'nosniff');
    c.res.headers.set('referrer-policy', 'no-referrer');
    c.res.headers.delete('access-control-allow-origin'); // the page is same-origin; no other site may read answers
  });
  app.use('*', async (c, next) => {
    if (deps.tokens.enabled) return next();
    return problem(new RelayError('E_ADMIN_DISABLED',
      'The admin API is disabled: no token is configured (set IMGRELAY_ADMIN_TOKENS to one or more comma-separated '
      + 'tokens of at least 16 characters)'));
  });
  addStaticRoutes(app, deps.assets);
  app.use('*', (c, next) => authenticate(deps, c, next));
  addApiRoutes(app, deps);
  app.notFound(() => problem(new RelayError('E_NOT_FOUND', 'No such admin route')));
  app.onError((error) => {
    if (!(error instanceof RelayError)) deps.logger.error({ err: error }, 'admin: unhandled error');
    return problem(error instanceof RelayError ? error : new RelayError('E_INTERNAL', 'Unexpected internal error'));
  });
  return app;
}

function addStaticRoutes(app: Hono<Env>, assets: AdminAssets): void {
  const noImages = () => problem(new RelayError('E_NOT_FOUND', 'The admin port serves no images: use the public port'));
  app.get('/', (c) => {
    if (new URL(c.req.url).search !== '') return noImages();
    return c.body(PAGE_HTML, 200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PAGE_CSP,
      'x-frame-options': 'DENY' });
  });
  app.get('/admin.js', (c) => c.body(PAGE_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/admin.css', (c) => c.body(PAGE_CSS, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.get('/dashboard.js', (c) => c.body(DASHBOARD_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/uplot.js', (c) => c.body(assets.uplotJs, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/uplot.css', (c) => c.body(assets.uplotCss, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.all('/cdn-cgi/image/*', noImages);
}

async function authenticate(deps: AdminAppDeps, c: Context<Env>, next: () => Promise<void>) {
  const result = deps.tokens.check(c.req.header('authorization'));
  if (!result.ok) {
    deps.logger.warn({ admin: `${c.req.method} ${c.req.path}`, tokenId: result.tokenId ?? 'none', result: result.reason },
      'admin: refused');
    const challenge = result.tokenId ? 'Bearer realm="imgrelay-admin", error="invalid_token"' : 'Bearer realm="imgrelay-admin"';
    return problem(new RelayError('E_UNAUTHORIZED', result.reason), { 'www-authenticate': challenge });
  }
  c.set('tokenId', result.tokenId);
  await next();
}

function addApiRoutes(app: Hono<Env>, deps: AdminAppDeps): void {
  const log = (c: Context<Env>, action: string, result: unknown) =>
    deps.logger.info({ admin: action, tokenId: c.get('tokenId'), result }, 'admin action');

  app.post('/purge', async (c) => {
    const resolved = resolvePurge(await readJson(c), deps.legacyOptions);
    const report = await deps.purger.purge(resolved);
    log(c, 'purge', { selectors: summarize(resolved.selectors), ...report });
    deps.journal.purged(c.get('tokenId'), summarize(resolved.selectors), report);
    // 207: some tier could not be reached; the body says which (never a silent 200).
    return c.json(report, report.status === 'partial' ? 207 : 200);
  });
  app.post('/warm', async (c) => {
    const report = await warm(await readJson(c), { images: deps.images, legacyOptions: deps.legacyOptions, variants: deps.variants,
      concurrency: deps.warmConcurrency });
    log(c, 'warm', { total: report.total, ok: report.ok, failed: report.failed });
    deps.journal.warmed(c.get('tokenId'), report);
    return c.json(report);
  });
  app.get('/stats', (c) => {
    log(c, 'stats', 'ok');
    return c.json(deps.stats());
  });
  // Polled by the dashboard every few seconds: not logged (it would be most of the admin log).
  app.get('/history', (c) => {
    const since = c.req.query('since');
    if (since !== undefined && !/^\d{1,15}$/.test(since)) {
      throw new RelayError('E_BAD_REQUEST', 'since: expected a sample time (milliseconds since the epoch)');
    }
    return c.json({ ...deps.history(since === undefined ? undefined : Number(since)), purges: deps.journal.purges(),
      warms: deps.journal.warms() });
  });
  app.get('/metrics', async (c) => {
    log(c, 'metrics', 'ok');
    return c.body(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType });
  });
  for (const path of ['/purge', '/warm']) app.all(path, () => problem(new RelayError('E_METHOD_NOT_ALLOWED', 'Use POST')));
  for (const path of ['/stats', '/metrics', '/history']) app.all(path, () => problem(new RelayError('E_METHOD_NOT_ALLOWED', 'Use GET')));
}

async function readJson(c: Context<Env>): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > MAX_BODY_CHARS) throw new RelayError('E_BAD_REQUEST', 'The body is larger than 6 MiB');
  const text = await c.req.text();
  if (text.length > MAX_BODY_CHARS) throw new RelayError('E_BAD_REQUEST', 'The body is larger than 6 MiB');
  try {
    return JSON.parse(text);
  } catch {
    throw new RelayError('E_BAD_REQUEST', 'The body is not valid JSON (send Content-Type: application/json)');
  }
}

/** Hosts named in a purge's log line and dashboard row: the first few, then how many more (a purge may name 1000). */
const HOSTS_SHOWN = 10;

/** Counts, not the lists (a purge of 1000 URLs or hosts makes one log line, not a megabyte). */
function summarize(selectors: { sources: string[]; hosts: string[]; prefixes: string[]; tags: string[]; all: boolean }) {
  const { hosts } = selectors;
  const shown = hosts.length <= HOSTS_SHOWN ? hosts : [...hosts.slice(0, HOSTS_SHOWN), `… ${hosts.length - HOSTS_SHOWN} more`];
  return selectors.all ? { all: true } : {
    sources: selectors.sources.length, hosts: shown, prefixes: selectors.prefixes.length, tags: selectors.tags.length,
  };
}
