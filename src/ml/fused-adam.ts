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
 * Adam as one pass in JavaScript over the wasm heap, where tfjs runs about 14 kernels per
 * weight: the moments are updated in place; each new weight goes to a fresh buffer that the
 * variable is then assigned, as tfjs does, because the wasm backend's XNNPACK operators keep the
 * filters they packed keyed by buffer and would go on using the old weights. Every operation is rounded to float32 in
 * the order of tfjs's AdamOptimizer.applyGradients (tfjs-core 4.22), so the weights, moments,
 * accumulated betas and iteration count come out bit for bit as tfjs's own on wasm, and
 * checkpoints (getWeights/setWeights) see the optimizer they expect. Returns null unless the
 * optimizer is exactly tfjs's Adam; on another backend, or before the moments exist (the first
 * step of a fresh run), it hands the step to `fallback`, which must be tfjs's own update.
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
    // In-place writes must not reach another tensor that shares a buffer with these.
    for (const v of [...moments.m, ...moments.v, adam.accBeta1, adam.accBeta2]) makePrivate(backend, v);
    const next = variables.map((v) =>
      tf.engine().makeTensorFromTensorInfo(backend.makeOutput(v.shape, 'float32')),
    );
    const f = Math.fround;
    // The scalars tfjs makes of these numbers are float32.
    const beta1 = f(adam.beta1);
    const beta2 = f(adam.beta2);
    const oneMinusBeta1 = f(1 - adam.beta1);
    const oneMinusBeta2 = f(1 - adam.beta2);
    const epsilon = f(adam.epsilon);
    const negativeRate = f(-adam.learningRate);
    // Views taken after every allocation above: an allocation may grow (and so detach) the heap.
    const acc1 = heap(backend, adam.accBeta1);
    const acc2 = heap(backend, adam.accBeta2);
    const oneMinusAcc1 = f(1 - acc1[0]!);
    const oneMinusAcc2 = f(1 - acc2[0]!);
    let g0 = 0;
    variables.forEach((variable, i) => {
      const value = heap(backend, variable);
      const out = heap(backend, next[i]!);
      const m = heap(backend, moments.m[i]!);
      const v = heap(backend, moments.v[i]!);
      for (let k = 0; k < value.length; k++) {
        const g = meanGradient[g0 + k]!;
        const m1 = f(f(m[k]! * beta1) + f(g * oneMinusBeta1));
        const v1 = f(f(v[k]! * beta2) + f(f(g * g) * oneMinusBeta2));
        const mHat = f(m1 / oneMinusAcc1);
        const vHat = f(v1 / oneMinusAcc2);
        m[k] = m1;
        v[k] = v1;
        out[k] = f(f(f(mHat / f(f(Math.sqrt(vHat)) + epsilon)) * negativeRate) + value[k]!);
      }
      g0 += value.length;
    });
    acc1[0] = f(acc1[0]! * beta1);
    acc2[0] = f(acc2[0]! * beta2);
    variables.forEach((variable, i) => variable.assign(next[i]!));
    tf.dispose(next);
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

function heap(backend: BackendWasm, t: tf.Tensor): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/**
 * Gives the variable a buffer of its own when another tensor shares it (a variable made from a
 * checkpoint's tensor, a clone), so writing in place cannot change that other tensor.
 */
function makePrivate(backend: BackendWasm, variable: tf.Variable): void {
  if (backend.refCount(variable.dataId) <= 1) return;
  const copy = tf.tensor(heap(backend, variable).slice(), variable.shape, 'float32');
  variable.assign(copy);
  copy.dispose();
}
