import { join } from 'node:path';
import pino from 'pino';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import { RedisFeedbackEvaluations } from '../../src/feedback/redis-feedback-evaluations.js';
import type { ModelStore } from '../../src/registry/model-store.js';
import type { TestApiScope } from './api.js';

/**
 * The feedback of an API in a test, as a service keeps it: examples in feedback/ of the scope's
 * directory, each version measured on them in the background with figures in Redis under the
 * scope's prefix. The API closes the evaluations when it closes (test/helpers/api.ts).
 * `models` is the API's own model store (pass the same as its `store`).
 */
export function testFeedback({ redis, prefix, dir }: Omit<TestApiScope, 'start'>, models: ModelStore) {
  const store = new FileFeedbackStore(join(dir, 'feedback'));
  const evaluations = new RedisFeedbackEvaluations({
    redis,
    prefix,
    feedback: store,
    models,
    logger: pino({ level: 'silent' }),
    // One API process: its own changes start passes at once; there are no others to poll for.
    pollMs: 3_600_000,
  });
  evaluations.start();
  return { store, evaluations };
}
