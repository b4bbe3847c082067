/**
 * Helpers for the shared-bucket purge tests (test/purge-s3-*.test.ts): the store wired as node-store.ts wires it
 * (purge index, guard, optionally the legacy root) on an S3 client that records every request it sends, and ways
 * to lay out and read a bucket directly.
 */
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PurgeableStore } from '../../src/admin/local-purge.js';
import type { Selectors } from '../../src/admin/selectors.js';
import { sha256Hex } from '../../src/cache/keys.js';
import { withLegacyRoot } from '../../src/cache/legacy-root.js';
import { createS3Store } from '../../src/cache/s3-store.js';
import { guardStore } from '../../src/cache/store-guard.js';
import { type IndexedStore, withStoreIndex } from '../../src/cache/store-index.js';
import type { Store, StoredEntry } from '../../src/cache/types.js';
import { surrogateKeys } from '../../src/images.js';
import { silentLogger } from '../../src/logger.js';
import type { RunningNode } from '../../src/node.js';
import { TOKEN_A } from './admin.js';
import { bootImgrelay, zakerAt } from './imgrelay.js';
import { s3StoreOptions, startS3ForService, type TestS3 } from './s3.js';

export interface SentRequest {
  command: string;
  /** The object key or listing prefix the request named (bucket prefix included). */
  target: string;
  /** DeleteObjects: every key it named. */
  keys: string[];
}

export interface Stack {
  client: S3Client;
  raw: Store;
  indexed: IndexedStore;
  purgeable: PurgeableStore;
  sent: SentRequest[];
}


/** The store as node-store.ts wires it (index, guard), on a client that records every request it sends. */
export function stackOf(s3: TestS3, prefix: string, legacyRoot = false): Stack {
  const options = s3StoreOptions(s3, prefix);
  const client = options.client as S3Client;
  const sent: SentRequest[] = [];
  type Args = { input: { Key?: string; Prefix?: string; Delete?: { Objects?: Array<{ Key?: string }> } } };
  const record = (next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
    const { input } = args;
    sent.push({ command: context.commandName ?? '?', target: input.Key ?? input.Prefix ?? '',
      keys: (input.Delete?.Objects ?? []).map((o) => o.Key ?? '') });
    return next(args);
  };
  const stackOfClient = client.middlewareStack as unknown as { add(m: unknown, o: { step: string; name: string }): void };
  stackOfClient.add(record, { step: 'initialize', name: 'testRecordRequests' });
  const current = createS3Store(options);
  const raw = legacyRoot ? withLegacyRoot(current, createS3Store({ ...options, prefix: '' })) : current;
  const indexed = withStoreIndex(raw);
  const guarded = guardStore(indexed, { timeoutMs: 20_000, logger: silentLogger });
  return { client, raw, indexed, purgeable: { guarded, raw }, sent };
}

export const selectors = (s: Partial<Selectors>): Selectors =>
  ({ sources: [], hosts: [], prefixes: [], tags: [], all: false, ...s });

const VARIANT = 'w=20|webp|v2';

export async function entryOf(source: string): Promise<StoredEntry> {
  const body = new TextEncoder().encode(`bytes of ${source}`);
  return { body, meta: { contentType: 'image/png', etag: '"e"', storedAt: 1, expiresAt: 2, sourceUrl: source,
    size: body.byteLength, tags: await surrogateKeys(new URL(source)) } };
}

/** Stores the source and one variant of each URL, as the image service would. */
export async function storeSources(store: Store, sources: string[], withVariant = true): Promise<void> {
  for (let i = 0; i < sources.length; i += 50) {
    await Promise.all(sources.slice(i, i + 50).map(async (source) => {
      const hash = await sha256Hex(source);
      const entry = await entryOf(source);
      await store.put(`${hash}/source`, entry);
      if (withVariant) await store.put(`${hash}/${await sha256Hex(VARIANT)}`, entry);
    }));
  }
}

export async function putObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `not imgrelay's: ${key}` }));
}

export async function bucketKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Source hashes that still have entries under `root`. */
export async function storedSources(client: S3Client, bucket: string, root: string, sources: string[]): Promise<string[]> {
  const keys = new Set(await bucketKeys(client, bucket, root));
  const kept: string[] = [];
  for (const source of sources) if (keys.has(`${root}${await sha256Hex(source)}/source`)) kept.push(source);
  return kept;
}

export interface SharedBucketNode {
  node: RunningNode;
  /** Puts another tool's object (not an imgrelay key) at `key` in the bucket. */
  putForeign(key: string): Promise<void>;
  close(): Promise<void>;
}

/** A node (admin token TOKEN_A) whose store is a fresh s3rver bucket under `prefix`, shared with other tools. */
export async function bootOnSharedBucket(originPort: number, prefix: string): Promise<SharedBucketNode> {
  const s3 = await startS3ForService();
  const node = await bootImgrelay({ ...zakerAt(originPort), IMGRELAY_ADMIN_TOKENS: TOKEN_A, IMGRELAY_STORE: 's3',
    IMGRELAY_S3_BUCKET: s3.bucket, IMGRELAY_S3_ENDPOINT: s3.endpoint, IMGRELAY_S3_FORCE_PATH_STYLE: 'true',
    IMGRELAY_S3_PREFIX: prefix });
  const { client } = stackOf(s3, prefix);
  return {
    node,
    putForeign: (key) => putObject(client, s3.bucket, key),
    close: async () => {
      client.destroy();
      await node.close();
      await s3.close();
    },
  };
}
