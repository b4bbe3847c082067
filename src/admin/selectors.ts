/**
 * What a purge addresses. The request body (`urls`, `hosts`, `prefixes`, `tags`, `all`) is validated with zod and
 * resolved once into canonical selectors — source URLs instead of proxy URLs, lower-cased hosts, canonical
 * prefixes — which is also what the purge log carries to the other instances (they never re-parse proxy URLs).
 */
import { z } from 'zod';
import { RelayError } from '../errors.js';
import { surrogateKeys } from '../images.js';
import type { RequestOptions } from '../url/options.js';
import { addressImage } from './urls.js';

const MAX_ITEMS = 1000;
const MAX_URL = 8192;
/** Tags travel in CDN ban headers and regexes: keep them to characters that need no quoting there. */
export const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:[\]-]{0,199}$/;
const HOST_PATTERN = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:\d{1,5})?$/i;

const items = (item: z.ZodString, what: string) => z.array(item, `${what}: expected an array of strings`)
  .max(MAX_ITEMS, `${what}: at most ${MAX_ITEMS} per request`).optional();

export const purgeBodySchema = z.strictObject({
  urls: items(z.string().min(1).max(MAX_URL, `urls: each at most ${MAX_URL} characters`), 'urls'),
  hosts: items(z.string().regex(HOST_PATTERN, 'hosts: each a host name such as zkres2.myzaker.com'), 'hosts'),
  prefixes: items(z.string().min(1).max(MAX_URL).regex(/^https?:\/\/[^/?#]+/i,
    'prefixes: each an absolute http(s) source URL prefix such as http://zkres2.myzaker.com/2021'), 'prefixes'),
  tags: items(z.string().regex(TAG_PATTERN, 'tags: letters, digits and . _ : - [ ] only'), 'tags'),
  all: z.literal(true, 'all: only `true` is meaningful').optional(),
}, {
  error: (issue) => (issue.code === 'unrecognized_keys'
    ? `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: the body takes urls, hosts, prefixes, tags or all`
    : 'expected a JSON object such as {"urls":[…]}, {"hosts":[…]}, {"prefixes":[…]}, {"tags":[…]} or {"all":true}'),
});

export type PurgeBody = z.infer<typeof purgeBodySchema>;

/** Canonical selectors: what matches is the union of them all. */
export interface Selectors {
  /** Canonical source URLs (every variant of each goes). */
  sources: string[];
  hosts: string[];
  prefixes: string[];
  tags: string[];
  all: boolean;
}

export interface ResolvedPurge {
  selectors: Selectors;
  /** Proxy URLs as given: a CDN caches exactly these, so they are purged there by URL. */
  publicUrls: string[];
}

/** Parses and validates a purge body; throws RelayError E_BAD_REQUEST with the precise reason. */
export function resolvePurge(body: unknown, legacyOptions?: RequestOptions): ResolvedPurge {
  const parsed = purgeBodySchema.safeParse(body);
  if (!parsed.success) throw new RelayError('E_BAD_REQUEST', describe(parsed.error));
  const b = parsed.data;
  const counted = (b.urls?.length ?? 0) + (b.hosts?.length ?? 0) + (b.prefixes?.length ?? 0) + (b.tags?.length ?? 0);
  if (counted === 0 && !b.all) {
    throw new RelayError('E_BAD_REQUEST', 'Nothing to purge: give non-empty urls, hosts, prefixes or tags, or all: true');
  }
  const sources = new Set<string>();
  const publicUrls: string[] = [];
  for (const url of b.urls ?? []) {
    const addressed = addressImage(url, { legacyOptions });
    sources.add(addressed.request.source.href);
    if (addressed.proxy) publicUrls.push(addressed.url);
  }
  return {
    selectors: {
      sources: [...sources],
      hosts: unique((b.hosts ?? []).map((h) => h.toLowerCase())),
      prefixes: unique((b.prefixes ?? []).map(canonicalPrefix)),
      tags: unique(b.tags ?? []),
      all: b.all === true,
    },
    publicUrls: unique(publicUrls),
  };
}

/** Checks selectors read back from the purge log (written by another instance, possibly another version). */
export function isSelectors(value: unknown): value is Selectors {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
  return strings(v.sources) && strings(v.hosts) && strings(v.prefixes) && strings(v.tags) && typeof v.all === 'boolean';
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => {
    const path = issue.path.join('.');
    return path && !issue.message.startsWith(String(issue.path[0])) ? `${path}: ${issue.message}` : issue.message;
  }).join('; ');
}

/** A prefix is compared with canonical source URLs: canonicalise its scheme and host the same way. */
function canonicalPrefix(prefix: string): string {
  const match = /^(https?:\/\/[^/?#]+)(.*)$/i.exec(prefix) as RegExpExecArray;
  try {
    const origin = new URL(`${match[1]}/`).href.slice(0, -1);
    return origin + (match[2] === '' ? '/' : match[2]);
  } catch {
    throw new RelayError('E_BAD_REQUEST', `prefixes: cannot parse ${JSON.stringify(prefix.slice(0, 200))}`);
  }
}

const unique = (values: string[]) => [...new Set(values)];

export type Matcher = (sourceUrl: string, tags: readonly string[]) => boolean;

/** A predicate over (canonical source URL, tags of the entry) for the selectors' union. */
export function matcherFor(selectors: Selectors): Matcher {
  if (selectors.all) return () => true;
  const sources = new Set(selectors.sources);
  const hosts = new Set(selectors.hosts);
  const tags = new Set(selectors.tags);
  return (sourceUrl, entryTags) => {
    if (sources.has(sourceUrl)) return true;
    if (selectors.prefixes.some((prefix) => sourceUrl.startsWith(prefix))) return true;
    if (hosts.size > 0 && matchesHost(sourceUrl, hosts)) return true;
    return tags.size > 0 && entryTags.some((tag) => tags.has(tag));
  };
}

function matchesHost(sourceUrl: string, hosts: Set<string>): boolean {
  try {
    const url = new URL(sourceUrl);
    return hosts.has(url.hostname) || hosts.has(url.host);
  } catch {
    return false;
  }
}

/** Whether matching needs the entries' tags (memory entries carry them; negative entries are computed). */
export const needsTags = (selectors: Selectors) => !selectors.all && selectors.tags.length > 0;

/** Surrogate keys a CDN must ban for these selectors (every variant of each source, each host). */
export async function cdnTags(selectors: Selectors): Promise<string[]> {
  const tags = new Set(selectors.tags);
  for (const source of selectors.sources) {
    // Only the source's own key: its host key would ban every image of the host.
    for (const tag of await surrogateKeys(new URL(source))) if (tag.startsWith('src-')) tags.add(tag);
  }
  for (const host of selectors.hosts) tags.add(`host-${host.replace(/:\d+$/, '')}`);
  // A CDN cannot see source prefixes: their hosts are banned (a wider purge, never a narrower one).
  for (const prefix of selectors.prefixes) tags.add(`host-${new URL(prefix).hostname}`);
  return [...tags].filter((tag) => TAG_PATTERN.test(tag));
}
