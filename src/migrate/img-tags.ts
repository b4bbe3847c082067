/**
 * `<img>` tags with the source position of the tag and of each attribute, so a rewrite splices only what it changes.
 * htmlparser2 finds the tags (comments, scripts, CDATA and broken markup as browsers read them); inside one tag the
 * attribute syntax is simple enough to read with positions here. A tag that cannot be read exactly is reported, and
 * the file is refused rather than guessed at.
 */
import { Parser } from 'htmlparser2';
import { decodeEntities } from '../admin/html-images.js';

export interface TagAttribute {
  name: string;
  /** Decoded value ('' for a bare attribute). */
  value: string;
  /** Source range of the whole `name="value"` text. */
  start: number;
  end: number;
  /** Source range of the value (inside the quotes); equal to `end` when the attribute has no value. */
  valueStart: number;
  valueEnd: number;
}

export interface ImgTag {
  start: number;
  /** Index just after the tag's `>`. */
  end: number;
  /** Where new attributes go: before `/>` or `>`. */
  insertAt: number;
  attributes: TagAttribute[];
}

export class UnparsableHtml extends Error {}

const URL_ATTRIBUTES = new Set(['src', 'data-original', 'data-src']);

/** Every `<img>` of `html` in document order; throws UnparsableHtml where markup is too broken to edit safely. */
export function findImgTags(html: string): ImgTag[] {
  const tags: ImgTag[] = [];
  const starts = new Set<number>();
  const parser = new Parser({
    onopentag(name) {
      if (name !== 'img') return;
      starts.add(parser.startIndex);
      tags.push(readTag(html, parser.startIndex, parser.endIndex + 1));
    },
  }, { decodeEntities: true, lowerCaseTags: true });
  parser.write(html);
  parser.end();
  for (const match of html.matchAll(/<img[\s/>]/gi)) {
    if (!starts.has(match.index) && !insideComment(html, match.index)) {
      throw new UnparsableHtml(`unterminated <img> tag at line ${lineOf(html, match.index)}`);
    }
  }
  return tags;
}

function readTag(html: string, start: number, end: number): ImgTag {
  const text = html.slice(start, end);
  if (!text.endsWith('>')) throw new UnparsableHtml(`unterminated <img> tag at line ${lineOf(html, start)}`);
  const attributes: TagAttribute[] = [];
  const pattern = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  pattern.lastIndex = 4; // after `<img`
  let last = 4;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    // Between attributes only spaces and slashes: anything else (a stray quote) means the tag is not what it seems.
    if (/[^\s/]/.test(text.slice(last, m.index))) throw new UnparsableHtml(`stray ${text.slice(last, m.index).trim()} in <img> at line ${lineOf(html, start)}`);
    last = m.index + m[0].length;
    const raw = m[2] ?? m[3] ?? m[4];
    const quoted = m[2] !== undefined || m[3] !== undefined;
    const valueEnd = start + m.index + m[0].length - (quoted ? 1 : 0);
    const valueStart = raw === undefined ? valueEnd : valueEnd - raw.length;
    if (raw !== undefined && /[<>]/.test(raw)) {
      throw new UnparsableHtml(`<img> attribute ${m[1]} holds markup (an unclosed quote?) at line ${lineOf(html, start)}`);
    }
    if (URL_ATTRIBUTES.has(m[1].toLowerCase()) && /\s/.test((raw ?? '').trim())) {
      throw new UnparsableHtml(`<img> ${m[1]} holds a space (an unclosed quote?) at line ${lineOf(html, start)}`);
    }
    attributes.push({ name: m[1].toLowerCase(), value: decodeEntities(raw ?? ''), start: start + m.index,
      end: start + m.index + m[0].length, valueStart, valueEnd });
  }
  // `/>` closes the tag only after a space or a quote: in `alt=y/>` the slash belongs to the unquoted value.
  const selfClosing = /(\s|["'])\/>$/.test(text);
  const insertAt = start + (selfClosing ? text.length - 2 : text.length - 1);
  return { start, end, insertAt, attributes };
}

function insideComment(html: string, index: number): boolean {
  const open = html.lastIndexOf('<!--', index);
  return open !== -1 && html.indexOf('-->', open) > index;
}

export function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** An attribute value as HTML text inside double quotes. */
export function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
}
