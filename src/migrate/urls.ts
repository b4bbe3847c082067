/**
 * Which URLs a migration moves, and what they become. An old-worker URL (`https://cors.zfour.workers.dev/?<source>`,
 * http or https, the source raw or percent-encoded once or twice) and, with `--include-bare-hosts`, a bare URL of a
 * hotlink-protected host, both become imgrelay's legacy form `<base>/?<source>` (the original bytes, as before).
 * A URL already on the base is recognised, so a second run finds nothing to move (idempotence).
 */
import { compileHostGlobs } from '../fetch/host-glob.js';

const OLD_WORKER_HOSTS = ['cors.zfour.workers.dev'];
/** `<old worker>/?<query>`, compiled once: classify runs for every URL token of every file. */
const OLD_WORKER_URLS = OLD_WORKER_HOSTS.map((host) => new RegExp(`^https?://${host.replace(/\./g, '\\.')}/?\\?(.+)$`, 'i'));

export interface UrlPolicy {
  /** imgrelay's public origin, without a trailing slash: `https://img.example.com`. */
  base: string;
  /** Whether a bare URL of this host goes through imgrelay too (host globs such as `zkres*.myzaker.com`). */
  isBareHost(hostname: string): boolean;
}

/** The policy for `base` and the host globs whose bare URLs move too (matched as the service's host globs are). */
export function urlPolicy(base: string, bareHosts: readonly string[]): UrlPolicy {
  return { base, isBareHost: compileHostGlobs(bareHosts) };
}

export interface MovedUrl {
  /** The source image URL, decoded (`http://zkres2.myzaker.com/…jpg`). */
  source: string;
  /** The URL to write in place of the token: the legacy form, or the token itself when it is already on the base. */
  legacy: string;
  /** True when the token changes. */
  changed: boolean;
}

/** A URL token in text: up to whitespace, a quote, angle brackets or parentheses (Markdown's `(url "title")`). */
export const URL_TOKEN = /https?:\/\/[^\s"'<>()\\]+/gi;

export function normaliseBase(base: string): string {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--base: expected an http(s) URL: ${base}`);
  if (url.search || url.hash) throw new Error(`--base: expected an origin (and path), without ? or #: ${base}`);
  return url.href.replace(/\/+$/, '');
}

/** The source of `token` when the migration moves it (or already moved it), else undefined. */
export function classify(token: string, policy: UrlPolicy): MovedUrl | undefined {
  const query = proxyQuery(token, policy.base);
  if (query !== undefined) {
    const source = decodeSource(query);
    return source ? { source, legacy: token, changed: false } : undefined;
  }
  for (const oldWorkerUrl of OLD_WORKER_URLS) {
    const match = oldWorkerUrl.exec(token);
    if (!match) continue;
    const source = decodeSource(match[1]);
    return source ? { source, legacy: `${policy.base}/?${match[1]}`, changed: true } : undefined;
  }
  if (isBareHost(token, policy)) return { source: token, legacy: `${policy.base}/?${token}`, changed: true };
  return undefined;
}

/** The raw query of a legacy-form URL on the base (`<base>/?http…`), else undefined. */
function proxyQuery(token: string, base: string): string | undefined {
  const prefix = `${base}/?`;
  if (!token.toLowerCase().startsWith(prefix.toLowerCase())) return undefined;
  const query = token.slice(prefix.length);
  return /^https?(:|%3a|%253a)/i.test(query) ? query : undefined;
}

/** The source URL of a legacy query, raw or percent-encoded once or twice (as the service reads it). */
export function decodeSource(query: string): string | undefined {
  let source = query;
  for (let i = 0; i < 2 && /^https?%/i.test(source); i++) {
    try {
      source = decodeURIComponent(source);
    } catch {
      return undefined;
    }
  }
  try {
    const url = new URL(source);
    return url.protocol === 'http:' || url.protocol === 'https:' ? source : undefined;
  } catch {
    return undefined;
  }
}

function isBareHost(token: string, policy: UrlPolicy): boolean {
  try {
    return policy.isBareHost(new URL(token).hostname);
  } catch {
    return false;
  }
}

/** The query form of one srcset candidate: `<base>/?url=<encoded source>&w=<w>`. */
export function widthUrl(base: string, source: string, width: number): string {
  return `${base}/?url=${encodeURIComponent(source)}&w=${width}`;
}

/** Rewrites every URL token of `text` that the policy moves; `text` outside the tokens is kept byte for byte. */
export function rewriteTokens(text: string, policy: UrlPolicy): { text: string; moved: number } {
  let moved = 0;
  const out = text.replace(URL_TOKEN, (token) => {
    const url = classify(token, policy);
    if (!url?.changed) return token;
    moved++;
    return url.legacy;
  });
  return { text: out, moved };
}
