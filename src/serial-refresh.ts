/**
 * Wraps a reload (of a model, of a copy of Redis state) so that at most one runs at a time, and
 * calls made while one runs share a single further run after it: the run that is going on may
 * have looked before the caller's change was there. Safe to call as often as one likes.
 */
export function serialRefresh(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    if (running) {
      again ??= running
        .catch(() => undefined)
        .then(() => {
          again = undefined;
          return refresh();
        });
      return again;
    }
    running = run().finally(() => {
      running = undefined;
    });
    return running;
  };
  return refresh;
}
