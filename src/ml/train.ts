import type * as tf from '@tensorflow/tfjs';
import { buildModel, outputClasses } from './architectures.js';
import { takeBaseWeights, type BaseModel } from './base-weights.js';
import { BatchMaker, drawShifts } from './batches.js';
import { subset, type DatasetSplits, type ImageSet } from './data/dataset.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { createRandom, range, shuffleInPlace } from './random.js';
import { activeBackend } from './backend/index.js';
import { ReplicaPool } from './parallel/replica-pool.js';
import { localRunner, type StepRunner } from './step-runner.js';
import { createTrainStepper, type TrainStepper } from './train-step.js';
import { createOptimizer, learningRateSchedule } from './optimizers.js';
import type { TrainParams } from './train-params.js';
import { TrainingPace, type EpochTotals } from './training-pace.js';
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
  /**
   * The images to train on; default trainingSet(params, data). Given when the run trains on more
   * than its first dataset (data/training-sources.ts).
   */
  trainSet?: ImageSet;
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
  /**
   * Fine-tune: a fresh run starts from this model's weights (base-weights.ts); the caller keeps
   * and disposes it. Ignored when resuming, whose checkpoint already holds where the run got to.
   */
  base?: BaseModel;
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
  const { params, data } = options;
  const trainSet = options.trainSet ?? trainingSet(params, data);
  const { model, optimizer } = await modelAndOptimizer(options);
  const history = [...(options.resume?.history ?? [])];
  const batches = Math.ceil(trainSet.count / params.batchSize);
  const stepper = createTrainStepper(model, optimizer, learningRateSchedule(params, batches));
  const maker = new BatchMaker(trainSet, data.classes.length);
  const pace = new TrainingPace({
    params,
    images: trainSet.count,
    batches,
    epochsDone: history.length,
    intervalMs: options.progressIntervalMs ?? 250,
  });
  let runner: StepRunner | undefined;
  try {
    runner = await startRunner(options, { model, trainSet, stepper, maker });
    for (let epoch = history.length + 1; epoch <= params.epochs; epoch++) {
      const epochStarted = performance.now();
      const totals = await runEpoch({ ...options, trainSet, runner, pace }, epoch);
      const validation =
        data.validation.count > 0 ? evaluate(model, data.validation, { misclassifiedLimit: 0 }) : null;
      history.push(epochSummary(epoch, totals, validation, (performance.now() - epochStarted) / 1000));
      options.onProgress?.({
        ...pace.progress('epoch', epoch, batches, totals, performance.now()),
        ...(validation ? { valLoss: validation.loss, valAccuracy: validation.accuracy } : {}),
        lastBatchLoss: totals.lastBatchLoss,
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
  return { model, history, ...pace.total() };
}

/** The images a run trains on: the first `trainSize` of the training split, or all of it. */
export function trainingSet(params: TrainParams, data: DatasetSplits): ImageSet {
  return params.trainSize ? subset(data.train, 0, Math.min(params.trainSize, data.train.count)) : data.train;
}

/**
 * The checkpoint's model, or a fresh one from the seed with an output per class of the data,
 * seeded with the base's weights when fine-tuning; an optimizer in the checkpoint's state.
 */
async function modelAndOptimizer({
  params,
  data,
  resume,
  base,
}: TrainOptions): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer }> {
  const classes = data.classes.length;
  if (resume && outputClasses(resume.model) !== classes) {
    throw new Error(
      `the checkpoint's model has ${outputClasses(resume.model)} outputs, the data set ${classes} classes`,
    );
  }
  let model = resume?.model;
  if (!model) {
    model = buildModel(params.architecture, params.seed, classes);
    try {
      if (base) takeBaseWeights(model, base);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
  const optimizer = createOptimizer(params.optimizer, params.learningRate);
  if (resume?.optimizerWeights) await optimizer.setWeights(resume.optimizerWeights);
  return { model, optimizer };
}

/** Steps in this thread, or in a pool of `threads` replicas that each take a slice of every batch. */
async function startRunner(
  options: TrainOptions,
  leader: { model: tf.LayersModel; trainSet: ImageSet; stepper: TrainStepper; maker: BatchMaker },
): Promise<StepRunner> {
  const threads = options.threads ?? 1;
  const optimizerWeights = options.resume?.optimizerWeights;
  if (threads > 1) {
    return ReplicaPool.start({
      threads,
      backend: activeBackend(),
      params: options.params,
      ...leader,
      ...(optimizerWeights ? { optimizerWeights } : {}),
    });
  }
  return localRunner(leader.stepper, leader.maker);
}

interface EpochRun extends Pick<TrainOptions, 'params' | 'signal' | 'onProgress'> {
  trainSet: ImageSet;
  runner: StepRunner;
  pace: TrainingPace;
}

/** One pass over the training set in the epoch's own order, with batch progress events. */
async function runEpoch(run: EpochRun, epoch: number): Promise<EpochTotals> {
  const { params, trainSet, runner, pace, signal, onProgress } = run;
  const random = createRandom(params.seed * 1_000_003 + epoch);
  const order = shuffleInPlace(range(trainSet.count), random);
  const shifts = params.augment ? drawShifts(trainSet.count, random, 2) : undefined;
  const totals: EpochTotals = { lossSum: 0, correct: 0, seen: 0, lastBatchLoss: Number.NaN };
  for (let b = 0; b < pace.batches; b++) {
    signal?.throwIfAborted();
    const start = b * params.batchSize;
    const end = Math.min(trainSet.count, start + params.batchSize);
    const step = (epoch - 1) * pace.batches + b;
    const stats = await runner.run({ order, ...(shifts ? { shifts } : {}), start, end, step });
    // The runner yields to the event loop now and then: an abort may have landed meanwhile.
    signal?.throwIfAborted();
    totals.lastBatchLoss = stats.lossSum / (end - start);
    totals.lossSum += stats.lossSum;
    totals.correct += stats.hits;
    totals.seen += end - start;
    pace.batchDone();
    const now = performance.now();
    // The epoch's last batch is told by the epoch event, with its validation.
    if (onProgress && b < pace.batches - 1 && pace.batchEventDue(now)) {
      onProgress(pace.progress('batch', epoch, b + 1, totals, now));
    }
  }
  return totals;
}

function epochSummary(
  epoch: number,
  totals: EpochTotals,
  validation: Evaluation | null,
  seconds: number,
): EpochSummary {
  return {
    epoch,
    loss: totals.lossSum / totals.seen,
    accuracy: totals.correct / totals.seen,
    lastBatchLoss: totals.lastBatchLoss,
    valLoss: validation?.loss ?? null,
    valAccuracy: validation?.accuracy ?? null,
    seconds,
    imagesPerSecond: totals.seen / seconds,
  };
}
