import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, QueueFullError } from '../../src/api/concurrency-limit.js';

/** A task that runs until the test lets it finish, and says when it started. */
function gatedTask(name: string, started: string[]) {
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  return {
    finish,
    task: async () => {
      started.push(name);
      await gate;
      return name;
    },
  };
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ConcurrencyLimit', () => {
  it('when more tasks come than slots, then the extra ones wait and start in arrival order as slots free up', async () => {
    const limit = new ConcurrencyLimit({ concurrency: 2, maxWaiting: 10 });
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd', 'e'].map((name) => gatedTask(name, started));
    const results = tasks.map(({ task }) => limit.run(task));
    await settle();
    expect(started).toEqual(['a', 'b']);
    expect([limit.active, limit.waiting]).toEqual([2, 3]);

    // The second one finishes first: its slot goes to the first in line, not to a later arrival.
    tasks[1]!.finish();
    const late = gatedTask('late', started);
    const lateResult = limit.run(late.task);
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    expect(limit.waiting).toBe(3);

    tasks[0]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    for (const { finish } of [...tasks, late]) finish();
    expect(await Promise.all([...results, lateResult])).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('when the line is full, then one more task is refused at once without running, and a later one is taken again', async () => {
    const limit = new ConcurrencyLimit({ concurrency: 1, maxWaiting: 1 });
    const started: string[] = [];
    const running = gatedTask('running', started);
    const waiting = gatedTask('waiting', started);
    const refused = gatedTask('refused', started);
    const first = limit.run(running.task);
    const second = limit.run(waiting.task);
    await expect(limit.run(refused.task)).rejects.toThrow(QueueFullError);
    await expect(limit.run(refused.task)).rejects.toThrow('1 running and 1 waiting, the most allowed (1)');
    running.finish();
    waiting.finish();
    expect(await Promise.all([first, second])).toEqual(['running', 'waiting']);
    expect(started).toEqual(['running', 'waiting']);
    const again = gatedTask('again', started);
    again.finish();
    expect(await limit.run(again.task)).toBe('again');
  });

  it('when a task fails, then its slot is freed for the next one and the error reaches its caller', async () => {
    const limit = new ConcurrencyLimit({ concurrency: 1, maxWaiting: 1 });
    const failing = limit.run(() => Promise.reject(new Error('bad image')));
    const next = limit.run(() => Promise.resolve('next'));
    await expect(failing).rejects.toThrow('bad image');
    expect(await next).toBe('next');
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it.each([
    [{ concurrency: 0, maxWaiting: 1 }, 'concurrency must be an integer >= 1, got 0'],
    [{ concurrency: 1, maxWaiting: -1 }, 'maxWaiting must be an integer >= 0, got -1'],
  ])('when built with %j, then it says what is wrong', (options, message) => {
    expect(() => new ConcurrencyLimit(options)).toThrow(message);
  });
});
