import { DIGIT_CLASSES } from '../../src/ml/data/dataset.js';
import type { TrainingReport } from '../../src/ml/run-training.js';

const CLASSES = 10;

/**
 * A structurally valid TrainingReport of a made-up two-epoch run, for tests that store or show
 * reports without training. `overrides` replaces top-level fields.
 */
export function trainingReportFixture(overrides: Partial<TrainingReport> = {}): TrainingReport {
  return {
    params: {
      architecture: 'seed',
      dataset: 'mnist',
      epochs: 2,
      batchSize: 64,
      learningRate: 0.001,
      learningRateSchedule: 'constant',
      optimizer: 'adam',
      seed: 42,
      augment: false,
      validationSize: 10_000,
    },
    backend: 'wasm',
    architecture: 'seed',
    parameterCount: 60_074,
    trainImages: 50_000,
    trainingSeconds: 50,
    imagesPerSecond: 2_000,
    threads: 1,
    classes: [...DIGIT_CLASSES],
    accuracy: { train: 0.99, validation: 0.985, test: 0.986 },
    loss: { train: 0.03, validation: 0.05, test: 0.045 },
    history: [1, 2].map((epoch) => ({
      epoch,
      loss: 0.3 / epoch,
      accuracy: 0.9 + 0.04 * epoch,
      lastBatchLoss: 0.25 / epoch,
      valLoss: 0.1 / epoch,
      valAccuracy: 0.95 + 0.015 * epoch,
      seconds: 25,
      imagesPerSecond: 2_000,
    })),
    // 986 of 1,000 test images right per class; the 14 errors all taken for the next digit.
    confusion: Array.from({ length: CLASSES }, (_, label) =>
      Array.from({ length: CLASSES }, (_, predicted) =>
        predicted === label ? 986 : predicted === (label + 1) % CLASSES ? 14 : 0,
      ),
    ),
    misclassified: [
      { index: 247, label: 4, predicted: 6, confidence: 0.97 },
      { index: 1226, label: 7, predicted: 2, confidence: 0.91 },
    ],
    ...overrides,
  };
}
