/**
 * node:crypto versions of the portable Web Crypto hashes in keys.ts (same values). Web Crypto's digest copies its
 * input and hops to the thread pool, where it queues behind sharp's jobs and file I/O on a busy server; on a cold
 * miss the ETag alone was a sixth of the main thread's time, against well under a millisecond here for a megabyte.
 */
import { createHash } from 'node:crypto';

/** Node's ETag: the same value as `etagOf` (the first 32 hex digits of the body's SHA-256). */
export function nodeEtag(body: Uint8Array): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
}

/** The same value as keys.ts `sha256Hex`: store keys and surrogate keys, computed synchronously. */
export function nodeSha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
