import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // TensorFlow.js keeps one global engine per process: isolate each file in its own fork.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
