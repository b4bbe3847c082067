/**
 * A unified diff of two texts (for `imgrelay rewrite --dry-run`), line by line with 3 lines of context. LCS over the
 * lines between the common prefix and suffix: posts are short and a rewrite changes few lines.
 */

export function unifiedDiff(path: string, before: string, after: string, context = 3): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = diffLines(a, b);
  const changed = ops.flatMap((op, k) => (op.kind === ' ' ? [] : [k]));
  const hunks: string[] = [];
  for (let g = 0; g < changed.length;) {
    let last = g;
    // Changes closer than 2 × context lines share one hunk.
    while (last + 1 < changed.length && changed[last + 1] - changed[last] <= 2 * context + 1) last++;
    hunks.push(hunk(ops.slice(Math.max(0, changed[g] - context), Math.min(ops.length, changed[last] + context + 1))));
    g = last + 1;
  }
  return [`--- a/${path.replace(/^\/+/, '')}`, `+++ b/${path.replace(/^\/+/, '')}`, ...hunks].join('\n') + '\n';
}

interface Op {
  kind: ' ' | '-' | '+';
  line: string;
  aLine: number;
  bLine: number;
}

function hunk(ops: Op[]): string {
  const aStart = ops[0].aLine;
  const bStart = ops[0].bLine;
  const aCount = ops.filter((o) => o.kind !== '+').length;
  const bCount = ops.filter((o) => o.kind !== '-').length;
  const lines = ops.map((o) => `${o.kind}${o.line.replace(/\r$/, '')}`);
  return [`@@ -${aStart + 1},${aCount} +${bStart + 1},${bCount} @@`, ...lines].join('\n');
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function diffLines(a: string[], b: string[]): Op[] {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++;
  const am = a.slice(prefix, a.length - suffix);
  const bm = b.slice(prefix, b.length - suffix);
  const lcs = Array.from({ length: am.length + 1 }, () => new Uint32Array(bm.length + 1));
  for (let x = am.length - 1; x >= 0; x--) {
    for (let y = bm.length - 1; y >= 0; y--) lcs[x][y] = am[x] === bm[y] ? lcs[x + 1][y + 1] + 1 : Math.max(lcs[x + 1][y], lcs[x][y + 1]);
  }
  const ops: Op[] = a.slice(0, prefix).map((line, k) => ({ kind: ' ', line, aLine: k, bLine: k }));
  let x = 0;
  let y = 0;
  while (x < am.length || y < bm.length) {
    const at = { aLine: prefix + x, bLine: prefix + y };
    if (x < am.length && y < bm.length && am[x] === bm[y]) { ops.push({ kind: ' ', line: am[x], ...at }); x++; y++; }
    else if (x < am.length && (y === bm.length || lcs[x + 1][y] >= lcs[x][y + 1])) { ops.push({ kind: '-', line: am[x], ...at }); x++; }
    else { ops.push({ kind: '+', line: bm[y], ...at }); y++; }
  }
  for (let k = a.length - suffix; k < a.length; k++) ops.push({ kind: ' ', line: a[k], aLine: k, bLine: k - a.length + b.length });
  return ops;
}
