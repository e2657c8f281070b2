import type { FeedbackExample } from '../feedback/feedback-schema.js';
import { feedbackTrainingSet } from '../feedback/feedback-training-set.js';
import {
  classesDifference,
  concatImageSets,
  DatasetError,
  FEEDBACK_DATASET,
  loadDataset,
  type DatasetSplits,
  type ImageSet,
} from './data/dataset.js';
import { trainingSet } from './train.js';
import { trainingDatasets, type TrainParams } from './train-params.js';
import type { TrainingSource } from './training-report-schema.js';

export interface TrainingSourceOptions {
  /** The dataset store (DATASET_DIR), where an uploaded dataset's id is a directory. */
  uploadedRoot?: string | undefined;
  /** The stored feedback, read when the run names 'feedback'. */
  feedback?: (() => Promise<readonly FeedbackExample[]>) | undefined;
}

/**
 * Everything a run trains on: the first `trainSize` images of its first dataset's training split
 * (`first`, loaded already, which also gives the classes, validation and test), then the whole
 * training file of each other dataset it names, then the feedback's 'train' examples of those
 * classes, repeated by feedbackWeight. Training shuffles the whole set every epoch, seeded, so
 * the order here does not decide what a batch holds. With one dataset the set is a view, no copy.
 */
export async function gatherTrainingSet(
  params: TrainParams,
  first: DatasetSplits,
  options: TrainingSourceOptions = {},
): Promise<{ trainSet: ImageSet; sources: TrainingSource[] }> {
  const own = trainingSet(params, first);
  const sets = [own];
  const sources: TrainingSource[] = [{ dataset: first.name, images: own.count }];
  for (const name of trainingDatasets(params).slice(1)) {
    if (name === FEEDBACK_DATASET) {
      // Only the CLI can get here without a store; the worker always has one.
      if (!options.feedback) throw new Error(`this run has no feedback store to read '${name}' from`);
      const weight = params.feedbackWeight ?? 1;
      const { set, counts } = feedbackTrainingSet(await options.feedback(), first.classes, weight);
      sets.push(set);
      const { images, examples, otherClasses, heldOut } = counts;
      sources.push({ dataset: name, images, examples, weight, otherClasses, heldOut });
      continue;
    }
    const other = await loadDataset(name, { validationSize: 0, uploadedRoot: options.uploadedRoot });
    // Checked when the job was created, but a directory given by path may have changed since.
    const difference = classesDifference(name, other.classes, first);
    if (difference) throw new DatasetError(difference);
    sets.push(other.train);
    sources.push({ dataset: name, images: other.train.count });
  }
  return { trainSet: sets.length === 1 ? own : concatImageSets(sets), sources };
}
