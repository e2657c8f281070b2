import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { deflatedZeros, zipArchive, type ZipEntrySpec } from '../helpers/zip-archive.js';
import { expectNothingStored, ingestBytes, mnistPngs, refusal, TEST_LIMITS } from './dataset-fixtures.js';

const root = useTempDir('dataset-hostile');
let store: FileDatasetStore;
let run = 0;
/** A valid two-class dataset, for the hostile entry to hide in. */
let valid: ZipEntrySpec[];

beforeAll(async () => {
  const [zeros, ones] = [await mnistPngs(0, 7), await mnistPngs(1, 7)];
  valid = [
    ...zeros.map((data, i) => ({ name: `zero/${i}.png`, data })),
    ...ones.map((data, i) => ({ name: `one/${i}.png`, data })),
  ];
});

beforeEach(() => {
  store = new FileDatasetStore(path.join(root, `store-${++run}`));
});

const MiB = 1024 * 1024;

describe('a hostile zip', () => {
  it.each([
    ['../evil.png', 'a path that climbs out of the archive with ".."'],
    ['zero/../../evil.png', 'a path that climbs out of the archive with ".."'],
    ['zero\\..\\..\\evil.png', 'a path that climbs out of the archive with ".."'],
    ['/etc/evil.png', 'an absolute path'],
    ['C:/Windows/evil.png', 'an absolute path'],
  ])('when an entry is named %j (zip-slip), then it is a 400 naming the entry', async (name, why) => {
    const error = await refusal(
      ingestBytes(store, zipArchive([...valid, { name, data: 'x' }])),
      400,
      'unsafe_archive',
    );
    expect(error.message).toBe(
      `entry ${JSON.stringify(name.replaceAll('\\', '/'))} is refused: ${why} (zip-slip)`,
    );
    await expectNothingStored(store);
  });

  it('when an entry is a symbolic link, then it is a 400 naming it', async () => {
    const link = { name: 'zero/passwd.png', data: '/etc/passwd', mode: 0o120777 };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, link])), 400, 'unsafe_archive');
    expect(error.message).toBe('entry "zero/passwd.png" is a symbolic link: links are refused');
    await expectNothingStored(store);
  });

  it('when an entry inflates more than 100 times its size (a bomb), then it is a 400 before anything is inflated', async () => {
    const bomb = { name: 'zero/bomb.png', raw: deflatedZeros(8 * MiB) };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, bomb])), 400, 'unsafe_archive');
    expect(error.message).toMatch(
      /^entry "zero\/bomb.png" would inflate [\d,]+ bytes to 8,388,608 \([\d,]+:1, more than 100:1\): refused as a zip bomb$/,
    );
    await expectNothingStored(store);
  });

  it('when the entries together would inflate past DATASET_MAX_UNCOMPRESSED_BYTES, then it is a 413', async () => {
    // Each under 1 MiB, so no ratio check applies: only the total bounds them.
    const entries = [
      ...valid,
      ...[1, 2, 3].map((i) => ({ name: `zero/pad${i}.png`, raw: deflatedZeros(MiB - 1) })),
    ];
    const limits = { ...TEST_LIMITS, maxUncompressedBytes: 2 * MiB };
    const error = await refusal(
      ingestBytes(store, zipArchive(entries), {}, limits),
      413,
      'dataset_too_large',
    );
    expect(error.message).toBe(
      'the zip\'s entries inflate to more than 2,097,152 bytes (DATASET_MAX_UNCOMPRESSED_BYTES), reached at entry "zero/pad2.png"',
    );
    await expectNothingStored(store);
  });

  it('when an entry inflates to more than the size it declares, then it is a 400 and reading stops there', async () => {
    const liar = { name: 'zero/liar.png', data: Buffer.alloc(512 * 1024, 7), declaredSize: 100 };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, liar])), 400, 'unsafe_archive');
    expect(error.message).toBe(
      'entry "zero/liar.png" inflates to more than the 100 bytes it declares: refused',
    );
    await expectNothingStored(store);
  });

  it('when an entry inflates to less than it declares, then it is a 400 for a truncated entry', async () => {
    const short = { name: 'zero/short.png', data: Buffer.alloc(1000, 7), declaredSize: 5000 };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, short])), 400, 'invalid_archive');
    expect(error.message).toMatch(/^entry "zero\/short.png" is corrupt or truncated: not enough bytes/);
  });

  it('when an entry is not valid deflate data, then it is a 400 naming it', async () => {
    const corrupt = {
      name: 'one/corrupt.png',
      raw: { compressed: Buffer.from([0xff, 0xff, 0xff, 0xff]), size: 100, crc: 0 },
    };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, corrupt])), 400, 'invalid_archive');
    expect(error.message).toMatch(/^entry "one\/corrupt.png" is corrupt or truncated: /);
  });

  it('when it has more entries than DATASET_MAX_FILES, then it is a 413 before any entry is read', async () => {
    const limits = { ...TEST_LIMITS, maxFiles: 10 };
    const error = await refusal(ingestBytes(store, zipArchive(valid), {}, limits), 413, 'dataset_too_large');
    expect(error.message).toBe('the zip holds 14 entries, more than the limit of 10 (DATASET_MAX_FILES)');
    // The count is the one the zip declares, checked before its directory is read.
    const lying = zipArchive(valid.slice(0, 2), { declaredEntryCount: 60_000 });
    const lie = await refusal(ingestBytes(store, lying, {}, limits), 413, 'dataset_too_large');
    expect(lie.message).toMatch(/^the zip holds 60,000 entries/);
    await expectNothingStored(store);
  });

  it.each([
    ['no zip at all', () => Buffer.from('just some text, not a zip')],
    ['an empty body', () => Buffer.alloc(0)],
    ['a truncated zip', () => zipArchive(valid).subarray(0, 3000)],
  ])('when the body is %s, then it is a 400 invalid_archive', async (_, body) => {
    const error = await refusal(ingestBytes(store, body()), 400, 'invalid_archive');
    expect(error.message).toMatch(/^not a zip archive, or a truncated one: /);
    await expectNothingStored(store);
  });

  it("when the zip's directory is corrupt, then it is a 400 naming the entry where it breaks", async () => {
    const zip = zipArchive(valid);
    const directory = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt32LE(0xdeadbeef, directory); // the last entry's header
    const error = await refusal(ingestBytes(store, zip), 400, 'invalid_archive');
    expect(error.message).toMatch(
      /^the zip's directory is corrupt at entry 14 of 14: invalid central directory/,
    );
  });

  it('when a stored entry declares two different sizes, then it is a 400', async () => {
    const entry = { name: 'zero/odd.png', data: 'abc', method: 'store' as const, declaredSize: 10 };
    const error = await refusal(ingestBytes(store, zipArchive([...valid, entry])), 400, 'invalid_archive');
    expect(error.message).toMatch(/compressed\/uncompressed size mismatch for stored file/);
  });

  it('when a gzipped idx file inflates past what is left of DATASET_MAX_UNCOMPRESSED_BYTES, then it is a 413', async () => {
    const gz = gzipSync(Buffer.alloc(8 * MiB));
    const entries = [
      { name: 'train-images-idx3-ubyte.gz', data: gz, method: 'store' as const },
      { name: 'train-labels-idx1-ubyte', data: 'x' },
    ];
    const limits = { ...TEST_LIMITS, maxUncompressedBytes: 2 * MiB };
    const error = await refusal(
      ingestBytes(store, zipArchive(entries), {}, limits),
      413,
      'dataset_too_large',
    );
    expect(error.message).toMatch(
      /^"train-images-idx3-ubyte.gz" gunzips to more than the 2,097,152 bytes left/,
    );
    await expectNothingStored(store);
  });
});

/** A body of `total` bytes in 1 KiB chunks, made as they are read, counting what was read. */
function countedBody(total: number) {
  const body = Object.assign(
    new Readable({
      read() {
        if (body.produced >= total) return void this.push(null);
        body.produced += 1024;
        this.push(Buffer.alloc(1024, 1));
      },
    }),
    { produced: 0 },
  );
  return body;
}

describe('an upload body', () => {
  const limits = { ...TEST_LIMITS, maxBytes: 10 * 1024 };

  it('when its Content-Length is over DATASET_MAX_BYTES, then it is a 413 before a byte is read', async () => {
    const body = countedBody(20 * 1024);
    const upload = { name: 'big', contentType: 'application/zip' as const, declaredBytes: 20 * 1024 };
    const error = await refusal(store.ingest(body, upload, limits), 413, 'dataset_too_large');
    expect(error.message).toBe(
      'the upload is 20,480 bytes, more than the limit of 10,240 (DATASET_MAX_BYTES)',
    );
    expect(body.produced).toBe(0);
    await expectNothingStored(store);
  });

  it('when it passes DATASET_MAX_BYTES as it streams, then it is a 413 and reading stops, the body left open', async () => {
    const body = countedBody(10 * 1024 * 1024);
    const error = await refusal(
      store.ingest(body, { name: 'big', contentType: 'text/csv' }, limits),
      413,
      'dataset_too_large',
    );
    expect(error.message).toBe(
      'the upload has reached 11,264 bytes, more than the limit of 10,240 (DATASET_MAX_BYTES)',
    );
    // What was read, plus at most what the stream buffers ahead (its highWaterMark: 16 KiB before
    // Node 22, 64 KiB since), was made of the 10 MiB; the route can still answer on this request.
    expect(body.produced).toBeLessThanOrEqual(11_264 + body.readableHighWaterMark);
    expect(body.destroyed).toBe(false);
    await expectNothingStored(store);
  });

  it('when the client goes away mid-body, then nothing is stored', async () => {
    const controller = new AbortController();
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent++ === 0) this.push(Buffer.alloc(1024));
        else controller.abort(new Error('client gone'));
      },
    });
    const upload = { name: 'gone', contentType: 'application/zip' as const };
    await expect(store.ingest(body, upload, TEST_LIMITS, controller.signal)).rejects.toThrow('client gone');
    await expectNothingStored(store);
  });

  it('when the body fails mid-way, then it is a 400 upload_incomplete and nothing is stored', async () => {
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent++ === 0) this.push(Buffer.alloc(1024));
        else this.destroy(new Error('socket hang up'));
      },
    });
    const error = await refusal(
      store.ingest(body, { name: 'cut', contentType: 'application/zip' }, TEST_LIMITS),
      400,
      'upload_incomplete',
    );
    expect(error.message).toBe('the upload stopped after 1,024 bytes: socket hang up');
    await expectNothingStored(store);
  });

  it.each([
    [{ name: '' }, 400, 'invalid_request', /^name: /],
    [{ name: 'a\u202eb' }, 400, 'invalid_request', /^name: letters, digits/],
    [
      { contentType: 'image/png' },
      415,
      'unsupported_media_type',
      /^Content-Type image\/png is not a dataset upload/,
    ],
    [{ classes: ['a', 'b'] }, 400, 'invalid_request', /^classes: only a CSV upload takes \?classes=/],
  ])(
    'when the upload is %j, then it is a %i before the body is read',
    async (fields, status, code, message) => {
      const body = countedBody(1024);
      const upload = { name: 'fine', contentType: 'application/zip', ...fields } as Parameters<
        FileDatasetStore['ingest']
      >[1];
      const error = await refusal(store.ingest(body, upload, TEST_LIMITS), status, code);
      expect(error.message).toMatch(message);
      expect(body.produced).toBe(0);
    },
  );
});
