import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackSplit } from '../../src/feedback/feedback-schema.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import type { JobView } from '../../src/jobs/job-schema.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset } from '../../src/ml/data/dataset.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { feedbackExample, imagesInSplit } from '../helpers/feedback-examples.js';
import { pickLabels, writeIdxDataset } from '../helpers/idx-files.js';
import { useRedisPrefix } from '../helpers/redis.js';
import { segmentDigits } from '../helpers/segment-digits.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { untilJob } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';

const DIGITS = 'more-digits-7hq2x9ab';

/** A worker on a directory of its own, its jobs given `attempts`; `prepare` lays out the directory first. */
function useWorker(name: string, attempts: number, prepare: (dir: string) => Promise<void>) {
  const { redis, prefix } = useRedisPrefix(name);
  const dir = useTempDir(name);
  const jobs = new TrainingJobs({ connection: redis, prefix, attempts });
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;
  beforeAll(async () => {
    await initBackend('wasm');
    await prepare(dir);
    worker = await startTrainingWorker(workerOptions({ redis, prefix, dir }, { jobs }));
  });
  afterAll(async () => {
    await worker?.close();
    await jobs.close();
  });
  const finished = async (input: TrainParamsInput): Promise<JobView> => {
    const { view } = await jobs.enqueue(trainParamsSchema.parse(input));
    return untilJob(jobs, view.id, (v) => v.finishedAt !== null);
  };
  return { dir, finished, models: new FileModelStore(join(dir, 'models')) };
}

describe('the training worker on several datasets, feedback among them', () => {
  // 30 seven-segment digits and one 'cat', which no digit model outputs.
  const drawn = segmentDigits(3, 5);
  const stored = [
    ...Array.from({ length: drawn.count }, (_, i) =>
      feedbackExample(drawn.images.slice(i * 784, (i + 1) * 784), String(drawn.labels[i]), i),
    ),
    ...imagesInSplit('train', 1).map((pixels) => feedbackExample(pixels, 'cat', 99)),
  ];
  const { finished, models } = useWorker('worker-feedback', 1, async (dir) => {
    // An uploaded dataset of digits, as the dataset store lays one out: <DATASET_DIR>/<id>/.
    const mnist = await loadDataset('mnist');
    const digits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    await writeIdxDataset(join(dir, 'datasets', DIGITS), {
      train: pickLabels(mnist.test, digits, 300),
      test: pickLabels(mnist.test, digits, 50),
    });
    // Feedback where the worker reads it: feedback/ beside models/.
    const store = new FileFeedbackStore(join(dir, 'feedback'));
    for (const example of stored) await store.add(example);
  });

  it('when a job names mnist, an uploaded dataset and feedback, then its version trained on all three and says how many of each', async () => {
    const final = await finished({
      datasets: ['mnist', DIGITS, 'feedback'],
      feedbackWeight: 2.5,
      epochs: 1,
      trainSize: 200,
      validationSize: 0,
    });
    expect(final.state).toBe('completed');
    const metadata = (await models.get(final.result!.modelVersion))!;
    const heldOut = stored.filter((e) => feedbackSplit(e.id) === 'test').length;
    const examples = stored.length - heldOut - 1;
    const images = Math.round(examples * 2.5);
    expect(metadata.sources).toEqual([
      { dataset: 'mnist', images: 200 },
      { dataset: DIGITS, images: 300 },
      { dataset: 'feedback', images, examples, weight: 2.5, otherClasses: 1, heldOut },
    ]);
    expect(metadata.trainImages).toBe(500 + images);
  });
});

describe('the training worker when the feedback cannot be read', () => {
  // feedback/ is a file: listing it fails, as a store that is away would.
  const { finished } = useWorker('worker-feedback-broken', 2, (dir) =>
    writeFile(join(dir, 'feedback'), 'not a directory'),
  );

  it("when reading the feedback fails, then the job is retried as a server problem, not as the client's", async () => {
    const final = await finished({
      datasets: ['mnist', 'feedback'],
      epochs: 1,
      trainSize: 64,
      validationSize: 0,
    });
    expect(final).toMatchObject({ state: 'failed', attempts: 2, errorCode: 'internal' });
    expect(final.error).toContain('a problem on the server');
  });
});
