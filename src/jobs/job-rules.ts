import { isAbsolute, resolve, sep } from 'node:path';
import { DomainError, invalidField } from '../errors.js';
import type { FeedbackStore } from '../feedback/feedback-store.js';
import { feedbackImages, usableFeedback } from '../feedback/feedback-training-set.js';
import { errorMessage } from '../fs-durable.js';
import {
  BUILT_IN_DATASETS,
  classesDifference,
  datasetClasses,
  defaultValidationSize,
  FEEDBACK_DATASET,
  isBuiltInDataset,
  isUploadedDatasetId,
  trainingImageCount,
} from '../ml/data/dataset.js';
import {
  trainingDatasets,
  trainParamsSchema,
  type Architecture,
  type TrainParams,
} from '../ml/train-params.js';
import type { ModelAliases } from '../registry/model-aliases.js';
import { ModelMetadataError, type ModelStore } from '../registry/model-store.js';
import type { JobRequest } from './job-request.js';

/** Where the API finds an uploaded data set's record (src/datasets): its size and classes count here. */
export interface DatasetLookup {
  get(id: string): Promise<{ classes: string[]; counts: { train: number } } | null>;
}

export interface JobRuleOptions {
  /** Directories whose data sets jobs may name by absolute path (DATASET_DIRS). */
  datasetDirs: readonly string[];
  /** Most epochs x training images per job (JOB_MAX_IMAGES); undefined: no bound. */
  maxImages?: number | undefined;
  /** Uploaded data sets; without it a job cannot name one. */
  datasets?: DatasetLookup | undefined;
  /** The model store, where a fine-tune's base version must be. */
  models?: Pick<ModelStore, 'get'> | undefined;
  /** The examples sent to POST /feedback; without it a job cannot train on 'feedback'. */
  feedback?: Pick<FeedbackStore, 'count' | 'list'> | undefined;
  /** Model aliases, so that baseVersion may name one ('production'). */
  aliases?: Pick<ModelAliases, 'all'> | undefined;
}

/** The one of a job's datasets a rule is about: how the answer names it. */
interface Named {
  name: string;
  /** body.dataset, or body.datasets.<i> when the job gave `datasets`. */
  field: string;
  /** How the message starts: dataset, or datasets[i]. */
  label: string;
}

/**
 * Images each dataset after the first gives an epoch, for JOB_MAX_IMAGES: at most `images`, and
 * `exactly()` when a cheaper bound was given (the feedback's, which need not be read to fit).
 */
type OtherImages = { name: string; images: number; exactly?: () => Promise<number> }[];

/**
 * The parameters a job is queued with, from POST /jobs' body: checked against what this service
 * has and allows, with what depends on it filled in (dataset from datasets, a base alias's
 * version, the base's architecture, validationSize), so the job's view shows them.
 */
export async function jobParams(request: JobRequest, options: JobRuleOptions): Promise<TrainParams> {
  const { architecture: askedArchitecture, baseVersion: askedBase, ...rest } = request;
  const baseVersion = await baseVersionNumber(askedBase, options.aliases);
  const params: TrainParams = {
    ...rest,
    dataset: firstDataset(request),
    architecture: askedArchitecture ?? DEFAULT_ARCHITECTURE,
    ...(baseVersion === undefined ? {} : { baseVersion }),
  };
  const named = trainingDatasets(params).map((name, i): Named =>
    params.datasets
      ? { name, field: `body.datasets.${i}`, label: `datasets[${i}]` }
      : { name, field: 'body.dataset', label: 'dataset' },
  );
  const [first, ...others] = named as [Named, ...Named[]];
  for (const dataset of named) {
    if (dataset.name !== FEEDBACK_DATASET) checkDatasetAllowed(dataset.name, options.datasetDirs, dataset);
  }
  // An uploaded data set is looked up in any case: whether it exists is for the API to say.
  const needsSize =
    isUploadedDatasetId(first.name) ||
    params.validationSize === undefined ||
    !boundSettled(params, options.maxImages, others.length);
  const fileImages = needsSize ? await datasetSize(first, params, options) : undefined;
  const validationSize = params.validationSize ?? defaultValidationSize(fileImages!);
  if (fileImages !== undefined && validationSize >= fileImages) {
    throw invalidField(
      'body.validationSize',
      `validationSize ${validationSize} leaves no training images: the dataset's training split ` +
        `holds ${fileImages.toLocaleString('en-US')}`,
    );
  }
  const filled = { ...params, validationSize };
  const otherImages = others.length ? await checkOthers(filled, first, others, options) : [];
  if (fileImages !== undefined) await checkWorkBound(filled, fileImages, otherImages, options.maxImages);
  return {
    ...filled,
    architecture: await baseArchitecture(baseVersion, askedArchitecture, options.models),
  };
}

/**
 * A data set given by absolute path must lie under one of `allowedDirs` (DATASET_DIRS); with none,
 * API clients cannot make workers read wherever they like. The CLI is not limited.
 */
export function checkDatasetAllowed(
  dataset: string,
  allowedDirs: readonly string[],
  { field, label }: Pick<Named, 'field' | 'label'> = { field: 'body.dataset', label: 'dataset' },
): void {
  if (!isAbsolute(dataset)) return;
  // resolve() folds '..' away, so /allowed/../etc is judged as /etc.
  const dir = resolve(dataset);
  const roots = allowedDirs.map((root) => resolve(root));
  if (roots.some((root) => dir === root || dir.startsWith(root + sep))) return;
  throw invalidField(
    field,
    roots.length
      ? `${label}: ${dataset} is not under a directory this service reads from (DATASET_DIRS)`
      : `${label}: this service trains only on 'mnist', 'fashion-mnist' and uploaded datasets (DATASET_DIRS is not set)`,
  );
}

/**
 * What was asked for settles most jobs against JOB_MAX_IMAGES without the data set's size; one
 * that adds other datasets to its first never.
 */
function boundSettled(params: TrainParams, maxImages: number | undefined, others: number): boolean {
  return (
    maxImages === undefined ||
    (others === 0 && params.trainSize !== undefined && params.epochs * params.trainSize <= maxImages)
  );
}

/**
 * Epochs x training images must be at most `maxImages` (JOB_MAX_IMAGES); undefined: no bound. The
 * images are the first dataset's (after validation and trainSize) and those of `others`.
 */
async function checkWorkBound(
  params: TrainParams,
  fileImages: number,
  others: OtherImages,
  maxImages: number | undefined,
): Promise<void> {
  if (boundSettled(params, maxImages, others.length)) return;
  // A data set given by path or uploaded may hold far more than MNIST's 60,000 training images.
  const available = Math.max(0, fileImages - (params.validationSize ?? 0));
  const own = Math.min(params.trainSize ?? available, available);
  const total = (sources: OtherImages) => params.epochs * sources.reduce((sum, s) => sum + s.images, own);
  if (total(others) <= maxImages!) return;
  const exact = await Promise.all(
    others.map(async (other) => ({ name: other.name, images: (await other.exactly?.()) ?? other.images })),
  );
  const images = total(exact);
  if (images <= maxImages!) return;
  const each = [{ name: params.dataset, images: own }, ...exact]
    .map((source) => `${source.images.toLocaleString('en-US')} of '${source.name}'`)
    .join(', ');
  throw invalidField(
    'body.epochs',
    `epochs x training images is ${images.toLocaleString('en-US')}` +
      (others.length ? ` (each epoch ${each})` : '') +
      `; this service trains at most ${maxImages!.toLocaleString('en-US')} per job (JOB_MAX_IMAGES): ` +
      `lower epochs or trainSize${others.length ? ', or train on fewer datasets or a lower feedbackWeight' : ''}`,
  );
}

/** Images in the data set's training file; without it the job is refused, saying why. */
async function datasetSize(dataset: Named, params: TrainParams, options: JobRuleOptions): Promise<number> {
  const { name, field, label } = dataset;
  if (isUploadedDatasetId(name)) return (await uploadedRecord(dataset, options)).counts.train;
  try {
    return await trainingImageCount(name);
  } catch (err) {
    const why =
      params.validationSize === undefined ? 'choose validationSize' : 'check it against JOB_MAX_IMAGES';
    throw invalidField(field, `${label}: cannot read its size to ${why}: ${errorMessage(err)}`);
  }
}

async function uploadedRecord(
  { name, field, label }: Named,
  options: JobRuleOptions,
): Promise<{ classes: string[]; counts: { train: number } }> {
  const record = await options.datasets?.get(name);
  if (!record) throw invalidField(field, `${label}: no dataset '${name}' (GET /datasets lists them)`);
  return record;
}

/**
 * The datasets after the first must have its classes (labels are indices into them), but for
 * 'feedback', whose examples of other classes are left out. Answers the images each gives an
 * epoch when JOB_MAX_IMAGES needs them.
 */
async function checkOthers(
  params: TrainParams,
  first: Named,
  others: Named[],
  options: JobRuleOptions,
): Promise<OtherImages> {
  const { classes } = await classesOf(first, options);
  const counted = options.maxImages !== undefined;
  const images: OtherImages = [];
  for (const other of others) {
    if (other.name === FEEDBACK_DATASET) {
      const store = options.feedback;
      if (!store)
        throw invalidField(other.field, `${other.label}: this service keeps no feedback to train on`);
      const weight = params.feedbackWeight ?? 1;
      // The count of all examples settles most jobs; only one that may not fit reads them all.
      images.push({
        name: other.name,
        images: counted ? feedbackImages(await store.count(), weight) : 0,
        exactly: async () => feedbackImages(usableFeedback(await store.list(), classes), weight),
      });
      continue;
    }
    const facts = await classesOf(other, options);
    const difference = classesDifference(other.name, facts.classes, { name: first.name, classes });
    if (difference) throw invalidField(other.field, `${other.label}: ${difference}`);
    images.push({ name: other.name, images: counted ? await facts.trainImages() : 0 });
  }
  return images;
}

/** A dataset's classes, and (read only when asked) the images of its training file. */
async function classesOf(
  dataset: Named,
  options: JobRuleOptions,
): Promise<{ classes: readonly string[]; trainImages: () => Promise<number> }> {
  const { name, field, label } = dataset;
  if (isBuiltInDataset(name)) {
    return { classes: BUILT_IN_DATASETS[name].classes, trainImages: () => trainingImageCount(name) };
  }
  if (isUploadedDatasetId(name)) {
    const record = await uploadedRecord(dataset, options);
    return { classes: record.classes, trainImages: async () => record.counts.train };
  }
  const unreadable = (what: string) => (err: unknown) => {
    throw invalidField(field, `${label}: cannot read its ${what}: ${errorMessage(err)}`);
  };
  const classes = await datasetClasses(name).catch(unreadable('classes'));
  return { classes, trainImages: () => trainingImageCount(name).catch(unreadable('size')) };
}

/**
 * A fine-tune starts from a version that exists, with the same network: the job's architecture
 * is the base's unless the client asked for one (then it must be the base's). Answers it.
 */
async function baseArchitecture(
  version: number | undefined,
  asked: Architecture | undefined,
  models: JobRuleOptions['models'],
): Promise<Architecture> {
  if (version === undefined) return asked ?? DEFAULT_ARCHITECTURE;
  const field = 'body.baseVersion';
  if (!models) throw invalidField(field, NO_MODEL_STORE);
  const base = await models.get(version).catch((err: unknown) => {
    if (err instanceof ModelMetadataError) throw invalidField(field, `baseVersion: ${err.message}`);
    throw err;
  });
  if (!base)
    throw invalidField(
      field,
      `baseVersion: model version ${version} does not exist (GET /models lists them)`,
    );
  if (asked !== undefined && base.architecture !== asked) {
    throw new DomainError(
      `baseVersion: version ${version} is a '${base.architecture}' network and this job asks for ` +
        `'${asked}': a fine-tune keeps the network; leave architecture out or set it to '${base.architecture}'`,
      {
        status: 400,
        code: 'invalid_request',
        details: [{ field: 'body.architecture', message: 'differs from the base version' }],
      },
    );
  }
  return base.architecture;
}

const NO_MODEL_STORE = 'baseVersion: this service has no model store to fine-tune from';
const DEFAULT_ARCHITECTURE = trainParamsSchema.shape.architecture.parse(undefined);

/** A base version given by alias ('production') becomes the number the alias names now. */
async function baseVersionNumber(
  given: number | string | undefined,
  aliases: JobRuleOptions['aliases'],
): Promise<number | undefined> {
  if (typeof given !== 'string') return given;
  if (!aliases) throw invalidField('body.baseVersion', NO_MODEL_STORE);
  // From Redis rather than this process's copy: the alias may have moved on another API a moment ago.
  const version = (await aliases.all())[given];
  if (version === undefined)
    throw invalidField(
      'body.baseVersion',
      `baseVersion: no alias '${given}' (GET /models/aliases lists them)`,
    );
  return version;
}

/**
 * `dataset` as a job is queued with it: the first of `datasets` (the one that gives classes,
 * validation and test), 'mnist' when neither is given. The schema refused the two differing.
 */
function firstDataset(request: JobRequest): string {
  return request.dataset ?? request.datasets?.[0] ?? DEFAULT_DATASET;
}

const DEFAULT_DATASET = trainParamsSchema.shape.dataset.parse(undefined);

/**
 * A 409 for deleting `thing` while unfinished jobs need it, `role` saying how ("the dataset of",
 * "the base of"), naming the first ten; nothing when there are none.
 */
export function checkNotInUse(thing: string, role: string, jobIds: readonly string[]): void {
  if (jobIds.length === 0) return;
  throw new DomainError(
    `${thing} is ${role} ${jobIds.length === 1 ? 'job' : 'jobs'} ${jobIds.slice(0, 10).join(', ')}: ` +
      'cancel them or wait for them to finish',
    { status: 409, code: 'in_use', details: { jobs: jobIds } },
  );
}
