import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** What tfjs's AdamOptimizer keeps, private in its typings: we update it as its own code would. */
interface AdamState {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

/** One optimizer update from a flat mean gradient (the weights in order, each flattened). */
export type FlatApply = (meanGradient: Float32Array) => void;

/**
 * tfjs's Adam with all the weights in one flat tensor: the 13 ops of its update run once per step
 * instead of once per weight, whose kernel launches dominated the update on wasm.
 * The ops and their order are AdamOptimizer.applyGradients's (tfjs-core 4.22), elementwise, so
 * weights, moments, accumulated betas and the iteration count come out bit for bit as tfjs's,
 * and checkpoints (getWeights/setWeights) see the optimizer they expect. Nothing is written in
 * place: every weight and moment gets a fresh buffer it is assigned, as tfjs does. (In place would
 * reach tensors that share a buffer, and the wasm conv and dense kernels keep the filters they
 * packed keyed by buffer: they would go on using the old weights.)
 * (Not a single pass in JavaScript with Math.fround after each operation: as exact, but three
 * divisions and a square root per weight in scalar doubles cost more than SIMD kernels on the
 * flat tensor.)
 * Returns null unless the optimizer is exactly tfjs's Adam. On another backend, or before the
 * moments exist (the first step of a fresh run), it hands the step to `fallback`, which must be
 * tfjs's own update.
 */
export function fusedAdam(
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  fallback: FlatApply,
): FlatApply | null {
  if (Object.getPrototypeOf(optimizer) !== tf.AdamOptimizer.prototype) return null;
  const adam = optimizer as unknown as AdamState;
  const size = variables.reduce((sum, v) => sum + v.size, 0);
  return (meanGradient) => {
    if (meanGradient.length !== size) {
      throw new Error(`the mean gradient has ${meanGradient.length} floats, the weights ${size}`);
    }
    const moments = momentsOf(adam, variables);
    if (tf.getBackend() !== 'wasm' || !moments) {
      fallback(meanGradient);
      return;
    }
    const backend = tf.backend() as BackendWasm;
    const weights = gather(backend, variables, size);
    const m = gather(backend, moments.m, size);
    const v = gather(backend, moments.v, size);
    const g = tf.tensor1d(meanGradient);
    // AdamOptimizer.applyGradients, op for op, on all the weights at once.
    const [newM, newV, newWeights] = tf.tidy(() => {
      const oneMinusAccBeta1 = tf.sub(1, adam.accBeta1);
      const oneMinusAccBeta2 = tf.sub(1, adam.accBeta2);
      const m1 = tf.add(tf.mul(m, adam.beta1), tf.mul(g, 1 - adam.beta1));
      const v1 = tf.add(tf.mul(v, adam.beta2), tf.mul(tf.square(g), 1 - adam.beta2));
      const mHat = tf.div(m1, oneMinusAccBeta1);
      const vHat = tf.div(v1, oneMinusAccBeta2);
      const step = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), adam.epsilon)), -adam.learningRate);
      adam.accBeta1.assign(tf.mul(adam.accBeta1, adam.beta1));
      adam.accBeta2.assign(tf.mul(adam.accBeta2, adam.beta2));
      return [m1, v1, tf.add(step, weights)];
    });
    tf.dispose([weights, m, v, g]);
    assignSlices(backend, newM, moments.m);
    assignSlices(backend, newV, moments.v);
    assignSlices(backend, newWeights, variables);
    tf.dispose([newM, newV, newWeights]);
    adam.incrementIterations();
  };
}

/** The moments tfjs made for these variables (by position, as applyGradients keys them), if all exist. */
function momentsOf(adam: AdamState, variables: tf.Variable[]): { m: tf.Variable[]; v: tf.Variable[] } | null {
  const m = adam.accumulatedFirstMoment.map((o) => o?.variable);
  const v = adam.accumulatedSecondMoment.map((o) => o?.variable);
  if (m.length !== variables.length || v.length !== variables.length) return null;
  const fits = (t: tf.Variable | undefined, i: number) =>
    t !== undefined && !t.isDisposed && t.dtype === 'float32' && t.size === variables[i]!.size;
  if (!m.every(fits) || !v.every(fits)) return null;
  return { m: m as tf.Variable[], v: v as tf.Variable[] };
}

/** The tensors' values end to end in one new tensor. */
function gather(backend: BackendWasm, parts: tf.Tensor[], size: number): tf.Tensor1D {
  const flat = tf.engine().makeTensorFromTensorInfo(backend.makeOutput([size], 'float32')) as tf.Tensor1D;
  const into = heap(backend, flat);
  let offset = 0;
  for (const part of parts) {
    into.set(heap(backend, part), offset);
    offset += part.size;
  }
  return flat;
}

/** Assigns each variable its slice of `flat`, copied into a buffer of its own. */
function assignSlices(backend: BackendWasm, flat: tf.Tensor, variables: tf.Variable[]): void {
  const fresh = variables.map((v) =>
    tf.engine().makeTensorFromTensorInfo(backend.makeOutput(v.shape, 'float32')),
  );
  // The view after the allocations: an allocation may grow (and so detach) the heap.
  const from = heap(backend, flat);
  let offset = 0;
  fresh.forEach((t, i) => {
    heap(backend, t).set(from.subarray(offset, offset + t.size));
    offset += t.size;
    variables[i]!.assign(t);
  });
  tf.dispose(fresh);
}

function heap(backend: BackendWasm, t: tf.Tensor): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}
