import { defineConfig } from 'vitest/config';

// The container image test (test/container): podman builds and runs the image, so it is not part of `npm test`
// (the first build takes minutes); `npm run test:container` after `bash .ci/container-base.sh`, as .ci/run does.
export default defineConfig({
  test: {
    include: ['test/container/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 25 * 60_000,
    maxWorkers: 1,
  },
});
