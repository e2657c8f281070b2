import type { TaskMeta } from 'vitest';

/** One line of the table the suite prints at the end. */
export interface Figure {
  scenario: string;
  measured: string;
  figure: string;
  /** Whether the figure meets its bar; null for a figure reported for information only. */
  pass: boolean | null;
}

declare module 'vitest' {
  interface TaskMeta {
    figures?: Figure[];
  }
}

/**
 * Records figures on the running test, where the reporter finds them (vitest's task meta).
 * Record before asserting, so a failing figure still reaches the table.
 */
export function figures(task: { meta: TaskMeta }, scenario: string) {
  task.meta.figures ??= [];
  return (measured: string, figure: string | number, pass: boolean | null = null): void => {
    task.meta.figures!.push({ scenario, measured, figure: String(figure), pass });
  };
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`,
  mib: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`,
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
};
