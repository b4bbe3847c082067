/** The files a migration reads (walked from the given paths), read as strict UTF-8, and an atomic write (temp file + rename). */
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const POST_EXTENSIONS = /\.(md|markdown|html?)$/i;

/** Every .md/.markdown/.html file under the given files and directories (sorted; node_modules and dot-folders skipped). */
export async function postFiles(paths: string[], extensions = POST_EXTENSIONS): Promise<string[]> {
  const found: string[] = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isDirectory()) found.push(...await walk(path, extensions));
    else found.push(path);
  }
  return [...new Set(found)];
}

async function walk(dir: string, extensions: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...await walk(path, extensions));
    else if (entry.isFile() && extensions.test(entry.name)) files.push(path);
  }
  return files;
}

export class NotUtf8 extends Error {}

// Fatal: a lenient decode turns each invalid byte into U+FFFD, and writing that back would corrupt every
// non-URL byte of a legacy-encoded post (GBK, Latin-1). ignoreBOM: a BOM is kept as text, so it is written back.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A post's text; NotUtf8 when its bytes are not UTF-8 (such a file is refused, never rewritten). */
export async function readPost(path: string): Promise<string> {
  const bytes = await readFile(path);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new NotUtf8('not UTF-8 text (convert it to UTF-8 first: a rewrite would corrupt its other bytes)');
  }
}

/**
 * Writes beside the file, flushed to disk, then renames over it: a reader (or a crash) sees the old file or the new,
 * never half. A symlinked post is written through its link (the link stays a link).
 */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const target = await realpath(path);
  const { mode } = await stat(target);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
