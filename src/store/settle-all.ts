/**
 * Waits for every one, then throws the first failure: when the caller cleans up after a failed
 * transfer, none of the others is still writing what it deletes.
 */
export async function settleAll(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
