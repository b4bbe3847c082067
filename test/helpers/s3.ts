/**
 * A real S3 protocol server for tests: @20minutes/s3rver 5.0.0 in-process on loopback, port 0, data in a temp dir.
 * It verifies SigV4 (credentials S3RVER/S3RVER). Quirks (see FIELD-NOTES): its CLI file is missing (we start it
 * from code); ListObjectsV2 pagination needs `--openssl-legacy-provider` (DES continuation tokens), which
 * vitest.config.ts passes to the workers through NODE_OPTIONS — `startS3` checks that it took effect.
 *
 * Also: a "hanging S3" (TCP listener that accepts and never answers) for deadline tests.
 */
import { createCipheriv } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, type S3StoreOptions } from '../../src/cache/s3-store.js';
import { silentLogger } from '../../src/logger.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: HttpServer;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverConstructor;

/** The account s3rver creates at start-up. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps the objects. */
  dir: string;
  /** Stops listening and cuts open connections (the store sees ECONNREFUSED next). Data stays. */
  stop(): Promise<void>;
  /** Listens again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops and removes the data directory (unless it was given). */
  close(): Promise<void>;
}

function assertLegacyProvider(): void {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch {
    throw new Error('s3rver needs NODE_OPTIONS=--openssl-legacy-provider in the test worker (DES list tokens); '
      + 'vitest.config.ts sets it in test.env: check that it still does');
  }
}

export interface StartS3Options {
  dir?: string;
  bucket?: string;
  /**
   * For tests that boot the service itself (whose S3 client is not ours to patch): accept the SDK's `/bucket/`
   * signing path for bucket-level calls. Signatures are still required, just not compared on those paths.
   */
  allowMismatchedSignatures?: boolean;
}

export async function startS3(options: StartS3Options = {}): Promise<TestS3> {
  assertLegacyProvider();
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'imgrelay-s3rver-'));
  const bucket = options.bucket ?? 'imgrelay-test';
  let port = 0;
  let server: S3rverInstance | undefined;

  const start = async () => {
    const instance = new S3rver({
      address: '127.0.0.1', port, silent: true, directory: dir, vhostBuckets: false,
      configureBuckets: [{ name: bucket }], allowMismatchedSignatures: options.allowMismatchedSignatures ?? false,
    });
    port = (await instance.run()).port;
    server = instance;
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running?.httpServer) return;
    const closed = running.close();
    running.httpServer.closeAllConnections(); // keep-alive sockets of the SDK would hold close() open
    await closed;
  };

  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`, bucket, dir, stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The SDK signs bucket-level requests (ListObjectsV2, DeleteObjects) with the path `/bucket/` while s3rver
 * verifies `/bucket`: strip that slash before signing, so signatures stay verified (no allowMismatchedSignatures).
 */
function stripBucketSlashBeforeSigning(client: S3Client, bucket: string): S3Client {
  type Args = { request?: { path?: string } };
  const strip = (next: (args: Args) => Promise<unknown>) => async (args: Args) => {
    if (args.request?.path === `/${bucket}/`) args.request.path = `/${bucket}`;
    return next(args);
  };
  type Middleware = Parameters<S3Client['middlewareStack']['addRelativeTo']>[0];
  client.middlewareStack.addRelativeTo(strip as unknown as Middleware,
    { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'testStripBucketSlash' });
  return client;
}

/** Options for createS3Store talking to a test server (path style, explicit credentials, WHEN_REQUIRED). */
/**
 * An S3 server for a test that boots the service itself: the service's client takes its credentials from the AWS
 * SDK's usual chain (here, the environment) and is not ours to patch, so bucket-level signing paths are accepted.
 */
export function startS3ForService(options: Omit<StartS3Options, 'allowMismatchedSignatures'> = {}): Promise<TestS3> {
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  return startS3({ ...options, allowMismatchedSignatures: true });
}

export function s3StoreOptions(s3: { endpoint: string; bucket: string }, prefix = ''): S3StoreOptions {
  const base = {
    bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    checksums: 'WHEN_REQUIRED' as const, credentials: S3_CREDENTIALS, logger: silentLogger,
    connectTimeoutMs: 1000, requestTimeoutMs: 5000,
  };
  return { ...base, client: stripBucketSlashBeforeSigning(createS3Client(base), s3.bucket) };
}

export interface HangingServer {
  endpoint: string;
  /** Connections accepted so far. */
  readonly connections: number;
  stop(): Promise<void>;
}

/** A TCP listener on loopback that accepts connections, reads everything and never answers. */
export async function startHangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: NetServer = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get connections() { return connections; },
    stop: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
