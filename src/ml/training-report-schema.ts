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

/** What a finished run reports, and a model version stores beside its weights. */
export const trainingReportSchema = z.object({
  params: trainParamsSchema,
  backend: backendNameSchema,
  architecture: architectureSchema,
  parameterCount: z.int().min(0),
  trainImages: z.int().min(0),
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
