/**
 * CDN purge fan-out (IMGRELAY_CDN_PURGE). Targets:
 * - `varnish+http://host:port` (or a plain http(s) URL): `PURGE <path>` with the public URL's Host for each proxy
 *   URL, and `BAN` with `X-Purge-Tags: <surrogate keys>` (or `X-Purge-All: true`) for sources, hosts, prefixes
 *   (as their hosts), tags and everything; deploy/varnish/default.vcl turns those into purges and bans on
 *   `obj.http.Surrogate-Key`.
 * - `cloudflare`: the zone purge API (`files`, `tags`, `purge_everything`), base URL from IMGRELAY_CF_API_BASE.
 * - `worker+https://<edge host>`: the Worker's purge route (src/edge-purge-route.ts) with the first
 *   IMGRELAY_EDGE_PURGE_TOKEN; the surrogate keys (every variant of a source is under its `src-` key) or `all`.
 * The first attempt runs with the purge (bounded by `attemptTimeoutMs`) so its outcome is reported; a failure is
 * retried in the background with exponential backoff (bounded), and never holds up or undoes the local purge.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { EDGE_PURGE_PATH } from '../edge-purge-route.js';

export interface CdnPlan {
  /** Public proxy URLs, purged by URL. */
  urls: string[];
  /** Surrogate keys, banned. */
  tags: string[];
  all: boolean;
}

export interface CdnResult {
  target: string;
  ok: boolean;
  detail: string;
  /** True when the attempt failed and retries continue in the background. */
  retrying?: boolean;
}

export interface CdnTarget {
  /** Shown in reports and logs (no credentials). */
  name: string;
  /** Resolves to a short description of what was done; throws when the CDN did not accept it. */
  send(plan: CdnPlan, signal: AbortSignal): Promise<string>;
}

const TAGS_PER_BAN = 50;
/** Cloudflare's documented per-request limits for files and tags. */
const CF_BATCH = 30;

export function createCdnTargets(config: Config): CdnTarget[] {
  return config.cdnPurge.map((spec) => {
    if (spec.toLowerCase() === 'cloudflare') return cloudflareTarget(config.cfApiBase, config.cfZoneId ?? '', config.cfApiToken ?? '');
    if (/^worker\+/i.test(spec)) return workerTarget(new URL(spec.slice('worker+'.length)), config.edgePurgeTokens[0] ?? '');
    return varnishTarget(new URL(spec.replace(/^varnish\+/i, '')));
  });
}

// ── Varnish ──────────────────────────────────────────────────────────────────────────────────────────

export function varnishTarget(base: URL): CdnTarget {
  const name = `varnish ${base.host}`;
  return {
    name,
    send: async (plan, signal) => {
      if (plan.all) {
        await sendHttp(base, 'BAN', '/', { 'x-purge-all': 'true' }, signal);
        return 'banned everything';
      }
      for (const url of plan.urls) {
        const target = new URL(url);
        await sendHttp(base, 'PURGE', target.pathname + target.search, { host: target.host }, signal);
      }
      for (let i = 0; i < plan.tags.length; i += TAGS_PER_BAN) {
        await sendHttp(base, 'BAN', '/', { 'x-purge-tags': plan.tags.slice(i, i + TAGS_PER_BAN).join(' ') }, signal);
      }
      return `purged ${plan.urls.length} URL(s), banned ${plan.tags.length} tag(s)`;
    },
  };
}

/** One request with node:http (its request line is sent as given); non-2xx is a failure. */
function sendHttp(base: URL, method: string, path: string, headers: Record<string, string>, signal: AbortSignal)
  : Promise<void> {
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<void>((resolve, reject) => {
    const req = send({ protocol: base.protocol, hostname: base.hostname.replace(/^\[|\]$/g, ''), port: base.port,
      method, path, headers, signal }, (res) => {
      res.resume();
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new Error(`${method} ${path.slice(0, 200)} answered ${status} ${res.statusMessage ?? ''}`.trim()));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// ── Cloudflare ───────────────────────────────────────────────────────────────────────────────────────

export function cloudflareTarget(apiBase: string, zoneId: string, token: string): CdnTarget {
  const endpoint = `${apiBase}/zones/${encodeURIComponent(zoneId)}/purge_cache`;
  const post = async (body: object, signal: AbortSignal) => {
    const response = await fetch(endpoint, {
      method: 'POST', signal, body: JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    const answer = await response.json().catch(() => undefined) as
      { success?: boolean; errors?: Array<{ code?: number; message?: string }> } | undefined;
    if (!response.ok || answer?.success !== true) {
      const reason = answer?.errors?.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
      throw new Error(`Cloudflare answered ${response.status}${reason ? `: ${reason}` : ''}`);
    }
  };
  return {
    name: 'cloudflare',
    send: async (plan, signal) => {
      if (plan.all) {
        await post({ purge_everything: true }, signal);
        return 'purged everything';
      }
      for (let i = 0; i < plan.urls.length; i += CF_BATCH) await post({ files: plan.urls.slice(i, i + CF_BATCH) }, signal);
      for (let i = 0; i < plan.tags.length; i += CF_BATCH) await post({ tags: plan.tags.slice(i, i + CF_BATCH) }, signal);
      return `purged ${plan.urls.length} file(s), ${plan.tags.length} tag(s)`;
    },
  };
}

// ── the imgrelay Worker (edge) ──────────────────────────────────────────────────────────────────────────

/** The purge body takes at most 1000 items per field (selectors.ts). */
const WORKER_BATCH = 1000;

export function workerTarget(base: URL, token: string): CdnTarget {
  const endpoint = new URL(EDGE_PURGE_PATH, base);
  const postOnce = async (body: object, signal: AbortSignal): Promise<string> => {
    const response = await fetch(endpoint, {
      method: 'POST', signal, body: JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    const answer = await response.json().catch(() => undefined) as
      { code?: string; detail?: string; edge?: { purgeLog?: string } } | undefined;
    // 207: logged and fenced, but some R2 deletes failed; retried like a failure (the route is idempotent).
    if (!response.ok || response.status === 207) {
      throw new Error(`the Worker answered ${response.status}${answer?.code ? ` ${answer.code}: ${answer.detail ?? ''}` : ''}`);
    }
    return answer?.edge?.purgeLog ?? 'logged';
  };
  // A kept-alive connection the other side has just closed fails at once ("other side closed"); the route is
  // idempotent, so a network failure is tried once more straight away before it counts.
  const post = (body: object, signal: AbortSignal): Promise<string> => postOnce(body, signal).catch((error: unknown) => {
    if (!(error instanceof TypeError) || signal.aborted) throw error;
    return postOnce(body, signal);
  });
  return {
    name: `worker ${base.host}`,
    send: async (plan, signal) => {
      if (plan.all) return `purged everything (${await post({ all: true }, signal)})`;
      const logged: string[] = [];
      for (let i = 0; i < plan.tags.length; i += WORKER_BATCH) {
        logged.push(await post({ tags: plan.tags.slice(i, i + WORKER_BATCH) }, signal));
      }
      return `purged ${plan.tags.length} tag(s) (${logged.join(', ')})`;
    },
  };
}

// ── fan-out with bounded background retries ─────────────────────────────────────────────────────────

export interface FanoutOptions {
  logger: Logger;
  attemptTimeoutMs?: number;
  /** Background retries after a failed first attempt. */
  retries?: number;
  /** First retry delay; each next one doubles. */
  retryBaseMs?: number;
}

export class CdnFanout {
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly aborter = new AbortController();

  constructor(readonly targets: readonly CdnTarget[], private readonly options: FanoutOptions) {}

  /** Sends the plan to every target at once; reports the first attempts, failures go on retrying behind. */
  async purge(plan: CdnPlan): Promise<CdnResult[]> {
    if (plan.urls.length === 0 && plan.tags.length === 0 && !plan.all) return [];
    return Promise.all(this.targets.map(async (target) => {
      try {
        return { target: target.name, ok: true, detail: await this.attempt(target, plan) };
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        const retrying = this.retryLater(target, plan, 1);
        this.options.logger.warn({ target: target.name, detail, retrying }, 'CDN purge failed');
        return { target: target.name, ok: false, detail, retrying };
      }
    }));
  }

  /** Cancels pending retries and aborts attempts in flight (shutdown). */
  close(): void {
    this.aborter.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private attempt(target: CdnTarget, plan: CdnPlan): Promise<string> {
    const signal = AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.options.attemptTimeoutMs ?? 5000)]);
    return target.send(plan, signal);
  }

  private retryLater(target: CdnTarget, plan: CdnPlan, attempt: number): boolean {
    if (attempt > (this.options.retries ?? 5) || this.aborter.signal.aborted) return false;
    const delay = (this.options.retryBaseMs ?? 1000) * 2 ** (attempt - 1);
    this.schedule(delay, async () => {
      try {
        const detail = await this.attempt(target, plan);
        this.options.logger.info({ target: target.name, attempt, detail }, 'CDN purge succeeded on retry');
      } catch (error) {
        const retrying = this.retryLater(target, plan, attempt + 1);
        this.options.logger.warn({ target: target.name, attempt, err: error, retrying }, 'CDN purge retry failed');
      }
    });
    return true;
  }

  private schedule(delayMs: number, run: () => void | Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void run();
    }, delayMs);
    timer.unref?.();
    this.timers.add(timer);
  }
}
