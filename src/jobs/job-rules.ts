import { isAbsolute, resolve, sep } from 'node:path';
import { invalidField } from '../errors.js';
import { errorMessage } from '../fs-durable.js';
import { defaultValidationSize, trainingImageCount } from '../ml/data/dataset.js';
import type { TrainParams } from '../ml/train-params.js';

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
      : "dataset: this service trains only on 'mnist' and 'fashion-mnist' (DATASET_DIRS is not set)",
  );
}

/** Epochs x training images must be at most `maxImages` (JOB_MAX_IMAGES); undefined: no bound. */
export async function checkWorkBound(params: TrainParams, maxImages: number | undefined): Promise<void> {
  if (maxImages === undefined) return;
  // What was asked for settles most jobs; otherwise the data set's real size counts: one given by
  // path may hold far more than MNIST's 60,000 training images.
  if (params.trainSize !== undefined && params.epochs * params.trainSize <= maxImages) return;
  const size = await datasetSize(params.dataset);
  const available = Math.max(0, size - (params.validationSize ?? defaultValidationSize(size)));
  const images = params.epochs * Math.min(params.trainSize ?? available, available);
  if (images <= maxImages) return;
  throw invalidField(
    'body.epochs',
    `epochs x training images is ${images.toLocaleString('en-US')}; this service trains at most ` +
      `${maxImages.toLocaleString('en-US')} per job (JOB_MAX_IMAGES): lower epochs or trainSize`,
  );
}

/** Without its size the bound cannot be checked: the job is refused, saying why. */
async function datasetSize(dataset: string): Promise<number> {
  try {
    return await trainingImageCount(dataset);
  } catch (err) {
    throw invalidField(
      'body.dataset',
      `dataset: cannot read its size to check it against JOB_MAX_IMAGES: ${errorMessage(err)}`,
    );
  }
}
