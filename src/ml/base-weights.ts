import type * as tf from '@tensorflow/tfjs';
import { outputClasses } from './architectures.js';

/** A published model a run starts from (fine-tuning): its weights and the version they came from. */
export interface BaseModel {
  model: tf.LayersModel;
  version: number;
}

/** The base model cannot seed this run's model: the client asked for a mismatch. */
export class BaseModelError extends Error {
  override name = 'BaseModelError';
}

/**
 * Copies the base's weights into `model`, layer by layer. With the same number of classes every
 * layer takes them; with another, the last layer keeps its own (seeded) initial weights and only
 * the layers before it are transferred, as in transfer learning (digits -> letters). Layers must
 * otherwise match one for one: same kind, same weight shapes.
 */
export function takeBaseWeights(model: tf.LayersModel, base: BaseModel): void {
  const from = base.model.layers;
  const to = model.layers;
  const mismatch = (detail: string) =>
    new BaseModelError(
      `cannot fine-tune from model version ${base.version}: its layers do not match architecture ` +
        `'${model.name}' (${detail}); use the architecture it was trained with`,
    );
  if (from.length !== to.length)
    throw mismatch(`the base has ${from.length} layers, the architecture ${to.length}`);
  const sameClasses = outputClasses(base.model) === outputClasses(model);
  const last = to.length - 1;
  to.forEach((layer, i) => {
    const baseLayer = from[i]!;
    if (baseLayer.getClassName() !== layer.getClassName()) {
      throw mismatch(
        `layer ${i + 1} is ${baseLayer.getClassName()} in the base, ${layer.getClassName()} in the architecture`,
      );
    }
    const weights = baseLayer.getWeights();
    const own = layer.getWeights();
    // The new head's kernel must still read the same features: only its output side may differ.
    const fits = (a: tf.Tensor, b: tf.Tensor) =>
      sameClasses || i !== last
        ? sameShape(a.shape, b.shape)
        : sameShape(a.shape.slice(0, -1), b.shape.slice(0, -1));
    const bad = own.findIndex((w, j) => !weights[j] || !fits(weights[j]!, w));
    if (weights.length !== own.length || bad >= 0) {
      throw mismatch(
        `layer ${i + 1} (${layer.getClassName()}) has weights ${shapes(weights)} in the base, ${shapes(own)} in the architecture`,
      );
    }
    if (sameClasses || i !== last) layer.setWeights(weights);
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapes(weights: tf.Tensor[]): string {
  return weights.map((w) => `[${w.shape.join(',')}]`).join(' ') || 'none';
}
