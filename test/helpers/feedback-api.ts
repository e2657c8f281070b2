import type { AppDeps } from '../../src/api/app.js';
import type { FeedbackEvaluations } from '../../src/feedback/feedback-evaluations.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';

/**
 * The feedback side of an API for tests about what is stored and trained on, not about the
 * background evaluation: the real file store in `dir`, and evaluations that keep the revision in
 * memory and measure nothing (every version unmeasured).
 */
export function fileFeedback(dir: string): NonNullable<AppDeps['feedback']> & { store: FileFeedbackStore } {
  let revision = 0;
  const evaluations: FeedbackEvaluations = {
    revision: async () => revision,
    feedbackChanged: async () => ++revision,
    all: async () => [],
    forVersion: async () => null,
    close: async () => undefined,
  };
  return { store: new FileFeedbackStore(dir), evaluations };
}
