import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { DIGIT_CLASSES, loadDataset } from '../../src/ml/data/dataset.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { pickLabels, writeIdxDataset } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { untilJob, useTrainingJobs } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';

const LETTERS = 'letters-3kq9x2ab';
const CLASSES = ['four', 'nine', 'two'];

describe('the training worker on uploaded datasets and fine-tuning', () => {
  const { redis, prefix, jobs } = useTrainingJobs('worker-datasets');
  const dir = useTempDir('worker-datasets');
  const store = new FileModelStore(join(dir, 'models'));
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  const finished = async (input: TrainParamsInput): Promise<JobView> => {
    const { view } = await jobs.enqueue(trainParamsSchema.parse(input));
    return untilJob(jobs, view.id, (v) => v.finishedAt !== null);
  };

  beforeAll(async () => {
    await initBackend('wasm');
    // An uploaded dataset as the dataset store lays it out: <DATASET_DIR>/<id>/.
    const mnist = await loadDataset('mnist');
    await writeIdxDataset(join(dir, 'datasets', LETTERS), {
      train: pickLabels(mnist.train, [4, 9, 2], 600),
      test: pickLabels(mnist.test, [4, 9, 2], 150),
      classes: CLASSES,
    });
    worker = await startTrainingWorker(workerOptions({ redis, prefix, dir }, { jobs }));
  });
  afterAll(async () => {
    await worker?.close();
  });

  let lettersVersion: number;

  it("when a job names an uploaded dataset's id, then it trains on <DATASET_DIR>/<id> and the version records its classes", async () => {
    const final = await finished({ dataset: LETTERS, epochs: 1 });
    expect(final.state).toBe('completed');
    lettersVersion = final.result!.modelVersion;
    const metadata = (await store.get(lettersVersion))!;
    expect(metadata.classes).toEqual(CLASSES);
    expect(metadata.params).toMatchObject({ dataset: LETTERS, validationSize: 100 });
    expect(metadata.confusion.map((row) => row.length)).toEqual([3, 3, 3]);
  });

  it('when a job fine-tunes that version on MNIST, then the version has 10 classes and records its base', async () => {
    const final = await finished({
      baseVersion: lettersVersion,
      epochs: 1,
      trainSize: 500,
      validationSize: 0,
    });
    expect(final.state).toBe('completed');
    const metadata = (await store.get(final.result!.modelVersion))!;
    expect(metadata.classes).toEqual(DIGIT_CLASSES);
    expect(metadata.params.baseVersion).toBe(lettersVersion);
    expect(metadata.parameterCount).toBe(60_074);
  });

  it('when a job names a base version that does not exist, then it fails at once, for good, saying so', async () => {
    const final = await finished({ baseVersion: 999, epochs: 1, trainSize: 500 });
    expect(final).toMatchObject({
      state: 'failed',
      attempts: 1,
      errorCode: 'invalid_params',
      error: 'baseVersion 999: there is no model version 999 to fine-tune from',
    });
  });

  it("when a job's architecture does not match its base version's layers, then it fails for good, saying so", async () => {
    const final = await finished({
      baseVersion: lettersVersion,
      architecture: 'wide',
      epochs: 1,
      trainSize: 100,
    });
    expect(final).toMatchObject({ state: 'failed', attempts: 1, errorCode: 'invalid_params' });
    expect(final.error).toBe(
      `cannot fine-tune from model version ${lettersVersion}: its layers do not match architecture 'wide' ` +
        '(the base has 8 layers, the architecture 10); use the architecture it was trained with',
    );
  });

  it('when a job names an uploaded id that is not in the dataset store, then it fails for good, saying so', async () => {
    const final = await finished({ dataset: 'letters-zzzzzzzz', epochs: 1 });
    expect(final).toMatchObject({
      state: 'failed',
      attempts: 1,
      errorCode: 'dataset_unusable',
      error: "no uploaded dataset 'letters-zzzzzzzz'",
    });
  });
});
