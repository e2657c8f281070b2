import { join } from 'node:path';
import pino from 'pino';
import request from 'supertest';
import sharp from 'sharp';
import type { AppDeps } from '../../src/api/app.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import { RedisFeedbackEvaluations } from '../../src/feedback/redis-feedback-evaluations.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../src/ml/image-shape.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import type { ModelStore } from '../../src/registry/model-store.js';
import type { TestApiScope } from './api.js';

export type FeedbackParts = NonNullable<AppDeps['feedback']> & {
  store: FileFeedbackStore;
  evaluations: RedisFeedbackEvaluations;
};

/**
 * Feedback for a test API of `scope`: a file store in `<dir>/<name>` and the background evaluation
 * on the scope's Redis under a prefix of its own (so two APIs of a block keep their revisions
 * apart), measuring the versions of the scope's model store (`<dir>/models`). Started; the API
 * closes it (test/helpers/api.ts).
 */
export function feedbackParts(scope: TestApiScope, name = 'feedback'): FeedbackParts {
  return feedbackOf(
    { ...scope, prefix: `${scope.prefix}:${name}` },
    join(scope.dir, name),
    new FileModelStore(join(scope.dir, 'models')),
  );
}

/**
 * The feedback of an API in a test, as a service keeps it: examples in feedback/ of the scope's
 * directory, measured against `models`, the API's own model store (pass the same as its `store`).
 */
export function testFeedback(
  { redis, prefix, dir }: Omit<TestApiScope, 'start'>,
  models: ModelStore,
): FeedbackParts {
  return feedbackOf({ redis, prefix }, join(dir, 'feedback'), models);
}

function feedbackOf(
  { redis, prefix }: Pick<TestApiScope, 'redis' | 'prefix'>,
  dir: string,
  models: ModelStore,
): FeedbackParts {
  const store = new FileFeedbackStore(dir);
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

/**
 * A 28x28 image as 784 bytes that no other seed gives: 60 inked pixels whose places and shades
 * follow from the seed.
 */
export function byteImage(seed: number): number[] {
  const pixels = new Array<number>(IMAGE_PIXELS).fill(0);
  for (let k = 0; k < 60; k++) pixels[(seed * 37 + k * 11) % IMAGE_PIXELS] = 1 + ((seed * 7 + k) % 255);
  return pixels;
}

/**
 * A drawing as a canvas gives it: a dark bar on white, `size` px square. Preprocessing crops to the
 * ink and centres it, so the bar's width (from the seed, up to 16 kinds) is what sets drawings apart.
 */
export async function drawingPng(seed: number, size = 280): Promise<Buffer> {
  const width = Math.round(size * (0.05 + 0.03 * (seed % 16)));
  const bar = await sharp({
    create: { width, height: Math.round(size * 0.7), channels: 3, background: 'black' },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width: size, height: size, channels: 3, background: 'white' } })
    .composite([{ input: bar, left: Math.round(size * 0.15), top: Math.round(size * 0.15) }])
    .png()
    .toBuffer();
}

/** The 784 bytes of a 28x28 grayscale PNG (a data URL, or the PNG itself). */
export async function pngPixels(png: Buffer | string): Promise<Uint8Array> {
  const bytes =
    typeof png === 'string' ? Buffer.from(png.replace(/^data:image\/png;base64,/, ''), 'base64') : png;
  const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== IMAGE_SIDE || info.height !== IMAGE_SIDE || info.channels !== 1)
    throw new Error(`not a 28x28 grayscale PNG: ${info.width}x${info.height}x${info.channels}`);
  return new Uint8Array(data);
}

/** GET /feedback's revision: a POST or DELETE that changed the feedback moved it. */
export async function feedbackRevision(server: Parameters<typeof request>[0]): Promise<number> {
  return (await request(server).get('/feedback').expect(200)).body.revision as number;
}
