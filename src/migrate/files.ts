/** The files a migration reads (walked from the given paths) and an atomic write (temp file + rename). */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
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

/** Writes beside the file, then renames over it: a reader (or a crash) sees the old file or the new, never half. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const { mode } = await stat(path);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { mode });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
