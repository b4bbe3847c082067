/**
 * The hexo plugin's filter (hexo/ bundles this file into hexo-imgrelay/lib): at `hexo generate`, each rendered post
 * and page goes through the same rewrite as `imgrelay rewrite`, so posts written with plain image URLs (or old-worker
 * ones) come out through imgrelay with srcset, size and lazy loading. Settings from `_config.yml`:
 *   imgrelay: { base, widths, sizes, include_bare_hosts, metadata, front_matter }
 */
import { serviceSizeOf } from './metadata.js';
import { rewriteBody, type RewriteOptions } from './rewrite-html.js';
import { normaliseBase, rewriteTokens, urlPolicy } from './urls.js';

export interface HexoImgrelayConfig {
  base?: string;
  widths?: number[] | string;
  sizes?: string;
  include_bare_hosts?: string[] | string;
  /** Where to ask for sizes (`output=json`); default: base. */
  metadata?: string;
  /** Front-matter fields holding an image URL. */
  front_matter?: string[];
}

interface PostData {
  content?: string;
  excerpt?: string;
  more?: string;
  source?: string;
  [field: string]: unknown;
}

interface Log {
  warn(message: string, ...args: unknown[]): void;
}

const FRONT_MATTER_FIELDS = ['headimg', 'thumbnail', 'cover', 'banner', 'image'];

const list = (value: string[] | number[] | string | undefined): string[] =>
  (Array.isArray(value) ? value.map(String) : (value ?? '').split(',')).map((v) => v.trim()).filter(Boolean);

/** The filter, or undefined (with a warning) when `imgrelay.base` is not set: the site builds as before. */
export function createPostFilter(config: HexoImgrelayConfig | undefined, log: Log) {
  if (!config?.base) {
    log.warn('hexo-imgrelay: set imgrelay.base in _config.yml (e.g. https://img.example.com); images left as they are');
    return undefined;
  }
  const base = normaliseBase(config.base);
  const widths = list(config.widths).map(Number).filter((w) => Number.isInteger(w) && w > 0);
  const options: RewriteOptions = {
    policy: urlPolicy(base, list(config.include_bare_hosts)),
    widths: widths.length ? widths : [480, 800, 1200],
    sizes: config.sizes,
    sizeOf: serviceSizeOf(config.metadata ? normaliseBase(config.metadata) : base),
  };
  const fields = config.front_matter ?? FRONT_MATTER_FIELDS;
  return async function imgrelayAfterPostRender(data: PostData): Promise<PostData> {
    for (const key of ['content', 'excerpt', 'more'] as const) {
      const html = data[key];
      if (typeof html !== 'string' || html === '') continue;
      try {
        data[key] = (await rewriteBody(html, options)).text;
      } catch (error) {
        log.warn('hexo-imgrelay: %s: %s (left as it is)', data.source ?? 'a post', (error as Error).message);
      }
    }
    for (const field of fields) {
      const value = data[field];
      if (typeof value === 'string') data[field] = rewriteTokens(value, options.policy).text;
    }
    return data;
  };
}
