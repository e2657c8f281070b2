import { z } from 'zod';
import { datasetSchema, datasetsEntrySchema, FEEDBACK_DATASET } from './data/dataset.js';

// Where validationSize comes from when a run does not give it.
export { defaultValidationSize } from './data/dataset.js';

export const architectureSchema = z
  .enum(['seed', 'wide'])
  .describe("'seed': the tutorial's 60,074-parameter CNN; 'wide': more filters, batch norm and dropout");
export type Architecture = z.infer<typeof architectureSchema>;

export const learningRateScheduleSchema = z
  .enum(['constant', 'cosine'])
  .describe("'constant': learningRate throughout; 'cosine': from learningRate down to 0 over the run");
export type LearningRateSchedule = z.infer<typeof learningRateScheduleSchema>;

export const optimizerSchema = z.enum(['adam', 'sgd', 'momentum', 'rmsprop']);
export type OptimizerName = z.infer<typeof optimizerSchema>;

/** Largest training set we accept: the whole MNIST training file. */
export const MAX_TRAIN_SIZE = 60_000;

/**
 * Everything that decides what a training run learns; the defaults are the seed tutorial's
 * recipe. One schema for the CLI, the job API and the worker, so the contract is written once.
 */
export const trainParamsFieldsSchema = z
  .object({
    architecture: architectureSchema.default('seed'),
    dataset: datasetSchema,
    epochs: z.int().min(1).max(100).default(10),
    batchSize: z.int().min(1).max(1024).default(64),
    learningRate: z.number().gt(0).max(1).default(0.001).describe('in (0, 1]'),
    learningRateSchedule: learningRateScheduleSchema.default('constant'),
    optimizer: optimizerSchema.default('adam'),
    seed: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42)
      .describe('initial weights, dropout and shuffling; same seed and backend, same weights'),
    trainSize: z
      .int()
      .min(1)
      .max(MAX_TRAIN_SIZE)
      .optional()
      .describe(
        'use only the first N training images of the (first) dataset (default: its whole training split)',
      ),
    augment: z
      .boolean()
      .default(false)
      .describe('shift each training image by up to 2 pixels at random (helps the wide net past 99.4 %)'),
    validationSize: z
      .int()
      .min(0)
      .max(30_000)
      .optional()
      .describe('images held out from the end of the training file (default: a sixth of it, at most 10,000)'),
    datasets: z
      .array(datasetsEntrySchema)
      .min(1)
      .max(4)
      .optional()
      .describe(
        'datasets with the same classes trained on together: the first gives the classes, validation and ' +
          "test (and is `dataset`); of each other its whole training file is added, and 'feedback' adds the " +
          'training split of the examples sent to POST /feedback (those of classes the first lacks left out)',
      ),
    feedbackWeight: z
      .number()
      .min(1)
      .max(100)
      .optional()
      .describe(
        "times each 'feedback' example is seen per epoch, oversampling a small set (default 1); a fraction " +
          'spreads evenly: 2.5 over 10 examples is 25 images, each twice and every other one thrice',
      ),
    baseVersion: z
      .int()
      .min(1)
      .optional()
      .describe(
        "start from this model version's weights; with another number of classes its last layer is replaced and trained anew",
      ),
  })
  .strict();

/** The parameters with the rules between fields (trainParamsFieldsSchema is for schemas built on them). */
export const trainParamsSchema = trainParamsFieldsSchema.superRefine(checkDatasets);

export type TrainParams = z.infer<typeof trainParamsSchema>;
export type TrainParamsInput = z.input<typeof trainParamsSchema>;

/**
 * The rules of `datasets` that the parameters alone settle (job-rules.ts checks the rest against
 * what the service has). `dataset` must be its first: POST /jobs fills it in from `datasets`.
 */
export function checkDatasets(
  // `dataset` is optional in POST /jobs' body (job-request.ts), which adds these checks to its own.
  params: {
    dataset?: string | undefined;
    datasets?: string[] | undefined;
    feedbackWeight?: number | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const { datasets } = params;
  if (params.feedbackWeight !== undefined && !datasets?.includes(FEEDBACK_DATASET)) {
    ctx.addIssue({
      code: 'custom',
      path: ['feedbackWeight'],
      message: `feedbackWeight is for jobs that train on '${FEEDBACK_DATASET}': add it to datasets, or leave feedbackWeight out`,
    });
  }
  if (!datasets) return;
  const first = datasets[0]!;
  if (first === FEEDBACK_DATASET) {
    ctx.addIssue({
      code: 'custom',
      path: ['datasets', 0],
      message:
        `'${FEEDBACK_DATASET}' cannot be first: the first dataset gives the classes, the validation and ` +
        `the test split; put one such as 'mnist' first, e.g. ["mnist", "${FEEDBACK_DATASET}"]`,
    });
  } else if (params.dataset !== undefined && params.dataset !== first) {
    ctx.addIssue({
      code: 'custom',
      path: ['dataset'],
      message:
        `dataset '${params.dataset}' is not the first of datasets ('${first}'), which gives the classes, ` +
        'validation and test: give datasets alone, or both with the same first',
    });
    ctx.addIssue({
      code: 'custom',
      path: ['datasets'],
      message: `the first of datasets ('${first}') is not dataset ('${params.dataset}')`,
    });
  }
  datasets.forEach((name, i) => {
    if (datasets.indexOf(name) !== i) {
      ctx.addIssue({
        code: 'custom',
        path: ['datasets', i],
        message: `'${name}' is named twice in datasets; name each once (feedbackWeight oversamples feedback)`,
      });
    }
  });
}

/** The datasets a run trains on, first the one that gives classes, validation and test. */
export function trainingDatasets(params: Pick<TrainParams, 'dataset' | 'datasets'>): readonly string[] {
  return params.datasets ?? [params.dataset];
}
