/**
 * The I/O floor for cold misses: the least work any caching image server must do per miss, with no framework and
 * no safety: fetch the source from the origin (undici, keep-alive), run the same sharp pipeline as the raw-sharp
 * limit (2 at a time), answer with the result, then write source and result to a directory (as a write-behind
 * cache does). No URL validation, no address checks, no cache lookup, no hashing, no headers beyond the type.
 * Requests look like `/?src=<origin URL>&w=800&f=jpeg&q=80`. The gap between this and raw sharp is the cost of
 * moving the bytes (loopback TCP on both ends, the disk write); the gap between imgrelay and this is imgrelay's.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFile } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { Agent, request } from 'undici';
import type { EncodeSpec, Format } from '../lib/encode.js';
import { sharpEncode, tuneSharp } from '../lib/sharp-encode.js';
import { failStartup, serveParent } from './ipc.js';

const TYPES: Record<Format, string> = { jpeg: 'image/jpeg', webp: 'image/webp', avif: 'image/avif' };

async function main(): Promise<void> {
  tuneSharp();
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-bench-floor-'));
  const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  const slots = pLimit(2);
  const server = createServer((req, res) => void handle(req, res, { agent, slots, dir }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveParent({ port: (server.address() as AddressInfo).port }, {}, async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

interface Deps { agent: Agent; slots: ReturnType<typeof pLimit>; dir: string }

async function handle(req: IncomingMessage, res: ServerResponse, { agent, slots, dir }: Deps): Promise<void> {
  try {
    const query = new URL(req.url ?? '/', 'http://floor').searchParams;
    const spec: EncodeSpec = { format: query.get('f') as Format, width: Number(query.get('w')), quality: Number(query.get('q')) };
    const upstream = await request(query.get('src') ?? '', { dispatcher: agent });
    const source = Buffer.from(await upstream.body.arrayBuffer());
    const output = await slots(() => sharpEncode(source, spec));
    res.writeHead(200, { 'content-type': TYPES[spec.format], 'content-length': output.length });
    res.end(output);
    const name = randomUUID();
    writeFile(join(dir, `${name}.source`), source, () => undefined);
    writeFile(join(dir, `${name}.out`), output, () => undefined);
  } catch (error) {
    res.writeHead(502).end(String(error));
  }
}

main().catch(failStartup);
