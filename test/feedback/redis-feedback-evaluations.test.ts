import * as tf from '@tensorflow/tfjs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  examplePixels,
  feedbackId,
  feedbackSplit,
  type FeedbackExample,
  type VersionFeedbackAccuracy,
} from '../../src/feedback/feedback-schema.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import {
  RedisFeedbackEvaluations,
  type RedisFeedbackEvaluationsOptions,
} from '../../src/feedback/redis-feedback-evaluations.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { DIGIT_CLASSES } from '../../src/ml/data/dataset.js';
import { IMAGE_SIDE } from '../../src/ml/image-shape.js';
import { runTraining, type TrainingReport } from '../../src/ml/run-training.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { mnistDigits } from '../datasets/dataset-fixtures.js';
import { gate, type Gate } from '../helpers/gate.js';
import { logInto } from '../helpers/logs.js';
import { useRedisPrefix } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

/** A feedback store whose list() can be held at a gate: a pass stopped half way, by construction. */
class HeldFeedback extends FileFeedbackStore {
  holdList: Gate | undefined;

  override async list(): Promise<FeedbackExample[]> {
    const held = this.holdList;
    if (held) {
      this.holdList = undefined;
      await held.pass();
    }
    return super.list();
  }
}

const dir = useTempDir('feedback-evaluations');
const { redis, prefix } = useRedisPrefix('feedback-evaluations');
const models = new FileModelStore(join(dir, 'models'));
const feedback = new HeldFeedback(join(dir, 'feedback'));
const silent = pino({ level: 'silent' });

/** The trained model, the untrained one, and what each version is made of. */
let trained: tf.LayersModel;
let untrained: tf.LayersModel;
/** The trained model's report: versions differ from it in their params or classes. */
let report: TrainingReport;
const versions: Record<'plain' | 'onFeedback' | 'fineTuned' | 'noSeven' | 'untrained', number> = {
  plain: 0,
  onFeedback: 0,
  fineTuned: 0,
  noSeven: 0,
  untrained: 0,
};

let made = 0;
/** Real MNIST test digits of every class as corrections, `perClass` each, none used before. */
async function corrections(perClass: number): Promise<FeedbackExample[]> {
  const skip = made;
  made += perClass;
  const examples: FeedbackExample[] = [];
  for (const label of DIGIT_CLASSES.keys()) {
    for (const pixels of await mnistDigits(label, perClass, skip)) {
      examples.push({
        id: feedbackId(pixels),
        class: DIGIT_CLASSES[label]!,
        modelVersion: null,
        predicted: null,
        createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, examples.length)).toISOString(),
        pixels: Buffer.from(pixels).toString('base64'),
      });
    }
  }
  for (const example of examples) await feedback.add(example);
  return examples;
}

/** What the model says of each image, by model.predict itself (not the evaluator's path). */
function directLabels(model: tf.LayersModel, examples: FeedbackExample[]): number[] {
  const input = new Float32Array(examples.length * IMAGE_SIDE * IMAGE_SIDE);
  examples.forEach((e, i) =>
    input.set(
      Float32Array.from(examplePixels(e), (b) => b / 255),
      i * IMAGE_SIDE ** 2,
    ),
  );
  return tf.tidy(() => {
    const logits = model.predict(
      tf.tensor4d(input, [examples.length, IMAGE_SIDE, IMAGE_SIDE, 1]),
    ) as tf.Tensor;
    return Array.from(logits.argMax(-1).dataSync());
  });
}

/** The figure a version should have, from direct predictions and the counting rules. */
function expected(
  model: tf.LayersModel,
  classes: readonly string[],
  trainedOnFeedback: boolean,
  examples: FeedbackExample[],
  revision: number,
) {
  const counted = examples.filter(
    (e) => classes.includes(e.class) && (!trainedOnFeedback || feedbackSplit(e.id) === 'test'),
  );
  const labels = directLabels(model, counted);
  const correct = counted.filter((e, i) => classes[labels[i]!] === e.class).length;
  return {
    accuracy: counted.length ? correct / counted.length : null,
    correct,
    examples: counted.length,
    trainedOnFeedback,
    revision,
  };
}

async function publish(model: tf.LayersModel, report: TrainingReport): Promise<number> {
  return (await models.publish(model, report, { jobId: null })).version;
}

const opened: RedisFeedbackEvaluations[] = [];
function evaluations(options: Partial<RedisFeedbackEvaluationsOptions> = {}): RedisFeedbackEvaluations {
  const made = new RedisFeedbackEvaluations({
    redis,
    prefix,
    feedback,
    models,
    logger: silent,
    pollMs: 3_600_000,
    chunkSize: 16,
    ...options,
  });
  opened.push(made);
  return made;
}

async function figures(of: RedisFeedbackEvaluations): Promise<Map<number, VersionFeedbackAccuracy>> {
  return new Map((await of.all()).map((f) => [f.version, f]));
}

let examples: FeedbackExample[];

beforeAll(async () => {
  const backend = await initBackend('wasm');
  const run = await runTraining(
    trainParamsSchema.parse({ epochs: 1, trainSize: 1000, validationSize: 0, seed: 7 }),
    { backend },
  );
  trained = run.model;
  report = run.report;
  untrained = buildModel('seed', 3);
  const withParams = (params: Partial<TrainingReport['params']>, rest: Partial<TrainingReport> = {}) => ({
    ...report,
    ...rest,
    params: { ...report.params, ...params },
  });
  versions.plain = await publish(trained, report);
  versions.onFeedback = await publish(trained, withParams({ datasets: ['mnist', 'feedback'] }));
  // Fine-tuned from the version that trained on feedback, on mnist alone: it has seen feedback too.
  versions.fineTuned = await publish(trained, withParams({ baseVersion: versions.onFeedback }));
  // The same weights, but its class '7' is named otherwise: the 7s people sent are not its class.
  versions.noSeven = await publish(
    trained,
    withParams({}, { classes: DIGIT_CLASSES.map((c) => (c === '7' ? 'seven' : c)) }),
  );
  versions.untrained = await publish(untrained, report);
  examples = await corrections(6);
}, 120_000);

afterEach(async () => {
  for (const e of opened.splice(0)) await e.close();
});

afterAll(() => {
  trained?.dispose();
  untrained?.dispose();
});

describe('RedisFeedbackEvaluations', () => {
  it('when started, then each version is measured on the examples as direct predictions say, by its own rules', async () => {
    const evaluator = evaluations();
    evaluator.start();
    await evaluator.settled();
    const all = await figures(evaluator);
    expect([...all.keys()]).toEqual(Object.values(versions).sort((a, b) => a - b));
    const digits = [...DIGIT_CLASSES];
    expect(all.get(versions.plain)).toMatchObject(expected(trained, digits, false, examples, 0));
    expect(all.get(versions.onFeedback)).toMatchObject(expected(trained, digits, true, examples, 0));
    expect(all.get(versions.fineTuned)).toMatchObject(expected(trained, digits, true, examples, 0));
    expect(all.get(versions.untrained)).toMatchObject(expected(untrained, digits, false, examples, 0));
    // Only the test split counts for versions that trained on feedback; every example otherwise.
    expect(all.get(versions.plain)!.examples).toBe(examples.length);
    const testSplit = examples.filter((e) => feedbackSplit(e.id) === 'test').length;
    expect(testSplit).toBeGreaterThan(0);
    expect(all.get(versions.onFeedback)!.examples).toBe(testSplit);
    // Real figures: the trained model (16 steps of training) does far better than chance.
    expect(all.get(versions.plain)!.accuracy).toBeGreaterThan(all.get(versions.untrained)!.accuracy! + 0.2);
    expect(await evaluator.forVersion(versions.plain)).toEqual(all.get(versions.plain));
    expect(await evaluator.forVersion(999)).toBeNull();
  });

  it("when a version lacks an example's class, then that example is not counted for it", async () => {
    const evaluator = evaluations();
    evaluator.start();
    await evaluator.settled();
    const noSeven = (await evaluator.forVersion(versions.noSeven))!;
    const sevens = examples.filter((e) => e.class === '7').length;
    expect(sevens).toBeGreaterThan(0);
    expect(noSeven.examples).toBe(examples.length - sevens);
    const classes = DIGIT_CLASSES.map((c) => (c === '7' ? 'seven' : c));
    expect(noSeven).toMatchObject(expected(trained, classes, false, examples, noSeven.revision));
  });

  it('when this process stores examples and says so, then the figures are stale until a pass measures them anew', async () => {
    const evaluator = evaluations();
    evaluator.start();
    await evaluator.settled();
    const before = await evaluator.revision();
    const added = await corrections(2);
    examples = [...examples, ...added];

    // The pass the change asks for is held before it reads the examples.
    const held = gate();
    feedback.holdList = held;
    const revision = await evaluator.feedbackChanged();
    expect(revision).toBe(before + 1);
    await held.arrived;
    expect(await evaluator.revision()).toBe(revision);
    for (const figure of await evaluator.all()) expect(figure.revision).toBe(before);

    held.open();
    await evaluator.settled();
    const all = await figures(evaluator);
    expect(all.get(versions.plain)).toMatchObject(
      expected(trained, [...DIGIT_CLASSES], false, examples, revision),
    );
    expect(all.get(versions.onFeedback)).toMatchObject(
      expected(trained, [...DIGIT_CLASSES], true, examples, revision),
    );
    expect(all.get(versions.plain)!.examples).toBe(examples.length);
  });

  it('when an example is deleted and its image sent again with another class, then the figures count the new class', async () => {
    const evaluator = evaluations();
    evaluator.start();
    await evaluator.settled();
    const [first, second] = examples;
    await feedback.remove(first!.id);
    await feedback.remove(second!.id);
    const relabelled = { ...first!, class: first!.class === '0' ? '1' : '0' };
    await feedback.add(relabelled);
    examples = [relabelled, ...examples.slice(2)];
    const revision = await evaluator.feedbackChanged();
    await evaluator.settled();
    const all = await figures(evaluator);
    expect(all.get(versions.plain)).toMatchObject(
      expected(trained, [...DIGIT_CLASSES], false, examples, revision),
    );
    expect(all.get(versions.noSeven)!.examples).toBe(examples.filter((e) => e.class !== '7').length);
  });

  it("when another API process changes the feedback, then this one's poll measures at the new revision", async () => {
    const here = evaluations({ pollMs: 20 });
    here.start();
    await here.settled();
    const added = await corrections(1);
    examples = [...examples, ...added];

    // The other process's own pass stays held, so the figures can only come from this one.
    const otherFeedback = new HeldFeedback(feedback.root);
    const other = new RedisFeedbackEvaluations({
      redis,
      prefix,
      feedback: otherFeedback,
      models,
      logger: silent,
      pollMs: 3_600_000,
    });
    const otherPass = gate();
    otherFeedback.holdList = otherPass;
    const revision = await other.feedbackChanged();
    await otherPass.arrived;

    const measured = await until('this process to measure at the new revision', async () => {
      const figure = await here.forVersion(versions.plain);
      return figure?.revision === revision ? figure : undefined;
    });
    expect(measured).toMatchObject(expected(trained, [...DIGIT_CLASSES], false, examples, revision));
    await here.settled();
    const all = await here.all();
    expect(all.map((f) => f.revision)).toEqual(all.map(() => revision));

    otherPass.open();
    await other.close();
  });

  it('when a version is deleted, then its figure is dropped', async () => {
    const evaluator = evaluations();
    evaluator.start();
    await evaluator.settled();
    const gone = await publish(untrained, report);
    evaluator.modelsChanged();
    await evaluator.settled();
    expect(await evaluator.forVersion(gone)).not.toBeNull();

    expect(await models.remove(gone)).toBe(true);
    evaluator.modelsChanged();
    await evaluator.settled();
    expect(await evaluator.forVersion(gone)).toBeNull();
    expect((await evaluator.all()).map((f) => f.version)).not.toContain(gone);
  });

  it('when maxVersions is set, then only the newest versions are measured and older figures dropped', async () => {
    const evaluator = evaluations({ maxVersions: 2 });
    evaluator.start();
    await evaluator.settled();
    const listed = (await models.list()).map((m) => m.version);
    expect((await evaluator.all()).map((f) => f.version)).toEqual(listed.slice(-2));
  });

  it('when an older version is pinned (an alias points to it), then it is measured beside the newest', async () => {
    const listed = (await models.list()).map((m) => m.version);
    const evaluator = evaluations({ maxVersions: 1, pinned: async () => [listed[0]!] });
    evaluator.start();
    await evaluator.settled();
    expect((await evaluator.all()).map((f) => f.version)).toEqual([listed[0], listed.at(-1)]);
  });

  it('when a version cannot be loaded, then that is logged, the others are measured, and the poll tries again', async () => {
    const lines: { level: number; msg: string; version?: number }[] = [];
    // A version that is listed but whose weights are gone (removed by hand).
    const broken = await publish(untrained, report);
    await rm(join(feedback.root, '..', 'models', String(broken), 'weights.bin'));
    const evaluator = evaluations({ logger: logInto(lines, 'warn'), pollMs: 20 });
    const revision = await evaluator.feedbackChanged();
    const failures = () => lines.filter((l) => l.version === broken && l.msg.includes('could not measure'));
    // Passes keep failing on it, so settled() is no end to wait for here: the figures are.
    evaluator.start();
    await until('the other versions to be measured', async () =>
      (await evaluator.forVersion(versions.untrained))?.revision === revision ? true : undefined,
    );
    expect(failures().length).toBeGreaterThanOrEqual(1);
    expect(await evaluator.forVersion(broken)).toBeNull();
    const first = failures().length;
    await until('the poll to try the version again', () => (failures().length > first ? true : undefined));
    expect(await models.remove(broken)).toBe(true);
  });
});
