import { createHash } from 'node:crypto';
import { z } from 'zod';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { modelVersionSchema } from '../registry/model-store.js';

/** The name a job gives the feedback examples in `datasets` (POST /jobs). */
export { FEEDBACK_DATASET } from '../ml/data/dataset.js';

/**
 * An example's id: the first 20 hex digits of the SHA-256 of its 784 pixel bytes. The same image
 * always gets the same id, so a second POST of it finds the first instead of storing a copy.
 */
export const feedbackIdSchema = z.string().regex(/^[0-9a-f]{20}$/, 'not a feedback id');
export type FeedbackId = z.infer<typeof feedbackIdSchema>;

export function feedbackId(pixels: Uint8Array): FeedbackId {
  if (pixels.length !== IMAGE_PIXELS) {
    throw new RangeError(`a feedback image is ${IMAGE_PIXELS} bytes, got ${pixels.length}`);
  }
  return createHash('sha256').update(pixels).digest('hex').slice(0, 20);
}

/**
 * Which split an example is in, from its id alone: one in five is 'test', never trained on by any
 * job, so every version (fine-tuned on feedback or not) can be measured on examples it has not seen.
 */
export function feedbackSplit(id: FeedbackId): 'train' | 'test' {
  return Number.parseInt(id.slice(0, 2), 16) % 5 === 0 ? 'test' : 'train';
}

/** One stored correction, as the store keeps it (feedback/<id>.json). */
export const feedbackExampleSchema = z.object({
  id: feedbackIdSchema,
  /** The right class's name: what training maps to a label in the job's own classes. */
  class: z.string().min(1).max(64),
  /** The model version the client saw, when it said. */
  modelVersion: modelVersionSchema.nullable(),
  /** The class that version predicted, by name, when the client said. */
  predicted: z.string().min(1).max(64).nullable(),
  createdAt: z.iso.datetime(),
  /** The 28x28 image the model sees, row-major bytes 0..255, as base64 (784 bytes). */
  pixels: z.base64().refine((b) => Buffer.from(b, 'base64').length === IMAGE_PIXELS, {
    message: `pixels must be ${IMAGE_PIXELS} bytes`,
  }),
});
export type FeedbackExample = z.infer<typeof feedbackExampleSchema>;

/** The 784 pixel bytes of a stored example. */
export function examplePixels(example: FeedbackExample): Uint8Array {
  return new Uint8Array(Buffer.from(example.pixels, 'base64'));
}

/** How one version does on the feedback examples it did not train on (computed in the background). */
export const versionFeedbackAccuracySchema = z.object({
  version: modelVersionSchema,
  /** correct / examples; null when no example of its classes is left to measure on. */
  accuracy: z.number().min(0).max(1).nullable(),
  correct: z.int().min(0),
  examples: z.int().min(0),
  /**
   * Whether it (or a version it was fine-tuned from) trained on feedback: then only the 'test'
   * split counts, otherwise every example does.
   */
  trainedOnFeedback: z.boolean(),
  /** The feedback revision measured: behind GET /feedback's `revision` while re-evaluation runs. */
  revision: z.int().min(0),
  evaluatedAt: z.iso.datetime(),
});
export type VersionFeedbackAccuracy = z.infer<typeof versionFeedbackAccuracySchema>;

/** POST /feedback's answer: 201 when stored now, 200 when the same image was stored before. */
export const feedbackCreatedSchema = z.object({
  id: feedbackIdSchema,
  class: z.string(),
  /** The class's index in the classes the label was checked against (the model version's). */
  label: z.int().min(0),
  created: z.boolean().describe('false: this image was stored before, with the same class'),
  split: z.enum(['train', 'test']),
});

/** An example as GET /feedback/examples shows it: the image as a PNG data URL, no raw pixels. */
export const feedbackExampleViewSchema = feedbackExampleSchema.omit({ pixels: true }).extend({
  split: z.enum(['train', 'test']),
  image: z.string().describe('the 28x28 image the model sees, as a PNG data URL'),
});

export const feedbackExamplesPageSchema = z.object({
  total: z.int().min(0),
  offset: z.int().min(0),
  limit: z.int().min(1),
  /** Newest first. */
  examples: z.array(feedbackExampleViewSchema),
});

/** GET /feedback: how much there is, of what, since when, and how each version does on it. */
export const feedbackSummarySchema = z.object({
  total: z.int().min(0),
  maxExamples: z.int().min(1),
  /** Goes up with every example stored or deleted. */
  revision: z.int().min(0),
  perClass: z.array(
    z.object({ class: z.string(), count: z.int().min(0), train: z.int().min(0), test: z.int().min(0) }),
  ),
  /** Examples stored per UTC day, oldest first, days with none left out. */
  daily: z.array(z.object({ date: z.iso.date(), count: z.int().min(1) })),
  /** Ascending by version; a version not yet measured is missing. */
  versions: z.array(versionFeedbackAccuracySchema),
  /** True while some version's figure is older than `revision` (re-evaluation is under way). */
  pending: z.boolean(),
});
export type FeedbackSummary = z.infer<typeof feedbackSummarySchema>;
