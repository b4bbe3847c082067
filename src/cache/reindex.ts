/**
 * Builds the purge index (store-index.ts) for entries stored before it existed: entries of older versions, under
 * the prefix or at the bucket root (legacy-root.ts). One walk of the store's keys and one metadata read per source
 * (keys arrive grouped by source hash, so the first readable entry of a source decides), then its markers.
 *
 * The service runs it once, in the background at start-up, until a completion marker says it is done
 * (`startReindexOnce`); `imgrelay reindex` runs it on demand. Until it has finished, purges by host, prefix or tag
 * may miss entries older than the index; purges by URL and `all` never depend on it.
 */
import type { Logger } from '../logger.js';
import { isEntryKey } from './entry-codec.js';
import { sha256Hex } from './keys.js';
import { INDEX_PREFIX, markerEntry } from './store-index.js';
import type { EntryMeta, Store } from './types.js';

export type Mark = (sourceHash: string, meta: Pick<EntryMeta, 'sourceUrl' | 'tags'>, signal?: AbortSignal) => Promise<void>;

export interface ReindexResult {
  /** Sources whose markers were written. */
  sources: number;
}

/** `store` is listed and read (metadata only where it can), `mark` writes each source's markers. */
export async function reindexStore(store: Store, mark: Mark, signal?: AbortSignal): Promise<ReindexResult> {
  const readMeta = store.head ? store.head.bind(store) : async (key: string, s?: AbortSignal) => (await store.get(key, s))?.meta;
  let sources = 0;
  let current = '';
  let decided = false;
  for await (const key of store.list('', signal)) {
    if (!isEntryKey(key)) continue;
    const hash = key.slice(0, 64);
    if (hash !== current) [current, decided] = [hash, false];
    if (decided) continue;
    const meta = await readMeta(key, signal);
    if (!meta) continue; // gone meanwhile or unreadable: the source's next key decides
    decided = true;
    await mark(hash, meta, signal);
    sources += 1;
  }
  return { sources };
}

/** The completion marker: under `_index/` (so a key like the markers) but outside the host and tag indexes. */
export async function reindexDoneKey(): Promise<string> {
  return `${INDEX_PREFIX}done/${await sha256Hex('imgrelay purge index v1')}`;
}

/** Runs `reindexStore` unless a previous run completed; records completion. Resolves to undefined when skipped. */
export async function reindexOnce(store: Store, mark: Mark, signal?: AbortSignal): Promise<ReindexResult | undefined> {
  if (await store.get(await reindexDoneKey(), signal)) return undefined;
  const result = await reindexStore(store, mark, signal);
  signal?.throwIfAborted();
  await markReindexed(store, signal);
  return result;
}

export async function markReindexed(store: Store, signal?: AbortSignal): Promise<void> {
  await store.put(await reindexDoneKey(), markerEntry('imgrelay:reindex', Date.now()), signal);
}

export interface BackgroundReindex {
  /** Aborts a run in progress and waits for it to end. */
  stop(): Promise<void>;
}

/**
 * The service's one-time run: in the background (the store serves meanwhile), one store call at a time, on the
 * unguarded store so that a failure is an error (retried at the next start) rather than a listing that merely
 * ends early and would be recorded as complete. `before` runs first, in the same background task.
 */
export function startBackgroundReindex(
  store: Store, mark: Mark, logger: Logger, before?: (signal: AbortSignal) => Promise<void>,
): BackgroundReindex {
  const controller = new AbortController();
  const run = (async () => {
    await before?.(controller.signal);
    return reindexOnce(store, mark, controller.signal);
  })().then((result) => {
    if (result) logger.info({ sources: result.sources }, 'purge index: entries stored before it are now indexed');
  }, (error: unknown) => {
    if (!controller.signal.aborted) logger.warn({ err: error }, 'purge index: reindex failed; it runs again at the next start');
  });
  return {
    stop: async () => {
      controller.abort();
      await run;
    },
  };
}
