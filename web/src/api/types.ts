/**
 * The API's contract as the page sees it: the types come from the service's own zod schemas
 * (type-only imports, erased by the build), so the page and the API cannot disagree silently.
 */
import type { JobView } from '../../../src/jobs/job-schema.js';

export type { JobProgress, JobView, EpochRecord, JobState } from '../../../src/jobs/job-schema.js';
export type { ModelMetadata } from '../../../src/registry/model-store.js';
export type { PredictResponse } from '../../../src/api/routes/predict.js';
export type { ModelList } from '../../../src/api/routes/models.js';

/** GET /jobs. */
export interface JobList {
  jobs: JobView[];
  total: number;
  limit: number;
  offset: number;
}

/**
 * One data set, as GET /datasets lists it and GET /datasets/:id answers (issue 15). Written here
 * until the service's own schema (src/datasets/dataset-record.ts) exists to import the type from.
 */
export interface DatasetRecord {
  /** 'mnist', 'fashion-mnist' or an upload's id (letters-3kq9x2ab): what POST /jobs takes as `dataset`. */
  id: string;
  name: string;
  builtIn: boolean;
  format: 'folders' | 'idx' | 'csv' | 'built-in';
  /** The name of each label, in label order. */
  classes: string[];
  counts: {
    train: number;
    test: number;
    perClass: { class: string; train: number; test: number }[];
  };
  /** Files of the upload that were left out, and why (the first ones; skippedCount has them all). */
  skipped: { file: string; reason: string }[];
  skippedCount: number;
  /** Null for the built-ins. */
  createdAt: string | null;
}

/** GET /datasets. */
export interface DatasetList {
  datasets: DatasetRecord[];
}
