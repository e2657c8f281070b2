import { z } from 'zod';
import { trainParamsSchema } from '../ml/train-params.js';
import {
  epochSummarySchema,
  trainingReportSchema,
  trainProgressSchema,
} from '../ml/training-report-schema.js';
import { jobFailureCodeSchema } from './job-failure.js';

/** The training queue's name; keys live under the deployment's REDIS_PREFIX. */
export const TRAINING_QUEUE = 'training';

/** A job id as BullMQ stores it and as it appears in paths and channels. */
export const jobIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'not a job id');

/** What a queued job carries: the validated parameters, with every default filled in. */
export const jobDataSchema = z.object({ params: trainParamsSchema });
export type JobData = z.infer<typeof jobDataSchema>;

/** An epoch in a job's history: its summary without the figures only a version's metadata keeps. */
export const epochRecordSchema = epochSummarySchema.pick({
  epoch: true,
  loss: true,
  accuracy: true,
  valLoss: true,
  valAccuracy: true,
  seconds: true,
});
export type EpochRecord = z.infer<typeof epochRecordSchema>;

/** Most points a job's per-batch curve keeps, however long it trains (src/jobs/batch-history.ts). */
export const BATCH_HISTORY_MAX = 100;

/** A point of a job's per-batch curve. */
export const batchPointSchema = z.object({
  x: z.number().min(0).describe('epochs done: 1.5 is half-way through epoch 2'),
  loss: z.number().describe("the epoch's mean training loss over its batches so far"),
  accuracy: z.number().describe("the epoch's training accuracy over its batches so far, 0 to 1"),
});
export type BatchPoint = z.infer<typeof batchPointSchema>;

const batchHistorySchema = z
  .array(batchPointSchema)
  .max(BATCH_HISTORY_MAX)
  .describe(
    `The per-batch curve from the job's start, x ascending: at most ${BATCH_HISTORY_MAX} points spread ` +
      'evenly over its epochs, so a client that opens late still draws the whole run. A job resumed ' +
      'from a checkpoint keeps the points up to it.',
  );

/** What the worker reports while training (BullMQ job progress), and the API shows. */
export const jobProgressSchema = trainProgressSchema
  .pick({
    epoch: true,
    epochs: true,
    batch: true,
    batches: true,
    percent: true,
    imagesPerSecond: true,
    etaSeconds: true,
    loss: true,
    accuracy: true,
  })
  .extend({
    history: z.array(epochRecordSchema),
    // Progress written before the curve existed has none: read as empty rather than refused.
    batchHistory: batchHistorySchema.default([]),
  });
export type JobProgress = z.infer<typeof jobProgressSchema>;

export const jobMetricsSchema = trainingReportSchema.pick({
  accuracy: true,
  loss: true,
  trainingSeconds: true,
  imagesPerSecond: true,
});

export const jobResultSchema = z.object({ modelVersion: z.int().positive(), metrics: jobMetricsSchema });
export type JobResult = z.infer<typeof jobResultSchema>;

export const jobStateSchema = z.enum(['queued', 'active', 'completed', 'failed', 'cancelled']);
export type JobState = z.infer<typeof jobStateSchema>;

/** A job as the API shows it. */
export const jobViewSchema = z.object({
  id: z.string(),
  state: jobStateSchema,
  params: trainParamsSchema,
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  attempts: z.int(),
  progress: jobProgressSchema.omit({ history: true, batchHistory: true }).nullable(),
  history: z.array(epochRecordSchema),
  batchHistory: batchHistorySchema,
  result: jobResultSchema.nullable(),
  /** Why it failed, in plain words (the worker's log has the details). */
  error: z.string().nullable(),
  errorCode: jobFailureCodeSchema.nullable(),
});
export type JobView = z.infer<typeof jobViewSchema>;
