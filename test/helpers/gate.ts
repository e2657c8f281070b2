/**
 * A point in the code under test where callers wait until the test opens it. `arrived` resolves
 * when the first caller gets there, so the test acts while something is held at a known step,
 * without a timer. Once open, it lets everyone through.
 */
export interface Gate {
  /** Resolves once a caller waits at the gate. */
  readonly arrived: Promise<void>;
  /** What the held code calls: waits until the gate is open. */
  pass(): Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let arrive!: () => void;
  let open!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    arrived,
    pass: () => {
      arrive();
      return opened;
    },
    open,
  };
}
