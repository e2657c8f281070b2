import type * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from './backend/index.js';
import { loadDataset, type ImageSet } from './data/dataset.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { train, type TrainOptions } from './train.js';
import { gatherTrainingSet, type TrainingSourceOptions } from './training-sources.js';
import type { TrainParams } from './train-params.js';
import type { TrainingReport } from './training-report-schema.js';

// runTraining()'s report type, for its callers.
export type { TrainingReport };

export interface RunTrainingOptions
  extends
    Pick<
      TrainOptions,
      'signal' | 'onProgress' | 'progressIntervalMs' | 'onEpochEnd' | 'resume' | 'threads' | 'base'
    >,
    TrainingSourceOptions {
  backend: BackendInfo;
  /** How many test errors to keep in the report; default 100. */
  misclassifiedLimit?: number;
}

/**
 * Loads the data (every dataset the run names: training-sources.ts), trains and evaluates on
 * train, validation and test: what the CLI and the worker both do with a set of parameters. The
 * caller owns (and disposes) the model.
 */
export async function runTraining(
  asked: TrainParams,
  options: RunTrainingOptions,
): Promise<{ model: tf.LayersModel; report: TrainingReport; misclassifiedImages: Uint8Array }> {
  const data = await loadDataset(asked.dataset, {
    validationSize: asked.validationSize,
    uploadedRoot: options.uploadedRoot,
  });
  // The report (a version's metadata) says how many images were held out, chosen or defaulted.
  const params: TrainParams = { ...asked, validationSize: data.validation.count };
  const { trainSet, sources } = await gatherTrainingSet(params, data, options);
  const result = await train({ ...options, params, data, trainSet });
  try {
    const onTrain = evaluate(result.model, trainSet, { misclassifiedLimit: 0 });
    const onValidation: Evaluation | null =
      data.validation.count > 0 ? evaluate(result.model, data.validation, { misclassifiedLimit: 0 }) : null;
    const onTest = evaluate(result.model, data.test, {
      misclassifiedLimit: options.misclassifiedLimit ?? 100,
    });
    const report: TrainingReport = {
      params,
      backend: options.backend.name,
      architecture: params.architecture,
      parameterCount: result.model.countParams(),
      trainImages: trainSet.count,
      sources,
      trainingSeconds: result.seconds,
      imagesPerSecond: result.imagesPerSecond,
      threads: options.threads ?? 1,
      classes: [...data.classes],
      accuracy: {
        train: onTrain.accuracy,
        validation: onValidation?.accuracy ?? null,
        test: onTest.accuracy,
      },
      loss: { train: onTrain.loss, validation: onValidation?.loss ?? null, test: onTest.loss },
      history: result.history,
      confusion: onTest.confusion,
      misclassified: onTest.misclassified,
    };
    // The pixels go with the report so the model store can keep pictures of the errors (issue 6).
    return { model: result.model, report, misclassifiedImages: pixelsOf(data.test, onTest.misclassified) };
  } catch (error) {
    result.model.dispose();
    throw error;
  }
}

/** The images at `items[i].index` of `set`, one after another. */
function pixelsOf(set: ImageSet, items: { index: number }[]): Uint8Array {
  const size = set.height * set.width;
  const out = new Uint8Array(items.length * size);
  items.forEach(({ index }, i) => out.set(set.images.subarray(index * size, (index + 1) * size), i * size));
  return out;
}
