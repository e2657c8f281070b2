import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // TensorFlow.js keeps one global engine per process: isolate each file in its own fork.
    pool: 'forks',
    // Two files at a time even on 2 cores (vitest's default there is one): many tests spend their
    // time waiting on child processes, Redis, the S3 server or Chromium, not on the CPU.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
