/**
 * Decodes in an upload run this many at a time: sharp works on libuv's threads (one per image,
 * see image-preprocess.ts) and the ink analysis on the event loop, so a few at once keep a core
 * busy while the API goes on answering other requests between them.
 */
export const DECODE_CONCURRENCY = 2;

/**
 * Runs `task(0..count-1)`, at most `concurrency` at once. The first failure (or an abort) stops
 * new tasks from starting and is thrown once the running ones have settled, so none is still
 * reading from the archive when the caller closes it.
 */
export async function forEachBounded(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < count) {
      if (signal?.aborted) {
        failure ??= { error: signal.reason };
        return;
      }
      const index = next++;
      try {
        await task(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failure) throw failure.error;
}
