import type { VersionFeedbackAccuracy } from './feedback-schema.js';

/**
 * Each model version's accuracy on the feedback examples it did not train on, measured in the
 * background (when a version appears or the feedback changes), never on a request's path. The
 * figures and the feedback revision live in Redis, so every API process shows the same ones.
 */
export interface FeedbackEvaluations {
  /** The current feedback revision: bumped by every add and delete, in any API process. */
  revision(): Promise<number>;
  /** After this process stored or deleted an example: bumps the revision and schedules a re-evaluation. */
  feedbackChanged(): Promise<number>;
  /** The latest figure of every measured version, ascending. */
  all(): Promise<VersionFeedbackAccuracy[]>;
  /** Null when the version has not been measured yet. */
  forVersion(version: number): Promise<VersionFeedbackAccuracy | null>;
  /** Stops the background work. */
  close(): Promise<void>;
}
