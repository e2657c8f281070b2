import * as tf from '@tensorflow/tfjs';
import type { BatchMaker } from './batches.js';
import type { StepStats, TrainStepper } from './train-step.js';

/** One optimizer step's batch: positions [start, end) of the epoch's order. */
export interface BatchPlan {
  order: Uint32Array;
  /** The epoch's augmentation shifts, two per position of `order` (batches.ts `drawShifts`). */
  shifts?: Int8Array;
  start: number;
  end: number;
  /** 0-based step count since the run began (StepContext.step). */
  step: number;
}

/** Runs optimizer steps: here in this thread, or spread over data-parallel replicas. */
export interface StepRunner {
  /** Trains on one batch; resolves to the whole batch's summed loss and hits. */
  run(plan: BatchPlan): Promise<StepStats>;
  close(): Promise<void>;
}

/**
 * Steps in this thread alone. A step is synchronous, so it yields to the event loop (where an
 * abort lands) only when `yieldEveryMs` has passed since the last time: a yield per batch would
 * cost a noticeable share of every step.
 */
export function localRunner(stepper: TrainStepper, maker: BatchMaker, yieldEveryMs = 20): StepRunner {
  const gradient = new Float32Array(stepper.gradientSize);
  let lastYield = performance.now();
  return {
    async run(plan) {
      if (performance.now() - lastYield >= yieldEveryMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      const stats = withBatch(maker, plan, (batch) =>
        stepper.gradients(batch, gradient, { step: plan.step, replica: 0 }),
      );
      const count = plan.end - plan.start;
      for (let i = 0; i < gradient.length; i++) gradient[i] = gradient[i]! / count;
      stepper.apply(gradient, plan.step);
      return stats;
    },
    close: () => Promise.resolve(),
  };
}

/** Makes the plan's batch (or slice), runs `use` on it and frees its tensors. */
export function withBatch<T>(
  maker: BatchMaker,
  plan: Pick<BatchPlan, 'order' | 'shifts' | 'start' | 'end'>,
  use: (batch: ReturnType<BatchMaker['make']>) => T,
): T {
  const batch = maker.make(plan.order, plan.start, plan.end, plan.shifts);
  try {
    return use(batch);
  } finally {
    tf.dispose([batch.images, batch.labels]);
  }
}
