import { imageSize, imageToMnist, WORKING_SIZE, type MnistImage } from '../ml/image-preprocess.js';
import { configDefaults } from '../config.js';
import { DomainError } from '../errors.js';
import { ConcurrencyLimit, QueueFullError } from './concurrency-limit.js';

/** Images this small are analysed as they come, without shrinking: a few ms of work each. */
const SMALL_IMAGE_PIXELS = WORKING_SIZE * WORKING_SIZE;

/** A decode takes at most a few hundred ms, so the line is usually gone within a second. */
const RETRY_AFTER_SECONDS = 1;

export interface ImageDecoderOptions {
  /** Large images decoded at once in this process; @default 1 */
  concurrency?: number;
  /**
   * Images waiting for a decode slot, in each line; one more is refused (503).
   * @default configDefaults.PREDICT_DECODE_QUEUE
   */
  maxWaiting?: number;
}

/**
 * Turns uploaded PNG and JPEG files into model input, a few at a time per process. A large image
 * costs up to a few hundred ms of a core (a 4096x4096 PNG) while a numeric image costs
 * microseconds, so without a bound a few requests full of large images take every core and the
 * memory of all their decodes at once (issue 12). Extra decodes wait in a short line in arrival
 * order; past it the decode is refused with a 503 and Retry-After.
 *
 * Small images (a canvas drawing from the web page, up to WORKING_SIZE squared) have a line and
 * a slot of their own, read from the header first: they never wait behind a large one, only
 * behind other small ones of a few ms each.
 */
export class ImageDecoder {
  /** Decodes of images over SMALL_IMAGE_PIXELS. */
  readonly slots: ConcurrencyLimit;
  /** Decodes of small images: one at a time. */
  readonly smallSlots: ConcurrencyLimit;
  /** Decodes started since start-up, and the pixels analysed by those that succeeded. */
  readonly counts = { decodes: 0, analysedPixels: 0 };

  constructor(options: ImageDecoderOptions = {}) {
    const maxWaiting = options.maxWaiting ?? configDefaults.PREDICT_DECODE_QUEUE;
    this.slots = new ConcurrencyLimit({ concurrency: options.concurrency ?? 1, maxWaiting });
    this.smallSlots = new ConcurrencyLimit({ concurrency: 1, maxWaiting });
  }

  /** Throws ImageInputError for what is not a PNG or JPEG digit, a 503 DomainError when its line is full. */
  async decode(bytes: Uint8Array): Promise<MnistImage> {
    const { width, height } = await imageSize(bytes);
    const line = width * height <= SMALL_IMAGE_PIXELS ? this.smallSlots : this.slots;
    try {
      return await line.run(async () => {
        this.counts.decodes++;
        const image = await imageToMnist(bytes);
        this.counts.analysedPixels += image.analysed.width * image.analysed.height;
        return image;
      });
    } catch (error) {
      if (!(error instanceof QueueFullError)) throw error;
      throw new DomainError(
        `this server is decoding as many images as it can; try again in ${RETRY_AFTER_SECONDS} s`,
        { status: 503, code: 'overloaded', retryAfterSeconds: RETRY_AFTER_SECONDS, cause: error },
      );
    }
  }
}
