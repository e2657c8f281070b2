import * as tf from '@tensorflow/tfjs';
import type { LayerConfig } from './layer-config.js';

/** Logits for a batch of inputs; allocates tensors, so call it inside tf.tidy. */
export type ForwardPass = (input: tf.Tensor4D) => tf.Tensor;

type Step = (x: tf.Tensor) => tf.Tensor;

/**
 * The model's layers as plain ops, conv and dense layers fused with their bias and activation:
 * one kernel each instead of three, and none of the Layers API's per-call bookkeeping: faster and
 * with less garbage per call than `model.predict`, which /predict pays on every request. Falls back to `model.predict` for any layer it does not know,
 * so an unknown architecture is slower, never wrong. Reads the weights live: valid while the
 * model is.
 */
export function inferencePlan(model: tf.LayersModel): ForwardPass {
  const steps: Step[] = [];
  for (const layer of model.layers) {
    const step = stepFor(layer);
    if (!step) return (input) => model.predict(input) as tf.Tensor;
    steps.push(step);
  }
  return (input) => steps.reduce<tf.Tensor>((x, step) => step(x), input);
}

const FUSABLE = new Set(['relu', 'linear']);

function stepFor(layer: tf.layers.Layer): Step | null {
  const config = layer.getConfig() as LayerConfig;
  if (config.dataFormat && config.dataFormat !== 'channelsLast') return null;
  const activation = config.activation as 'relu' | 'linear' | undefined;
  const [kernel, bias] = layer.getWeights();
  switch (layer.getClassName()) {
    case 'Conv2D': {
      const dilated = [config.dilationRate ?? 1].flat().some((d) => d !== 1);
      if (!activation || !FUSABLE.has(activation) || dilated || !kernel) return null;
      const filter = kernel as tf.Tensor4D;
      return (x) =>
        tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter,
          strides: config.strides!,
          pad: config.padding!,
          ...(bias ? { bias } : {}),
          activation,
        });
    }
    case 'Dense': {
      if (!activation || !FUSABLE.has(activation) || !kernel) return null;
      const weights = kernel as tf.Tensor2D;
      return (x) =>
        tf.fused.matMul({ a: x as tf.Tensor2D, b: weights, ...(bias ? { bias } : {}), activation });
    }
    case 'MaxPooling2D':
      return (x) => tf.maxPool(x as tf.Tensor4D, config.poolSize!, config.strides!, config.padding!);
    case 'Flatten':
      return (x) => tf.reshape(x, [x.shape[0]!, -1]);
    // Dropout does nothing at inference.
    case 'Dropout':
    case 'SeededDropout':
      return (x) => x;
    default:
      return null;
  }
}
