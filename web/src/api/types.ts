/**
 * The API's contract as the page sees it: the types come from the service's own zod schemas
 * (type-only imports, erased by the build), so the page and the API cannot disagree silently.
 */
import type { DatasetRecord } from '../../../src/datasets/dataset-record.js';
import type { z } from 'zod';
import type {
  feedbackCreatedSchema,
  feedbackExamplesPageSchema,
  feedbackExampleViewSchema,
} from '../../../src/feedback/feedback-schema.js';
import type { JobView } from '../../../src/jobs/job-schema.js';

export type { JobProgress, JobView, EpochRecord, JobState } from '../../../src/jobs/job-schema.js';
export type { ModelMetadata } from '../../../src/registry/model-store.js';
export type { PredictResponse } from '../../../src/api/routes/predict.js';
export type { DatasetRecord } from '../../../src/datasets/dataset-record.js';
export type { ModelList } from '../../../src/api/routes/models.js';
export type { FeedbackSummary, VersionFeedbackAccuracy } from '../../../src/feedback/feedback-schema.js';

/** POST /feedback's answer (201 stored now, 200 stored before). */
export type FeedbackCreated = z.infer<typeof feedbackCreatedSchema>;
/** GET /feedback/examples. */
export type FeedbackExamplesPage = z.infer<typeof feedbackExamplesPageSchema>;
export type FeedbackExampleView = z.infer<typeof feedbackExampleViewSchema>;

/** GET /jobs. */
export interface JobList {
  jobs: JobView[];
  total: number;
  limit: number;
  offset: number;
}

/** GET /datasets. */
export interface DatasetList {
  datasets: DatasetRecord[];
}
