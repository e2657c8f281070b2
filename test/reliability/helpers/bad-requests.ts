import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { routes, type RouteRequest } from '../../helpers/route-requests.js';
import { deflatedZeros, zipArchive } from '../../helpers/zip-archive.js';

/**
 * Malformed requests for every route, generated from a seeded random source so a run can be
 * repeated, each made by its route's function (test/helpers/route-requests.ts). Each is sent as
 * bytes over a raw socket, so it can be what a well-behaved client cannot send, and must get an
 * answer below 500.
 */

export interface BadRequest extends RouteRequest {
  category: string;
  /** Bytes written to a raw socket instead: malformed HTTP itself. */
  raw?: Buffer;
}

export type Random = () => number;

/** DATASET_MAX_BYTES of the API under the flood (01-bad-input.scenario.ts sets it), small to be cheap. */
export const DATASET_MAX_BYTES = 1024 * 1024;

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (random: Random, max: number) => Math.floor(random() * max);

/** Images that are broken, hostile or huge, made once. */
export interface ImageFixtures {
  truncatedPng: Buffer;
  garbageAfterPngSignature: Buffer;
  truncatedJpeg: Buffer;
  /** A PNG whose header claims 100,000 x 100,000 pixels (a decompression bomb). */
  bombPng: Buffer;
  /** A real 5,000 x 5,000 PNG: over the 4096 x 4096 pixel limit. */
  overLimitPng: Buffer;
  /** A real 4,000 x 4,000 PNG with a stroke in it: under the limit, expensive to read. */
  giantPng: Buffer;
  blankPng: Buffer;
  /** A 28x28 digit: good content for archives that are bad otherwise. */
  smallDigitPng: Buffer;
  /** Archives hostile to the dataset upload, each a 400 or 413 (test/helpers/zip-archive.ts). */
  hostileZips: Buffer[];
  gif: Buffer;
  svg: Buffer;
}

export async function makeImageFixtures(): Promise<ImageFixtures> {
  const digit = await sharp({ create: { width: 280, height: 280, channels: 3, background: 'white' } })
    .composite([
      {
        input: await sharp({ create: { width: 40, height: 200, channels: 3, background: 'black' } })
          .png()
          .toBuffer(),
        left: 120,
        top: 40,
      },
    ])
    .png()
    .toBuffer();
  const jpeg = await sharp(digit).jpeg().toBuffer();
  const giantPng = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: 'white' } })
    .composite([{ input: await sharp(digit).resize(2000, 2000).toBuffer(), left: 1000, top: 1000 }])
    .png({ compressionLevel: 9 })
    .toBuffer();
  const overLimitPng = await sharp({
    create: { width: 5000, height: 5000, channels: 3, background: 'white' },
  })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const blankPng = await sharp({ create: { width: 28, height: 28, channels: 3, background: 'black' } })
    .png()
    .toBuffer();
  const gif = await sharp(digit).gif().toBuffer();
  const smallDigitPng = await sharp(digit).resize(28, 28).png().toBuffer();
  return {
    smallDigitPng,
    hostileZips: hostileZips(smallDigitPng),
    truncatedPng: digit.subarray(0, Math.floor(digit.length / 2)),
    garbageAfterPngSignature: Buffer.concat([digit.subarray(0, 8), Buffer.alloc(500, 0xab)]),
    truncatedJpeg: jpeg.subarray(0, Math.floor(jpeg.length / 3)),
    bombPng: pngWithHeader(100_000, 100_000),
    overLimitPng,
    giantPng,
    blankPng,
    gif,
    svg: Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><rect width="10" height="10"/></svg>',
    ),
  };
}

/** Zip-slip, absolute paths, symlinks, a bomb, sizes that lie, broken and one-class archives. */
function hostileZips(png: Buffer): Buffer[] {
  const good = { name: 'B/1.png', data: png };
  const valid = zipArchive([
    { name: 'A/1.png', data: png },
    good,
    { name: 'A/2.png', data: png },
    { name: 'B/2.png', data: png },
  ]);
  return [
    zipArchive([{ name: '../../etc/evil.png', data: png }, good]),
    zipArchive([{ name: '/etc/evil.png', data: png }, good]),
    zipArchive([{ name: 'A\\..\\..\\evil.png', data: png }, good]),
    zipArchive([{ name: 'A/link.png', data: '/etc/passwd', mode: 0o120777 }, good]),
    zipArchive([{ name: 'A/bomb.png', raw: deflatedZeros(64 * 1024 * 1024) }, good]),
    zipArchive([{ name: 'A/1.png', data: png, declaredSize: 10 }, good]),
    zipArchive([
      { name: 'A/1.png', data: png },
      { name: 'A/2.png', data: png },
    ]),
    zipArchive([
      { name: '.DS_Store', data: 'x' },
      { name: '__MACOSX/A/1.png', data: png },
    ]),
    zipArchive([
      { name: 'A/1.png', data: 'not a png' },
      { name: 'B/1.png', data: 'nor this' },
    ]),
    zipArchive([{ name: 'A/1.png', data: png }, good], { declaredEntryCount: 60_000 }),
    valid.subarray(0, Math.floor(valid.length / 2)),
    Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(200, 0xee)]),
    Buffer.alloc(0),
  ];
}

/** A valid PNG signature and IHDR claiming width x height, with a tiny IDAT: decoding it would be enormous. */
function pngWithHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), data])), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const JSON_TYPE = 'application/json';
const JSON_HEADERS: Record<string, string> = { 'content-type': JSON_TYPE };

/** Random JSON of any shape, up to `depth` deep. */
function randomJson(random: Random, depth = 3): unknown {
  const r = random();
  if (depth <= 0 || r < 0.3) return pick(random, scalars);
  if (r < 0.65) return Array.from({ length: int(random, 6) }, () => randomJson(random, depth - 1));
  return Object.fromEntries(
    Array.from({ length: int(random, 6) }, () => [
      pick(random, [...fieldNames, 'x', '__proto__', 'constructor', '']),
      randomJson(random, depth - 1),
    ]),
  );
}

const scalars: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0,
  1e308,
  -1e308,
  5e-324,
  2 ** 53 + 1,
  Number.MAX_SAFE_INTEGER,
  -(2 ** 31),
  '',
  ' ',
  'ten',
  '1',
  '1e3',
  'NaN',
  'Infinity',
  '\u0000',
  '\ud800',
  '💥'.repeat(50),
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  'mnist',
  'fashion-mnist',
  '/etc',
  '/proc/self',
  'data:image/png;base64,AAAA',
  {},
  [],
];

const fieldNames = [
  'architecture',
  'dataset',
  'epochs',
  'batchSize',
  'learningRate',
  'optimizer',
  'seed',
  'trainSize',
  'augment',
  'validationSize',
  'image',
  'images',
  'scale',
  'version',
];

const hugeNumberTexts = [
  '1e999',
  '-1e999',
  '1' + '0'.repeat(400),
  '0.' + '0'.repeat(400) + '1',
  '123456789'.repeat(50),
];

const traversals = [
  '..',
  '../..',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..%5c..%5cwindows',
  '%2Fetc%2Fpasswd',
  '....//....//etc',
  '.staging',
  '.claims',
  '.trash',
  '1%00',
  '1%2F..%2F2',
  '%00',
  '%FF%FE',
  '%C0%AE%C0%AE%2F',
  '-1',
  '0',
  '1e3',
  '0x10',
  '1.5',
  '01',
  '9'.repeat(30),
  'NaN',
  'Infinity',
  'a'.repeat(300),
  '1 OR 1=1',
  '%20',
  'PRODUCTION',
  'latest',
  '*',
];

/** Labels outside the classes of any version the scenarios train (digits), or not labels at all. */
const badLabels: unknown[] = [
  -1,
  10,
  256,
  1.5,
  1e308,
  'eleven',
  '10',
  '',
  ' 1',
  null,
  true,
  [],
  {},
  [1],
  'x'.repeat(100),
  '../../etc/passwd',
  '\u0000',
];

/** Invalid UTF-8: lone continuation bytes, overlong encodings, surrogates, truncated sequences. */
const badUtf8 = [
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0x80, 0x80, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

export interface Routes {
  jobId: string;
  version: number;
}

type Generator = (random: Random, known: Routes, images: ImageFixtures) => BadRequest;

/** A JSON body whose one string field holds invalid UTF-8. */
const invalidUtf8 = (random: Random, field: string) =>
  Buffer.concat([Buffer.from(`{"${field}": "`), pick(random, badUtf8), Buffer.from('"}')]);

const mutateParams = (random: Random): Record<string, unknown> => {
  const params: Record<string, unknown> = {};
  for (let i = 0; i < 1 + int(random, 4); i++) params[pick(random, fieldNames)] = randomJson(random, 2);
  return params;
};

/** Each generator is one kind of bad input; the suite cycles through them all. */
export const generators: Record<string, Generator> = {
  'jobs: random JSON body': (random) => ({
    category: 'random JSON',
    ...routes.postJob(json(randomJson(random, 4))),
  }),
  'jobs: wrong types and unknown fields': (random) => ({
    category: 'wrong types',
    ...routes.postJob(json(mutateParams(random))),
  }),
  'jobs: huge numbers': (random) => ({
    category: 'huge numbers',
    ...routes.postJob(`{"${pick(random, fieldNames.slice(0, 10))}": ${pick(random, hugeNumberTexts)}}`),
  }),
  'jobs: deep nesting': (random) => {
    const depth = pick(random, [1_000, 10_000, 100_000, 400_000]);
    return {
      category: 'deep nesting',
      ...routes.postJob(`{"epochs": ${'['.repeat(depth)}${']'.repeat(depth)}}`),
    };
  },
  'jobs: long strings': (random) => {
    const key = random() < 0.5 ? 'k'.repeat(300 + int(random, 5000)) : 'ok';
    return {
      category: 'long strings',
      ...routes.postJob(json({ [pick(random, fieldNames)]: 'x'.repeat(int(random, 900_000)) }), JSON_TYPE, {
        'idempotency-key': key,
      }),
    };
  },
  'jobs: oversized body': (random) => ({
    category: 'oversized body',
    ...routes.postJob(json({ epochs: 1, pad: 'x'.repeat(1024 * 1024 + int(random, 1024 * 1024)) })),
  }),
  'jobs: wrong content type': (random) => {
    const type = pick(random, [
      'text/plain',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'image/png',
      'application/json; charset=utf-16',
      'application/octet-stream',
      'application/jsonx',
      '',
      ';;;',
    ]);
    return {
      category: 'wrong content types',
      ...routes.postJob(
        pick(random, ['{"epochs": 2}', 'epochs=2', '<epochs>2</epochs>', '\u0000\u0001']),
        type,
      ),
    };
  },
  'jobs: invalid UTF-8': (random) => ({
    category: 'invalid UTF-8',
    ...routes.postJob(invalidUtf8(random, 'dataset')),
  }),
  'jobs: broken JSON': (random) => ({
    category: 'random JSON',
    ...routes.postJob(
      pick(random, [
        '{',
        '{"epochs": 2',
        '[1,2',
        '{"a":}',
        'null',
        '"string"',
        '1',
        '',
        '{"epochs": NaN}',
        '\ufeff{}',
      ]),
    ),
  }),
  'jobs: list with bad query': (random) => ({
    category: 'wrong types',
    ...routes.listJobs(
      pick(random, [
        'state=foo',
        'limit=-1',
        'limit=1e99',
        'offset=-5',
        'offset=99999999999999999999',
        'limit=abc',
        'limit=1&limit=2',
        'state[]=completed',
        'state=%FF',
        '__proto__[x]=1',
        `limit=${'9'.repeat(400)}`,
      ]),
    ),
  }),
  'jobs/:id: traversal and junk ids': (random) => ({
    category: 'path traversal',
    ...routes.job(pick(random, ['GET', 'DELETE']), pick(random, traversals)),
  }),
  'jobs/:id/events: junk ids': (random) => ({
    category: 'path traversal',
    ...routes.jobEvents(pick(random, traversals)),
  }),
  'jobs/:id: unknown but well-formed id': (random) => ({
    category: 'path traversal',
    ...routes.job(pick(random, ['GET', 'DELETE']), pick(random, ['nope', 'k-0000', 'A'.repeat(128), '1'])),
  }),
  'models/:version: traversal and junk versions': (random) => ({
    category: 'path traversal',
    ...routes.model(pick(random, ['GET', 'DELETE']), pick(random, traversals)),
  }),
  'models/aliases/:name: junk names and bodies': (random) => ({
    category: 'path traversal',
    ...routes.alias(
      pick(random, ['PUT', 'DELETE', 'GET']),
      pick(random, traversals),
      json(random() < 0.5 ? { version: randomJson(random, 1) } : randomJson(random, 3)),
    ),
  }),
  'models/aliases/:name: wrong version types': (random, known) => ({
    category: 'wrong types',
    ...routes.alias(
      'PUT',
      'staging',
      json(
        pick(random, [
          { version: String(known.version) },
          { version: known.version + 0.5 },
          { version: -known.version },
          { version: 1e308 },
          { version: 999_999 },
          { version: known.version, extra: 1 },
          {},
          [],
          null,
        ]),
      ),
    ),
  }),
  'predict: random JSON body': (random) => ({
    category: 'random JSON',
    ...routes.predict(json(random() < 0.5 ? randomJson(random, 4) : { image: randomJson(random, 3) })),
  }),
  'predict: wrong shapes and values': (random) => {
    const n = pick(random, [0, 1, 27, 28, 783, 784, 785, 10_000]);
    const value = pick(random, [-1, 1.0001, 256, 1e308, -0, 0.5, 'x', null, true, [], {}]);
    const image =
      random() < 0.5
        ? Array.from({ length: n }, () => value)
        : Array.from({ length: pick(random, [27, 28, 29]) }, () =>
            Array.from({ length: pick(random, [27, 28, 29]) }, () => value),
          );
    return {
      category: 'wrong types',
      ...routes.predict(
        json(
          pick(random, [
            { image },
            { images: [image] },
            { image, images: [image] },
            { images: [] },
            { image, scale: pick(random, ['byte', 'percent', 1, null]) },
            { images: Array.from({ length: 257 }, () => image.slice(0, 1)) },
          ]),
        ),
      ),
    };
  },
  'predict: huge numbers': (random) => ({
    category: 'huge numbers',
    ...routes.predict(
      `{"image": [${Array.from({ length: 784 }, () => pick(random, hugeNumberTexts)).join(',')}]}`,
    ),
  }),
  'predict: deep nesting': (random) => {
    const depth = pick(random, [1_000, 10_000, 100_000, 1_000_000]);
    return {
      category: 'deep nesting',
      ...routes.predict(
        random() < 0.5
          ? `{"image": ${'['.repeat(depth)}${']'.repeat(depth)}}`
          : `{"images": [${'{"a":'.repeat(depth / 10)}1${'}'.repeat(depth / 10)}]}`,
      ),
    };
  },
  'predict: long strings': (random) => ({
    category: 'long strings',
    ...routes.predict(
      json(
        pick(random, [
          { image: 'A'.repeat(int(random, 3_000_000)) },
          { image: `data:image/png;base64,${'/'.repeat(int(random, 1_000_000))}` },
          { images: Array.from({ length: 100 }, () => '!'.repeat(int(random, 20_000))) },
          { image: '💥'.repeat(int(random, 100_000)) },
        ]),
      ),
    ),
  }),
  'predict: oversized body': (random) => {
    const type = pick(random, ['application/json', 'image/png']);
    return {
      category: 'oversized body',
      ...routes.predict(Buffer.alloc(16 * 1024 * 1024 + 1 + int(random, 1024 * 1024), 0x30), type),
    };
  },
  'predict: wrong content type': (random, _known, images) => {
    const type = pick(random, [
      'image/gif',
      'image/svg+xml',
      'image/webp',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=----x',
      'image/png; charset=utf-8',
      'application/json',
    ]);
    return {
      category: 'wrong content types',
      ...routes.predict(
        pick(random, [
          images.gif,
          images.svg,
          Buffer.from('{"image": [0]}'),
          images.truncatedPng,
          Buffer.from('a=1'),
        ]),
        type,
      ),
    };
  },
  'predict: broken images': (random, _known, images) => {
    const bytes = pick(random, [
      images.truncatedPng,
      images.garbageAfterPngSignature,
      images.truncatedJpeg,
      images.bombPng,
      images.blankPng,
      images.svg,
      Buffer.alloc(0),
      Buffer.from('not an image at all'),
      Buffer.from([0xff, 0xd8, 0xff]),
    ]);
    const asJson = random() < 0.4;
    return {
      category: 'broken images',
      ...(asJson
        ? routes.predict(
            json({ images: [pick(random, ['', 'data:image/png;base64,']) + bytes.toString('base64')] }),
          )
        : routes.predict(bytes, pick(random, ['image/png', 'image/jpeg']))),
    };
  },
  'predict: giant images': (random, _known, images) => ({
    category: 'giant images',
    ...routes.predict(pick(random, [images.giantPng, images.overLimitPng, images.bombPng]), 'image/png'),
  }),
  'predict: invalid UTF-8': (random) => ({
    category: 'invalid UTF-8',
    ...routes.predict(invalidUtf8(random, 'image')),
  }),
  'predict: traversal in version': (random) => ({
    category: 'path traversal',
    ...routes.predict(
      json({ image: new Array(784).fill(0.5) }),
      JSON_TYPE,
      `version=${pick(random, traversals)}`,
    ),
  }),
  'datasets: hostile archives': (random, _known, images) => ({
    category: 'hostile archives',
    ...routes.uploadDataset(
      pick(random, images.hostileZips),
      pick(random, ['application/zip', 'application/x-zip-compressed']),
    ),
  }),
  'datasets: bad CSV': (random) => {
    const pixels = (value: string | number, count = 784) =>
      Array.from({ length: count }, () => value).join(',');
    const header = `label,${Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',')}`;
    const rows = (label: number | string, value: string | number, count?: number) =>
      Array.from({ length: 4 }, () => `${label},${pixels(value, count)}`).join('\n');
    const body = pick(random, [
      '',
      header,
      `${header}\n${rows(0, 0, 783)}`,
      `${header}\n${rows(0, 256)}\n${rows(1, 0)}`,
      `${header}\n${rows(0, -1)}\n${rows(1, 0)}`,
      `${header}\n${rows(0, 1.5)}\n${rows(1, 0)}`,
      `${header}\n${rows(0, 'abc')}\n${rows(1, 0)}`,
      `${header}\n${rows(300, 0)}\n${rows(1, 0)}`,
      `${header}\n${rows(0, 9)}`,
      `${pixels('pixel')}\n${rows(0, 9)}\n${rows(1, 9)}`,
      `${header}\n${rows(0, 9)}\n${rows(1, 9)}\n${'9,'.repeat(100_000)}`,
      '\u0000\u0001\u0002',
    ]);
    const search = pick(random, [
      'name=csv',
      'name=csv&classes=<b>,x',
      'name=csv&classes=a,a',
      'name=csv&classes=a',
      `name=csv&classes=${'x,'.repeat(300)}y`,
    ]);
    return { category: 'bad CSV', ...routes.uploadDataset(body, 'text/csv', search) };
  },
  'datasets: bad query and content types': (random, _known, images) => ({
    category: 'wrong types',
    ...routes.uploadDataset(
      pick(random, [images.smallDigitPng, Buffer.from('{"name":"x"}'), Buffer.from('a=1')]),
      pick(random, [
        'application/zip',
        'text/csv',
        'application/json',
        'text/plain',
        'image/png',
        'multipart/form-data; boundary=x',
        '',
      ]),
      pick(random, [
        '',
        'name=',
        `name=${'n'.repeat(65)}`,
        'name=%3Cscript%3E',
        'name=%00',
        'name=a&name=b',
        'name=x&classes=a,b',
        'name=%FF%FE',
        `name=${pick(random, traversals)}`,
      ]),
    ),
  }),
  'datasets: oversized body': (random) => ({
    category: 'oversized body',
    ...routes.uploadDataset(
      Buffer.alloc(DATASET_MAX_BYTES + 1 + int(random, 512 * 1024), 0x50),
      pick(random, ['application/zip', 'text/csv']),
    ),
  }),
  'datasets/:id: traversal and junk ids': (random) => {
    const id = pick(random, [...traversals, 'mnist', 'fashion-mnist', 'nope-12345678']);
    return {
      category: 'path traversal',
      ...pick(random, [routes.dataset('GET', id), routes.dataset('DELETE', id), routes.datasetSamples(id)]),
    };
  },
  'feedback: random JSON body': (random) => ({
    category: 'random JSON',
    ...routes.postFeedback(
      json(
        random() < 0.5
          ? randomJson(random, 4)
          : { image: randomJson(random, 3), label: randomJson(random, 1) },
      ),
    ),
  }),
  // Every one has a label no version's classes hold, so none can be stored, whatever its image.
  'feedback: wrong shapes, values and labels': (random) => {
    const n = pick(random, [0, 27, 28, 783, 784, 785]);
    const value = pick(random, [-1, 1.0001, 256, 0.5, 0, 'x', null, true, [], {}]);
    const image = Array.from({ length: n }, () => value);
    return {
      category: 'wrong types',
      ...routes.postFeedback(
        json({
          image,
          label: pick(random, badLabels),
          ...pick(random, [
            {},
            { scale: pick(random, ['byte', 'percent', 1, null]) },
            { modelVersion: pick(random, [0, -1, 1.5, '1', 999_999, null, 1e308]) },
            { predicted: pick(random, badLabels) },
            { images: [image] },
            { extra: randomJson(random, 1) },
          ]),
        }),
      ),
    };
  },
  'feedback: broken images': (random, _known, images) => {
    const bytes = pick(random, [
      images.truncatedPng,
      images.garbageAfterPngSignature,
      images.truncatedJpeg,
      images.bombPng,
      images.blankPng,
      images.svg,
      images.gif,
      Buffer.alloc(0),
      Buffer.from('not an image at all'),
    ]);
    const label = pick(random, ['1', '7', 'eleven', '-1']);
    return {
      category: 'broken images',
      ...(random() < 0.4
        ? routes.postFeedback(json({ image: bytes.toString('base64'), label: Number(label) || label }))
        : routes.postFeedback(bytes, pick(random, ['image/png', 'image/jpeg']), `label=${label}`)),
    };
  },
  // A good drawing, with a querystring that is wrong each time.
  'feedback: bad query and content types': (random, _known, images) => ({
    category: 'wrong types',
    ...routes.postFeedback(
      images.smallDigitPng,
      pick(random, [
        'image/png',
        'image/png',
        'image/jpeg',
        'image/gif',
        'text/plain',
        'application/json',
        '',
      ]),
      pick(random, [
        '',
        'label=',
        'label=eleven',
        'label=-1',
        'label=10',
        'label=1.5',
        'label=%00',
        'label=%FF%FE',
        `label=${'9'.repeat(400)}`,
        'label=1&label=2',
        'label=1&lable=2',
        'label=1&modelVersion=abc',
        'label=1&modelVersion=0',
        'label=1&modelVersion=999999',
        'label=1&predicted=eleven',
        'label[]=1',
        '__proto__[label]=1',
      ]),
    ),
  }),
  'feedback: oversized body': (random) => ({
    category: 'oversized body',
    ...routes.postFeedback(
      Buffer.alloc(16 * 1024 * 1024 + 1 + int(random, 1024 * 1024), 0x30),
      pick(random, ['application/json', 'image/png']),
      'label=1',
    ),
  }),
  'feedback: examples with bad query': (random) => ({
    category: 'wrong types',
    ...routes.feedbackExamples(
      pick(random, [
        'limit=0',
        'limit=201',
        'limit=-1',
        'limit=abc',
        'limit=1e99',
        'offset=-5',
        'offset=99999999999999999999',
        'limit=1&limit=2',
        'page=2',
        `limit=${'9'.repeat(400)}`,
      ]),
    ),
  }),
  'feedback/:id: traversal and junk ids': (random) => ({
    category: 'path traversal',
    ...routes.feedbackItem(
      pick(random, ['GET', 'DELETE']),
      pick(random, [...traversals, 'a'.repeat(20), 'A'.repeat(20), '0'.repeat(19), '0'.repeat(21)]),
    ),
  }),
  'probes and docs: junk': (random) => ({
    category: 'path traversal',
    method: pick(random, ['GET', 'POST', 'DELETE']),
    path: pick(random, [
      '/healthz?x=%FF',
      '/readyz/..',
      '/metrics?name[]=x',
      '/openapi.json/..%2F..%2Fpackage.json',
      '/docs/..%2F..%2F..%2Fpackage.json',
      '/docs/static/..%2F..%2Fpackage.json',
      '/docs/%2e%2e/%2e%2e/etc/passwd',
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
      '/models/aliases/../../jobs',
      `/${'a/'.repeat(2000)}`,
    ]),
    headers: random() < 0.5 ? {} : JSON_HEADERS,
    ...(random() < 0.5 ? { body: json(randomJson(random, 3)) } : {}),
  }),
  'any route: wrong method': (random) => ({
    category: 'wrong method',
    method: pick(random, ['PATCH', 'PUT', 'OPTIONS', 'TRACE', 'PROPFIND']),
    path: pick(random, [
      '/jobs',
      '/predict',
      '/models',
      '/models/1',
      '/healthz',
      '/jobs/x/events',
      '/feedback',
      '/feedback/examples',
    ]),
    headers: {},
  }),
  'any route: hostile headers': (random) => ({
    category: 'invalid UTF-8',
    method: pick(random, ['GET', 'POST']),
    path: pick(random, ['/jobs', '/models', '/predict', '/feedback']),
    headers: {
      ...JSON_HEADERS,
      'x-request-id': pick(random, ['\u00ff\u00fe', 'r'.repeat(8000), '../../etc']),
      'idempotency-key': pick(random, ['\u00ff\u00fe\u00c0', '', ' ', 'x'.repeat(256)]),
      authorization: pick(random, ['Bearer', 'Bearer \u00ff', 'Basic ' + 'A'.repeat(5000), '']),
      'x-api-key': pick(random, ['\u00c0\u00af', '']),
    },
    body: json({ epochs: 1, trainSize: 10 }),
  }),
  'raw HTTP: malformed requests': (random) => ({
    category: 'malformed HTTP',
    method: 'RAW',
    path: '(raw)',
    headers: {},
    raw: pick(random, [
      Buffer.from('GARBAGE\r\n\r\n'),
      Buffer.from('GET /jobs HTTP/9.9\r\nHost: x\r\n\r\n'),
      Buffer.from(`GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      Buffer.from(`GET /jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
      Buffer.from(
        'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n',
      ),
      Buffer.from('POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}'),
      Buffer.from('POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}'),
      Buffer.from(
        'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n',
      ),
      Buffer.concat([
        Buffer.from('GET /jobs/'),
        Buffer.from([0xff, 0xfe, 0x00]),
        Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
      ]),
      Buffer.from('GET /jobs HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n'),
    ]),
  }),
};
