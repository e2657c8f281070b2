import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { DatasetError, loadDataset, type ImageSet } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { runTraining } from '../../src/ml/run-training.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { gatherTrainingSet } from '../../src/ml/training-sources.js';
import { feedbackExample, imagesInSplit } from '../helpers/feedback-examples.js';
import { writeIdxDataset, type LabelledImages } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';

const CLASSES = ['zero', 'one', 'two'];

/** `count` images all of byte `fill`, labelled 0, 1, 2, 0, ...: where each came from shows in its pixels. */
function filled(fill: number, count: number): LabelledImages {
  return {
    images: new Uint8Array(count * IMAGE_PIXELS).fill(fill),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 3),
  };
}

/** The first byte of each image of `set`: which dataset (or feedback example) it came from. */
const origins = (set: ImageSet) => Array.from({ length: set.count }, (_, i) => set.images[i * IMAGE_PIXELS]);

describe('gatherTrainingSet: what a run on several datasets trains on', () => {
  const dir = useTempDir('training-sources');
  const path = (name: string) => join(dir, name);
  const params = (input: TrainParamsInput) => trainParamsSchema.parse(input);
  // Two 'train' examples of the run's classes, one of another class, one of the test split.
  const [one, two, cat] = imagesInSplit('train', 3, 200);
  const [held] = imagesInSplit('test', 1, 200);
  const stored = [
    feedbackExample(one!, 'one', 1),
    feedbackExample(cat!, 'cat', 2),
    feedbackExample(held!, 'two', 3),
    feedbackExample(two!, 'two', 4),
  ];
  const feedback = async () => stored;
  // The usable two, as a run takes them: in id order.
  const feedbackOrder = [
    { id: stored[0]!.id, pixels: one!, label: 1 },
    { id: stored[3]!.id, pixels: two!, label: 2 },
  ].sort((x, y) => x.id.localeCompare(y.id));

  beforeAll(async () => {
    await writeIdxDataset(path('first'), { train: filled(1, 12), test: filled(9, 3), classes: CLASSES });
    await writeIdxDataset(path('second'), { train: filled(2, 4), test: filled(9, 3), classes: CLASSES });
    await writeIdxDataset(path('other'), {
      train: filled(3, 4),
      test: filled(9, 3),
      classes: ['zero', 'one', 'three'],
    });
    await writeIdxDataset(path('reordered'), {
      train: filled(3, 4),
      test: filled(9, 3),
      classes: ['one', 'zero', 'two'],
    });
  });

  it('when a run names one dataset, then it trains on the first trainSize images of its training split, without a copy', async () => {
    const data = await loadDataset(path('first'), { validationSize: 2 });
    const { trainSet, sources } = await gatherTrainingSet(
      params({ dataset: path('first'), trainSize: 6, validationSize: 2 }),
      data,
    );
    expect(trainSet.count).toBe(6);
    expect(trainSet.images.buffer).toBe(data.train.images.buffer);
    expect(sources).toEqual([{ dataset: path('first'), images: 6 }]);
  });

  it("when a run names others and 'feedback', then trainSize applies to the first, each other adds its whole training file and feedback its usable examples x weight", async () => {
    const data = await loadDataset(path('first'), { validationSize: 2 });
    const run = params({
      dataset: path('first'),
      datasets: [path('first'), path('second'), 'feedback'],
      feedbackWeight: 3,
      trainSize: 6,
      validationSize: 2,
    });
    const { trainSet, sources } = await gatherTrainingSet(run, data, { feedback });
    // 6 of the first, 4 of the second, examples 'one' and 'two' thrice each.
    expect(origins(trainSet)).toEqual([
      1,
      1,
      1,
      1,
      1,
      1,
      2,
      2,
      2,
      2,
      ...feedbackOrder.flatMap(({ pixels }) => [pixels[0], pixels[0], pixels[0]]),
    ]);
    expect([...trainSet.labels]).toEqual([
      ...[0, 1, 2, 0, 1, 2, 0, 1, 2, 0],
      ...feedbackOrder.flatMap(({ label }) => [label, label, label]),
    ]);
    expect(sources).toEqual([
      { dataset: path('first'), images: 6 },
      { dataset: path('second'), images: 4 },
      { dataset: 'feedback', images: 6, examples: 2, weight: 3, otherClasses: 1, heldOut: 1 },
    ]);
    // The first dataset's validation and test are its own.
    expect(data.validation.count).toBe(2);
  });

  it('when no feedback example is usable, then the run trains on the rest and the sources say 0', async () => {
    const data = await loadDataset(path('first'), { validationSize: 2 });
    const run = params({ dataset: path('first'), datasets: [path('first'), 'feedback'], validationSize: 2 });
    const { trainSet, sources } = await gatherTrainingSet(run, data, { feedback: async () => [] });
    expect(trainSet.count).toBe(10);
    expect(sources[1]).toEqual({
      dataset: 'feedback',
      images: 0,
      examples: 0,
      weight: 1,
      otherClasses: 0,
      heldOut: 0,
    });
  });

  it("when another dataset's classes differ from the first's, even only in order, then a DatasetError names it and the difference", async () => {
    const data = await loadDataset(path('first'), { validationSize: 2 });
    const gather = (other: string) =>
      gatherTrainingSet(params({ dataset: path('first'), datasets: [path('first'), path(other)] }), data);
    await expect(gather('other')).rejects.toThrow(DatasetError);
    await expect(gather('other')).rejects.toThrow(
      `'${path('other')}' does not have the classes of '${path('first')}' (the first of datasets, which the model outputs): it has no 'two' and 'three' besides`,
    );
    await expect(gather('reordered')).rejects.toThrow(
      "it has the same classes in another order ('one', 'zero', 'two')",
    );
  });

  it("when a run names 'feedback' without a store to read it from, then it fails saying so", async () => {
    const data = await loadDataset(path('first'), { validationSize: 2 });
    const run = params({ dataset: path('first'), datasets: [path('first'), 'feedback'] });
    await expect(gatherTrainingSet(run, data)).rejects.toThrow(
      "this run has no feedback store to read 'feedback' from",
    );
  });

  it('when runTraining trains on several, then the report counts every image and says where they came from', async () => {
    const backend = await initBackend('wasm');
    const run = params({
      datasets: [path('first'), path('second'), 'feedback'],
      dataset: path('first'),
      feedbackWeight: 2.5,
      epochs: 1,
      validationSize: 2,
    });
    const { model, report } = await runTraining(run, { backend, feedback });
    model.dispose();
    // 10 + 4 + 2 examples x 2.5.
    expect(report.trainImages).toBe(19);
    expect(report.sources).toEqual([
      { dataset: path('first'), images: 10 },
      { dataset: path('second'), images: 4 },
      { dataset: 'feedback', images: 5, examples: 2, weight: 2.5, otherClasses: 1, heldOut: 1 },
    ]);
    expect(report.params).toMatchObject({
      datasets: [path('first'), path('second'), 'feedback'],
      feedbackWeight: 2.5,
    });
  });
});
