import { describe, expect, it, vi } from 'vitest';
import { MicroBatcher } from '../../src/api/micro-batcher.js';

describe('MicroBatcher', () => {
  it('when many requests arrive together, then they run as one batch and each gets its own answer', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>(
      (xs) => {
        batches.push(xs);
        return xs.map((x) => x * 10);
      },
      { maxBatch: 64, maxDelayMs: 5 },
    );
    const answers = await Promise.all([1, 2, 3, 4, 5].map((x) => batcher.submit(x)));
    expect(answers).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('when more than maxBatch arrive, then full batches run at once and the rest after the delay', async () => {
    // Timers under the test's control: "at once" means before any time passes, "after" means
    // exactly when the window closes, whatever the machine is doing.
    vi.useFakeTimers();
    try {
      const sizes: number[] = [];
      const batcher = new MicroBatcher<number, number>(
        (xs) => {
          sizes.push(xs.length);
          return xs;
        },
        { maxBatch: 4, maxDelayMs: 1000 },
      );
      const first = Promise.all(Array.from({ length: 8 }, (_, i) => batcher.submit(i)));
      // No timer has run: full batches did not wait for the window.
      expect(await first).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(sizes).toEqual([4, 4]);
      const last = batcher.submit(99);
      expect(batcher.waiting).toBe(1);
      await vi.advanceTimersByTimeAsync(999);
      expect(sizes).toEqual([4, 4]);
      await vi.advanceTimersByTimeAsync(1);
      expect(sizes).toEqual([4, 4, 1]);
      expect(await last).toBe(99);
    } finally {
      vi.useRealTimers();
    }
  });

  it('when the delay is 0, then requests of the same tick share a batch and later ones do not wait', async () => {
    const sizes: number[] = [];
    const batcher = new MicroBatcher<number, number>(
      (xs) => {
        sizes.push(xs.length);
        return xs;
      },
      { maxBatch: 100, maxDelayMs: 0 },
    );
    await Promise.all([batcher.submit(1), batcher.submit(2)]);
    await batcher.submit(3);
    expect(sizes).toEqual([2, 1]);
  });

  it('when the batch function fails, then every caller of that batch gets the error and the next batch runs', async () => {
    let calls = 0;
    const batcher = new MicroBatcher<number, number>(
      (xs) => {
        calls++;
        if (calls === 1) throw new Error('model exploded');
        return xs;
      },
      { maxBatch: 10, maxDelayMs: 1 },
    );
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await batcher.submit(3)).toBe(3);
  });

  it('when the batch function returns the wrong number of outputs, then callers get an error instead of a wrong answer', async () => {
    const batcher = new MicroBatcher<number, number>(() => [1], { maxBatch: 10, maxDelayMs: 1 });
    await expect(Promise.all([batcher.submit(1), batcher.submit(2)])).rejects.toThrow(
      'returned 1 outputs for 2 inputs',
    );
  });

  it('when built with nonsense options, then it refuses', () => {
    expect(() => new MicroBatcher(() => [], { maxBatch: 0, maxDelayMs: 1 })).toThrow(RangeError);
    expect(() => new MicroBatcher(() => [], { maxBatch: 1, maxDelayMs: -1 })).toThrow(RangeError);
  });
});
