/**
 * The workerd suite (test/worker/**): tests run inside workerd with the Worker (src/worker.ts, wrangler.toml) in
 * the same isolate, through @cloudflare/vitest-pool-workers. Its outbound fetches go to the lab (test/worker/lab.ts).
 * Run with `npx vitest run --config vitest.worker.config.ts` (part of `npm test`).
 */
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { labRouter } from './test/worker/lab.js';

// Never let wrangler or miniflare phone home (FIELD-NOTES): no metrics, no `cf` object download.
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
process.env.WRANGLER_HIDE_BANNER = 'true';

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        cf: false,
        // wrangler.toml's vars, but quiet: the suite asserts on responses, not on log lines.
        bindings: { IMGRELAY_LOG_LEVEL: 'silent' },
        outboundService: labRouter(inject('lab')),
        r2Buckets: ['IMGRELAY_R2'],
        // miniflare's local Images binding (sharp, in Node), under a name the edge does not read: only the tests that
        // pass it as `IMAGES` (test/worker/edge-images.test.ts) transform at the edge; the others keep forwarding.
        images: { binding: 'LAB_IMAGES' },
      },
    })),
  ],
  test: {
    include: ['test/worker/**/*.test.ts'],
    globalSetup: ['test/worker/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
