/**
 * Child process for test/dns.test.ts, started with UV_THREADPOOL_SIZE=1 (the pool size must be set before the
 * process first uses its pool, so it cannot be done inside the test runner): starts 8 lookups through dns.ts against
 * the black-holed server given as argv[2], then does thread-pool work (fs reads, crypto) and reports, as one JSON
 * line, whether that work finished while the lookups were still pending. A control first shows that this pool
 * really has one thread: a file read queued behind a slow pbkdf2 finishes only after it.
 */
import { pbkdf2 } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createDnsResolver } from '../../src/fetch/dns.js';

const self = fileURLToPath(import.meta.url);
const slowHash = (iterations: number) => new Promise<number>((resolve, reject) =>
  pbkdf2('secret', 'salt', iterations, 32, 'sha256', (error) => (error ? reject(error) : resolve(performance.now()))));
const readSelf = () => readFile(self).then(() => performance.now());

async function control(): Promise<{ hashDoneAt: number; readDoneAt: number }> {
  const hash = slowHash(300_000); // a few hundred ms of one pool thread
  const read = readSelf();
  const [hashDoneAt, readDoneAt] = await Promise.all([hash, read]);
  return { hashDoneAt, readDoneAt };
}

async function main(): Promise<void> {
  const server = process.argv[2];
  const timeoutMs = Number(process.argv[3]);
  const controlResult = await control();
  const dns = createDnsResolver({ servers: [server], timeoutMs });
  let pending = 8;
  const started = performance.now();
  const lookups = Array.from({ length: 8 }, (_, i) => dns.resolve(`pool-probe-${i}.example`)
    .then(() => 'resolved', (error: { code?: string }) => error.code ?? 'error')
    .finally(() => { pending--; }));
  await new Promise((resolve) => setTimeout(resolve, 100)); // the queries are out, hanging
  const poolStarted = performance.now();
  await Promise.all([readSelf(), readSelf(), slowHash(1000), readSelf()]);
  const poolWorkMs = performance.now() - poolStarted;
  const pendingAfterPoolWork = pending;
  const outcomes = await Promise.all(lookups);
  const lookupsMs = performance.now() - started;
  dns.close();
  process.stdout.write(`${JSON.stringify({ control: controlResult, poolWorkMs, pendingAfterPoolWork, outcomes, lookupsMs })}\n`);
}

main().catch((error) => {
  process.stderr.write(String(error instanceof Error ? error.stack : error));
  process.exit(1);
});
