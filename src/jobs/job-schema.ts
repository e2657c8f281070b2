import { z } from 'zod';
import { trainParamsSchema } from '../ml/train-params.js';
import { jobFailureCodeSchema } from './job-failure.js';

/** The training queue's name; keys live under the deployment's REDIS_PREFIX. */
export const TRAINING_QUEUE = 'training';

/** A job id as BullMQ stores it and as it appears in paths and channels. */
export const jobIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'not a job id');

/** What a queued job carries: the validated parameters, with every default filled in. */
export const jobDataSchema = z.object({ params: trainParamsSchema });
export type JobData = z.infer<typeof jobDataSchema>;

export const epochRecordSchema = z.object({
  epoch: z.int(),
  loss: z.number(),
  accuracy: z.number(),
  valLoss: z.number().nullable(),
  valAccuracy: z.number().nullable(),
  seconds: z.number(),
});
export type EpochRecord = z.infer<typeof epochRecordSchema>;

/** What the worker reports while training (BullMQ job progress), and the API shows. */
export const jobProgressSchema = z.object({
  epoch: z.int(),
  epochs: z.int(),
  batch: z.int(),
  batches: z.int(),
  percent: z.number(),
  imagesPerSecond: z.number(),
  etaSeconds: z.number(),
  loss: z.number(),
  accuracy: z.number(),
  history: z.array(epochRecordSchema),
});
export type JobProgress = z.infer<typeof jobProgressSchema>;

export const jobMetricsSchema = z.object({
  accuracy: z.object({ train: z.number(), validation: z.number().nullable(), test: z.number() }),
  loss: z.object({ train: z.number(), validation: z.number().nullable(), test: z.number() }),
  trainingSeconds: z.number(),
  imagesPerSecond: z.number(),
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
  progress: jobProgressSchema.omit({ history: true }).nullable(),
  history: z.array(epochRecordSchema),
  result: jobResultSchema.nullable(),
  /** Why it failed, in plain words (the worker's log has the details). */
  error: z.string().nullable(),
  errorCode: jobFailureCodeSchema.nullable(),
});
export type JobView = z.infer<typeof jobViewSchema>;
