/**
 * The S3 limit: the AWS SDK alone, `concurrency` GetObject loops over the given keys for a fixed time, bodies
 * read fully. Also finds which keys imgrelay stored a given body under (`locate`), so both read the same objects.
 */
import { readFile } from 'node:fs/promises';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { failStartup, serveParent } from './ipc.js';

interface Target { endpoint: string; bucket: string }
interface RunRequest extends Target { keys: string[]; concurrency: number; durationMs: number }

const clients = new Map<string, S3Client>();

function client(endpoint: string): S3Client {
  let s3 = clients.get(endpoint);
  if (!s3) {
    s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    clients.set(endpoint, s3);
  }
  return s3;
}

async function getBytes(target: Target, key: string): Promise<Uint8Array> {
  const answer = await client(target.endpoint).send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
  return (await answer.Body?.transformToByteArray()) ?? new Uint8Array();
}

/** Every key whose object holds the body (imgrelay may frame it with metadata), in listing order. */
async function locate({ bodyFile, ...target }: Target & { bodyFile: string }): Promise<{ keys: string[]; size: number }> {
  const needle = await readFile(bodyFile);
  const listing = await client(target.endpoint).send(new ListObjectsV2Command({ Bucket: target.bucket }));
  const keys: string[] = [];
  let size = 0;
  for (const object of listing.Contents ?? []) {
    const bytes = Buffer.from(await getBytes(target, object.Key as string));
    if (bytes.includes(needle)) keys.push(object.Key as string);
    size = bytes.length;
  }
  if (keys.length === 0) throw new Error(`no object in ${target.bucket} holds the ${needle.length} bytes of ${bodyFile}`);
  return { keys, size };
}

async function run(request: RunRequest): Promise<{ ops: number; elapsedMs: number; errors: number }> {
  let ops = 0;
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + request.durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        await getBytes(request, request.keys[next++ % request.keys.length]);
        ops++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: request.concurrency }, worker));
  return { ops, elapsedMs: performance.now() - started, errors };
}

serveParent({}, {
  locate: (payload) => locate(payload as Target & { bodyFile: string }),
  run: (payload) => run(payload as RunRequest),
}, async () => {
  for (const s3 of clients.values()) s3.destroy();
});

process.on('unhandledRejection', failStartup);
