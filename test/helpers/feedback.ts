import type { Redis } from 'ioredis';
import type { FeedbackEvaluations } from '../../src/feedback/feedback-evaluations.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import type { FeedbackStore } from '../../src/feedback/feedback-store.js';

/**
 * The feedback an API in a test keeps: examples in `dir`, the revision in Redis under `prefix`.
 * Versions are not measured here (the background evaluation is not built yet): every figure
 * stays missing, which GET /feedback shows as versions still to measure.
 */
export function testFeedback(
  redis: Redis,
  prefix: string,
  dir: string,
): { store: FeedbackStore; evaluations: FeedbackEvaluations } {
  const key = `${prefix}:feedback:revision`;
  const revision = async () => Number((await redis.get(key)) ?? 0);
  return {
    store: new FileFeedbackStore(dir),
    evaluations: {
      revision,
      feedbackChanged: () => redis.incr(key),
      all: async () => [],
      forVersion: async () => null,
      close: async () => undefined,
    },
  };
}
