/**
 * An image's size from the service's metadata answer, for tags without `data-width`/`data-height`:
 * `GET <base>/?url=<source>&output=json` → `{"width","height","format","pages"|"frames","bytes"}` (weserv's names).
 * The one place that knows that contract's field names. Each source is asked once per run.
 */
import type { ImageSize, SizeOf } from './rewrite-html.js';

const TIMEOUT_MS = 15_000;

export function metadataUrl(base: string, source: string): string {
  return `${base}/?url=${encodeURIComponent(source)}&output=json`;
}

/** Reads width and height from an output=json answer; undefined when it is not one. */
export function sizeFromMetadata(answer: unknown): ImageSize | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const { width, height } = answer as Record<string, unknown>;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
  return ok(width) && ok(height) ? { width, height } : undefined;
}

/** A SizeOf asking `base` (the service, or any instance answering output=json), remembering each answer. */
export function serviceSizeOf(base: string): SizeOf {
  const known = new Map<string, Promise<ImageSize | undefined>>();
  return (source) => {
    let size = known.get(source);
    if (!size) {
      size = fetch(metadataUrl(base, source), { signal: AbortSignal.timeout(TIMEOUT_MS) })
        .then(async (response) => (response.ok ? sizeFromMetadata(await response.json()) : undefined))
        .catch(() => undefined);
      known.set(source, size);
    }
    return size;
  };
}
