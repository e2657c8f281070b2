import { z } from 'zod';
import { datasetNameSchema, datasetSchema } from '../ml/data/dataset.js';
import { architectureSchema, checkDatasets, trainParamsFieldsSchema } from '../ml/train-params.js';
import { aliasNameSchema } from '../registry/model-aliases.js';
import { modelVersionSchema } from '../registry/model-store.js';

/**
 * POST /jobs' body: the training parameters as a client gives them, before job-rules.ts makes
 * them the ones a job is queued with. Three fields are looser here than in trainParamsSchema,
 * because what a job gets depends on more than the field: `dataset` defaults to the first of
 * `datasets`, `architecture` to the base version's, and `baseVersion` may name an alias.
 */
export const jobRequestSchema = trainParamsFieldsSchema
  .extend({
    dataset: datasetNameSchema
      .optional()
      .describe(`${datasetSchema.description} (default: the first of datasets, or 'mnist')`),
    architecture: architectureSchema
      .optional()
      .describe(`${architectureSchema.description} (default: the base version's, or 'seed')`),
    baseVersion: z
      .union([modelVersionSchema, aliasNameSchema])
      .optional()
      .describe(
        "start from this model version's weights, given by number or by alias (e.g. 'production', resolved " +
          'when the job is created); with another number of classes its last layer is replaced and trained anew',
      ),
  })
  .superRefine(checkDatasets);
export type JobRequest = z.infer<typeof jobRequestSchema>;
