import { isAbsolute, resolve, sep } from 'node:path';
import { DomainError, invalidField } from '../errors.js';
import { errorMessage } from '../fs-durable.js';
import { defaultValidationSize, isUploadedDatasetId, trainingImageCount } from '../ml/data/dataset.js';
import type { TrainParams } from '../ml/train-params.js';
import { ModelMetadataError, type ModelStore } from '../registry/model-store.js';

/** Where the API finds an uploaded data set's record (src/datasets): its size is what counts here. */
export interface DatasetLookup {
  get(id: string): Promise<{ counts: { train: number } } | null>;
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
}

/**
 * The parameters a job is queued with: checked against what this service has and allows, with the
 * defaults that depend on the data set filled in (validationSize), so the job's view shows them.
 */
export async function jobParams(params: TrainParams, options: JobRuleOptions): Promise<TrainParams> {
  checkDatasetAllowed(params.dataset, options.datasetDirs);
  // An uploaded data set is looked up in any case: whether it exists is for the API to say.
  const needsSize =
    isUploadedDatasetId(params.dataset) ||
    params.validationSize === undefined ||
    !boundSettled(params, options.maxImages);
  const fileImages = needsSize ? await datasetSize(params, options) : undefined;
  const validationSize = params.validationSize ?? defaultValidationSize(fileImages!);
  if (fileImages !== undefined && validationSize >= fileImages) {
    throw invalidField(
      'body.validationSize',
      `validationSize ${validationSize} leaves no training images: the dataset's training split ` +
        `holds ${fileImages.toLocaleString('en-US')}`,
    );
  }
  const filled = { ...params, validationSize };
  if (fileImages !== undefined) checkWorkBound(filled, fileImages, options.maxImages);
  await checkBaseVersion(filled, options.models);
  return filled;
}

/**
 * A data set given by absolute path must lie under one of `allowedDirs` (DATASET_DIRS); with none,
 * API clients cannot make workers read wherever they like. The CLI is not limited.
 */
export function checkDatasetAllowed(dataset: string, allowedDirs: readonly string[]): void {
  if (!isAbsolute(dataset)) return;
  // resolve() folds '..' away, so /allowed/../etc is judged as /etc.
  const dir = resolve(dataset);
  const roots = allowedDirs.map((root) => resolve(root));
  if (roots.some((root) => dir === root || dir.startsWith(root + sep))) return;
  throw invalidField(
    'body.dataset',
    roots.length
      ? `dataset: ${dataset} is not under a directory this service reads from (DATASET_DIRS)`
      : "dataset: this service trains only on 'mnist', 'fashion-mnist' and uploaded datasets (DATASET_DIRS is not set)",
  );
}

/** What was asked for settles most jobs against JOB_MAX_IMAGES without the data set's size. */
function boundSettled(params: TrainParams, maxImages: number | undefined): boolean {
  return (
    maxImages === undefined ||
    (params.trainSize !== undefined && params.epochs * params.trainSize <= maxImages)
  );
}

/** Epochs x training images must be at most `maxImages` (JOB_MAX_IMAGES); undefined: no bound. */
function checkWorkBound(params: TrainParams, fileImages: number, maxImages: number | undefined): void {
  if (boundSettled(params, maxImages)) return;
  // A data set given by path or uploaded may hold far more than MNIST's 60,000 training images.
  const available = Math.max(0, fileImages - (params.validationSize ?? 0));
  const images = params.epochs * Math.min(params.trainSize ?? available, available);
  if (images <= maxImages!) return;
  throw invalidField(
    'body.epochs',
    `epochs x training images is ${images.toLocaleString('en-US')}; this service trains at most ` +
      `${maxImages!.toLocaleString('en-US')} per job (JOB_MAX_IMAGES): lower epochs or trainSize`,
  );
}

/** Images in the data set's training file; without it the job is refused, saying why. */
async function datasetSize(params: TrainParams, options: JobRuleOptions): Promise<number> {
  const { dataset } = params;
  if (isUploadedDatasetId(dataset)) {
    const record = await options.datasets?.get(dataset);
    if (!record)
      throw invalidField('body.dataset', `dataset: no dataset '${dataset}' (GET /datasets lists them)`);
    return record.counts.train;
  }
  try {
    return await trainingImageCount(dataset);
  } catch (err) {
    const why =
      params.validationSize === undefined ? 'choose validationSize' : 'check it against JOB_MAX_IMAGES';
    throw invalidField('body.dataset', `dataset: cannot read its size to ${why}: ${errorMessage(err)}`);
  }
}

/** A fine-tune starts from a version that exists, with the same network. */
async function checkBaseVersion(params: TrainParams, models: JobRuleOptions['models']): Promise<void> {
  const version = params.baseVersion;
  if (version === undefined) return;
  const field = 'body.baseVersion';
  if (!models) throw invalidField(field, 'baseVersion: this service has no model store to fine-tune from');
  const base = await models.get(version).catch((err: unknown) => {
    if (err instanceof ModelMetadataError) throw invalidField(field, `baseVersion: ${err.message}`);
    throw err;
  });
  if (!base)
    throw invalidField(
      field,
      `baseVersion: model version ${version} does not exist (GET /models lists them)`,
    );
  if (base.architecture !== params.architecture) {
    throw new DomainError(
      `baseVersion: version ${version} is a '${base.architecture}' network and this job asks for ` +
        `'${params.architecture}': a fine-tune keeps the network; leave architecture out or set it to '${base.architecture}'`,
      {
        status: 400,
        code: 'invalid_request',
        details: [{ field: 'body.architecture', message: 'differs from the base version' }],
      },
    );
  }
}

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
