import { samplesGridPng } from '../datasets/samples-grid.js';
import {
  examplePixels,
  feedbackSplit,
  type FeedbackExample,
  type FeedbackSummary,
  type VersionFeedbackAccuracy,
} from '../feedback/feedback-schema.js';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { mnistImageToPng } from '../ml/image-preprocess.js';

/**
 * The classes the examples have, in the order of `reference` (the served version's classes), then
 * any others (classes of other versions, or of a version since replaced) by name.
 */
export function classOrder(examples: readonly FeedbackExample[], reference: readonly string[]): string[] {
  const present = new Set(examples.map((e) => e.class));
  const known = reference.filter((c) => present.has(c));
  const others = [...present].filter((c) => !reference.includes(c)).sort();
  return [...known, ...others];
}

/** GET /feedback from the stored examples (oldest first) and the background figures. */
export function feedbackSummary(
  examples: readonly FeedbackExample[],
  reference: readonly string[],
  figures: { revision: number; versions: VersionFeedbackAccuracy[]; maxExamples: number },
): FeedbackSummary {
  const perClass = new Map(
    classOrder(examples, reference).map((c) => [c, { class: c, count: 0, train: 0, test: 0 }]),
  );
  const daily = new Map<string, number>();
  for (const example of examples) {
    const entry = perClass.get(example.class)!;
    entry.count++;
    entry[feedbackSplit(example.id)]++;
    const date = example.createdAt.slice(0, 10);
    daily.set(date, (daily.get(date) ?? 0) + 1);
  }
  return {
    total: examples.length,
    maxExamples: figures.maxExamples,
    revision: figures.revision,
    perClass: [...perClass.values()],
    daily: [...daily].sort(([a], [b]) => a.localeCompare(b)).map(([date, count]) => ({ date, count })),
    versions: figures.versions,
    pending: figures.versions.some((v) => v.revision < figures.revision),
  };
}

/** An example as GET /feedback/examples shows it: its image as a PNG data URL, its split. */
export async function exampleView(example: FeedbackExample) {
  const png = await mnistImageToPng(examplePixels(example));
  return {
    id: example.id,
    class: example.class,
    modelVersion: example.modelVersion,
    predicted: example.predicted,
    createdAt: example.createdAt,
    split: feedbackSplit(example.id),
    image: `data:image/png;base64,${png.toString('base64')}`,
  };
}

/** Rows of samples.png at most: feedback checked against many versions may hold many classes. */
export const MAX_SAMPLE_ROWS = 100;

/**
 * GET /feedback/samples.png: a row per class (in classOrder, the first MAX_SAMPLE_ROWS), its newest
 * examples first, as the datasets' samples.png draws them.
 */
export function feedbackSamplesPng(
  examples: readonly FeedbackExample[],
  reference: readonly string[],
): Promise<Buffer> {
  const classes = classOrder(examples, reference).slice(0, MAX_SAMPLE_ROWS);
  const index = new Map(classes.map((c, i) => [c, i]));
  const newestFirst = examples.filter((e) => index.has(e.class)).reverse();
  const pixels = new Uint8Array(newestFirst.length * IMAGE_PIXELS);
  const labels = new Uint8Array(newestFirst.length);
  newestFirst.forEach((example, i) => {
    pixels.set(examplePixels(example), i * IMAGE_PIXELS);
    labels[i] = index.get(example.class)!;
  });
  return samplesGridPng({ count: newestFirst.length, pixels, labels }, classes.length);
}
