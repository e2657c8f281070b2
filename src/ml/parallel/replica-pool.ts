import type * as tf from '@tensorflow/tfjs';
import type { Worker as Thread } from 'node:worker_threads';
import { siblingModule, startThread } from '../../thread-start.js';
import { outputClasses } from '../architectures.js';
import type { BackendName } from '../backend/index.js';
import type { BatchMaker } from '../batches.js';
import type { ImageSet } from '../data/dataset.js';
import type { BatchPlan, StepRunner } from '../step-runner.js';
import type { NamedTensor } from '../train.js';
import type { StepStats, TrainStepper } from '../train-step.js';
import type { TrainParams } from '../train-params.js';
import type { FromReplica, ReplicaInput, TensorValues } from './replica-messages.js';
import { allocateSharedStep, SharedStep } from './shared-step.js';

const replicaFile = siblingModule(import.meta.url, 'replica-thread');

export interface ReplicaPoolOptions {
  /** Replicas in all, this thread (the leader, replica 0) included. */
  threads: number;
  backend: BackendName;
  params: TrainParams;
  model: tf.LayersModel;
  optimizerWeights?: NamedTensor[];
  trainSet: ImageSet;
  /** The leader's own stepper and batch maker. */
  stepper: TrainStepper;
  maker: BatchMaker;
}

/**
 * Data-parallel training in one job: the leader (this thread) and `threads - 1` replica threads,
 * each with its own TensorFlow.js backend, train on slices of every batch and average their
 * gradients through shared memory in a fixed order, so a run is as reproducible as on one thread
 * (for the same thread count). The wasm backend runs one thread per backend under Node; this is
 * how a job uses more than one core.
 */
export class ReplicaPool implements StepRunner {
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    private readonly step: SharedStep,
    private readonly threads: Thread[],
  ) {}

  static async start(options: ReplicaPoolOptions): Promise<ReplicaPool> {
    const { threads: count, stepper, params } = options;
    const shared = allocateSharedStep(count, stepper.gradientSize, params.batchSize);
    const step = new SharedStep(shared, 0, stepper, options.maker);
    const base = {
      shared,
      backend: options.backend,
      params,
      numClasses: outputClasses(options.model),
      weights: options.model.getWeights().map((t, i) => valuesOf(`weight-${i}`, t)),
      ...(options.optimizerWeights
        ? { optimizerWeights: options.optimizerWeights.map((w) => valuesOf(w.name, w.tensor)) }
        : {}),
      train: onSharedMemory(options.trainSet),
    };
    const threads: Thread[] = [];
    const pool = new ReplicaPool(step, threads);
    const ready: Promise<void>[] = [];
    for (let replica = 1; replica < count; replica++) {
      const thread = startThread(replicaFile, { ...base, replica } satisfies ReplicaInput);
      threads.push(thread);
      ready.push(pool.watch(thread, replica));
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Resolves when the replica is ready; afterwards, a failure or exit fails the pool. */
  private watch(thread: Thread, replica: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (message: string) => {
        this.failure ??= new Error(`training replica ${replica} failed: ${message}`);
        this.step.fail();
        reject(this.failure);
      };
      thread.on('message', (message: FromReplica) => {
        if (message.type === 'ready') resolve();
        else fail(message.message);
      });
      thread.on('error', (error) => fail(error.message));
      thread.on('exit', (code) => {
        if (!this.closed) fail(`its thread exited (code ${code})`);
      });
    });
  }

  async run(plan: BatchPlan): Promise<StepStats> {
    if (this.failure) throw this.failure;
    const { step } = this;
    step.post(plan.order, plan.shifts, plan.start, plan.end, plan.step);
    try {
      step.compute();
      await step.waitForAllAsync();
      return step.finish();
    } catch (error) {
      throw this.failure ?? error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.step.stop();
    // Wakes any replica still waiting on a barrier, so it leaves rather than blocks termination.
    this.step.fail();
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}

function valuesOf(name: string, tensor: tf.Tensor): TensorValues {
  const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
  const values = tensor.dataSync();
  return {
    name,
    shape: tensor.shape,
    dtype,
    values: dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values),
  };
}

function onSharedMemory(set: ImageSet): ReplicaInput['train'] {
  const images = new Uint8Array(new SharedArrayBuffer(set.images.byteLength));
  images.set(set.images);
  const labels = new Uint8Array(new SharedArrayBuffer(set.labels.byteLength));
  labels.set(set.labels);
  return { images, labels, count: set.count, height: set.height, width: set.width };
}
