import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, subset, type DatasetSplits } from '../../src/ml/data/dataset.js';
import { evaluate } from '../../src/ml/evaluate.js';
import { train, type TrainProgress } from '../../src/ml/train.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';

let mnist: DatasetSplits;
/** Real MNIST, cut down so a run takes a second or two: `trainSize` images, 1,000 held out. */
function small(validationImages = 1000): DatasetSplits {
  return { ...mnist, validation: subset(mnist.validation, 0, validationImages) };
}
const params = (input: TrainParamsInput) => trainParamsSchema.parse(input);

describe('train', () => {
  beforeAll(async () => {
    await initBackend('wasm');
    mnist = await loadDataset('mnist');
  });

  // The seed's exact recipe (batch 64, lr 0.001) makes only 79 steps of 5,000 images: ~84 % here and
  // ~79 % in the seed's PyTorch (bench/seed_torch.py --epochs 1 --train-size 5000). Smaller batches
  // and a larger step get one epoch past 90 %.
  it('when trained one epoch on 5,000 images, then it is right on >= 90 % of 1,000 held-out images', async () => {
    const events: TrainProgress[] = [];
    const { model, history } = await train({
      params: params({ epochs: 1, trainSize: 5000, batchSize: 32, learningRate: 0.003 }),
      data: small(),
      onProgress: (p) => events.push(p),
      progressIntervalMs: 0,
    });
    const heldOut = evaluate(model, subset(mnist.test, 0, 1000));
    model.dispose();
    expect(heldOut.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(history).toHaveLength(1);
    expect(history[0]!.valAccuracy).toBeGreaterThanOrEqual(0.9);
    const batchEvents = events.filter((e) => e.kind === 'batch');
    expect(batchEvents.length).toBe(Math.ceil(5000 / 32) - 1);
    expect(batchEvents[0]).toMatchObject({ epoch: 1, epochs: 1, batch: 1, batches: 157 });
    const last = events.at(-1)!;
    expect(last).toMatchObject({ kind: 'epoch', epoch: 1, batch: 157, percent: 100, etaSeconds: 0 });
    expect(last.valAccuracy).toBe(history[0]!.valAccuracy);
    expect(last.imagesPerSecond).toBeGreaterThan(0);
    for (const e of events) {
      expect(Number.isFinite(e.loss) && Number.isFinite(e.accuracy) && Number.isFinite(e.etaSeconds)).toBe(
        true,
      );
    }
  });

  it('when trained twice with the same seed on the same backend, then the weights are identical', async () => {
    const weights = async (seed: number) => {
      const { model } = await train({
        params: params({ epochs: 1, trainSize: 640, seed }),
        data: small(100),
      });
      const values = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return values;
    };
    const first = await weights(5);
    expect(await weights(5)).toEqual(first);
    expect(await weights(6)).not.toEqual(first);
  });

  it.each([1, 2])(
    'when the signal aborts mid-epoch on %i thread(s), then training stops within one batch and rejects with the reason',
    async (threads) => {
      const controller = new AbortController();
      const batches: number[] = [];
      const run = train({
        params: params({ epochs: 3, trainSize: 3200 }),
        data: small(100),
        threads,
        signal: controller.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          batches.push(p.batch);
          if (p.kind === 'batch' && p.batch === 10) controller.abort(new Error('cancelled by test'));
        },
      });
      await expect(run).rejects.toThrow('cancelled by test');
      expect(batches.at(-1)).toBe(10);
    },
  );

  it('when aborted from a timer while training, then the loop yields to the event loop and stops', async () => {
    const controller = new AbortController();
    let batchesAfterAbort = 0;
    let aborted = false;
    const run = train({
      params: params({ epochs: 50, trainSize: 3200 }),
      data: small(100),
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: () => {
        if (aborted) batchesAfterAbort++;
      },
    });
    setTimeout(() => {
      aborted = true;
      controller.abort(new Error('timer abort'));
    }, 300);
    await expect(run).rejects.toThrow('timer abort');
    expect(aborted).toBe(true);
    expect(batchesAfterAbort).toBeLessThanOrEqual(1);
  });

  it('when training runs for several epochs, then the number of live tensors does not grow', async () => {
    const before = tf.memory().numTensors;
    const perEpoch: number[] = [];
    const { model } = await train({
      params: params({ epochs: 3, trainSize: 640 }),
      data: small(200),
      onEpochEnd: () => {
        perEpoch.push(tf.memory().numTensors);
      },
    });
    expect(perEpoch[1]).toBe(perEpoch[0]);
    expect(perEpoch[2]).toBe(perEpoch[0]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('when resumed from the model and history after epoch 1, then it runs only the remaining epochs', async () => {
    let snapshot:
      | { history: Parameters<NonNullable<Parameters<typeof train>[0]['onEpochEnd']>>[0]['history'] }
      | undefined;
    const first = await train({
      params: params({ epochs: 1, trainSize: 640 }),
      data: small(100),
      onEpochEnd: (end) => {
        snapshot = { history: end.history };
      },
    });
    const epochs: number[] = [];
    const resumed = await train({
      params: params({ epochs: 3, trainSize: 640 }),
      data: small(100),
      resume: { model: first.model, history: snapshot!.history },
      onProgress: (p) => p.kind === 'epoch' && epochs.push(p.epoch),
    });
    expect(epochs).toEqual([2, 3]);
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    resumed.model.dispose();
  });

  it.each(['sgd', 'momentum', 'rmsprop'] as const)(
    'when the optimizer is %s, then the loss goes down',
    async (optimizer) => {
      const { model, history } = await train({
        params: params({
          epochs: 2,
          trainSize: 1280,
          optimizer,
          learningRate: { sgd: 0.05, momentum: 0.01, rmsprop: 0.001 }[optimizer],
        }),
        data: small(100),
      });
      model.dispose();
      expect(history[1]!.loss).toBeLessThan(history[0]!.loss);
    },
  );
});
