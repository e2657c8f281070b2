import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, subset, type ImageSet } from '../../src/ml/data/dataset.js';
import { evaluate, type Evaluation } from '../../src/ml/evaluate.js';
import { train } from '../../src/ml/train.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';

describe('evaluate', () => {
  let result: Evaluation;
  let set: ImageSet;
  beforeAll(async () => {
    await initBackend('wasm');
    const data = await loadDataset('mnist');
    set = subset(data.test, 0, 2000);
    const { model } = await train({
      params: trainParamsSchema.parse({ epochs: 1, trainSize: 2000 }),
      data: { ...data, validation: subset(data.validation, 0, 0) },
    });
    result = evaluate(model, set, { batchSize: 300 });
    model.dispose();
  });

  it('when a partly trained model is evaluated, then accuracy, confusion matrix and errors agree', () => {
    const total = result.confusion.flat().reduce((a, b) => a + b, 0);
    const diagonal = result.confusion.reduce((sum, row, d) => sum + row[d]!, 0);
    expect(result.count).toBe(2000);
    expect(total).toBe(2000);
    expect(result.accuracy).toBeCloseTo(diagonal / 2000, 10);
    expect(result.accuracy).toBeGreaterThan(0.5);
    expect(result.accuracy).toBeLessThan(1);
    expect(result.misclassified).toHaveLength(2000 - diagonal);
    expect(Number.isFinite(result.loss) && result.loss > 0).toBe(true);
    // Each row of the matrix counts the images of that true label.
    result.confusion.forEach((row, d) => {
      const ofLabel = set.labels.filter((l) => l === d).length;
      expect(row.reduce((a, b) => a + b, 0)).toBe(ofLabel);
    });
  });

  it('when it lists the errors, then each names a real image, its true label and a wrong guess, most confident first', () => {
    for (const m of result.misclassified) {
      expect(set.labels[m.index]).toBe(m.label);
      expect(m.predicted).not.toBe(m.label);
      expect(m.confidence).toBeGreaterThan(0);
      expect(m.confidence).toBeLessThanOrEqual(1);
    }
    const confidences = result.misclassified.map((m) => m.confidence);
    expect(confidences).toEqual([...confidences].sort((a, b) => b - a));
  });
});
