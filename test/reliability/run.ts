/**
 * `npm run test:reliability [-- --soak] [-- <vitest filters and options>]`: the reliability
 * scenarios (docs/RELIABILITY.md) in CI mode, or with --soak in soak mode (RELIABILITY_MODE=soak
 * does the same). vitest refuses options it does not know, hence this small wrapper.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const args = process.argv.slice(2);
const soak = args.includes('--soak') || process.env.RELIABILITY_MODE === 'soak';
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const child = spawn(
  process.execPath,
  [vitest, 'run', '--config', 'vitest.reliability.config.ts', ...args.filter((a) => a !== '--soak')],
  { stdio: 'inherit', env: { ...process.env, RELIABILITY_MODE: soak ? 'soak' : 'ci' } },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
