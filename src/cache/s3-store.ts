/**
 * The S3 store (IMGRELAY_STORE=s3): one object per entry at `<prefix><key>`, its body the same frame as the
 * directory store (entry-codec.ts: meta JSON + bytes), so one PUT publishes meta and body together and the meta
 * is not limited by S3's 2 KB of user metadata (a canonical source URL alone may be 8 KB; tags are unbounded).
 * The object is labelled `x-amz-meta-imgrelay-frame: 1` and typed application/octet-stream for operators.
 *
 * Listing and prefix deletion see only imgrelay keys under the prefix (`ownKeys`): a bucket shared with other data
 * is never touched outside them.
 *
 * Every command carries the caller's AbortSignal; the HTTP handler throws on request timeouts (it only warns by
 * default) and checksums follow IMGRELAY_S3_CHECKSUMS ('WHEN_REQUIRED' by default: the SDK's aws-chunked
 * checksummed uploads break many S3-compatible servers).
 */
import {
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Logger } from '../logger.js';
import { assertStoreKey, decodeEntry, decodeMeta, encodeEntry, FRAME_HEADER_BYTES, isStoreKey, metaLengthOf }
  from './entry-codec.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

export type ChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

export interface S3ClientOptions {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  checksums: ChecksumMode;
  /** Defaults to the SDK's credential chain (env, profile, IMDS …). */
  credentials?: S3ClientConfig['credentials'];
  /** Socket-level bounds; the guard's deadline (store-guard.ts) is the real per-call bound. */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export interface S3StoreOptions extends S3ClientOptions {
  bucket: string;
  /** Key prefix inside the bucket; a missing trailing `/` is added. */
  prefix: string;
  logger: Logger;
  /** A ready client (tests add middleware); built from the options above when absent. */
  client?: S3Client;
}

/** DeleteObjects accepts at most 1000 keys per request. */
const DELETE_BATCH = 1000;
/** First read for `head`: header plus a typical meta; a longer meta costs a second ranged read. */
const HEAD_PROBE_BYTES = 4096;

export function createS3Client(options: S3ClientOptions): S3Client {
  return new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    requestChecksumCalculation: options.checksums,
    responseChecksumValidation: options.checksums,
    // A cache read that needs retries is better served by the origin; one retry covers a dropped keep-alive socket.
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 2000,
      requestTimeout: options.requestTimeoutMs ?? 10_000,
      throwOnRequestTimeout: true,
    },
  });
}

const normalisePrefix = (prefix: string) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`);

/** NoSuchKey (GET), NotFound (HEAD) or a bare 404: the object is absent. */
function isAbsent(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
}

export function createS3Store(options: S3StoreOptions): Store {
  return new S3Store(options);
}

class S3Store implements Store {
  readonly kind = 's3';
  foreignSkipped = 0;
  private readonly client: S3Client;
  private readonly root: string;

  constructor(private readonly options: S3StoreOptions) {
    this.client = options.client ?? createS3Client(options);
    this.root = normalisePrefix(options.prefix);
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined> {
    assertStoreKey(key);
    const frame = await this.getBytes(key, signal);
    if (!frame) return undefined;
    const entry = decodeEntry(frame);
    if (!entry) this.options.logger.warn({ key }, 's3 store: object is not a valid entry frame; treated as a miss');
    return entry;
  }

  async head(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined> {
    assertStoreKey(key);
    const probe = await this.getBytes(key, signal, `bytes=0-${HEAD_PROBE_BYTES - 1}`);
    if (!probe) return undefined;
    const metaLength = metaLengthOf(probe);
    if (metaLength === undefined) return undefined;
    if (probe.byteLength >= FRAME_HEADER_BYTES + metaLength) return decodeMeta(probe);
    const full = await this.getBytes(key, signal, `bytes=0-${FRAME_HEADER_BYTES + metaLength - 1}`);
    return full && decodeMeta(full);
  }

  async put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void> {
    assertStoreKey(key);
    const frame = encodeEntry(entry);
    await this.client.send(new PutObjectCommand({
      Bucket: this.options.bucket, Key: this.objectKey(key), Body: frame, ContentLength: frame.byteLength,
      ContentType: 'application/octet-stream', Metadata: { 'imgrelay-frame': '1' },
    }), { abortSignal: signal });
  }

  async delete(key: string, signal?: AbortSignal): Promise<boolean> {
    assertStoreKey(key);
    // S3 DELETE succeeds on absent keys; ask first so the answer means something (purge reports use it).
    if (!(await this.head(key, signal))) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }),
      { abortSignal: signal });
    return true;
  }

  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    let removed = 0;
    // Each listed page is deleted before the next is asked for: the continuation token names the last key
    // returned, so deleting what was already listed does not disturb the listing.
    for await (const keys of this.listPages(prefix, signal)) {
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        removed += await this.deleteBatch(keys.slice(i, i + DELETE_BATCH), signal);
      }
    }
    return removed;
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const keys of this.listPages(prefix, signal)) yield* keys;
  }

  async close(): Promise<void> {
    if (!this.options.client) this.client.destroy(); // a client handed in belongs to its owner
  }

  private objectKey(key: string): string {
    return `${this.root}${key}`;
  }

  private async getBytes(key: string, signal?: AbortSignal, range?: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({
        Bucket: this.options.bucket, Key: this.objectKey(key), Range: range,
      }), { abortSignal: signal });
      return await out.Body?.transformToByteArray();
    } catch (e) {
      if (isAbsent(e)) return undefined;
      throw e;
    }
  }

  private async *listPages(prefix: string, signal?: AbortSignal): AsyncGenerator<string[]> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({
        Bucket: this.options.bucket, Prefix: this.root + prefix, ContinuationToken: token,
      }), { abortSignal: signal });
      const keys = this.ownKeys(page.Contents ?? []);
      if (keys.length > 0) yield keys;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * The imgrelay keys of a listed page, bucket prefix removed. Anything else (a console "folder" `foo/`, other
   * data, or the whole bucket when the prefix is empty) is counted and left alone: never read, never deleted.
   */
  private ownKeys(objects: ReadonlyArray<{ Key?: string }>): string[] {
    const keys: string[] = [];
    for (const { Key } of objects) {
      const key = Key?.slice(this.root.length);
      if (key !== undefined && isStoreKey(key)) keys.push(key);
      else this.foreignSkipped += 1;
    }
    return keys;
  }

  private async deleteBatch(keys: string[], signal?: AbortSignal): Promise<number> {
    const out = await this.client.send(new DeleteObjectsCommand({
      Bucket: this.options.bucket, Delete: { Quiet: true, Objects: keys.map((k) => ({ Key: this.objectKey(k) })) },
    }), { abortSignal: signal });
    const errors = out.Errors ?? [];
    if (errors.length > 0) {
      this.options.logger.warn({ failed: errors.length, first: errors[0] }, 's3 store: some deletions failed');
    }
    return keys.length - errors.length;
  }
}
