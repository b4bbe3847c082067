import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The bench's helpers (ratios, wrk parsing, the soak verdict) are pure and checked with the suite.
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/lib/**/*.test.ts'],
    exclude: ['test/worker/**', 'test/container/**', 'node_modules/**'],
    // Compiles src/ to dist/ when it changed: spawned processes run the build (test/global-build.ts).
    globalSetup: ['test/global-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests boot real servers on loopback; two files at a time matches the two cores.
    maxWorkers: 2,
    // s3rver's list tokens need DES (FIELD-NOTES); the SDK's Node 20 notice is noise in test output.
    env: { NODE_OPTIONS: '--openssl-legacy-provider', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
