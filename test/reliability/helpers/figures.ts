import { expect, type TaskMeta } from 'vitest';

/**
 * Whether timing bars fail their test (`RELIABILITY_BARS=enforce`, or `npm run test:reliability
 * -- --enforce-bars`). By default, CI included, they are reported only: a latency depends on
 * what else the machine runs, and a test's verdict must not (speed is for benchmarks).
 */
export const ENFORCE_BARS = process.env.RELIABILITY_BARS === 'enforce';

/** One line of the table the suite prints at the end. */
export interface Figure {
  scenario: string;
  measured: string;
  figure: string;
  /** Whether the figure meets its bar; null for a figure reported for information only. */
  pass: boolean | null;
  /**
   * Set on a timing bar (`record.bar`): its limit, and whether it was enforced in this run. A
   * timing bar over its limit reads `over` in the table when reported only, `FAIL` when enforced.
   */
  bar?: { limit: string; enforced: boolean };
}

declare module 'vitest' {
  interface TaskMeta {
    figures?: Figure[];
  }
}

export interface BarOptions {
  /** How the limit reads in the table; @default fmt.ms */
  format?: (n: number) => string;
}

/** Records a figure; `pass` says whether it meets its bar, for a correctness check. */
export interface Recorder {
  (measured: string, figure: string | number, pass?: boolean | null): void;
  /**
   * Records a timing figure with its bar, `value <= limit`, and answers whether it meets it.
   * The bar is the test's verdict only when bars are enforced (ENFORCE_BARS), and then as a soft
   * assertion, so the scenario's other figures and checks still run and reach the table.
   * Correctness (statuses, counts, versions) is never a bar: assert it as before.
   */
  bar(measured: string, figure: string | number, value: number, limit: number, options?: BarOptions): boolean;
}

/**
 * Records figures on the running test, where the reporter finds them (vitest's task meta).
 * Record before asserting, so a failing figure still reaches the table.
 */
export function figures(task: { meta: TaskMeta }, scenario: string): Recorder {
  task.meta.figures ??= [];
  const list = task.meta.figures;
  const record = (measured: string, figure: string | number, pass: boolean | null = null): void => {
    list.push({ scenario, measured, figure: String(figure), pass });
  };
  record.bar = (
    measured: string,
    figure: string | number,
    value: number,
    limit: number,
    { format = fmt.ms }: BarOptions = {},
  ): boolean => {
    const pass = value <= limit;
    // The bar goes with the figure: the table cuts long labels short, not figures.
    list.push({
      scenario,
      measured,
      figure: `${String(figure)} (bar: <= ${format(limit)})`,
      pass,
      bar: { limit: format(limit), enforced: ENFORCE_BARS },
    });
    if (ENFORCE_BARS) expect.soft(value, `${scenario}: ${measured}`).toBeLessThanOrEqual(limit);
    return pass;
  };
  return record;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`,
  mib: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`,
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
};
