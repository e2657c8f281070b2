import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, type BackendInfo } from '../../src/ml/backend/index.js';
import { loadDataset } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { predictBatch } from '../../src/ml/predict.js';
import { runTraining } from '../../src/ml/run-training.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { pickLabels, writeIdxDataset, type LabelledImages } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';

/** Real MNIST zeros, ones and sevens as a data set of three named classes. */
const CLASSES = ['zero', 'one', 'seven'];

describe('training on a data set of 3 named classes', () => {
  const dir = useTempDir('three-classes');
  let backend: BackendInfo;
  let test: LabelledImages;

  beforeAll(async () => {
    backend = await initBackend('wasm');
    const mnist = await loadDataset('mnist');
    test = pickLabels(mnist.test, [0, 1, 7], 300);
    await writeIdxDataset(dir, { train: pickLabels(mnist.train, [0, 1, 7], 1_200), test, classes: CLASSES });
  });

  it('when trained, then the report has its 3 classes and a 3x3 confusion, and predictions 3 probabilities', async () => {
    const params = trainParamsSchema.parse({ dataset: dir, epochs: 1 });
    const { model, report } = await runTraining(params, { backend });
    try {
      expect(report.classes).toEqual(CLASSES);
      // A sixth of the 1,200 training images held out, and the number recorded.
      expect(report.params.validationSize).toBe(200);
      expect(report.trainImages).toBe(1_000);
      expect(report.parameterCount).toBe(60_074 - 7 * 85);
      expect(report.confusion).toHaveLength(3);
      for (const row of report.confusion) expect(row).toHaveLength(3);
      expect(report.confusion.flat().reduce((a, b) => a + b, 0)).toBe(300);
      expect(report.accuracy.test).toBeGreaterThan(0.8);
      for (const m of report.misclassified) expect(Math.max(m.label, m.predicted)).toBeLessThan(3);

      const images = [0, 1, 2, 3].map((i) =>
        Float32Array.from(test.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), (v) => v / 255),
      );
      for (const prediction of predictBatch(model, images)) {
        expect(prediction.probabilities).toHaveLength(3);
        expect(prediction.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(prediction.label).toBeLessThan(3);
      }
    } finally {
      model.dispose();
    }
  });
});
