import type { BackendName } from '../backend/index.js';
import type { TrainParams } from '../train-params.js';
import type { SharedStepBuffers } from './shared-step.js';

/** A tensor's values, copied out of one thread's TensorFlow.js into another's. */
export interface TensorValues {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

/** What a data-parallel replica starts from: the leader's data, weights and optimizer state. */
export interface ReplicaInput {
  replica: number;
  shared: SharedStepBuffers;
  backend: BackendName;
  params: TrainParams;
  /** The model's outputs: it is built as buildModel(architecture, seed, numClasses). */
  numClasses: number;
  /** The model's weights, in `model.getWeights()` order: a fine-tuned run's base ones included. */
  weights: TensorValues[];
  /** The optimizer's state when resuming (`optimizer.getWeights()`), else none. */
  optimizerWeights?: TensorValues[];
  /** The training images and labels, on SharedArrayBuffers: one copy for all replicas. */
  train: { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number };
}

export type FromReplica = { type: 'ready' } | { type: 'failed'; message: string };
