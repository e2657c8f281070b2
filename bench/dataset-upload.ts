/**
 * Dataset upload speed (issue 15): a zip of MNIST's training images as PNGs, one folder per class,
 * streamed into DatasetStore.ingest from a file as a client's body would be (received, every entry
 * checked, every image through the MNIST-style preprocessing of /predict, split, stored). Against
 * two same-run floors over the same PNGs at the same concurrency: sharp decoding them to raw
 * pixels, and the preprocessing (imageToMnist) alone. Prints JSON.
 *
 *   npm run bench:datasets -- [--images 60000]
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DECODE_CONCURRENCY, forEachBounded } from '../src/datasets/bounded-loop.js';
import { FileDatasetStore } from '../src/datasets/file-dataset-store.js';
import { loadDataset } from '../src/ml/data/dataset.js';
import { imageToMnist, mnistImageToPng } from '../src/ml/image-preprocess.js';
import { IMAGE_PIXELS } from '../src/ml/image-shape.js';
import { zipArchive } from '../test/helpers/zip-archive.js';
import { printReport } from './report.js';

const { values: args } = parseArgs({ options: { images: { type: 'string', default: '60000' } } });
const count = Number(args.images);

const { train } = await loadDataset('mnist', { validationSize: 0 });
if (!(Number.isInteger(count) && count > 0 && count <= train.count)) {
  throw new RangeError(`--images must be 1 to ${train.count}, got ${args.images}`);
}
const dir = await mkdtemp(join(tmpdir(), 'bench-datasets-'));
try {
  const pngs: Buffer[] = new Array(count);
  await forEachBounded(count, 8, async (i) => {
    pngs[i] = await mnistImageToPng(train.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS));
  });
  // Stored entries, as zip tools leave PNGs (they do not deflate further).
  const zip = zipArchive(
    pngs.map((data, i) => ({ name: `mnist/${train.labels[i]}/${i}.png`, data, method: 'store' as const })),
  );
  const zipFile = join(dir, 'mnist-png.zip');
  await writeFile(zipFile, zip);

  const timed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return (performance.now() - started) / 1000;
  };
  const decodeSeconds = await timed(() =>
    forEachBounded(count, DECODE_CONCURRENCY, async (i) => {
      await sharp(pngs[i]!).raw().toBuffer();
    }),
  );
  const preprocessSeconds = await timed(() =>
    forEachBounded(count, DECODE_CONCURRENCY, async (i) => {
      await imageToMnist(pngs[i]!);
    }),
  );
  const store = new FileDatasetStore(join(dir, 'datasets'));
  const limits = { maxBytes: 2 ** 30, maxUncompressedBytes: 2 ** 31, maxFiles: 200_000, maxClasses: 100 };
  let record;
  const ingestSeconds = await timed(async () => {
    record = await store.ingest(
      createReadStream(zipFile),
      { name: 'MNIST as PNGs', contentType: 'application/zip', declaredBytes: zip.length },
      limits,
    );
  });
  const rate = (seconds: number) => Math.round(count / seconds);
  printReport('dataset-upload', {
    images: count,
    zipBytes: (await stat(zipFile)).size,
    decodeConcurrency: DECODE_CONCURRENCY,
    stored: record,
    ingest: { seconds: ingestSeconds, imagesPerSecond: rate(ingestSeconds) },
    sharpDecodeOnly: { seconds: decodeSeconds, imagesPerSecond: rate(decodeSeconds) },
    preprocessOnly: { seconds: preprocessSeconds, imagesPerSecond: rate(preprocessSeconds) },
    ingestOverSharpDecode: Number((decodeSeconds / ingestSeconds).toFixed(3)),
    ingestOverPreprocess: Number((preprocessSeconds / ingestSeconds).toFixed(3)),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
