import * as tf from '@tensorflow/tfjs';

interface SeededDropoutConfig {
  rate: number;
  seed: number;
  name?: string;
}

/**
 * Dropout whose masks are reproducible from a seed yet differ from batch to batch. tfjs's own
 * dropout with a `seed` draws the same mask on every call (it re-seeds its generator each time),
 * and without one it cannot be reproduced.
 */
export class SeededDropout extends tf.layers.Layer {
  static readonly className = 'SeededDropout';
  private readonly rate: number;
  private readonly seed: number;
  private calls = 0;

  constructor(config: SeededDropoutConfig) {
    super(config.name ? { name: config.name } : {});
    if (!(config.rate >= 0 && config.rate < 1))
      throw new Error(`dropout rate must be in [0, 1), got ${config.rate}`);
    this.rate = config.rate;
    this.seed = config.seed;
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (!kwargs.training || this.rate === 0) return tf.clone(x);
    const seed = (this.seed + 7919 * ++this.calls) % 2 ** 31;
    return tf.dropout(x, this.rate, undefined, seed);
  }

  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(SeededDropout);
