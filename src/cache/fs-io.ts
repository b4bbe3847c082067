/**
 * The directory store's writes and start-up scan, kept apart from its index and eviction logic (fs-store.ts; reads
 * are in fs-frames.ts). Callback `fs` APIs on purpose: about half the main-thread work of `fs/promises` (no
 * FileHandle, no per-chunk signal checks); a local write is short and the store guard's deadline still bounds it.
 */
import { close, fdatasync, open, writev } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { isStoreKey } from './entry-codec.js';

/** Temp files live beside their target (same filesystem, so rename is atomic) under a name no key can have. */
export const TEMP_PREFIX = '.tmp-';

/**
 * Creates `temp` (never overwriting: `wx`) holding `chunks` back to back, gathered by `writev` so a frame's head
 * and its megabyte of body reach the kernel without first being copied into one buffer.
 */
export async function writeTemp(temp: string, chunks: readonly Uint8Array[], fsync: boolean): Promise<void> {
  const fd = await new Promise<number>((resolve, reject) =>
    open(temp, 'wx', (error, handle) => (error ? reject(error) : resolve(handle))));
  try {
    await writeAll(fd, chunks);
    if (fsync) await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  } finally {
    await new Promise<void>((resolve) => close(fd, () => resolve()));
  }
}

/** `writev` may write less than asked (signals, quotas): carry on from where it stopped. */
async function writeAll(fd: number, chunks: readonly Uint8Array[]): Promise<void> {
  let pending = chunks.filter((chunk) => chunk.byteLength > 0);
  while (pending.length > 0) {
    const written = await new Promise<number>((resolve, reject) =>
      writev(fd, pending as NodeJS.ArrayBufferView[], (error, bytes) => (error ? reject(error) : resolve(bytes))));
    if (written === 0) throw new Error('fs store: writev made no progress');
    pending = dropWritten(pending, written);
  }
}

export function dropWritten(chunks: readonly Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = written;
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}

/**
 * Walks the store directory: returns [key, size] oldest first and removes temp files. The directory belongs to
 * this process, so at start-up every temp file is a crash leftover (were an old instance still finishing a write
 * during a rolling restart, its rename fails with ENOENT and `put` retries it once).
 */
export async function scanDirectory(
  dir: string, stopped: () => boolean, unlinkQuietly: (path: string) => Promise<boolean>,
): Promise<Array<[string, number]>> {
  const names = await readdir(dir, { recursive: true });
  const found: Array<{ key: string; size: number; mtimeMs: number }> = [];
  const BATCH = 64; // bounded parallel stats: quick on big caches without flooding the libuv pool
  for (let i = 0; i < names.length && !stopped(); i += BATCH) {
    await Promise.all(names.slice(i, i + BATCH).map(async (name) => {
      const key = name.split(sep).join('/');
      const base = key.slice(key.lastIndexOf('/') + 1);
      const isTemp = base.startsWith(TEMP_PREFIX);
      if (!isTemp && !isStoreKey(key)) return;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (!info?.isFile()) return;
      if (!isTemp) found.push({ key, size: info.size, mtimeMs: info.mtimeMs });
      else await unlinkQuietly(join(dir, name));
    }));
  }
  found.sort((a, b) => a.mtimeMs - b.mtimeMs);
  return found.map(({ key, size }) => [key, size]);
}
