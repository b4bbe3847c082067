/**
 * Warming: fetch and cache every image of a list or of an article's HTML through the image service, so every tier
 * fills exactly as a reader's request would fill it (same canonical keys, same variants). Bounded concurrency, so
 * warming a long article never crowds out live traffic; one result per URL.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { RelayError, toRelayError } from '../errors.js';
import type { ImageService } from '../images.js';
import type { RequestOptions } from '../url/options.js';
import { applyVariantRules } from '../policy/variants.js';
import type { VariantRules } from '../policy/variants-config.js';
import { extractImageUrls } from './html-images.js';
import { addressImage } from './urls.js';

const MAX_URLS = 1000;
const MAX_HTML_CHARS = 5 * 1024 * 1024;
/** What Chromium sends for images: format=auto variants are warmed for the bucket most readers get. */
export const BROWSER_IMAGE_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

const SHAPE = 'expected {"urls":[…]} or {"html":"…","base":"…"}';
const strict = { error: (issue: { code?: string; keys?: string[] }) => (issue.code === 'unrecognized_keys'
  ? `unknown field ${(issue.keys ?? []).map((k) => JSON.stringify(k)).join(', ')}: ${SHAPE}` : SHAPE) };
const accept = z.string('accept: expected a string').max(1024).optional();
const urlsBody = z.strictObject({
  urls: z.array(z.string().min(1).max(8192), 'urls: expected an array of strings').min(1, 'urls: empty')
    .max(MAX_URLS, `urls: at most ${MAX_URLS} per request`),
  accept,
}, strict);
const htmlBody = z.strictObject({
  html: z.string('html: expected a string').max(MAX_HTML_CHARS, 'html: at most 5 MiB'),
  base: z.url('base: expected an absolute URL (the article\'s address)').optional(),
  accept,
}, strict);

export interface WarmResult {
  url: string;
  status: number;
  /** X-Cache the request would have had: MISS (fetched now), HIT-MEMORY, HIT-STORE, STALE. */
  cache?: string;
  bytes?: number;
  code?: string;
  detail?: string;
}

export interface WarmReport {
  total: number;
  ok: number;
  failed: number;
  results: WarmResult[];
}

export interface WarmDeps {
  images: ImageService;
  legacyOptions?: RequestOptions;
  /** Presets expanded and allowed variants applied as the public route does, so a warm fills the entry served. */
  variants?: VariantRules;
  concurrency?: number;
}

/** Validates a warm body; throws RelayError E_BAD_REQUEST with the precise reason. */
export function warmTargets(body: unknown): { urls: string[]; base?: string; accept: string } {
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  if (!isObject || !('urls' in body || 'html' in body)) throw new RelayError('E_BAD_REQUEST', SHAPE);
  const parsed = ('html' in body ? htmlBody : urlsBody).safeParse(body);
  if (!parsed.success) throw new RelayError('E_BAD_REQUEST', parsed.error.issues.map((i) => i.message).join('; '));
  const b = parsed.data;
  const urls = 'urls' in b ? [...new Set(b.urls)] : extractImageUrls(b.html, b.base);
  if (urls.length > MAX_URLS) throw new RelayError('E_BAD_REQUEST', `${urls.length} images: at most ${MAX_URLS} per request`);
  return { urls, base: 'base' in b ? b.base : undefined, accept: b.accept ?? BROWSER_IMAGE_ACCEPT };
}

export async function warm(body: unknown, deps: WarmDeps): Promise<WarmReport> {
  const { urls, base, accept: acceptHeader } = warmTargets(body);
  const limit = pLimit(Math.max(1, deps.concurrency ?? 4));
  const results = await Promise.all(urls.map((url) => limit(() => warmOne(url, base, acceptHeader, deps))));
  const ok = results.filter((r) => r.status === 200).length;
  return { total: results.length, ok, failed: results.length - ok, results };
}

async function warmOne(url: string, base: string | undefined, acceptHeader: string, deps: WarmDeps): Promise<WarmResult> {
  try {
    const { request } = addressImage(url, { base, legacyOptions: deps.legacyOptions, presets: deps.variants?.presets });
    const { entry, state } = await deps.images.get(deps.variants ? applyVariantRules(request, deps.variants) : request, acceptHeader);
    return { url, status: 200, cache: state, bytes: entry.body.byteLength };
  } catch (thrown) {
    const error = toRelayError(thrown);
    return { url, status: error.status, code: error.code, detail: error.detail };
  }
}
