/**
 * `npm run test:reliability [-- --soak] [-- --enforce-bars] [-- <vitest filters and options>]`:
 * the reliability scenarios (docs/RELIABILITY.md) in CI mode, or with --soak in soak mode
 * (RELIABILITY_MODE=soak does the same). vitest refuses options it does not know, hence this
 * small wrapper.
 *
 * Timing bars (latencies, time to recover: `record.bar` in helpers/figures.ts) are reported in
 * the table with `pass` or `over` and do not decide the run: a latency depends on what else the
 * machine runs. With --enforce-bars (RELIABILITY_BARS=enforce does the same) a bar missed fails
 * its test, for a run on a quiet machine that means to hold the service to them. Correctness
 * checks (statuses, counts, versions, memory) decide the run in every mode.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const OWN = new Set(['--soak', '--enforce-bars']);
const args = process.argv.slice(2);
const soak = args.includes('--soak') || process.env.RELIABILITY_MODE === 'soak';
const enforceBars = args.includes('--enforce-bars') || process.env.RELIABILITY_BARS === 'enforce';
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const child = spawn(
  process.execPath,
  [vitest, 'run', '--config', 'vitest.reliability.config.ts', ...args.filter((a) => !OWN.has(a))],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      RELIABILITY_MODE: soak ? 'soak' : 'ci',
      RELIABILITY_BARS: enforceBars ? 'enforce' : 'report',
    },
  },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
