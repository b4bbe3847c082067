/**
 * The negative cache keeps what a failure says, not what it references: a decoder's error reaches its sharp
 * pipeline and so the whole source buffer, and 10,000 remembered failures of fuzzed sources held ~1 GiB.
 */
import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { v8FullCollection } from '../limits/v8-collect.js';
import { MemoryTier } from './memory.js';
import { PurgeFence } from './purge-fence.js';

const MiB = 1024 * 1024;

const freedSources = new Set<string>();
// Module-level: a registry that is itself collected never calls back.
const registry = new FinalizationRegistry<string>((name) => freedSources.add(name));

/** Remembers one failure whose cause references an 8 MiB source (as a decoder error reaches its pipeline's input). */
function failWithLargeCause(memory: MemoryTier, name: string): Promise<unknown> {
  const source = new Uint8Array(8 * MiB);
  registry.register(source, name);
  const decoderError = Object.assign(new Error('VipsJpeg: premature end of input'), { pipeline: { source } });
  const failure = new RelayError('E_IMAGE_INVALID', 'undecodable', { cause: decoderError });
  return memory.remembering('k', () => Promise.reject(failure)).catch(() => undefined);
}

describe('negative cache', () => {
  it('lets a remembered failure\'s source buffer be collected, and still answers the failure from memory', async () => {
    const memory = new MemoryTier({ maxBytes: MiB, maxEntryBytes: MiB, negativeTtlMs: 60_000 });
    await failWithLargeCause(memory, 'remembered');
    const freed = () => freedSources.has('remembered');
    const collect = v8FullCollection();
    for (let i = 0; i < 20 && !freed(); i++) {
      collect();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(freed()).toBe(true);
    let loads = 0;
    const again = await memory.remembering('k', async () => { loads += 1; }).catch((error: unknown) => error as RelayError);
    expect([again?.code, again?.detail, again?.cause]).toEqual(['E_IMAGE_INVALID', 'undecodable', undefined]);
    expect(loads).toBe(0);
  });
});

describe('negative cache behind the purge fence', () => {
  const gone = () => new RelayError('E_SOURCE_NOT_FOUND', 'origin answered 404');
  const sources = (source: string) => ({ sources: [source], hosts: [], prefixes: [], tags: [], all: false });

  it('does not remember a 404 whose request began before a purge: the next request reaches the origin again', async () => {
    const fence = new PurgeFence();
    const memory = new MemoryTier({ maxBytes: MiB, maxEntryBytes: MiB, negativeTtlMs: 60_000, fence });
    const key = 'variant\nhttp://example.com/a.png';
    // The origin answered 404 for the old image; the admin replaced it and purged before the 404 was remembered.
    await memory.remembering(key, async () => {
      fence.record(sources('http://example.com/a.png'));
      throw gone();
    }).catch(() => undefined);
    let originCalls = 0;
    const served = await memory.remembering(key, async () => { originCalls += 1; return 'new picture'; });
    expect([served, originCalls, memory.stats().negativeEntries]).toEqual(['new picture', 1, 0]);
    expect(fence.stats().fenced.memory).toBe(1);
  });

  it('still remembers a 404 when no purge came meanwhile: the origin is not asked again', async () => {
    const fence = new PurgeFence();
    const memory = new MemoryTier({ maxBytes: MiB, maxEntryBytes: MiB, negativeTtlMs: 60_000, fence });
    await memory.remembering('k', () => Promise.reject(gone())).catch(() => undefined);
    let originCalls = 0;
    const again = await memory.remembering('k', async () => { originCalls += 1; }).catch((error: unknown) => error as RelayError);
    expect([again?.code, originCalls]).toEqual(['E_SOURCE_NOT_FOUND', 0]);
  });
});
