import type * as tf from '@tensorflow/tfjs';
import { buildModel } from './architectures.js';
import { BatchMaker, drawShifts } from './batches.js';
import { subset, type DatasetSplits } from './data/dataset.js';
import { evaluate } from './evaluate.js';
import { createRandom, range, shuffleInPlace } from './random.js';
import { activeBackend } from './backend/index.js';
import { ReplicaPool } from './parallel/replica-pool.js';
import { localRunner, type StepRunner } from './step-runner.js';
import { createTrainStepper } from './train-step.js';
import { createOptimizer, learningRateSchedule } from './optimizers.js';
import type { TrainParams } from './train-params.js';
import type { EpochSummary, TrainProgress } from './training-report-schema.js';

// train()'s own types, for its callers.
export type { EpochSummary, TrainProgress };

export interface EpochEnd {
  epoch: number;
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  history: EpochSummary[];
}

export interface TrainOptions {
  params: TrainParams;
  data: DatasetSplits;
  /** Stops training within one batch; `train` then rejects with the signal's reason. */
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
  /** Least time between two batch progress events; epoch events always come. Default 250 ms. */
  progressIntervalMs?: number;
  /** Awaited after each epoch, before the next starts: the place to checkpoint. */
  onEpochEnd?: (end: EpochEnd) => Promise<void> | void;
  /**
   * Threads training in parallel, each on a slice of every batch (src/ml/parallel); the same
   * seed, backend and thread count give the same weights. Default 1.
   */
  threads?: number;
  /** Continue a run from a checkpoint: its model, the epochs it finished and the optimizer's state. */
  resume?: { model: tf.LayersModel; history: EpochSummary[]; optimizerWeights?: NamedTensor[] };
}

/** What `tf.Optimizer.getWeights()` returns (the type is not exported by tfjs). */
export type NamedTensor = { name: string; tensor: tf.Tensor };

export interface TrainResult {
  model: tf.LayersModel;
  history: EpochSummary[];
  /** Training time of the epochs run in this call, validation included. */
  seconds: number;
  imagesPerSecond: number;
}

/**
 * The seed's training loop: mini-batches in a fresh shuffled order each epoch, softmax
 * cross-entropy, the chosen optimizer; validation after each epoch. The order of epoch e depends
 * only on (seed, e), so a run resumed from a checkpoint sees the same batches it would have.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { params, data, signal, onProgress } = options;
  const interval = options.progressIntervalMs ?? 250;
  const trainSet = params.trainSize
    ? subset(data.train, 0, Math.min(params.trainSize, data.train.count))
    : data.train;
  const model = options.resume?.model ?? buildModel(params.architecture, params.seed);
  const history = [...(options.resume?.history ?? [])];
  const optimizer = createOptimizer(params.optimizer, params.learningRate);
  if (options.resume?.optimizerWeights) await optimizer.setWeights(options.resume.optimizerWeights);

  const batches = Math.ceil(trainSet.count / params.batchSize);
  const stepper = createTrainStepper(model, optimizer, learningRateSchedule(params, batches));
  const maker = new BatchMaker(trainSet);
  const threads = options.threads ?? 1;
  let runner: StepRunner | undefined;
  const firstEpoch = history.length + 1;
  const batchesToRun = (params.epochs - history.length) * batches;
  const started = performance.now();
  let batchesRun = 0;
  let lastEmit = 0;
  try {
    runner =
      threads > 1
        ? await ReplicaPool.start({
            threads,
            backend: activeBackend(),
            params,
            model,
            ...(options.resume?.optimizerWeights
              ? { optimizerWeights: options.resume.optimizerWeights }
              : {}),
            trainSet,
            stepper,
            maker,
          })
        : localRunner(stepper, maker);
    for (let epoch = firstEpoch; epoch <= params.epochs; epoch++) {
      const epochStarted = performance.now();
      const random = createRandom(params.seed * 1_000_003 + epoch);
      const order = shuffleInPlace(range(trainSet.count), random);
      const shifts = params.augment ? drawShifts(trainSet.count, random, 2) : undefined;
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lastBatchLoss = Number.NaN;
      for (let b = 0; b < batches; b++) {
        signal?.throwIfAborted();
        const start = b * params.batchSize;
        const end = Math.min(trainSet.count, start + params.batchSize);
        const step = (epoch - 1) * batches + b;
        const stats = await runner.run({ order, ...(shifts ? { shifts } : {}), start, end, step });
        // The runner yields to the event loop now and then: an abort may have landed meanwhile.
        signal?.throwIfAborted();
        lastBatchLoss = stats.lossSum / (end - start);
        lossSum += stats.lossSum;
        correct += stats.hits;
        seen += end - start;
        batchesRun++;
        const now = performance.now();
        if (onProgress && now - lastEmit >= interval && b < batches - 1) {
          lastEmit = now;
          onProgress(progress('batch', epoch, b + 1, lossSum / seen, correct / seen, now));
        }
      }
      const validation =
        data.validation.count > 0 ? evaluate(model, data.validation, { misclassifiedLimit: 0 }) : null;
      const seconds = (performance.now() - epochStarted) / 1000;
      history.push({
        epoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        lastBatchLoss,
        valLoss: validation?.loss ?? null,
        valAccuracy: validation?.accuracy ?? null,
        seconds,
        imagesPerSecond: seen / seconds,
      });
      const now = performance.now();
      lastEmit = now;
      onProgress?.({
        ...progress('epoch', epoch, batches, lossSum / seen, correct / seen, now),
        ...(validation ? { valLoss: validation.loss, valAccuracy: validation.accuracy } : {}),
        lastBatchLoss,
      });
      await options.onEpochEnd?.({ epoch, model, optimizer, history: [...history] });
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await runner?.close();
    stepper.dispose();
    optimizer.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return { model, history, seconds, imagesPerSecond: (batchesRun ? trainedImages(batchesRun) : 0) / seconds };

  function trainedImages(count: number): number {
    const full = Math.floor(count / batches) * trainSet.count;
    return full + Math.min(count % batches, batches) * params.batchSize;
  }

  function progress(
    kind: TrainProgress['kind'],
    epoch: number,
    batch: number,
    loss: number,
    accuracy: number,
    now: number,
  ): TrainProgress {
    const elapsedSeconds = (now - started) / 1000;
    const perBatch = batchesRun ? elapsedSeconds / batchesRun : 0;
    const done = (epoch - 1) * batches + batch;
    return {
      kind,
      epoch,
      epochs: params.epochs,
      batch,
      batches,
      percent: (100 * done) / (params.epochs * batches),
      loss,
      accuracy,
      imagesPerSecond: batchesRun ? trainedImages(batchesRun) / elapsedSeconds : 0,
      elapsedSeconds,
      etaSeconds: Math.max(0, batchesToRun - batchesRun) * perBatch,
    };
  }
}
