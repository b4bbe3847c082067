/**
 * Per-host upstream request headers ("referrer-safe"), as data. Client headers are never forwarded: these
 * rules are the only headers imgrelay sends upstream (besides Host and conditional validators).
 * Portable (no `node:` imports); the Node entry reads IMGRELAY_HEADER_RULES and passes the parsed JSON here.
 *
 * Cascade: the defaults, then every matching rule from the least to the most specific glob (specificity =
 * characters other than `*`), so a user `*` rule changes the default for all hosts while a preset still
 * wins for its CDN. A header set to `null` is removed.
 *
 * A rule may also list the hotlink placeholders its CDN sends instead of the image, and `alternate` headers for one
 * retry when one comes back (placeholder-rules.ts, placeholder.ts). The presets list none: we ship no hashes of
 * pictures we cannot verify; operators add theirs with `imgrelay placeholder-hash <file>`.
 */
import { z } from 'zod';
import { compileHostGlob, normalizeHostname } from './host-glob.js';
import { type PlaceholderSignature, placeholderSchema } from './placeholder-rules.js';

export interface HeaderRule {
  /** Host glob: `i.pximg.net`, `*.sinaimg.cn`, `zkres*.myzaker.com`, `*`. */
  host: string;
  /** Header name → value; `null` removes a header set by the defaults or a less specific rule. */
  headers: Readonly<Record<string, string | null>>;
  /** Why this CDN needs these headers. */
  why?: string;
  /** Pictures this CDN sends instead of the image when it refuses a hotlink (placeholder-rules.ts). */
  placeholders?: readonly PlaceholderSignature[];
  /** Headers laid over `headers` for the one retry after a placeholder (e.g. the site's own Referer). */
  alternate?: Readonly<Record<string, string | null>>;
}

/** A current desktop Chrome (reduced UA string). Some CDNs refuse non-browser agents; refresh yearly. */
export const BROWSER_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';

/**
 * Sent to every host unless a rule says otherwise. No Referer, Origin or Cookie: hotlink protection
 * accepts an empty referrer, and we have no business sending anyone's cookies. `Accept: image/*` (what
 * the old worker effectively sent), so the origin does not negotiate a different format than a plain
 * fetch would get and relayed bytes match the origin's (DESIGN.md).
 */
export const DEFAULT_UPSTREAM_HEADERS: Readonly<Record<string, string>> = {
  'user-agent': BROWSER_USER_AGENT,
  accept: 'image/*',
};

export const BUILTIN_HEADER_RULES: readonly HeaderRule[] = Object.freeze([
  {
    host: 'zkres*.myzaker.com',
    headers: { referer: null },
    why: 'ZAKER image CDN answers 403 to a foreign Referer and serves a request without one (the old worker relied on it)',
  },
  {
    host: '*.sinaimg.cn',
    headers: { referer: 'https://weibo.com/' },
    why: 'Weibo CDN refuses foreign referrers (403 or a placeholder); its own site as Referer is always accepted',
  },
  {
    host: 'mmbiz.qpic.cn',
    headers: { referer: null },
    why: 'WeChat CDN swaps the image for a "not allowed to quote" placeholder on a foreign Referer; none is fine',
  },
  {
    host: '*.hdslb.com',
    headers: { referer: null },
    why: 'bilibili CDN answers 403 to a foreign Referer and serves a request without one',
  },
  {
    host: 'i.pximg.net',
    headers: { referer: 'https://www.pixiv.net/' },
    why: 'pixiv CDN answers 403 unless the Referer is pixiv itself',
  },
].map((rule) => Object.freeze(rule)));

/**
 * The headers to send to `url`'s host under `rules` (lower-case names). `alternate`: the retry after a placeholder,
 * where each matching rule's `alternate` headers are laid over its `headers`.
 */
export function headersFor(url: URL, rules: readonly HeaderRule[] = BUILTIN_HEADER_RULES, alternate = false)
  : Record<string, string> {
  const merged: Record<string, string | null> = { ...DEFAULT_UPSTREAM_HEADERS };
  for (const rule of matchingRules(url, rules)) {
    for (const [name, value] of Object.entries(rule.headers)) merged[name.toLowerCase()] = value;
    if (!alternate || !rule.alternate) continue;
    for (const [name, value] of Object.entries(rule.alternate)) merged[name.toLowerCase()] = value;
  }
  return Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== null));
}

/** The rules that apply to `url`'s host, least specific first (so the most specific one is applied last). */
export function matchingRules(url: URL, rules: readonly HeaderRule[]): HeaderRule[] {
  const host = normalizeHostname(url.hostname);
  return rules
    .map((rule, index) => ({ rule, index }))
    .filter(({ rule }) => matcherFor(rule)(host))
    .sort((a, b) => specificity(a.rule) - specificity(b.rule) || b.index - a.index)
    .map(({ rule }) => rule);
}

const matchers = new WeakMap<HeaderRule, (host: string) => boolean>();
function matcherFor(rule: HeaderRule): (host: string) => boolean {
  let matcher = matchers.get(rule);
  if (!matcher) matchers.set(rule, (matcher = compileHostGlob(rule.host)));
  return matcher;
}

function specificity(rule: HeaderRule): number {
  return rule.host.replace(/\*/g, '').length;
}

/**
 * Headers a rule may not set: framing and connection management belong to the HTTP client, the
 * conditional headers belong to the cache's revalidation, and `via` to the loop guard.
 */
const RESERVED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'te', 'upgrade',
  'keep-alive', 'trailer', 'expect', 'proxy-authorization', 'proxy-connection', 'via', 'if-none-match',
  'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const headerValue = z.string().regex(/^[^\r\n\0]*$/, 'a value without CR, LF or NUL').nullable();
const headersSchema = z.record(z.string(), headerValue).superRefine((headers, ctx) => {
  for (const name of Object.keys(headers)) {
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'not a header name' });
    else if (RESERVED_HEADERS.has(name.toLowerCase())) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'owned by the HTTP client or the cache, not settable' });
    }
  }
});
const ruleSchema = z.object({
  host: z.string().trim().regex(/^[a-zA-Z0-9*.-]+$/, 'a host glob such as *.example.com'),
  headers: headersSchema,
  why: z.string().optional(),
  placeholders: z.array(placeholderSchema).max(64).optional(),
  alternate: headersSchema.optional(),
}).strict();
const fileSchema = z.object({ rules: z.array(ruleSchema) }).strict();

export class HeaderRulesError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid header rules (IMGRELAY_HEADER_RULES):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'HeaderRulesError';
  }
}

/**
 * Validates a parsed rules file — `[rule, …]` or `{"rules": [rule, …]}` with rule `{host, headers, why?,
 * placeholders?, alternate?}` —
 * and returns the rules to use: the file's rules plus every built-in preset whose glob the file does not
 * redefine. Throws HeaderRulesError (for start-up) naming every problem.
 */
export function loadHeaderRules(json: unknown): HeaderRule[] {
  const result = fileSchema.safeParse(Array.isArray(json) ? { rules: json } : json);
  if (!result.success) {
    throw new HeaderRulesError(result.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`));
  }
  const userRules: HeaderRule[] = result.data.rules.map((rule) => ({ ...rule, host: normalizeHostname(rule.host) }));
  const redefined = new Set(userRules.map((rule) => rule.host));
  return [...userRules, ...BUILTIN_HEADER_RULES.filter((rule) => !redefined.has(normalizeHostname(rule.host)))];
}
