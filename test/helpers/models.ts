import type * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { runTraining, type TrainingReport } from '../../src/ml/run-training.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import type { ModelStore } from '../../src/registry/model-store.js';

/**
 * Trains a real model on the wasm backend (1 epoch on 1,000 images unless `params` says
 * otherwise) and publishes it, with its misclassified digits, as the worker does. Returns the
 * model, which the caller disposes.
 */
export async function trainAndPublish(
  store: ModelStore,
  params: TrainParamsInput = {},
): Promise<tf.LayersModel> {
  const backend = await initBackend('wasm');
  const { model, report, misclassifiedImages } = await runTraining(
    trainParamsSchema.parse({ epochs: 1, trainSize: 1000, validationSize: 0, ...params }),
    { backend },
  );
  try {
    await store.publish(model, report, { jobId: null, misclassifiedImages });
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * Publishes the seed CNN with untrained weights (`seed`) under `report`, for tests that only show
 * a version's metadata or read some answer from it. Answers the version.
 */
export async function publishUntrained(store: ModelStore, report: TrainingReport, seed = 1): Promise<number> {
  await initBackend('wasm');
  const model = buildModel('seed', seed);
  try {
    return (await store.publish(model, report, { jobId: null })).version;
  } finally {
    model.dispose();
  }
}
