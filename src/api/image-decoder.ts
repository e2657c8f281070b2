import { imageToMnist, type MnistImage } from '../ml/image-preprocess.js';
import { ConcurrencyLimit } from './concurrency-limit.js';

export interface ImageDecoderOptions {
  /** Images decoded at once in this process; @default 1 */
  concurrency?: number;
  /** Images waiting for a decode slot; one more is refused (QueueFullError); @default 32 */
  maxWaiting?: number;
}

/**
 * Turns uploaded PNG and JPEG files into model input, a few at a time per process. A decode
 * costs up to a few hundred ms of a core (a 4096x4096 PNG) while a numeric image costs
 * microseconds, so without a bound a few requests full of large images take every core and the
 * memory of all their decodes at once (issue 12). Extra decodes wait in a short line in arrival
 * order; past it the caller gets QueueFullError and answers 503.
 */
export class ImageDecoder {
  readonly slots: ConcurrencyLimit;
  /** Decodes started since start-up, and the pixels analysed by those that succeeded. */
  readonly counts = { decodes: 0, analysedPixels: 0 };

  constructor(options: ImageDecoderOptions = {}) {
    this.slots = new ConcurrencyLimit({
      concurrency: options.concurrency ?? 1,
      maxWaiting: options.maxWaiting ?? 32,
    });
  }

  decode(bytes: Uint8Array): Promise<MnistImage> {
    return this.slots.run(async () => {
      this.counts.decodes++;
      const image = await imageToMnist(bytes);
      this.counts.analysedPixels += image.analysed.width * image.analysed.height;
      return image;
    });
  }
}
