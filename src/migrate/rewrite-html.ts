/**
 * Rewrites the body of a post (HTML, or Markdown with inline HTML): each `<img>` whose src the migration moves gets
 * the legacy URL, and — only where missing — `srcset`/`sizes` (query-form widths not wider than the image),
 * `width`/`height` (so the box has its size before the bytes arrive: no layout shift) and, except on the file's first
 * image, `loading="lazy"` `decoding="async"`. Every other old-worker URL in the text (Markdown images, links) moves
 * to the legacy form. Only changed attributes are spliced: the rest stays byte for byte.
 */
import { type ImgTag, type TagAttribute, escapeAttribute, findImgTags } from './img-tags.js';
import { type UrlPolicy, classify, rewriteTokens, widthUrl } from './urls.js';

export interface ImageSize {
  width: number;
  height: number;
}

export type SizeOf = (source: string) => Promise<ImageSize | undefined>;

export interface RewriteOptions {
  policy: UrlPolicy;
  /** srcset widths (CSS px of the query form's `w`); only those not wider than the image are listed. */
  widths: number[];
  /** `sizes` to write beside a new srcset; default: the image's own width, capped by the viewport. */
  sizes?: string;
  /** Looks up an image's size when the tag has none (the service's `output=json`). */
  sizeOf?: SizeOf;
}

export interface BodyReport {
  text: string;
  /** URLs moved to imgrelay (attributes and text). */
  moved: number;
  /** `<img>` tags given attributes. */
  enriched: number;
  /** Sources whose size stayed unknown (no srcset, width or height added). */
  unsized: string[];
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

export async function rewriteBody(body: string, options: RewriteOptions): Promise<BodyReport> {
  const tags = findImgTags(body);
  const code = fencedCode(body);
  const isCode = (tag: ImgTag) => code.some(([start, end]) => tag.start >= start && tag.start < end);
  const markdownImage = body.search(/!\[[^\]\n]*\]\(/);
  const firstImage = Math.min(tags.find((tag) => !isCode(tag))?.start ?? Infinity,
    markdownImage === -1 ? Infinity : markdownImage);
  const report: BodyReport = { text: body, moved: 0, enriched: 0, unsized: [] };
  const edits: Edit[] = [];
  for (const tag of tags) {
    const replaced = new Set<TagAttribute>();
    // A tag shown as code is text: its old URLs move like any other text, nothing is added to it.
    if (!isCode(tag)) edits.push(...await rewriteImg(tag, tag.start === firstImage, options, report, replaced));
    edits.push(...attributeTokenEdits(body, tag, replaced, options.policy, report));
  }
  let cursor = 0;
  for (const tag of tags) {
    edits.push(...textEdits(body, cursor, tag.start, options.policy, report));
    cursor = tag.end;
  }
  edits.push(...textEdits(body, cursor, body.length, options.policy, report));
  report.text = applyEdits(body, edits);
  return report;
}

/** Markdown's fenced code blocks (``` or ~~~, closed by a bare fence at least as long), as [start, end) ranges. */
export function fencedCode(body: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let open: { marker: string; start: number } | undefined;
  for (const m of body.matchAll(/^ {0,3}(`{3,}|~{3,})([^\n]*)$/gm)) {
    if (!open) open = { marker: m[1], start: m.index };
    else if (m[1][0] === open.marker[0] && m[1].length >= open.marker.length && m[2].trim() === '') {
      ranges.push([open.start, m.index + m[0].length]);
      open = undefined;
    }
  }
  if (open) ranges.push([open.start, body.length]);
  return ranges;
}

function textEdits(body: string, start: number, end: number, policy: UrlPolicy, report: BodyReport): Edit[] {
  const { text, moved } = rewriteTokens(body.slice(start, end), policy);
  report.moved += moved;
  return moved ? [{ start, end, text }] : [];
}

/**
 * Old URLs in the tag's other attributes (an existing `srcset`, `data-srcset`, a `title`, a lazy attribute of an image
 * whose src stays): moved token by token, in the attribute's own source text (entities kept as written).
 */
function attributeTokenEdits(body: string, tag: ImgTag, replaced: Set<TagAttribute>, policy: UrlPolicy,
  report: BodyReport): Edit[] {
  const edits: Edit[] = [];
  for (const a of tag.attributes) {
    if (replaced.has(a) || a.valueStart === a.valueEnd) continue;
    const { text, moved } = rewriteTokens(body.slice(a.valueStart, a.valueEnd), policy);
    if (moved) edits.push({ start: a.valueStart, end: a.valueEnd, text });
    report.moved += moved;
  }
  return edits;
}

async function rewriteImg(tag: ImgTag, first: boolean, options: RewriteOptions, report: BodyReport,
  replaced: Set<TagAttribute>): Promise<Edit[]> {
  const attr = (name: string) => tag.attributes.find((a) => a.name === name);
  const src = attr('src');
  const url = src && classify(src.value, options.policy);
  if (!src || !url) return [];
  const edits: Edit[] = [];
  const replace = (a: TagAttribute, value: string) => {
    edits.push({ start: a.valueStart, end: a.valueEnd, text: escapeAttribute(value) });
    replaced.add(a);
    report.moved++;
  };
  if (url.changed) replace(src, url.legacy);
  for (const lazy of ['data-original', 'data-src'].map(attr)) {
    // A lazy loader swaps this in for src: the same image must come through imgrelay too, or the hotlink block bites.
    const moved = lazy && classify(lazy.value, options.policy);
    if (lazy && (moved?.changed || lazy.value === url.source)) replace(lazy, moved?.changed ? moved.legacy : url.legacy);
  }
  const added = await newAttributes(url.source, url.legacy, first, attr, options, report);
  if (added.length) {
    edits.push({ start: tag.insertAt, end: tag.insertAt, text: added.map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`).join('') });
    report.enriched++;
  }
  return edits;
}

type Lookup = (name: string) => TagAttribute | undefined;

async function newAttributes(source: string, legacy: string, first: boolean, attr: Lookup, options: RewriteOptions,
  report: BodyReport): Promise<Array<[string, string]>> {
  const added: Array<[string, string]> = [];
  const size = sizeFromTag(attr) ?? await options.sizeOf?.(source).catch(() => undefined);
  if (!size) report.unsized.push(source);
  if (size && !attr('width') && !attr('height')) added.push(['width', `${size.width}`], ['height', `${size.height}`]);
  if (size && !attr('srcset')) {
    const candidates = options.widths.filter((w) => w < size.width).sort((a, b) => a - b)
      .map((w) => `${widthUrl(options.policy.base, source, w)} ${w}w`);
    if (candidates.length) {
      added.push(['srcset', [...candidates, `${legacy} ${size.width}w`].join(', ')]);
      if (!attr('sizes')) added.push(['sizes', options.sizes ?? `(max-width: ${size.width}px) 100vw, ${size.width}px`]);
    }
  }
  if (!first && !attr('loading')) added.push(['loading', 'lazy']);
  if (!first && !attr('decoding')) added.push(['decoding', 'async']);
  return added;
}

function sizeFromTag(attr: Lookup): ImageSize | undefined {
  const int = (name: string) => {
    const value = attr(name)?.value.trim();
    return value && /^\d{1,5}$/.test(value) && Number(value) > 0 ? Number(value) : undefined;
  };
  const width = int('data-width') ?? int('width');
  const height = int('data-height') ?? int('height');
  return width && height ? { width, height } : undefined;
}

export function applyEdits(text: string, edits: Edit[]): string {
  let out = text;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return out;
}
