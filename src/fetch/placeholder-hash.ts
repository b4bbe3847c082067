/**
 * `imgrelay placeholder-hash <file…>`: the placeholder entries (placeholder-rules.ts) for a hotlink placeholder an
 * operator saved from the CDN (`curl -o placeholder.jpg <image URL>` without the Referer the CDN wants), ready to
 * paste into a rule's `placeholders` in the IMGRELAY_HEADER_RULES file. Node only (sharp, node:crypto).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { dhashHex, differenceHash } from '../transform/dhash.js';
import { readHeaderSize } from '../transform/header-size.js';
import type { PlaceholderSignature } from './placeholder-rules.js';

/** The exact entry always; the perceptual one when the header size is readable and the picture decodes. */
export async function placeholderEntries(body: Uint8Array, why?: string): Promise<PlaceholderSignature[]> {
  const entries: PlaceholderSignature[] = [
    { bytes: body.byteLength, sha256: createHash('sha256').update(body).digest('hex'), ...(why ? { why } : {}) },
  ];
  const size = readHeaderSize(body);
  const hash = size && await differenceHash(body);
  if (size && hash !== undefined) entries.push({ ...size, dhash: dhashHex(hash), ...(why ? { why } : {}) });
  return entries;
}

/** Prints one JSON array of entries for all the files; exit 1 if a file cannot be read. */
export async function placeholderHashCommand(files: string[], io: { out(text: string): void; err(text: string): void })
  : Promise<number> {
  const entries: PlaceholderSignature[] = [];
  for (const file of files) {
    let body: Uint8Array;
    try {
      body = await readFile(file);
    } catch (error) {
      io.err(`imgrelay: cannot read ${file}: ${(error as Error).message}\n`);
      return 1;
    }
    entries.push(...await placeholderEntries(body, `placeholder saved as ${basename(file)}`));
  }
  io.out(`${JSON.stringify(entries, null, 2)}\n`);
  return 0;
}
