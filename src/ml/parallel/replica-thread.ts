import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { buildModel } from '../architectures.js';
import { initBackend } from '../backend/index.js';
import { BatchMaker } from '../batches.js';
import { createOptimizer, learningRateSchedule } from '../optimizers.js';
import { createTrainStepper } from '../train-step.js';
import type { FromReplica, ReplicaInput, TensorValues } from './replica-messages.js';
import { SharedStep, STOP_COMMAND } from './shared-step.js';

/**
 * A data-parallel replica: the same model and optimizer as the leader's, stepping in lockstep on
 * its slice of each batch (shared-step.ts). It only ever blocks on the shared memory; the leader
 * ends it with a stop command, or terminates it.
 */
const input = workerData as ReplicaInput;
const send = (message: FromReplica) => parentPort!.postMessage(message);
let step: SharedStep | undefined;

const toTensor = (t: TensorValues) => tf.tensor(t.values, t.shape, t.dtype);

async function main(): Promise<void> {
  await initBackend(input.backend);
  // The leader's weights replace the seeded ones: a fine-tuned run's replicas start from the base too.
  const model = buildModel(input.params.architecture, input.params.seed, input.numClasses);
  model.setWeights(input.weights.map(toTensor));
  const optimizer = createOptimizer(input.params.optimizer, input.params.learningRate);
  if (input.optimizerWeights) {
    await optimizer.setWeights(input.optimizerWeights.map((t) => ({ name: t.name, tensor: toTensor(t) })));
  }
  const stepsPerEpoch = Math.ceil(input.train.count / input.params.batchSize);
  const stepper = createTrainStepper(model, optimizer, learningRateSchedule(input.params, stepsPerEpoch));
  const maker = new BatchMaker({ ...input.train }, input.numClasses);
  step = new SharedStep(input.shared, input.replica, stepper, maker);
  send({ type: 'ready' });
  let seen = 0;
  for (;;) {
    seen = step.waitForCommand(seen);
    if (step.command === STOP_COMMAND) return;
    step.compute();
    step.waitForAll();
    step.finish();
  }
}

main().catch((error: unknown) => {
  // When another replica failed (or the leader gave up) this one just leaves.
  if (step?.failed) return;
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  step?.fail();
});
