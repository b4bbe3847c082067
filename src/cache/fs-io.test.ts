import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropWritten, writeTemp } from './fs-io.js';

const bytes = (...values: number[]) => new Uint8Array(values);

describe('dropWritten (resuming a short writev)', () => {
  it('drops whole chunks and cuts the first partly written one', () => {
    const rest = dropWritten([bytes(1, 2), bytes(3, 4, 5), bytes(6)], 3);
    expect(rest.map((c) => [...c])).toEqual([[4, 5], [6]]);
  });

  it('keeps everything when nothing was written, nothing when all was', () => {
    const chunks = [bytes(1), bytes(2, 3)];
    expect(dropWritten(chunks, 0).map((c) => [...c])).toEqual([[1], [2, 3]]);
    expect(dropWritten(chunks, 3)).toEqual([]);
  });
});

describe('writeTemp', () => {
  it('writes the chunks back to back and never overwrites an existing file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fs-io-')), '.tmp-a');
    await writeTemp(path, [bytes(1, 2), bytes(), bytes(3)], false);
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    await expect(writeTemp(path, [bytes(9)], true)).rejects.toMatchObject({ code: 'EEXIST' });
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
  });
});
