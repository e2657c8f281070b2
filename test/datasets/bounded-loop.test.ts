import { describe, expect, it } from 'vitest';
import { forEachBounded } from '../../src/datasets/bounded-loop.js';

/** A promise the test settles by hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('forEachBounded', () => {
  it('when tasks run, then at most `concurrency` run at once and every index runs once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachBounded(20, 3, async (i) => {
      running++;
      most = Math.max(most, running);
      await Promise.resolve();
      seen.push(i);
      running--;
    });
    expect(most).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('when the signal aborts mid-way, then no task starts after it and the reason is thrown', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const done = forEachBounded(
      100,
      2,
      async (i) => {
        started.push(i);
        if (i === 5) controller.abort(new Error('client gone'));
      },
      controller.signal,
    );
    await expect(done).rejects.toThrow('client gone');
    expect(Math.max(...started)).toBeLessThanOrEqual(6);
  });

  it('when a task fails, then the error is thrown only once the tasks still running have settled', async () => {
    const slow = gate();
    let slowDone = false;
    const done = forEachBounded(10, 2, async (i) => {
      if (i === 0) {
        await slow.opened;
        slowDone = true;
      } else if (i === 1) {
        throw new Error('bad entry');
      }
    });
    let settled = false;
    void done.catch(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    slow.open();
    await expect(done).rejects.toThrow('bad entry');
    expect(slowDone).toBe(true);
  });
});
