/**
 * Training throughput of the seed CNN at batch 64 on our chosen backend, at each thread count,
 * next to a faithful PyTorch version of the seed (bench/seed_torch.py) at the same thread counts,
 * run on the same data in the same run and interleaved (ours, PyTorch, ours, ...), so the ratios
 * survive a noisy, shared machine. Prints one JSON object.
 *
 *   npm run bench:train -- [--epochs 2] [--threads 1,2] [--backend wasm] [--no-torch]
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { backendNameSchema, initBackend } from '../src/ml/backend/index.js';
import { loadDataset, resolveDatasetDir, type DatasetSplits } from '../src/ml/data/dataset.js';
import { evaluate } from '../src/ml/evaluate.js';
import { train } from '../src/ml/train.js';
import { trainParamsSchema } from '../src/ml/train-params.js';
import { printReport } from './report.js';

const WARMUP_STEPS = 20;
const PYTHON = '/usr/bin/python3';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
    backend: { type: 'string' },
    'no-torch': { type: 'boolean', default: false },
  },
});
const epochs = Number(args.epochs);
const threadCounts = args.threads.split(',').map(Number);
if (threadCounts.some((t) => !Number.isInteger(t) || t < 1))
  throw new Error(`--threads: expected thread counts like 1,2, got '${args.threads}'`);
const backend = await initBackend(args.backend ? backendNameSchema.parse(args.backend) : undefined);
const data = await loadDataset('mnist');

const runs = [];
for (const threads of threadCounts) {
  const ours = await trainOurs(data, threads);
  const torch = args['no-torch'] ? null : await runTorch(threads);
  runs.push({
    threads,
    ours,
    pytorch: torch,
    ratio: torch ? ours.trainImagesPerSecond / torch.trainImagesPerSecond : null,
  });
}
printReport('train', { backend: backend.name, simd: backend.simd ?? null, epochs, batchSize: 64, runs });

async function trainOurs(data: DatasetSplits, threads: number) {
  const params = trainParamsSchema.parse({ epochs, batchSize: 64, architecture: 'seed' });
  // Steady state: from the end of step WARMUP_STEPS of epoch 1 to the last step of each epoch,
  // leaving out per-epoch validation, as the PyTorch script times only its steps.
  let timedSeconds = 0;
  let timedImages = 0;
  let segmentStart: { at: number; batch: number } | undefined;
  const { model, history, seconds } = await train({
    params,
    data,
    threads,
    progressIntervalMs: 0,
    onProgress: (p) => {
      const at = performance.now();
      if (p.kind === 'epoch') {
        segmentStart = undefined;
        return;
      }
      if (!segmentStart) {
        if (p.epoch > 1 || p.batch >= WARMUP_STEPS) segmentStart = { at, batch: p.batch };
        return;
      }
      // Batch events stop one before the last batch: count up to the last reported one.
      timedSeconds += (at - segmentStart.at) / 1000;
      timedImages += (p.batch - segmentStart.batch) * params.batchSize;
      segmentStart = { at, batch: p.batch };
    },
  });
  const test = evaluate(model, data.test);
  model.dispose();
  return {
    trainImagesPerSecond: timedImages / timedSeconds,
    secondsPerEpoch: seconds / epochs,
    validationAccuracy: history.at(-1)!.valAccuracy,
    testAccuracy: test.accuracy,
    history: history.map((h) => ({
      epoch: h.epoch,
      loss: h.loss,
      valAccuracy: h.valAccuracy,
      seconds: h.seconds,
    })),
  };
}

async function runTorch(
  threads: number,
): Promise<{ trainImagesPerSecond: number; [key: string]: unknown } | null> {
  if (!existsSync(PYTHON)) return null;
  try {
    const { stdout } = await promisify(execFile)(
      PYTHON,
      [
        'bench/seed_torch.py',
        ...['--epochs', String(epochs), '--threads', String(threads), '--data', resolveDatasetDir('mnist')],
      ],
      { maxBuffer: 1 << 20 },
    );
    return JSON.parse(stdout) as { trainImagesPerSecond: number };
  } catch (error) {
    // No torch installed (apt-get install -y python3-torch python3-numpy): report ours alone.
    console.error(`PyTorch reference skipped: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
}
