/**
 * A second publisher process for the model-store tests:
 *   tsx publish-versions.ts <root> <count> <firstSeed>   publishes <count> versions at once
 *   tsx publish-versions.ts <root> forever <firstSeed>    publishes one after another until killed
 * Version i holds buildModel('seed', firstSeed + i) with jobId `seed-<seed>`, so a test can check
 * that a version's weights and metadata belong together. Prints "ready", waits for a line on
 * stdin, then prints "published <version>" per version.
 */
import { once } from 'node:events';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { trainingReportFixture } from './training-report.js';

const [root, count, firstSeed] = process.argv.slice(2);
if (!root || !count || !firstSeed)
  throw new Error('usage: publish-versions.ts <root> <count|forever> <firstSeed>');

await initBackend('wasm');
const store = new FileModelStore(root);

async function publish(seed: number): Promise<void> {
  const model = buildModel('seed', seed);
  try {
    const { version } = await store.publish(model, trainingReportFixture(), { jobId: `seed-${seed}` });
    process.stdout.write(`published ${version}\n`);
  } finally {
    model.dispose();
  }
}

process.stdout.write('ready\n');
await once(process.stdin, 'data');
process.stdin.pause();

if (count === 'forever') {
  for (let seed = Number(firstSeed); ; seed++) await publish(seed);
} else {
  await Promise.all(Array.from({ length: Number(count) }, (_, i) => publish(Number(firstSeed) + i)));
}
