/**
 * One file's rewrite: front matter (YAML, values spliced in place: the document is never re-serialised, so comments,
 * key order, quoting and line endings stay) and the body (rewrite-html.ts). A file that cannot be parsed is refused
 * whole: a half-understood file is never written.
 */
import { isScalar, parseDocument, visit } from 'yaml';
import { UnparsableHtml } from './img-tags.js';
import { type RewriteOptions, applyEdits, rewriteBody } from './rewrite-html.js';
import { rewriteTokens } from './urls.js';

export interface FileRewrite {
  text: string;
  changed: boolean;
  moved: number;
  enriched: number;
  unsized: string[];
}

export class Unparsable extends Error {}

/** `---` front matter: its YAML text and where it sits. */
const FRONT_MATTER = /^(---[ \t]*\r?\n)(?:([\s\S]*?)\r?\n)??(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/;

export async function rewriteFile(text: string, options: RewriteOptions): Promise<FileRewrite> {
  const bom = text.startsWith('\ufeff') ? 1 : 0;
  let head = text.slice(0, bom);
  let rest = text.slice(bom);
  let moved = 0;
  if (/^---[ \t]*\r?\n/.test(rest)) {
    const match = FRONT_MATTER.exec(rest);
    if (!match) throw new Unparsable('front matter opened with --- is never closed');
    const source = match[2] ?? ''; // absent: an empty front matter (`---` right after `---`), as hexo reads it
    const yaml = rewriteFrontMatter(source, options);
    moved += yaml.moved;
    head += match[1] + yaml.text + rest.slice(match[1].length + source.length, match[0].length);
    rest = rest.slice(match[0].length);
  }
  let body;
  try {
    body = await rewriteBody(rest, options);
  } catch (error) {
    if (error instanceof UnparsableHtml) throw new Unparsable(error.message);
    throw error;
  }
  const out = head + body.text;
  return { text: out, changed: out !== text, moved: moved + body.moved, enriched: body.enriched, unsized: body.unsized };
}

/** Moves the URLs inside string values of the front matter, splicing each value's own source text. */
export function rewriteFrontMatter(yaml: string, options: RewriteOptions): { text: string; moved: number } {
  const doc = parseDocument(yaml);
  if (doc.errors.length) throw new Unparsable(`front matter: ${doc.errors[0].message.split('\n')[0]}`);
  const edits: Array<{ start: number; end: number; text: string }> = [];
  const expected = new Map<string, string>();
  let moved = 0;
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.range) return;
      const [start, end] = node.range;
      const rewritten = rewriteTokens(yaml.slice(start, end), options.policy);
      if (!rewritten.moved) return;
      edits.push({ start, end, text: rewritten.text });
      expected.set(node.value, rewriteTokens(node.value, options.policy).text);
      moved += rewritten.moved;
    },
  });
  const text = applyEdits(yaml, edits);
  if (edits.length) verifyValues(text, expected);
  return { text, moved };
}

/** The spliced YAML must read back as the same document with exactly the URLs moved, or the file is refused. */
function verifyValues(text: string, expected: Map<string, string>): void {
  const doc = parseDocument(text);
  const values = new Set<string>();
  visit(doc, { Scalar(key, node) { if (key !== 'key' && isScalar(node) && typeof node.value === 'string') values.add(node.value); } });
  for (const value of expected.values()) {
    if (doc.errors.length || !values.has(value)) throw new Unparsable('front matter: a value could not be rewritten in place');
  }
}
