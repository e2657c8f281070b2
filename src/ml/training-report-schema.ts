import { z } from 'zod';
import { backendNameSchema } from './backend/index.js';
import { classNameSchema, MAX_CLASSES } from './data/dataset.js';
import { architectureSchema, trainParamsSchema } from './train-params.js';

/*
 * The shapes a training run reports, each written once: train() and runTraining() produce them,
 * a model version's metadata.json stores them (in this key order) and the job API shows fields
 * picked from them (src/jobs/job-schema.ts).
 */

/** Where a run stands, told while it trains. */
export const trainProgressSchema = z.object({
  kind: z.enum(['batch', 'epoch']),
  /** 1-based. */
  epoch: z.int(),
  epochs: z.int(),
  /** Batches done in this epoch. */
  batch: z.int(),
  batches: z.int(),
  /** Of the whole run, 0..100. */
  percent: z.number(),
  /** Mean over this epoch's batches so far. */
  loss: z.number(),
  accuracy: z.number(),
  /** On epoch events (when there is a validation split). */
  valLoss: z.number().optional(),
  valAccuracy: z.number().optional(),
  /** On epoch events: the loss of the epoch's last batch, which the seed prints. */
  lastBatchLoss: z.number().optional(),
  imagesPerSecond: z.number(),
  elapsedSeconds: z.number(),
  etaSeconds: z.number(),
});
export type TrainProgress = z.infer<typeof trainProgressSchema>;

/** One finished epoch, as a version's history and a checkpoint keep it. */
export const epochSummarySchema = z.object({
  epoch: z.int().min(1),
  loss: z.number(),
  accuracy: z.number(),
  /** The seed prints this one after each epoch. */
  lastBatchLoss: z.number(),
  valLoss: z.number().nullable(),
  valAccuracy: z.number().nullable(),
  seconds: z.number(),
  imagesPerSecond: z.number(),
});
export type EpochSummary = z.infer<typeof epochSummarySchema>;

/** One measure on each split; validation is null when the run held no images out. */
const splitMetricsSchema = z.object({
  train: z.number(),
  validation: z.number().nullable(),
  test: z.number(),
});

/** A label: an index into the report's `classes`. */
const classIndexSchema = z
  .int()
  .min(0)
  .max(MAX_CLASSES - 1);

const misclassifiedSchema = z.object({
  /** Position in the evaluated set (for test: the t10k index). */
  index: z.int().min(0),
  label: classIndexSchema,
  predicted: classIndexSchema,
  confidence: z.number(),
});
export type Misclassified = z.infer<typeof misclassifiedSchema>;

/** One dataset a run trained on, and what it gave each epoch. */
export const trainingSourceSchema = z.object({
  /** As the job named it: 'mnist', an uploaded id, a path, or 'feedback'. */
  dataset: z.string(),
  /** Images it gave each epoch: the first's after trainSize; feedback's with its repeats. */
  images: z.int().min(0),
  /** 'feedback' only: the stored examples trained on ('train' split, of the run's classes). */
  examples: z.int().min(0).optional(),
  /** 'feedback' only: feedbackWeight, the times each example is seen per epoch. */
  weight: z.number().optional(),
  /** 'feedback' only: 'train' examples left out, their class not being one of the run's. */
  otherClasses: z.int().min(0).optional(),
  /** 'feedback' only: 'test' examples, which no job trains on. */
  heldOut: z.int().min(0).optional(),
});
export type TrainingSource = z.infer<typeof trainingSourceSchema>;

/** What a finished run reports, and a model version stores beside its weights. */
export const trainingReportSchema = z.object({
  params: trainParamsSchema,
  backend: backendNameSchema,
  architecture: architectureSchema,
  parameterCount: z.int().min(0),
  trainImages: z.int().min(0),
  /**
   * What the trainImages came from, the first dataset first (versions from before several datasets
   * could be trained on have none: they trained on `params.dataset` alone).
   */
  sources: z.array(trainingSourceSchema).optional(),
  /** Training time, per-epoch validation included; final evaluation excluded. */
  trainingSeconds: z.number(),
  imagesPerSecond: z.number(),
  /** Data-parallel threads it trained on (versions from before threads were recorded: 1). */
  threads: z.int().min(1).default(1),
  /** The name of each label the model outputs, in label order (the data set's class names). */
  classes: z.array(classNameSchema).min(2).max(MAX_CLASSES),
  accuracy: splitMetricsSchema,
  loss: splitMetricsSchema,
  history: z.array(epochSummarySchema),
  /** On the test set: confusion[true][predicted], classes x classes. */
  confusion: z.array(z.array(z.int().min(0)).max(MAX_CLASSES)).max(MAX_CLASSES),
  /** Test-set errors, most confident first. */
  misclassified: z.array(misclassifiedSchema),
});
export type TrainingReport = z.infer<typeof trainingReportSchema>;
