/**
 * The edge build as it would be deployed: `wrangler deploy --dry-run` bundles src/worker.ts with no account and no
 * network, the bundle contains nothing Node-only (sharp, `node:*`, undici, pino, the AWS SDK), and the bundle itself
 * — not the sources — serves the legacy relay in workerd with wrangler.toml's settings (no nodejs_compat).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetch as miniflareFetch, Miniflare, type Request as MiniflareRequest, Response as MiniflareResponse } from 'miniflare';
import { fixture } from './helpers/images.js';
import { startOrigin, type TestOrigin } from './helpers/origin.js';

const run = promisify(execFile);
const FORBIDDEN_INPUT = /(^|\/)(node:|sharp|@img\/|undici|pino|@aws-sdk|@smithy|rate-limiter-flexible)/;
/** Workers' limit on the compressed script (free plan); the paid plan allows 10 MB. */
const FREE_PLAN_GZIP_LIMIT = 3 * 1024 * 1024;
/** Never let wrangler phone home or look for an account (FIELD-NOTES). */
const WRANGLER_ENV = {
  ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_API_TOKEN: '', CLOUDFLARE_ACCOUNT_ID: '', CI: 'true',
};

interface Metafile {
  inputs: Record<string, { bytes: number }>;
}

describe('worker build', () => {
  let outdir: string;
  let output: string;

  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), 'imgrelay-worker-'));
    const result = await run('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', outdir,
      '--metafile', join(outdir, 'meta.json')], { env: WRANGLER_ENV, timeout: 120_000 });
    output = result.stdout + result.stderr;
  }, 150_000);

  afterAll(async () => {
    await rm(outdir, { recursive: true, force: true });
  });

  it('bundles with no account, without Node-only modules, within the Workers size limit', async () => {
    expect(output).toContain('--dry-run: exiting now.');
    const meta = JSON.parse(await readFile(join(outdir, 'meta.json'), 'utf8')) as Metafile;
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain('src/worker.ts');
    expect(inputs.filter((input) => FORBIDDEN_INPUT.test(input))).toEqual([]);
    const script = await readFile(join(outdir, 'worker.js'));
    const gzip = gzipSync(script).byteLength;
    console.info(`worker bundle: ${(script.byteLength / 1024).toFixed(0)} KiB, gzip ${(gzip / 1024).toFixed(0)} KiB`
      + ` (largest inputs: ${largestPackages(meta).join(', ')})`);
    expect(gzip).toBeLessThan(FREE_PLAN_GZIP_LIMIT);
  });

  describe('the bundle in workerd', () => {
    let origin: TestOrigin;
    let mf: Miniflare;

    beforeAll(async () => {
      origin = await startOrigin();
      origin.serve('/202107/abc_1024.jpg', fixture('photo-wood.jpg'), 'image/jpeg');
      const toml = await readFile('wrangler.toml', 'utf8');
      mf = new Miniflare({
        modules: true, modulesRoot: outdir, scriptPath: join(outdir, 'worker.js'), cf: false,
        compatibilityDate: /compatibility_date\s*=\s*"([^"]+)"/.exec(toml)?.[1],
        bindings: { IMGRELAY_LOG_LEVEL: 'silent' },
        // The image host is connected to the loopback origin, as IMGRELAY_RESOLVE does on Node; nothing else.
        outboundService: async (request: MiniflareRequest) => {
          const url = new URL(request.url);
          if (url.hostname !== 'zkres2.myzaker.com') return new MiniflareResponse('no route', { status: 502 });
          return miniflareFetch(origin.url + url.pathname + url.search);
        },
      });
    }, 60_000);

    afterAll(async () => {
      await mf?.dispose();
      await origin?.close();
    });

    it('relays the legacy URL byte for byte with no Node compatibility layer', async () => {
      const response = await mf.dispatchFetch('https://img.example.com/?http://zkres2.myzaker.com/202107/abc_1024.jpg');
      expect(response.status).toBe(200);
      expect(response.headers.get('x-cache')).toBe('MISS');
      expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(fixture('photo-wood.jpg')))).toBe(true);
      const transform = await mf.dispatchFetch('https://img.example.com/?url=zkres2.myzaker.com/202107/abc_1024.jpg&w=50');
      expect(transform.status).toBe(501);
      await transform.arrayBuffer();
    });

    it('fetches the source once for concurrent requests in separate request contexts (single-flight)', async () => {
      origin.serve('/concurrent.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg');
      // Each body is read as its response arrives: miniflare's client may drain a response left unread meanwhile.
      const results = await Promise.all(Array.from({ length: 6 }, async () => {
        const response = await mf.dispatchFetch('https://img.example.com/?http://zkres2.myzaker.com/concurrent.jpg');
        return { status: response.status, bytes: (await response.arrayBuffer()).byteLength };
      }));
      for (const { status, bytes } of results) {
        expect(status).toBe(200);
        expect(bytes).toBe(fixture('photo-ladybird.jpg').byteLength);
      }
      expect(origin.hits('/concurrent.jpg')).toBe(1);
    });
  });
});

function largestPackages(meta: Metafile): string[] {
  const sizes = new Map<string, number>();
  for (const [input, { bytes }] of Object.entries(meta.inputs)) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split('/')[0];
    sizes.set(name, (sizes.get(name) ?? 0) + bytes);
  }
  return [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(0)} KiB`);
}
