import { sleep } from '../../helpers/until.js';

/** The q-quantile of numbers sorted ascending (nearest rank); 0 for none. */
export function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}

export interface PacedResult {
  /** Latencies in ms, sorted ascending. */
  latencies: number[];
  /** Answers by status; 0 for a network error or timeout. */
  statuses: Record<number, number>;
}

/**
 * Open-loop traffic: `send` is called `perSecond` times a second until `until()` says stop,
 * whether or not earlier calls have answered, so a slow server cannot slow the client down and
 * hide its queue. `send` resolves with the status.
 */
export async function paced(
  perSecond: number,
  until: () => boolean,
  send: () => Promise<number>,
): Promise<PacedResult> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; !until(); i++) {
    const wait = start + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    const sent = performance.now();
    pending.push(
      send().then(
        (status) => {
          latencies.push(performance.now() - sent);
          statuses[status] = (statuses[status] ?? 0) + 1;
        },
        () => {
          statuses[0] = (statuses[0] ?? 0) + 1;
        },
      ),
    );
  }
  await Promise.all(pending);
  return { latencies: latencies.sort((a, b) => a - b), statuses };
}

/** Reads `value` every `everyMs` until stopped; `stop` answers the largest value seen. */
export function sampleMax(value: () => number, everyMs = 50): { stop(): number } {
  let max = value();
  const timer = setInterval(() => {
    try {
      max = Math.max(max, value());
    } catch {
      // the process is gone: the run fails on its own answers
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return max;
    },
  };
}
