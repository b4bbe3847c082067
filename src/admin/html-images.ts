/**
 * Every image URL of an article's HTML, for warming: `<img>` and `<source>` (inside `<picture>`) attributes `src`,
 * `srcset`, `data-src`, `data-srcset`, `data-original` (lazy loaders), resolved against the page's base URL.
 * A small tokenizer over tags rather than an HTML parser: comments, scripts and styles are skipped, attribute
 * values may be quoted with either quote (and contain `>`), or unquoted; character references are decoded.
 */

const IMAGE_TAGS = new Set(['img', 'source']);
const URL_ATTRIBUTES = ['src', 'data-src', 'data-original', 'data-lazy-src'];
const SRCSET_ATTRIBUTES = ['srcset', 'data-srcset'];
/** Raw-text elements whose content is not markup. */
const RAW_TEXT = /^(script|style|textarea|title)$/;

/** Absolute http(s) image URLs, in document order, each once. */
export function extractImageUrls(html: string, base?: string): string[] {
  const found = new Set<string>();
  for (const { name, attributes } of tags(html)) {
    if (!IMAGE_TAGS.has(name)) continue;
    const candidates = [
      ...URL_ATTRIBUTES.map((a) => attributes.get(a)).filter((v): v is string => v !== undefined),
      ...SRCSET_ATTRIBUTES.flatMap((a) => parseSrcset(attributes.get(a) ?? '')),
    ];
    for (const candidate of candidates) {
      const url = resolve(candidate.trim(), base);
      if (url) found.add(url);
    }
  }
  return [...found];
}

function resolve(value: string, base: string | undefined): string | undefined {
  if (value === '' || /^(data|blob|javascript|about):/i.test(value)) return undefined;
  try {
    const url = base ? new URL(value, base) : new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? (/^https?:\/\//i.test(value) ? value : url.href)
      : undefined;
  } catch {
    return undefined;
  }
}

interface Tag {
  name: string;
  attributes: Map<string, string>;
}

/** Start tags of the document (lower-cased names), skipping comments and the content of raw-text elements. */
export function* tags(html: string): Generator<Tag> {
  const lower = html.toLowerCase();
  let i = 0;
  while (i < html.length) {
    const open = html.indexOf('<', i);
    if (open === -1) return;
    if (html.startsWith('<!--', open)) {
      const end = html.indexOf('-->', open + 4);
      i = end === -1 ? html.length : end + 3;
      continue;
    }
    const nameMatch = /^<([a-zA-Z][a-zA-Z0-9-]*)/.exec(html.slice(open, open + 64));
    if (!nameMatch) {
      i = open + 1;
      continue;
    }
    const name = nameMatch[1].toLowerCase();
    const { attributes, end } = readAttributes(html, open + nameMatch[0].length);
    yield { name, attributes };
    i = end;
    if (RAW_TEXT.test(name)) {
      const close = lower.indexOf(`</${name}`, i);
      i = close === -1 ? html.length : close;
    }
  }
}

/** Reads attributes from `start` up to the tag's unquoted `>`; returns them and the index after the tag. */
function readAttributes(html: string, start: number): { attributes: Map<string, string>; end: number } {
  const attributes = new Map<string, string>();
  const pattern = /\s*([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?|\s*\/|\s*>/y;
  pattern.lastIndex = start;
  while (pattern.lastIndex < html.length) {
    const at = pattern.lastIndex;
    const m = pattern.exec(html);
    if (!m) {
      pattern.lastIndex = at + 1; // a stray character: skip it
      continue;
    }
    if (m[0].trimStart() === '>') return { attributes, end: pattern.lastIndex };
    if (m[1] === undefined) continue;
    const name = m[1].toLowerCase();
    if (!attributes.has(name)) attributes.set(name, decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return { attributes, end: html.length };
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[ref.toLowerCase()] ?? whole;
  });
}

/**
 * The URLs of a `srcset` (HTML's parsing rules, simplified): candidates are separated by commas, but a URL may
 * itself contain commas (`/cdn-cgi/image/width=300,quality=80/…`): a URL runs to the next whitespace, and only a
 * comma at its very end separates.
 */
export function parseSrcset(srcset: string): string[] {
  const urls: string[] = [];
  let i = 0;
  while (i < srcset.length) {
    while (i < srcset.length && /[\s,]/.test(srcset[i])) i++;
    let end = i;
    while (end < srcset.length && !/\s/.test(srcset[end])) end++;
    let url = srcset.slice(i, end);
    i = end;
    if (url.endsWith(',')) url = url.replace(/,+$/, '');
    else {
      // Skip the descriptors (`2x`, `300w`) up to the comma that ends this candidate (commas in parentheses don't).
      let depth = 0;
      while (i < srcset.length && (srcset[i] !== ',' || depth > 0)) {
        if (srcset[i] === '(') depth++;
        else if (srcset[i] === ')') depth = Math.max(0, depth - 1);
        i++;
      }
    }
    if (url) urls.push(url);
  }
  return urls;
}
