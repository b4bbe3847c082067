/**
 * Collects a source body under the byte cap and the in-flight byte budget (src/limits/byte-budget.ts), shared by
 * both fetchers. A declared Content-Length is refused over the cap and reserved in full before the first byte is
 * read, and the body is copied into one buffer of that size as it arrives (no chunk list plus a final copy: half
 * the peak memory per fetch). Without a declared length the hold grows chunk by chunk and the chunks are joined once.
 */
import { RelayError } from '../errors.js';
import type { ByteHold } from '../limits/byte-budget.js';

export function tooLarge(cap: number): RelayError {
  return new RelayError('E_SOURCE_TOO_LARGE', `Source is larger than ${cap} bytes`);
}

export class CappedBody {
  private readonly chunks: Uint8Array[] = [];
  private readonly whole: Uint8Array | undefined;
  private total = 0;

  /**
   * Throws E_SOURCE_TOO_LARGE when `declared` is over `cap`, E_OVERLOADED when the hold cannot cover it; the caller
   * then discards the unread body.
   */
  constructor(declared: number | undefined, private readonly cap: number, private readonly hold?: ByteHold) {
    if (declared === undefined) return;
    if (declared > cap) throw tooLarge(cap);
    hold?.cover(declared);
    this.whole = new Uint8Array(declared);
  }

  /** Adds one chunk; throws (413, 503, or 502 past the declared length) and the caller stops reading. */
  add(chunk: Uint8Array): void {
    const total = this.total + chunk.byteLength;
    if (total > this.cap) throw tooLarge(this.cap);
    if (this.whole) {
      if (total > this.whole.byteLength) throw new RelayError('E_UPSTREAM', 'Upstream sent more than its Content-Length');
      this.whole.set(chunk, this.total);
    } else {
      this.hold?.cover(total);
      this.chunks.push(chunk);
    }
    this.total = total;
  }

  /** The body as one Uint8Array that owns exactly these bytes (never a view into a shared pool). */
  finish(): Uint8Array {
    if (this.whole) return this.total === this.whole.byteLength ? this.whole : this.whole.slice(0, this.total);
    return concatChunks(this.chunks, this.total);
  }
}

/** A Content-Length header as a byte count, or undefined when absent or not a plain non-negative integer. */
export function declaredLength(value: string | null | undefined): number | undefined {
  return value !== null && value !== undefined && /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
}

/** The chunks as one Uint8Array that owns exactly these bytes (never a view into a shared pool). */
export function concatChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  // A chunk that owns its whole buffer is the body as it is; otherwise a fresh array owning exactly these bytes.
  if (chunks.length === 1 && chunks[0].byteOffset === 0 && chunks[0].buffer.byteLength === total) return chunks[0];
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
