import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_FILES } from '../../src/datasets/dataset-files.js';
import type { DatasetStore, ProcessingLine } from '../../src/datasets/dataset-store.js';
import { S3DatasetStore } from '../../src/datasets/s3-dataset-store.js';
import { DomainError } from '../../src/errors.js';
import { DatasetError, loadDataset } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import { sameBytes } from '../helpers/idx-files.js';
import { STORE_KINDS, useStoreBackend, type StoreSpace } from '../helpers/store-backends.js';
import { zipArchive } from '../helpers/zip-archive.js';
import { ingestBytes, mnistDigits, mnistPngs, refusal, TEST_LIMITS } from './dataset-fixtures.js';

/** Seven MNIST digits each of 3 and 6, as a zip of class folders. */
let twoClasses: Buffer;
/** Seven real digits each of 2, 4 and 9 as a CSV, and the digits with their labels. */
let csv: string;
let csvDigits: { pixels: Uint8Array; label: number }[];

beforeAll(async () => {
  const pngs = [...(await mnistPngs(3, 7)), ...(await mnistPngs(6, 7))];
  twoClasses = zipArchive(pngs.map((data, i) => ({ name: `${i < 7 ? 'd3' : 'd6'}/${i}.png`, data })));
  csvDigits = [];
  for (const label of [2, 4, 9])
    for (const pixels of await mnistDigits(label, 7)) csvDigits.push({ pixels, label });
  const header = ['label', ...Array.from({ length: IMAGE_PIXELS }, (_, i) => `pixel${i}`)].join(',');
  csv = [header, ...csvDigits.map((d) => [d.label, ...d.pixels].join(','))].join('\n') + '\n';
});

/** An S3Objects that calls `afterUpload` once each upload is done: a hook to act mid-ingest. */
class HookedObjects extends S3Objects {
  afterUpload: (name: string) => void = () => undefined;
  override async upload(name: string, file: string): Promise<void> {
    await super.upload(name, file);
    this.afterUpload(name);
  }
}

/** The DatasetStore promises (src/datasets/dataset-store.ts), kept alike by every backend. */
describe.each(STORE_KINDS)('datasets on the %s store', (kind) => {
  const backend = useStoreBackend(kind, 'dataset-contract');
  let space: StoreSpace;
  let store: DatasetStore;

  beforeEach(() => {
    space = backend.space();
    store = space.stores.datasets;
  });

  /** Nothing visible, nothing stored out of view, nothing left locally: what a failed upload leaves. */
  async function expectNothingStored(): Promise<void> {
    expect(await store.list()).toEqual([]);
    expect(await space.stored('datasets/')).toEqual([]);
    expect(await space.local()).toEqual([]);
  }

  /**
   * What a job on `id` would get: no root (S3 checks), or a root the loader refuses (the directory
   * store hands out its root unchecked). Either way nothing trains.
   */
  async function expectNotTrainable(id: string): Promise<void> {
    const root = await store.trainingRoot(id);
    if (root !== null) await expect(loadDataset(id, { uploadedRoot: root })).rejects.toThrow(DatasetError);
  }

  /** The dataset as training reads it, after checking its local files are the stored ones. */
  async function trained(id: string) {
    const root = await store.trainingRoot(id);
    expect(root).not.toBeNull();
    for (const file of Object.values(DATASET_FILES)) {
      const local = await readFile(path.join(root!, id, file));
      expect(local.equals(await space.read(`datasets/${id}/${file}`)), file).toBe(true);
    }
    return loadDataset(id, { uploadedRoot: root!, validationSize: 0 });
  }

  it('when a zip of class folders is uploaded, then it is listed, found, has its samples grid, and training reads it', async () => {
    const record = await ingestBytes(store, twoClasses, { name: 'Threes and sixes' });
    expect(record).toMatchObject({ name: 'Threes and sixes', format: 'folders', classes: ['d3', 'd6'] });
    expect(await store.list()).toEqual([record]);
    expect(await store.get(record.id)).toEqual(record);
    const png = await store.samplesPng(record.id);
    expect(await sharp(png!).metadata()).toMatchObject({ format: 'png' });
    const data = await trained(record.id);
    expect(data.classes).toEqual(['d3', 'd6']);
    expect([data.train.count, data.test.count]).toEqual([record.counts.train, record.counts.test]);
    // Asked again (another job on it): the same files, where the store keeps them for training.
    expect(await store.trainingRoot(record.id)).toBe(space.localRoot);
    expect(await space.local()).toEqual([]);
  });

  it('when a CSV is uploaded, then training reads back exactly its digits, each with its label', async () => {
    const record = await ingestBytes(store, csv, { name: 'csv digits', contentType: 'text/csv' });
    const data = await trained(record.id);
    expect(data.classes).toEqual(['2', '4', '9']);
    const seen = new Set<number>();
    for (const set of [data.train, data.test]) {
      for (let i = 0; i < set.count; i++) {
        const pixels = set.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);
        const from = csvDigits.findIndex((d, j) => !seen.has(j) && sameBytes(d.pixels, pixels));
        expect(from, `image ${i}`).toBeGreaterThanOrEqual(0);
        expect(data.classes[set.labels[i]!]).toBe(String(csvDigits[from]!.label));
        seen.add(from);
      }
    }
    expect(seen.size).toBe(csvDigits.length);
  });

  it.each([
    ['a body that is no zip', () => Buffer.from('no zip at all'), TEST_LIMITS, 400, 'invalid_archive'],
    [
      'a zip over DATASET_MAX_BYTES',
      () => twoClasses,
      { ...TEST_LIMITS, maxBytes: 2048 },
      413,
      'dataset_too_large',
    ],
  ])(
    'when the upload is %s, then it is refused and nothing is stored or staged',
    async (_what, body, limits, status, code) => {
      await refusal(ingestBytes(store, body(), {}, limits), status, code);
      await expectNothingStored();
    },
  );

  it('when the client goes away while its upload waits its turn, then nothing is stored or staged', async () => {
    const controller = new AbortController();
    const inLine: ProcessingLine = (work) => {
      controller.abort(new Error('client gone'));
      return work();
    };
    await expect(ingestBytes(store, twoClasses, {}, TEST_LIMITS, controller.signal, inLine)).rejects.toThrow(
      'client gone',
    );
    await expectNothingStored();
  });

  it.runIf(kind === 's3')(
    'when the client goes away while the files are being uploaded, then what was uploaded is deleted',
    async () => {
      const { objects, cacheDir } = space.s3!;
      const hooked = new HookedObjects(objects.client, objects.bucket, objects.prefix);
      const uploading = new S3DatasetStore(hooked, cacheDir);
      const controller = new AbortController();
      const uploaded: string[] = [];
      hooked.afterUpload = (name) => {
        uploaded.push(name);
        controller.abort(new Error('client gone'));
      };
      await expect(ingestBytes(uploading, twoClasses, {}, TEST_LIMITS, controller.signal)).rejects.toThrow(
        'client gone',
      );
      expect(uploaded.length).toBeGreaterThan(0);
      await expectNothingStored();
    },
  );

  it('when a dataset is removed, then it is out of view (and untrainable) before beforeDelete runs, and gone after', async () => {
    const record = await ingestBytes(store, twoClasses);
    await trained(record.id); // a local copy for training exists, where the backend keeps one
    const during: unknown[] = [];
    const removed = await store.remove(record.id, {
      beforeDelete: async () => {
        during.push(await store.get(record.id), await store.list(), await store.samplesPng(record.id));
        await expectNotTrainable(record.id);
      },
    });
    expect(removed).toBe(true);
    expect(during).toEqual([null, [], null]);
    expect(await store.get(record.id)).toBeNull();
    expect(await space.stored('datasets/')).toEqual([]);
    await expectNotTrainable(record.id);
    expect(await store.remove(record.id)).toBe(false);
  });

  it('when beforeDelete throws (a job uses the dataset), then it is put back whole and the error rethrown', async () => {
    const record = await ingestBytes(store, twoClasses);
    const inUse = new DomainError('in use', { status: 409, code: 'in_use' });
    await expect(store.remove(record.id, { beforeDelete: () => Promise.reject(inUse) })).rejects.toBe(inUse);
    expect(await store.get(record.id)).toEqual(record);
    expect(await store.list()).toEqual([record]);
    const files = (await space.stored(`datasets/${record.id}/`)).map((name) => path.basename(name));
    expect(files.sort()).toEqual(Object.values(DATASET_FILES).sort());
    expect((await trained(record.id)).classes).toEqual(['d3', 'd6']);
  });

  it('when an id names no dataset, then nothing is found, removed or trained', async () => {
    for (const id of ['missing-12345678', '../etc', 'mnist', 'a/b-12345678', '']) {
      expect(await store.get(id), id).toBeNull();
      expect(await store.samplesPng(id), id).toBeNull();
      expect(await store.remove(id), id).toBe(false);
    }
    await expectNotTrainable('missing-12345678');
  });

  /**
   * Leaves what an upload that crashed midway leaves on this backend, marked by `mark`, and returns
   * how to make it look old.
   */
  async function crashedUpload(mark: string): Promise<() => Promise<void>> {
    const old = new Date(Date.now() - 120_000);
    if (kind === 'directory') {
      await space.write(`datasets/.staging/${mark}/upload.part`, 'half');
      return () => space.age(`datasets/.staging/${mark}`, old);
    }
    const staging = path.join(space.s3!.cacheDir, '.staging', mark);
    await mkdir(staging, { recursive: true });
    await writeFile(path.join(staging, 'upload.part'), 'half');
    const object = `datasets/${mark}-abcdefgh/${DATASET_FILES.trainImages}`;
    await space.write(object, 'uploaded before the crash');
    return async () => {
      await utimes(staging, old, old);
      await space.age(object, old);
    };
  }

  it('when uploads crashed, then cleanStaging() removes what they left once old, and nothing younger or visible', async () => {
    const record = await ingestBytes(store, twoClasses);
    const ageOld = await crashedUpload('old');
    await crashedUpload('young');
    const before = { local: await space.local(), stored: await space.stored('datasets/') };
    expect(await store.cleanStaging(60_000)).toEqual([]);
    await ageOld();
    // Visible datasets are never leftovers, however old.
    for (const name of await space.stored(`datasets/${record.id}/`)) await space.age(name, new Date(0));
    const removed = await store.cleanStaging(60_000);
    expect(removed.length).toBe(kind === 's3' ? 2 : 1);
    for (const what of removed) expect(what).toMatch(/old/);
    const notOld = (name: string) => !name.includes('old');
    expect(await space.local()).toEqual(before.local.filter(notOld));
    expect(await space.stored('datasets/')).toEqual(before.stored.filter(notOld));
    expect(await store.list()).toEqual([record]);
  });
});
