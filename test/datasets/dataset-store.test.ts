import { mkdir, readdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { BuiltInDatasets } from '../../src/datasets/built-in-datasets.js';
import { DatasetCatalog } from '../../src/datasets/dataset-catalog.js';
import { DATASET_FILES } from '../../src/datasets/dataset-files.js';
import { datasetLimits } from '../../src/datasets/dataset-limits.js';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { DatasetRecordError } from '../../src/datasets/dataset-store.js';
import { parseClassesParam, parseUploadContentType } from '../../src/datasets/dataset-upload.js';
import { DomainError } from '../../src/errors.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, resolveDatasetDir } from '../../src/ml/data/dataset.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { zipArchive, type ZipEntrySpec } from '../helpers/zip-archive.js';
import { ingestBytes, mnistPngs } from './dataset-fixtures.js';

const root = useTempDir('dataset-store');
let store: FileDatasetStore;
let run = 0;
let twoClasses: Buffer;

beforeAll(async () => {
  const entries: ZipEntrySpec[] = [];
  for (const digit of [3, 6]) {
    (await mnistPngs(digit, 7)).forEach((data, i) => entries.push({ name: `d${digit}/${i}.png`, data }));
  }
  twoClasses = zipArchive(entries);
});

beforeEach(() => {
  store = new FileDatasetStore(path.join(root, `store-${++run}`));
});

describe('DatasetStore', () => {
  it('when ids are made, then dir() takes only dataset ids and get() finds nothing under other names', async () => {
    expect(store.dir('letters-3kq9x2ab')).toBe(path.join(store.root, 'letters-3kq9x2ab'));
    for (const bad of ['../etc', 'mnist', 'a/b-12345678', '', 'UPPER-12345678']) {
      expect(() => store.dir(bad), bad).toThrow(RangeError);
      expect(await store.get(bad)).toBeNull();
      expect(await store.remove(bad)).toBe(false);
    }
  });

  it('when datasets are uploaded, then list() shows them oldest first and ids follow their names', async () => {
    // Named so that, were both made in the same millisecond, the id tiebreak keeps the same order.
    const first = await ingestBytes(store, twoClasses, { name: 'Àccents écrits à la main!' });
    const second = await ingestBytes(store, twoClasses, { name: '手書き' });
    expect(first.id).toMatch(/^accents-ecrits-a-la-main-[a-z0-9]{8}$/);
    expect(second.id).toMatch(/^dataset-[a-z0-9]{8}$/);
    expect(second.name).toBe('手書き');
    expect((await store.list()).map((r) => r.id)).toEqual([first.id, second.id]);
  });

  it('when remove() is called, then the dataset is out of view before beforeDelete runs, and gone after', async () => {
    const record = await ingestBytes(store, twoClasses);
    let seenDuring: unknown = 'not called';
    expect(
      await store.remove(record.id, {
        beforeDelete: async () => {
          seenDuring = await store.get(record.id);
        },
      }),
    ).toBe(true);
    expect(seenDuring).toBeNull();
    expect(await store.get(record.id)).toBeNull();
    expect(await store.list()).toEqual([]);
    expect(await readdir(path.join(store.root, '.trash'))).toEqual([]);
    expect(await store.remove(record.id)).toBe(false);
  });

  it('when beforeDelete throws (a job uses the dataset), then it is put back whole and the error rethrown', async () => {
    const record = await ingestBytes(store, twoClasses);
    const inUse = new DomainError('in use', { status: 409, code: 'in_use' });
    await expect(
      store.remove(record.id, {
        beforeDelete: () => Promise.reject(inUse),
      }),
    ).rejects.toBe(inUse);
    expect(await store.get(record.id)).toEqual(record);
    expect((await readdir(store.dir(record.id))).sort()).toEqual(Object.values(DATASET_FILES).sort());
  });

  it('when a record is broken or names another id, then get() throws and list() leaves it out', async () => {
    const record = await ingestBytes(store, twoClasses);
    const copy = path.join(store.root, 'copied-abcdefgh');
    await rename(store.dir(record.id), copy);
    await expect(store.get('copied-abcdefgh')).rejects.toThrow(DatasetRecordError);
    await mkdir(path.join(store.root, 'broken-abcdefgh'));
    await writeFile(path.join(store.root, 'broken-abcdefgh', DATASET_FILES.record), '{ nope');
    await expect(store.get('broken-abcdefgh')).rejects.toThrow(/is not valid JSON/);
    expect(await store.list()).toEqual([]);
  });

  it('when uploads crashed, then cleanStaging() removes their staging dirs once old, and nothing younger', async () => {
    const staging = path.join(store.root, '.staging', 'crashed');
    await mkdir(staging, { recursive: true });
    await writeFile(path.join(staging, 'upload.part'), 'half');
    expect(await store.cleanStaging(60_000)).toEqual([]);
    const old = new Date(Date.now() - 120_000);
    await utimes(staging, old, old);
    expect(await store.cleanStaging(60_000)).toEqual([staging]);
    expect(await readdir(path.join(store.root, '.staging'))).toEqual([]);
  });
});

describe('built-in datasets and the catalog', () => {
  let catalog: DatasetCatalog;
  beforeEach(() => {
    catalog = new DatasetCatalog(store);
  });

  it('when MNIST is asked for, then its record has the class names and counts from its label files', async () => {
    const mnist = await catalog.get('mnist');
    expect(mnist).toMatchObject({
      id: 'mnist',
      name: 'MNIST',
      builtIn: true,
      format: 'built-in',
      classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      counts: { train: 60_000, test: 10_000 },
      createdAt: null,
    });
    expect(mnist!.counts.perClass[1]).toEqual({ class: '1', train: 6742, test: 1135 });
    const png = await catalog.samplesPng('mnist');
    expect(await sharp(png!).metadata()).toMatchObject({ width: 280, height: 280 });
  });

  it.runIf(resolveDatasetDir('fashion-mnist') === FASHION_MNIST_DIR)(
    'when Fashion-MNIST is installed, then it is listed after MNIST with its class names',
    async () => {
      const list = await catalog.list();
      expect(list.map((r) => r.id)).toEqual(['mnist', 'fashion-mnist']);
      expect(list[1]).toMatchObject({
        classes: [...FASHION_MNIST_CLASSES],
        counts: { train: 60_000, test: 10_000 },
      });
      expect(list[1]!.counts.perClass[0]).toEqual({ class: 'T-shirt/top', train: 6000, test: 1000 });
    },
  );

  it('when a built-in has no files on this machine, then it is left out and not found', async () => {
    const builtIns = new BuiltInDatasets((id) =>
      id === 'mnist' ? resolveDatasetDir('mnist') : '/nonexistent',
    );
    const partial = new DatasetCatalog(store, builtIns);
    expect((await partial.list()).map((r) => r.id)).toEqual(['mnist']);
    expect(await partial.get('fashion-mnist')).toBeNull();
    expect(await partial.samplesPng('fashion-mnist')).toBeNull();
  });

  it('when uploads exist, then they follow the built-ins, and a built-in cannot be deleted', async () => {
    const record = await catalog.ingest(
      Readable.from([twoClasses]),
      { name: 'mine', contentType: 'application/zip' },
      datasetLimits(loadConfig({})),
    );
    expect((await catalog.list()).at(-1)).toEqual(record);
    expect(await catalog.get(record.id)).toEqual(record);
    expect(await catalog.get('nonexistent-12345678')).toBeNull();
    expect(await catalog.get('../../etc/passwd')).toBeNull();
    await expect(catalog.remove('mnist')).rejects.toMatchObject({ status: 403, code: 'read_only' });
    expect(await catalog.remove(record.id)).toBe(true);
  });
});

describe('upload settings and request fields', () => {
  it('when nothing is set, then the limits have their documented defaults', () => {
    expect(datasetLimits(loadConfig({}))).toEqual({
      maxBytes: 256 * 1024 * 1024,
      maxUncompressedBytes: 1024 ** 3,
      maxFiles: 200_000,
      maxClasses: 100,
    });
    expect(() => loadConfig({ DATASET_MAX_CLASSES: '257' })).toThrow(/DATASET_MAX_CLASSES/);
    expect(() => loadConfig({ DATASET_MAX_CLASSES: '1' })).toThrow(/DATASET_MAX_CLASSES/);
  });

  it('when a Content-Type comes, then zips (any spelling) and CSVs are told apart and others are a 415', () => {
    expect(parseUploadContentType('application/zip')).toBe('application/zip');
    expect(parseUploadContentType('Application/X-Zip-Compressed')).toBe('application/zip');
    expect(parseUploadContentType('text/csv; charset=utf-8')).toBe('text/csv');
    for (const type of ['application/json', undefined, 'image/png']) {
      expect(() => parseUploadContentType(type)).toThrow(
        expect.objectContaining({ status: 415, code: 'unsupported_media_type' }),
      );
    }
    expect(parseClassesParam('zero, one ,two')).toEqual(['zero', 'one', 'two']);
  });
});
