import { defineConfig } from 'vitest/config';

const soak = process.env.RELIABILITY_MODE === 'soak';

/**
 * `npm run test:reliability`: the fault-injection, bad-input and load scenarios of
 * docs/RELIABILITY.md, against real Redis, API and worker processes. Kept out of `npm test`
 * (whose config picks up only *.test.ts): each scenario starts its own processes and takes the
 * machine's CPU, so the files run one at a time.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.scenario.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: soak ? 3_600_000 : 300_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/reliability/reporter.ts'],
  },
});
