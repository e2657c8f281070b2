/**
 * The API's contract as the page sees it: the types come from the service's own zod schemas
 * (type-only imports, erased by the build), so the page and the API cannot disagree silently.
 */
import type { DatasetRecord } from '../../../src/datasets/dataset-record.js';
import type { JobView } from '../../../src/jobs/job-schema.js';

export type { JobProgress, JobView, EpochRecord, JobState } from '../../../src/jobs/job-schema.js';
export type { ModelMetadata } from '../../../src/registry/model-store.js';
export type { PredictResponse } from '../../../src/api/routes/predict.js';
export type { DatasetRecord } from '../../../src/datasets/dataset-record.js';
export type { ModelList } from '../../../src/api/routes/models.js';

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
