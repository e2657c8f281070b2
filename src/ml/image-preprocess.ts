/**
 * Turns an uploaded image (a canvas drawing or a photo of a digit) into the 28x28 input the model was
 * trained on, the way MNIST itself was made: the digit's bounding box scaled to fit 20x20 keeping its
 * aspect ratio, anti-aliased, then placed in 28x28 so that its centre of mass is at pixel (14, 14).
 * Plain typed arrays only: the caller batches them into tensors.
 */
import { setImmediate } from 'node:timers/promises';
import sharp, { type Metadata, type SharpOptions } from 'sharp';
import { IMAGE_PIXELS, IMAGE_SIDE } from './image-shape.js';

// libvips caches up to 100 operations and 50 MB of their results, for a program that repeats work
// on one image. Every upload here is a new image: the cache never hits and only holds memory.
sharp.cache(false);
// libvips gives each image as many threads as there are cores, so one large upload could take them
// all from the API's other requests (issue 12). One thread per image makes PREDICT_DECODE_CONCURRENCY
// the real bound on the cores decoding uses.
sharp.concurrency(1);

/** MNIST's digits fill 20 px in their larger dimension, leaving a 4 px margin. */
export const DIGIT_BOX = 20;
/** Measured on t10k: MNIST's mean centre of mass is (14.0, 14.0) in pixel-index coordinates. */
const CENTRE = 14;
export const DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096;
/**
 * Largest side the analysis runs at. The output is 20 px, and a 280x280 canvas (the web page's)
 * is analysed as it came. Each pass over the pixels is JavaScript on the caller's event loop, and
 * costs in proportion to the pixels (issue 12, decode amplification).
 */
export const WORKING_SIZE = 512;
/** What the API documents; GIF, WebP, SVG, TIFF... are refused from the header, by name. */
const ACCEPTED_FORMATS = new Set(['png', 'jpeg']);
/** Reproduced MNIST best in the round-trip test (lower error than mitchell, cubic or linear). */
const RESIZE_KERNEL = 'lanczos3';

/** Pixels closer to the background than this many noise deviations (from the border) are background. */
const NOISE_SIGMAS = 4;
/** ... and than this fraction of the ink's contrast, so paper texture stays out but anti-aliasing stays in. */
const INK_FRACTION = 0.1;
/** A quantisation step or two of JPEG is never ink. */
const MIN_STEP = 8;
/** Below this contrast (of 255) the "ink" is a shadow or a texture, not a digit. */
const MIN_CONTRAST = 32;
/** Connected blobs with less ink than this fraction of the largest one are noise specks. */
const SPECK_FRACTION = 0.02;

/** The image cannot be turned into a digit; retrying with the same bytes cannot help. */
export class ImageInputError extends Error {
  override name = 'ImageInputError';
}

export interface ImageToMnistOptions {
  /**
   * Larger images are refused from their header, before any decoding (decompression bombs).
   * @default 4096 * 4096
   */
  maxInputPixels?: number;
}

export interface MnistImage {
  /** 784 values in [0, 1], row-major, ink high and background 0 as in MNIST. */
  pixels: Float32Array;
  /** True when the input was dark ink on a light background and had to be inverted. */
  inverted: boolean;
  /** Size of the decoded image (first page, EXIF orientation applied). */
  width: number;
  height: number;
  /** Size the analysis ran at: the image shrunk to fit WORKING_SIZE while it was decoded. */
  analysed: { width: number; height: number };
}

interface Gray {
  data: Uint8Array;
  width: number;
  height: number;
}

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export async function imageToMnist(
  bytes: Uint8Array,
  options: ImageToMnistOptions = {},
): Promise<MnistImage> {
  const maxPixels = checkedInput(bytes, options);
  const { width, height, gray } = await decodeToGray(bytes, maxPixels);
  // Between passes, other requests get the event loop: a pass is a few ms, three in a row are not.
  await setImmediate();
  const { levels, inverted } = inkLevels(gray);
  await setImmediate();
  const box = inkBox(levels, gray.width, gray.height);
  const pixels = centreByMass(await fitIntoDigitBox(levels, gray.width, box));
  return { pixels, inverted, width, height, analysed: { width: gray.width, height: gray.height } };
}

/**
 * The size of an image from its header only, with the same checks as imageToMnist (format, pixel
 * limit): what decoding it would cost, known for about a millisecond's work.
 */
export async function imageSize(
  bytes: Uint8Array,
  options: ImageToMnistOptions = {},
): Promise<{ width: number; height: number }> {
  return readHeader(bytes, checkedInput(bytes, options));
}

/** The pixel limit to apply, once the input is known not to be empty. */
function checkedInput(bytes: Uint8Array, options: ImageToMnistOptions): number {
  if (bytes.length === 0) throw new ImageInputError('the image is empty: 0 bytes');
  const maxPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  if (!(Number.isInteger(maxPixels) && maxPixels > 0)) {
    throw new RangeError(`maxInputPixels must be a positive integer, got ${maxPixels}`);
  }
  return maxPixels;
}

/** Renders a size x size image (Uint8Array 0..255, or Float32Array 0..1) as a one-channel grayscale PNG. */
export async function mnistImageToPng(pixels: Uint8Array | Float32Array, size = IMAGE_SIDE): Promise<Buffer> {
  if (pixels.length !== size * size) {
    throw new RangeError(`expected ${size} x ${size} = ${size * size} pixels, got ${pixels.length}`);
  }
  const bytes = pixels instanceof Float32Array ? Uint8Array.from(pixels, (v) => clampByte(v * 255)) : pixels;
  return sharp(bytes, { raw: { width: size, height: size, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

async function decodeToGray(
  bytes: Uint8Array,
  maxPixels: number,
): Promise<{ width: number; height: number; gray: Gray }> {
  const { width, height } = await readHeader(bytes, maxPixels);
  // The limit again, in case the header check and the decoder ever disagree about the size; failOn
  // keeps sharp's default 'warning', which its docs recommend for untrusted input.
  const options: SharpOptions = { limitInputPixels: maxPixels, pages: 1, autoOrient: true };
  // Shrunk while decoding, on libuv's threads: JPEG decodes at 1/2 to 1/8 scale (shrink-on-load);
  // PNG has no reduced decode, but libvips streams it through the shrink in strips, so a large PNG
  // costs its inflate time and a strip's memory, not a buffer of all its pixels.
  const decoded = await sharp(bytes, options)
    .resize(WORKING_SIZE, WORKING_SIZE, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
    .catch((error: unknown) => {
      throw decodeError(error, maxPixels);
    });
  const { data, info } = decoded;
  if (info.channels !== 4) throw new Error(`expected RGBA from sharp, got ${info.channels} channels`);
  return { width, height, gray: flattenToGray(data, info.width, info.height) };
}

/**
 * Reads only the header, so that format, size and pixel limit are checked before any decoding.
 * Without sharp's own limit here: it would refuse the same images with a message that has no sizes.
 */
async function readHeader(bytes: Uint8Array, maxPixels: number): Promise<{ width: number; height: number }> {
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (error) {
    throw decodeError(error, maxPixels);
  }
  if (!ACCEPTED_FORMATS.has(metadata.format)) {
    throw new ImageInputError(`not a PNG or JPEG image: '${metadata.format}' images are not accepted`);
  }
  const { width, height } = metadata.autoOrient;
  if (!(width > 0 && height > 0)) throw new ImageInputError(`the image has zero size: ${width} x ${height}`);
  if (width * height > maxPixels) {
    throw new ImageInputError(
      `the image is too large: ${width} x ${height} = ${width * height} pixels, more than the limit of ${maxPixels}`,
    );
  }
  return { width, height };
}

function decodeError(error: unknown, maxPixels: number): ImageInputError {
  const reason = error instanceof Error ? error.message : String(error);
  const message = /pixel limit/i.test(reason)
    ? `the image is too large: more than the limit of ${maxPixels} pixels`
    : `not a PNG or JPEG image: ${reason}`;
  return new ImageInputError(message, { cause: error });
}

/**
 * Composites RGBA onto a matte and returns luminance. An opaque or mostly opaque border means the
 * background is in the pixels, and transparency is shown on white as a browser would. A transparent
 * border means the background IS the transparency (a canvas export), so the strokes are the opaque
 * pixels whatever their colour: the matte is white behind dark strokes and black behind light ones.
 */
function flattenToGray(rgba: Uint8Array, width: number, height: number): Gray {
  const count = width * height;
  const luma = new Float32Array(count);
  const alpha = new Uint8Array(count);
  let weighted = 0;
  let alphaSum = 0;
  for (let i = 0; i < count; i++) {
    const l = 0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!;
    const a = rgba[4 * i + 3]!;
    luma[i] = l;
    alpha[i] = a;
    weighted += l * a;
    alphaSum += a;
  }
  const transparentBorder = median(histogram(ringValues({ data: alpha, width, height }))) < 128;
  const matte = transparentBorder && alphaSum > 0 && weighted / alphaSum >= 128 ? 0 : 255;
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const a = alpha[i]! / 255;
    data[i] = clampByte(luma[i]! * a + matte * (1 - a));
  }
  return { data, width, height };
}

/**
 * Ink as MNIST has it: high on a zero background, scaled so the ink's core is 1.
 * The background level is the median of the outer ring; the ink is on whichever side of it the
 * image's mean leans, which also gets light-on-light chalk or dark-on-dark photos right, unlike a
 * fixed "border brighter than mid-gray" rule.
 */
function inkLevels(gray: Gray): { levels: Float32Array; inverted: boolean } {
  const border = histogram(ringValues(gray));
  const rawBackground = median(border);
  const inverted = mean(gray.data) < rawBackground;
  const ink = inverted ? invert(gray.data) : gray.data;
  const background = inverted ? 255 - rawBackground : rawBackground;
  // 1.4826 * MAD estimates a gaussian's sigma while ignoring ink that touches the border.
  const noise = 1.4826 * medianAbsoluteDeviation(border, rawBackground);
  const floor = background + Math.max(NOISE_SIGMAS * noise, MIN_STEP);
  const peak = inkPeak(ink, floor);
  if (peak === undefined) {
    throw new ImageInputError(
      `the image has no ink: every pixel is within ${Math.ceil(floor - background)} gray levels of the background`,
    );
  }
  const contrast = peak - background;
  if (contrast < MIN_CONTRAST) {
    throw new ImageInputError(
      `the image has no ink: its strongest marks differ from the background by ${contrast} of 255, ` +
        `less than ${MIN_CONTRAST}`,
    );
  }
  const threshold = Math.max(floor, background + INK_FRACTION * contrast);
  const levels = new Float32Array(ink.length);
  for (let i = 0; i < ink.length; i++) {
    const v = ink[i]!;
    if (v > threshold) levels[i] = Math.min(1, (v - background) / contrast);
  }
  return { levels, inverted };
}

function invert(values: Uint8Array): Uint8Array {
  const inverted = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) inverted[i] = 255 - values[i]!;
  return inverted;
}

/** The 99th percentile of the pixels above the noise floor: the ink's core, ignoring a few hot pixels. */
function inkPeak(ink: Uint8Array, floor: number): number | undefined {
  const counts = new Array<number>(256).fill(0);
  let total = 0;
  for (let i = 0; i < ink.length; i++) {
    const v = ink[i]!;
    if (v > floor) {
      counts[v]!++;
      total++;
    }
  }
  return total === 0 ? undefined : percentile(counts, total, 0.99);
}

/** The bounding box of the ink after noise specks (small connected blobs) are erased from `levels`. */
function inkBox(levels: Float32Array, width: number, height: number): Box {
  const { labels, masses } = connectedComponents(levels, width, height);
  const largest = masses.reduce((a, b) => Math.max(a, b), 0);
  const keep = masses.map((m) => m >= SPECK_FRACTION * largest);
  let left = width;
  let top = height;
  let right = -1;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const label = labels[i]!;
      if (label === 0) continue;
      if (!keep[label - 1]) {
        levels[i] = 0;
        continue;
      }
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
  }
  if (right < 0) throw new ImageInputError('the image has no ink: nothing stands out from the background');
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/** 8-connected labelling of the non-zero pixels; label k (from 1) has mass `masses[k - 1]`. */
function connectedComponents(levels: Float32Array, width: number, height: number) {
  const labels = new Int32Array(levels.length);
  const masses: number[] = [];
  const stack = new Int32Array(levels.length);
  for (let start = 0; start < levels.length; start++) {
    if (levels[start] === 0 || labels[start] !== 0) continue;
    const label = masses.length + 1;
    let mass = 0;
    let size = 0;
    stack[size++] = start;
    labels[start] = label;
    while (size > 0) {
      const i = stack[--size]!;
      mass += levels[i]!;
      const x = i % width;
      const y = (i - x) / width;
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const n = ny * width + nx;
          if (levels[n] !== 0 && labels[n] === 0) {
            labels[n] = label;
            stack[size++] = n;
          }
        }
      }
    }
    masses.push(mass);
  }
  return { labels, masses };
}

/** Crops the box and scales it to fit 20x20 keeping its aspect ratio (enlarging small ones, as MNIST did). */
async function fitIntoDigitBox(levels: Float32Array, width: number, box: Box): Promise<Gray> {
  const crop = new Uint8Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) {
      crop[y * box.width + x] = clampByte(levels[(box.top + y) * width + box.left + x]! * 255);
    }
  }
  const { data, info } = await sharp(crop, { raw: { width: box.width, height: box.height, channels: 1 } })
    .resize(DIGIT_BOX, DIGIT_BOX, { fit: 'inside', kernel: RESIZE_KERNEL })
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new Error(`expected one channel from sharp, got ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

/**
 * Places the digit in a black 28x28 so its centre of mass lands on (14, 14), shifted by whole pixels
 * and clamped so nothing is cut off, then stretches it so its brightest pixel is 1: every MNIST digit
 * peaks at 254 or 255, while a thin canvas stroke shrunk to 20 px would not.
 */
function centreByMass(digit: Gray): Float32Array {
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  let peak = 0;
  for (let y = 0; y < digit.height; y++) {
    for (let x = 0; x < digit.width; x++) {
      const v = digit.data[y * digit.width + x]!;
      mass += v;
      sumX += x * v;
      sumY += y * v;
      peak = Math.max(peak, v);
    }
  }
  if (mass === 0) {
    throw new ImageInputError(
      `the image has no ink: its marks are too faint to show at ${IMAGE_SIDE} x ${IMAGE_SIDE}`,
    );
  }
  const left = clamp(Math.round(CENTRE - sumX / mass), 0, IMAGE_SIDE - digit.width);
  const top = clamp(Math.round(CENTRE - sumY / mass), 0, IMAGE_SIDE - digit.height);
  const pixels = new Float32Array(IMAGE_PIXELS);
  for (let y = 0; y < digit.height; y++) {
    for (let x = 0; x < digit.width; x++) {
      pixels[(top + y) * IMAGE_SIDE + left + x] = digit.data[y * digit.width + x]! / peak;
    }
  }
  return pixels;
}

/** The outermost 2 px (1 px on images under 16 px), where the background is. */
function ringValues(image: Gray): Uint8Array {
  const { data, width, height } = image;
  const ring = Math.min(width, height) >= 16 ? 2 : 1;
  const values: number[] = [];
  for (let y = 0; y < height; y++) {
    const edgeRow = y < ring || y >= height - ring;
    for (let x = 0; x < width; x++) {
      if (edgeRow || x < ring || x >= width - ring) values.push(data[y * width + x]!);
    }
  }
  return Uint8Array.from(values);
}

// Indexed loops over pixels, not for...of: on Node 20 that iterator is several times slower on a
// typed array, and these run on the event loop.
function histogram(values: Uint8Array): number[] {
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < values.length; i++) counts[values[i]!]!++;
  return counts;
}

function median(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  return percentile(counts, total, 0.5);
}

function percentile(counts: number[], total: number, fraction: number): number {
  let seen = 0;
  for (let v = 0; v < counts.length; v++) {
    seen += counts[v]!;
    if (seen > fraction * (total - 1)) return v;
  }
  return counts.length - 1;
}

function medianAbsoluteDeviation(counts: number[], centre: number): number {
  const deviations = new Array<number>(256).fill(0);
  counts.forEach((count, v) => (deviations[Math.abs(v - centre)]! += count));
  return median(deviations);
}

function mean(values: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function clampByte(value: number): number {
  return clamp(Math.round(value), 0, 255);
}
