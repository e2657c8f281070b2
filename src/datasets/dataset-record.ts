import { z } from 'zod';
import { BUILT_IN_DATASETS, classNameSchema, uploadedDatasetIdSchema } from '../ml/data/dataset.js';

/** The most skipped files a record lists; `skippedCount` says how many there were in all. */
export const MAX_SKIPPED_LISTED = 100;

/** The `?name=` of an upload: shown as it is, so the same safe text as a class name. */
export const datasetNameSchema = classNameSchema.describe(
  "The dataset's name as people read it (1 to 64 characters of safe text); its id is made from it.",
);

const builtInIds = Object.keys(BUILT_IN_DATASETS) as [keyof typeof BUILT_IN_DATASETS];

/** A built-in data set's name ('mnist') or an uploaded one's id ('letters-3kq9x2ab'). */
export const datasetIdSchema = z.union([z.enum(builtInIds), uploadedDatasetIdSchema]);

export const datasetFormatSchema = z
  .enum(['folders', 'idx', 'csv', 'built-in'])
  .describe('How it was uploaded: a zip of class folders, a zip of idx files, a CSV; or built in');

export const skippedFileSchema = z.object({
  file: z.string().describe('The file in the upload (a path inside the zip, or an idx file and index)'),
  reason: z.string(),
});
export type SkippedFile = z.infer<typeof skippedFileSchema>;

export const classCountSchema = z.object({
  class: classNameSchema,
  train: z.int().min(0),
  test: z.int().min(0),
});

export const datasetCountsSchema = z.object({
  train: z.int().min(0).describe('Images in the training file (validation is taken from its end)'),
  test: z.int().min(0),
  perClass: z.array(classCountSchema).describe('One entry per class, in label order'),
});
export type DatasetCounts = z.infer<typeof datasetCountsSchema>;

/** A dataset as `GET /datasets/:id` shows it, and as `<DATASET_DIR>/<id>/dataset.json` stores it. */
export const datasetRecordSchema = z.object({
  id: datasetIdSchema,
  name: z.string().min(1).max(64),
  builtIn: z.boolean(),
  format: datasetFormatSchema,
  classes: z.array(classNameSchema).describe('The name of label i at index i'),
  counts: datasetCountsSchema,
  skipped: z.array(skippedFileSchema).max(MAX_SKIPPED_LISTED).describe('Files left out, and why'),
  skippedCount: z.int().min(0),
  createdAt: z.iso.datetime().nullable().describe('When it was uploaded; null for a built-in one'),
});
export type DatasetRecord = z.infer<typeof datasetRecordSchema>;
