import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examplePixels, feedbackSplit } from '../../src/feedback/feedback-schema.js';
import { initBackend } from '../../src/ml/backend/index.js';
import type { ImageSet } from '../../src/ml/data/dataset.js';
import { evaluate } from '../../src/ml/evaluate.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../src/ml/image-shape.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { useTestApi } from '../helpers/api.js';
import { feedbackParts, type FeedbackParts } from '../helpers/feedback.js';
import { segmentDigits, type SegmentDigits } from '../helpers/segment-digits.js';
import { untilJob } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';

const asImageSet = (digits: SegmentDigits): ImageSet => ({
  count: digits.count,
  height: IMAGE_SIDE,
  width: IMAGE_SIDE,
  images: digits.images,
  labels: digits.labels,
});

/**
 * The feedback loop's promise (issue 17), end to end: a version trained on MNIST misreads digits
 * drawn in a style MNIST lacks (seven-segment displays); users send 100 corrections to POST
 * /feedback; a job fine-tunes production on mnist + feedback; the new version reads held-out
 * digits of that style far better, and MNIST's test digits about as well. The worker trains as in
 * production: through the queue, in its thread, publishing to the model store. Every run is
 * seeded and the feedback is trained on in id order, so the verdict is the same on every run.
 */
describe('fine-tuning on corrections of a style MNIST lacks', () => {
  let feedback!: FeedbackParts;
  // The worker reads feedback/ beside models/ (training-worker.ts): the API's store is the same one.
  const api = useTestApi('feedback-fine-tune', (scope) => {
    feedback = feedbackParts(scope);
    return { feedback };
  });
  const server = () => api.app.server;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  beforeAll(async () => {
    await initBackend('wasm');
    worker = await startTrainingWorker(workerOptions(api, { jobs: api.jobs }));
  });
  afterAll(() => worker?.close());

  const trained = async (body: object): Promise<number> => {
    const job = await request(server()).post('/jobs').send(body).expect(202);
    const final = await untilJob(api.jobs, job.body.id, (view) => view.finishedAt !== null, 180_000);
    expect(final.error).toBeNull();
    return final.result!.modelVersion;
  };

  /** A version's accuracy on held-out digits of the new style, loaded as the API serves it. */
  const styleAccuracy = async (version: number, held: ImageSet): Promise<number> => {
    const model = await api.store.load(version);
    try {
      return evaluate(model, held, { misclassifiedLimit: 0 }).accuracy;
    } finally {
      model.dispose();
    }
  };

  it(
    'when production is fine-tuned on mnist + 100 corrections, then held-out digits of their style are read far better and MNIST as well within 0.3 points',
    { timeout: 300_000 },
    async () => {
      const started = performance.now();
      // The base: one epoch on 50,000 MNIST digits (about 97 % on its test set), made production.
      const base = await trained({
        dataset: 'mnist',
        epochs: 1,
        trainSize: 50_000,
        validationSize: 0,
        seed: 1,
      });
      await request(server()).put('/models/aliases/production').send({ version: base }).expect(200);

      // 100 corrections, 10 per digit, as a client sends them: 784 bytes, the right label, the version seen.
      const corrections = segmentDigits(10, 1);
      const ids: string[] = [];
      for (let i = 0; i < corrections.count; i++) {
        const image = Array.from(corrections.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS));
        const res = await request(server())
          .post('/feedback')
          .send({ image, scale: 'byte', label: corrections.labels[i], modelVersion: base })
          .expect(201);
        ids.push(res.body.id);
      }
      // Stored as the model sees them: the very bytes sent.
      const first = (await feedback.store.get(ids[0]!))!;
      expect(
        Buffer.from(examplePixels(first)).equals(Buffer.from(corrections.images.subarray(0, IMAGE_PIXELS))),
      ).toBe(true);
      expect(await feedback.store.count()).toBe(100);

      const tuned = await trained({
        datasets: ['mnist', 'feedback'],
        feedbackWeight: 20,
        baseVersion: 'production',
        epochs: 1,
        trainSize: 20_000,
        validationSize: 0,
        learningRate: 0.0003,
        seed: 2,
      });

      const [before, after] = await Promise.all([base, tuned].map((v) => api.store.get(v)));
      // About a fifth are in the test split: no job trains on them (feedbackSplit).
      const testSplit = ids.filter((id) => feedbackSplit(id) === 'test').length;
      expect(after!.params).toMatchObject({
        baseVersion: base,
        datasets: ['mnist', 'feedback'],
        feedbackWeight: 20,
      });
      expect(after!.sources).toEqual([
        { dataset: 'mnist', images: 20_000 },
        {
          dataset: 'feedback',
          images: (100 - testSplit) * 20,
          examples: 100 - testSplit,
          weight: 20,
          otherClasses: 0,
          heldOut: testSplit,
        },
      ]);
      expect(after!.trainImages).toBe(20_000 + (100 - testSplit) * 20);

      // 200 digits of the same style, drawn from another seed: none of them was sent.
      const held = asImageSet(segmentDigits(20, 2));
      const style = { base: await styleAccuracy(base, held), tuned: await styleAccuracy(tuned, held) };
      const mnist = { base: before!.accuracy.test, tuned: after!.accuracy.test };
      // What the issue asks to see, in the test's output.
      process.stdout.write(
        `seven-segment held-out accuracy: base v${base} ${(100 * style.base).toFixed(1)} %, ` +
          `fine-tuned v${tuned} ${(100 * style.tuned).toFixed(1)} %; MNIST test: ` +
          `${(100 * mnist.base).toFixed(2)} % -> ${(100 * mnist.tuned).toFixed(2)} %; ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
      expect(style.tuned).toBeGreaterThan(style.base);
      expect(mnist.tuned).toBeGreaterThanOrEqual(mnist.base - 0.003);
    },
  );
});
