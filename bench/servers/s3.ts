/**
 * The S3 emulator (@20minutes/s3rver 5.0.0) in its own process, so its CPU is charged to neither contender.
 * Signature mismatches on `/bucket/` are allowed (FIELD-NOTES: the SDK signs a trailing slash s3rver drops).
 * Needs NODE_OPTIONS=--openssl-legacy-provider for ListObjectsV2 continuation tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { failStartup, serveParent } from './ipc.js';

/** The slice of s3rver's (untyped, CommonJS) API used here; loaded with require so no ambient typings are needed. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverClass;

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'imgrelay-bench-s3-'));
  const bucket = process.env.BENCH_BUCKET ?? 'bench';
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  // Counted here so the bench can tell how many GETs a store hit really costs (single-flight may merge some).
  let gets = 0;
  server.httpServer.on('request', (req: { method?: string }) => { if (req.method === 'GET') gets++; });
  serveParent({ port: address.port, bucket }, { gets: () => gets }, async () => {
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });
}

main().catch(failStartup);
