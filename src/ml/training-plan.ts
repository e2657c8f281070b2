import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Batch } from './batches.js';
import { biasActivationGrad } from './relu-bias-grad.js';
import type { StepContext, StepStats } from './train-step.js';
import type { LayerConfig } from './layer-config.js';

/** What a layer's backward pass returns: its input's gradient (when asked) and its weights'. */
interface LayerGrads {
  dx: tf.Tensor | null;
  /** In the order of the layer's trainable weights. */
  weights: tf.Tensor[];
}

/** One layer run forward; `back` keeps what the backward pass needs (activations, masks). */
interface LayerRun {
  y: tf.Tensor;
  back(dy: tf.Tensor, needDx: boolean): LayerGrads;
}

type PlanLayer = (x: tf.Tensor, context: StepContext) => LayerRun;

/** Computes the gradient of the summed loss over a batch, in the TrainStepper's flat layout. */
export type PlanGradients = (batch: Batch, into: Float32Array, context: StepContext) => StepStats;

/**
 * A training step without a gradient tape: the forward pass as fused ops (conv and dense with
 * their bias and relu in one kernel, which tfjs refuses under a tape), the activations kept, and
 * each layer's backward pass written out by hand. Returns null for a model it does not know (a
 * layer, activation, option or non-trainable weight it does not handle): the caller then uses
 * autodiff, slower but never wrong. Reads the weights live: valid while the model is.
 */
export function trainingPlan(model: tf.LayersModel): PlanGradients | null {
  if (!(model instanceof tf.Sequential)) return null;
  const variables = model.trainableWeights;
  const offsets: number[] = [];
  let size = 0;
  for (const v of variables) {
    offsets.push(size);
    size += v.shape.reduce<number>((p, d) => p * d!, 1);
  }
  const layers: PlanLayer[] = [];
  const weightOffsets: number[][] = [];
  for (const layer of model.layers) {
    const plan = planFor(layer);
    if (!plan) return null;
    // Every weight must be one we train, and every trained weight ours to write.
    if (layer.nonTrainableWeights.length > 0) return null;
    const at = layer.trainableWeights.map((w) => variables.indexOf(w));
    if (at.some((i) => i < 0)) return null;
    layers.push(plan);
    weightOffsets.push(at.map((i) => offsets[i]!));
  }
  if (weightOffsets.flat().length !== variables.length) return null;
  // Layers before the first with weights need no input gradient.
  const firstWeighted = weightOffsets.findIndex((w) => w.length > 0);

  return (batch, into, context) => {
    if (into.length !== size) throw new Error(`the gradient needs ${size} floats, got ${into.length}`);
    let stats: StepStats | undefined;
    tf.tidy(() => {
      const runs: LayerRun[] = [];
      let x: tf.Tensor = batch.images;
      for (const layer of layers) {
        const run = layer(x, context);
        runs.push(run);
        x = run.y;
      }
      const head = softmaxCrossEntropySum(x as tf.Tensor2D, batch.labels);
      stats = head.stats;
      let dy: tf.Tensor = head.dlogits;
      for (let i = runs.length - 1; i >= 0; i--) {
        const { dx, weights } = runs[i]!.back(dy, i > firstWeighted);
        weights.forEach((g, j) => writeFlat(g, into, weightOffsets[i]![j]!));
        tf.dispose(weights);
        if (!dx) break;
        dy = dx;
      }
    });
    return stats!;
  };
}

/**
 * Softmax cross-entropy summed over the batch, and its gradient for one-hot labels (what
 * BatchMaker makes): softmax - labels. Both stats come back in one read.
 */
function softmaxCrossEntropySum(
  logits: tf.Tensor2D,
  labels: tf.Tensor2D,
): { dlogits: tf.Tensor2D; stats: StepStats } {
  const logProbabilities = tf.sub(logits, tf.logSumExp(logits, 1, true));
  const dlogits = tf.sub<tf.Tensor2D>(tf.exp(logProbabilities), labels);
  const lossSum = tf.neg(tf.sum(tf.mul(labels, logProbabilities)));
  const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(labels, 1)), 'float32'));
  const [loss, right] = tf.stack([lossSum, hits]).dataSync();
  return { dlogits, stats: { lossSum: loss!, hits: right! } };
}

/** Copies a gradient into the flat array: straight off the heap on wasm, without a copy of its own. */
function writeFlat(t: tf.Tensor, into: Float32Array, offset: number): void {
  const backend = tf.backend();
  const values = tf.getBackend() === 'wasm' ? (backend as BackendWasm).typedArrayFromHeap(t) : t.dataSync();
  into.set(values as Float32Array, offset);
}

function planFor(layer: tf.layers.Layer): PlanLayer | null {
  const config = layer.getConfig() as LayerConfig;
  if (config.dataFormat && config.dataFormat !== 'channelsLast') return null;
  const activation = config.activation;
  if (activation !== undefined && activation !== 'relu' && activation !== 'linear') return null;
  switch (layer.getClassName()) {
    case 'Conv2D': {
      const dilated = [config.dilationRate ?? 1].flat().some((d) => d !== 1);
      if (!activation || dilated || layer.trainableWeights.length !== (config.useBias ? 2 : 1)) return null;
      return convLayer(layer, activation, config.strides!, config.padding!);
    }
    case 'Dense': {
      if (!activation || layer.trainableWeights.length !== (config.useBias ? 2 : 1)) return null;
      if (inputRank(layer) !== 2) return null;
      return denseLayer(layer, activation);
    }
    case 'MaxPooling2D':
      return maxPoolLayer(config.poolSize!, config.strides!, config.padding!);
    case 'Flatten':
      return (x) => ({
        y: tf.reshape(x, [x.shape[0]!, -1]),
        back: (dy, needDx) => ({ dx: needDx ? tf.reshape(dy, x.shape) : null, weights: [] }),
      });
    case 'SeededDropout':
      return dropoutLayer(config.rate!, config.seed!);
    default:
      return null;
  }
}

function inputRank(layer: tf.layers.Layer): number | null {
  try {
    return (layer.input as tf.SymbolicTensor).shape.length;
  } catch {
    return null; // several inbound nodes: not a plain chain
  }
}

function weightsOf(layer: tf.layers.Layer): { kernel: tf.Tensor; bias: tf.Tensor1D | undefined } {
  const [kernel, bias] = layer.trainableWeights.map((w) => w.read());
  return { kernel: kernel!, bias: bias as tf.Tensor1D | undefined };
}

function convLayer(
  layer: tf.layers.Layer,
  activation: 'relu' | 'linear',
  strides: [number, number],
  pad: 'valid' | 'same',
): PlanLayer {
  return (x) => {
    const { kernel, bias } = weightsOf(layer);
    const filter = kernel as tf.Tensor4D;
    const x4 = x as tf.Tensor4D;
    const y = tf.fused.conv2d({ x: x4, filter, strides, pad, ...(bias ? { bias } : {}), activation });
    return {
      y,
      back(dy, needDx) {
        const { dz, db } = biasActivationGrad(dy, y, activation);
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: x4, dy: dz }, {
          strides,
          pad,
          dataFormat: 'NHWC',
          filterShape: filter.shape,
        } as never) as tf.Tensor;
        const dx = needDx
          ? (tf.engine().runKernel('Conv2DBackpropInput', { dy: dz, filter }, {
              strides,
              pad,
              dataFormat: 'NHWC',
              inputShape: x4.shape,
            } as never) as tf.Tensor)
          : null;
        return { dx, weights: bias ? [dw, db] : [dw] };
      },
    };
  };
}

function denseLayer(layer: tf.layers.Layer, activation: 'relu' | 'linear'): PlanLayer {
  return (x) => {
    const { kernel, bias } = weightsOf(layer);
    const weights = kernel as tf.Tensor2D;
    const x2 = x as tf.Tensor2D;
    const y = tf.fused.matMul({ a: x2, b: weights, ...(bias ? { bias } : {}), activation });
    return {
      y,
      back(dy, needDx) {
        const { dz, db } = biasActivationGrad(dy, y, activation);
        const dw = tf.matMul(x2, dz as tf.Tensor2D, true, false);
        const dx = needDx ? tf.matMul(dz as tf.Tensor2D, weights, false, true) : null;
        return { dx, weights: bias ? [dw, db] : [dw] };
      },
    };
  };
}

function maxPoolLayer(
  poolSize: [number, number],
  strides: [number, number],
  pad: 'valid' | 'same',
): PlanLayer {
  return (x) => {
    const x4 = x as tf.Tensor4D;
    const y = tf.maxPool(x4, poolSize, strides, pad);
    return {
      y,
      back: (dy, needDx) => ({
        dx: needDx
          ? (tf.engine().runKernel('MaxPoolGrad', { dy, input: x4, output: y }, {
              filterSize: poolSize,
              strides,
              pad,
            } as never) as tf.Tensor)
          : null,
        weights: [],
      }),
    };
  };
}

/**
 * SeededDropout, its mask drawn from (layer seed, step, replica): reproducible, new each step,
 * different on each data-parallel replica, and the same for a resumed run as for an unbroken
 * one. The ops are tf.dropout's, so the output equals `tf.dropout(x, rate, undefined, seed)`.
 */
function dropoutLayer(rate: number, layerSeed: number): PlanLayer {
  if (rate === 0) return (x) => ({ y: x, back: (dy, needDx) => ({ dx: needDx ? dy : null, weights: [] }) });
  return (x, context) => {
    const multiplier = dropoutMultiplier(x.shape, rate, dropoutSeed(layerSeed, context));
    return {
      y: tf.mul(x, multiplier),
      back: (dy, needDx) => ({ dx: needDx ? tf.mul(dy, multiplier) : null, weights: [] }),
    };
  };
}

/** The dropout seed of one layer at one step on one replica (tfjs seeds its generator from text). */
export function dropoutSeed(layerSeed: number, context: StepContext): string {
  return `${layerSeed}:${context.step}:${context.replica}`;
}

/** What tf.dropout multiplies its input by, with the same ops: 0 or 1 / (1 - rate). */
export function dropoutMultiplier(shape: number[], rate: number, seed: string | number): tf.Tensor {
  const keep = 1 - rate;
  return tf.div(tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', seed), keep)), keep);
}
