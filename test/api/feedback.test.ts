import sharp from 'sharp';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImageDecoder } from '../../src/api/image-decoder.js';
import { feedbackId, feedbackSplit, type FeedbackExample } from '../../src/feedback/feedback-schema.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { FASHION_MNIST_CLASSES } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { useTestApi } from '../helpers/api.js';
import { byteImage, drawingPng, feedbackParts, pngPixels, type FeedbackParts } from '../helpers/feedback.js';
import { publishUntrained } from '../helpers/models.js';
import { routes, send } from '../helpers/route-requests.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/** The body limit of the API under test: small, so an oversized body is cheap to send. */
const BODY_LIMIT = 64 * 1024;

const fashionReport = () =>
  trainingReportFixture({
    classes: [...FASHION_MNIST_CLASSES],
    params: { ...trainingReportFixture().params, dataset: 'fashion-mnist' },
  });

/** What the store holds, as ids and classes, for checking that a refusal stored nothing. */
async function stored(feedback: FeedbackParts): Promise<string[]> {
  return (await feedback.store.list()).map((e) => `${e.id}:${e.class}`);
}

describe('POST /feedback', () => {
  beforeAll(() => initBackend('wasm'));
  let feedback: FeedbackParts;
  const decoder = new ImageDecoder();
  const api = useTestApi('feedback', async (scope) => {
    feedback = feedbackParts(scope);
    return { feedback, predictBodyLimit: BODY_LIMIT, imageDecoder: decoder };
  });
  const post = (body: unknown) =>
    request(api.app.server)
      .post('/feedback')
      .send(body as object);

  it('when no version exists, then a label is checked against the digits, stored as the bytes sent, and answered 201', async () => {
    const image = byteImage(1);
    const res = await post({ image, scale: 'byte', label: 3 }).expect(201);
    const id = feedbackId(Uint8Array.from(image));
    expect(res.body).toEqual({ id, class: '3', label: 3, created: true, split: feedbackSplit(id) });
    const example = (await feedback.store.get(id))!;
    expect(example).toMatchObject({ id, class: '3', modelVersion: null, predicted: null });
    expect([...Buffer.from(example.pixels, 'base64')]).toEqual(image);
    expect(Date.parse(example.createdAt)).not.toBeNaN();
  });

  it('when the same image comes again, then 200 created:false with the same class; with another class, 409 naming both', async () => {
    const image = byteImage(1);
    const before = await stored(feedback);
    const again = await post({ image, scale: 'byte', label: '3' }).expect(200);
    expect(again.body).toMatchObject({ class: '3', label: 3, created: false });
    // As unit floats it is the same image: the same id.
    const unit = await post({ image: image.map((v) => v / 255), label: 3 }).expect(200);
    expect(unit.body.id).toBe(again.body.id);
    const other = await post({ image, scale: 'byte', label: 5 }).expect(409);
    expect(other.body.error.code).toBe('feedback_conflict');
    expect(other.body.error.message).toContain('"3"');
    expect(other.body.error.message).toContain('"5"');
    expect(other.body.error.message).toContain(`DELETE /feedback/${again.body.id}`);
    expect(await stored(feedback)).toEqual(before);
  });

  it('when the same new image is sent ten times at once, then it is stored once: one 201, nine 200', async () => {
    const image = byteImage(2);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => post({ image, scale: 'byte', label: 4 })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    const id = feedbackId(Uint8Array.from(image));
    expect((await stored(feedback)).filter((s) => s.startsWith(id))).toEqual([`${id}:4`]);
  });

  it('when the image comes as 28 rows, base64, a data URL or a raw PNG body, then what is stored is the image the model sees', async () => {
    const rows = Array.from({ length: 28 }, (_, r) => byteImage(3).slice(r * 28, r * 28 + 28));
    const fromRows = await post({ image: rows, scale: 'byte', label: 1 }).expect(201);
    expect(fromRows.body.id).toBe(feedbackId(Uint8Array.from(byteImage(3))));

    const png = await drawingPng(1);
    const seen = (await decoder.decode(png)).pixels;
    const expected = feedbackId(Uint8Array.from(seen, (v) => Math.round(v * 255)));
    const base64 = await post({ image: png.toString('base64'), label: 1 }).expect(201);
    expect(base64.body.id).toBe(expected);
    const dataUrl = await post({ image: `data:image/png;base64,${png.toString('base64')}`, label: 1 }).expect(
      200,
    );
    expect(dataUrl.body.id).toBe(expected);
    const raw = await request(api.app.server)
      .post('/feedback?label=1')
      .set('content-type', 'image/png')
      .send(png)
      .expect(200);
    expect(raw.body).toMatchObject({ id: expected, created: false });
    const jpeg = await sharp(await drawingPng(2))
      .jpeg()
      .toBuffer();
    const fromJpeg = await request(api.app.server)
      .post('/feedback?label=7&predicted=1')
      .set('content-type', 'image/jpeg')
      .send(jpeg)
      .expect(201);
    expect((await feedback.store.get(fromJpeg.body.id))?.predicted).toBe('1');
  });

  it('when versions exist, then the label is checked against modelVersion, else the latest, by index or name', async () => {
    const fashion = await publishUntrained(api.store, fashionReport());
    const digits = await publishUntrained(api.store, trainingReportFixture(), 2);
    await api.predictor.refresh();
    expect(api.predictor.version).toBe(digits);

    const byName = await post({
      image: byteImage(10),
      scale: 'byte',
      label: 'Sneaker',
      modelVersion: fashion,
      predicted: 'Bag',
    }).expect(201);
    expect(byName.body).toMatchObject({ class: 'Sneaker', label: 7 });
    expect(await feedback.store.get(byName.body.id)).toMatchObject({
      modelVersion: fashion,
      predicted: 'Bag',
    });
    const byIndex = await post({
      image: byteImage(11),
      scale: 'byte',
      label: 0,
      modelVersion: fashion,
      predicted: 8,
    });
    expect(byIndex.status).toBe(201);
    expect(byIndex.body).toMatchObject({ class: 'T-shirt/top', label: 0 });
    expect((await feedback.store.get(byIndex.body.id))?.predicted).toBe('Bag');

    // No modelVersion: the latest version's classes, the digits.
    const latest = await post({ image: byteImage(12), scale: 'byte', label: 'Sneaker' }).expect(400);
    expect(latest.body.error).toMatchObject({ code: 'unknown_class' });
    expect(latest.body.error.message).toContain(`model version ${digits} (the latest)`);
    expect(latest.body.error.message).toContain('"0", "1", "2"');

    const query = await request(api.app.server)
      .post(`/feedback?label=Sneaker&modelVersion=${fashion}`)
      .set('content-type', 'image/png')
      .send(await drawingPng(3))
      .expect(201);
    expect(query.body).toMatchObject({ class: 'Sneaker', label: 7 });
    const queryIndex = await request(api.app.server)
      .post(`/feedback?label=9&modelVersion=${fashion}`)
      .set('content-type', 'image/png')
      .send(await drawingPng(4))
      .expect(201);
    expect(queryIndex.body).toMatchObject({ class: 'Ankle boot', label: 9 });
  });

  const image = () => byteImage(20);
  const badBodies: [string, unknown, string][] = [
    ['no label', { image: image(), scale: 'byte' }, 'body.label: label is missing'],
    ['label -1', { image: image(), scale: 'byte', label: -1 }, 'label -1 is not a class'],
    ['label 10', { image: image(), scale: 'byte', label: 10 }, 'label 10 is not a class'],
    ['label eleven', { image: image(), scale: 'byte', label: 'eleven' }, 'label "eleven" is not a class'],
    ['label 1.5', { image: image(), scale: 'byte', label: 1.5 }, 'body.label: must be a class index'],
    ['label null', { image: image(), scale: 'byte', label: null }, 'body.label: must be a class index'],
    ['label true', { image: image(), scale: 'byte', label: true }, 'body.label: must be a class index'],
    ['label []', { image: image(), scale: 'byte', label: [] }, 'body.label: must be a class index'],
    ['label too long', { image: image(), scale: 'byte', label: 'x'.repeat(65) }, 'body.label'],
    [
      'predicted 10',
      { image: image(), scale: 'byte', label: 1, predicted: 10 },
      'predicted 10 is not a class',
    ],
    ['predicted null', { image: image(), scale: 'byte', label: 1, predicted: null }, 'body.predicted'],
    [
      'modelVersion 99',
      { image: image(), scale: 'byte', label: 1, modelVersion: 99 },
      'modelVersion 99 does not exist',
    ],
    ['modelVersion 0', { image: image(), scale: 'byte', label: 1, modelVersion: 0 }, 'body.modelVersion'],
    ['modelVersion "1"', { image: image(), scale: 'byte', label: 1, modelVersion: '1' }, 'body.modelVersion'],
    ['modelVersion 1.5', { image: image(), scale: 'byte', label: 1, modelVersion: 1.5 }, 'body.modelVersion'],
    ['no image', { label: 1 }, 'body.image'],
    ['785 numbers', { image: [...image(), 0], scale: 'byte', label: 1 }, 'got 785 numbers'],
    ['783 numbers', { image: image().slice(1), scale: 'byte', label: 1 }, 'got 783 numbers'],
    ['a string pixel', { image: ['x', ...image().slice(1)], label: 1 }, 'body.image'],
    ['27 rows', { image: Array.from({ length: 27 }, () => new Array(28).fill(0)), label: 1 }, 'got 27 rows'],
    [
      'pixel 1.5 in unit',
      { image: [1.5, ...new Array(783).fill(0)], label: 1 },
      "outside 0..1 for scale 'unit'",
    ],
    ['pixel 256 in byte', { image: [256, ...image().slice(1)], scale: 'byte', label: 1 }, 'outside 0..255'],
    ['pixel -1', { image: [-1, ...image().slice(1)], scale: 'byte', label: 1 }, 'outside 0..255'],
    ['scale percent', { image: image(), scale: 'percent', label: 1 }, 'body.scale'],
    ['unknown field', { image: image(), scale: 'byte', label: 1, extra: 1 }, 'extra'],
    ['images (a batch)', { images: [image()], label: 1 }, 'images'],
    ['an empty string', { image: '', label: 1 }, 'body.image'],
    [
      'base64 of no image',
      { image: Buffer.from('not an image at all').toString('base64'), label: 1 },
      'image:',
    ],
    ['a JSON array', [1, 2, 3], 'body'],
    ['null', null, 'body'],
  ];

  it.each(badBodies)(
    'when the body has %s, then 400 naming the problem, and nothing is stored',
    async (_, body, message) => {
      const before = await stored(feedback);
      const res = await request(api.app.server)
        .post('/feedback')
        .set('content-type', 'application/json')
        .send(JSON.stringify(body));
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain(message);
      expect(await stored(feedback)).toEqual(before);
    },
  );

  it('when the request is malformed, of the wrong type or too large, then 400, 413 or 415, and nothing is stored', async () => {
    const before = await stored(feedback);
    const cases: [string, string, Buffer | string, number, string][] = [
      ['/feedback', 'application/json', '{"image": [1, 2', 400, ''],
      ['/feedback', 'application/json', '', 400, ''],
      ['/feedback', 'text/plain', 'label=1', 415, 'application/json, image/png or image/jpeg'],
      ['/feedback', 'application/json', JSON.stringify({ image: 'A'.repeat(BODY_LIMIT), label: 1 }), 413, ''],
      ['/feedback?label=1', 'image/png', Buffer.alloc(BODY_LIMIT + 1, 1), 413, ''],
      ['/feedback?label=1', 'image/png', Buffer.from('not a png at all'), 400, 'image:'],
      ['/feedback?label=1', 'image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2]), 400, 'image:'],
      ['/feedback', 'image/png', await drawingPng(30), 400, 'label is missing'],
      ['/feedback?label=eleven', 'image/png', await drawingPng(30), 400, 'label "eleven" is not a class'],
      ['/feedback?label=1&modelVersion=abc', 'image/png', await drawingPng(30), 400, 'modelVersion'],
      ['/feedback?label=1&modelVersion=99', 'image/png', await drawingPng(30), 400, 'modelVersion 99'],
      ['/feedback?label=1&lable=2', 'image/png', await drawingPng(30), 400, 'lable'],
      [
        '/feedback?label=1',
        'application/json',
        JSON.stringify({ image: byteImage(21), label: 1 }),
        400,
        'in the body',
      ],
    ];
    const blank = await sharp({ create: { width: 28, height: 28, channels: 3, background: 'black' } })
      .png()
      .toBuffer();
    cases.push(['/feedback?label=1', 'image/png', blank, 400, 'ink']);
    const gif = await sharp(await drawingPng(31))
      .gif()
      .toBuffer();
    cases.push(['/feedback?label=1', 'image/png', gif, 400, 'image:']);
    const answers: string[] = [];
    for (const [path, type, body, status, message] of cases) {
      const res = await send(api.app.server, {
        method: 'POST',
        path,
        headers: { 'content-type': type },
        body: Buffer.from(body),
      });
      const ok = res.status === status && res.body.error?.message?.includes(message);
      if (!ok) answers.push(`${path} ${type}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    }
    expect(answers).toEqual([]);
    expect(await stored(feedback)).toEqual(before);
  });
});

describe('GET /feedback, /feedback/examples, /feedback/samples.png and DELETE /feedback/:id', () => {
  beforeAll(() => initBackend('wasm'));
  let feedback: FeedbackParts;
  const api = useTestApi('feedback-views', async (scope) => {
    feedback = feedbackParts(scope);
    return { feedback };
  });
  const get = (path: string) => request(api.app.server).get(path);
  const post = (seed: number, label: number | string) =>
    request(api.app.server)
      .post('/feedback')
      .send({ image: byteImage(seed), scale: 'byte', label });

  it('when nothing is stored, then the summary is empty, the examples page too, and samples.png is a 404', async () => {
    const summary = await get('/feedback').expect(200);
    expect(summary.body).toMatchObject({ total: 0, perClass: [], daily: [], versions: [], pending: false });
    expect(summary.body.maxExamples).toBe(10_000);
    expect((await get('/feedback/examples').expect(200)).body).toEqual({
      total: 0,
      offset: 0,
      limit: 50,
      examples: [],
    });
    const none = await get('/feedback/samples.png').expect(404);
    expect(none.body.error.message).toContain('none is stored yet');
  });

  it('when examples are stored, then the summary counts them per class and split and per day, and the revision moves with each', async () => {
    const revision = (await get('/feedback').expect(200)).body.revision as number;
    const labels = [7, 7, 1, 7, 3];
    for (const [i, label] of labels.entries()) await post(100 + i, label).expect(201);
    const summary = (await get('/feedback').expect(200)).body;
    expect(summary.total).toBe(5);
    expect(summary.revision).toBe(revision + 5);
    const splits = (seeds: number[]) =>
      seeds.map((s) => feedbackSplit(feedbackId(Uint8Array.from(byteImage(s)))));
    const count = (seeds: number[]) => ({
      train: splits(seeds).filter((s) => s === 'train').length,
      test: splits(seeds).filter((s) => s === 'test').length,
    });
    // In the digits' order.
    expect(summary.perClass).toEqual([
      { class: '1', count: 1, ...count([102]) },
      { class: '3', count: 1, ...count([104]) },
      { class: '7', count: 3, ...count([100, 101, 103]) },
    ]);
    expect(summary.daily).toEqual([{ date: new Date().toISOString().slice(0, 10), count: 5 }]);
    // A duplicate changes nothing.
    await post(100, 7).expect(200);
    expect((await get('/feedback').expect(200)).body.revision).toBe(revision + 5);
  });

  it('when examples are paged, then newest first, each with its image as a PNG data URL of the stored pixels', async () => {
    const page = (await get('/feedback/examples?offset=1&limit=2').expect(200)).body;
    expect(page).toMatchObject({ total: 5, offset: 1, limit: 2 });
    const all = await feedback.store.list();
    const newestFirst = all.slice().reverse();
    expect(page.examples.map((e: FeedbackExample) => e.id)).toEqual(newestFirst.slice(1, 3).map((e) => e.id));
    const first = page.examples[0];
    expect(Object.keys(first).sort()).toEqual(
      ['class', 'createdAt', 'id', 'image', 'modelVersion', 'predicted', 'split'].sort(),
    );
    expect(await pngPixels(first.image)).toEqual(
      new Uint8Array(Buffer.from(newestFirst[1]!.pixels, 'base64')),
    );
    const past = (await get('/feedback/examples?offset=10').expect(200)).body;
    expect(past).toMatchObject({ total: 5, examples: [] });
  });

  it.each(['limit=0', 'limit=201', 'limit=x', 'limit=1.5', 'offset=-1', 'offset=x', 'page=2'])(
    'when the examples are asked for with %s, then 400 naming it',
    async (query) => {
      const res = await get(`/feedback/examples?${query}`).expect(400);
      expect(res.body.error.message).toContain(query.split('=')[0]);
    },
  );

  it('when samples.png is asked for, then a row of 28 px per class, its newest example first', async () => {
    const res = await get('/feedback/samples.png').expect(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['cache-control']).toBe('no-cache');
    const { data, info } = await sharp(res.body as Buffer)
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([280, 3 * 28]);
    // Row 3 (class '7'): its newest example (seed 103) in the first cell, then 101.
    const cell = (row: number, column: number) => {
      const out = new Uint8Array(IMAGE_PIXELS);
      for (let y = 0; y < 28; y++)
        out.set(
          data.subarray((row * 28 + y) * 280 + column * 28, (row * 28 + y) * 280 + column * 28 + 28),
          y * 28,
        );
      return [...out];
    };
    expect(cell(2, 0)).toEqual(byteImage(103));
    expect(cell(2, 1)).toEqual(byteImage(101));
    expect(cell(0, 0)).toEqual(byteImage(102));
  });

  it('when an example is deleted, then 204 and the revision moves; again, 404; a malformed id, 400', async () => {
    const id = feedbackId(Uint8Array.from(byteImage(104)));
    const revision = (await get('/feedback').expect(200)).body.revision as number;
    await request(api.app.server).delete(`/feedback/${id}`).expect(204);
    expect(await feedback.store.get(id)).toBeNull();
    const summary = (await get('/feedback').expect(200)).body;
    expect(summary).toMatchObject({ total: 4, revision: revision + 1 });
    expect(summary.perClass.map((c: { class: string }) => c.class)).toEqual(['1', '7']);
    const again = await request(api.app.server).delete(`/feedback/${id}`).expect(404);
    expect(again.body.error.message).toBe(`feedback ${id} not found`);
    for (const bad of ['xyz', id.toUpperCase(), `${id}0`, id.slice(1), '..%2F..%2Fetc', '%00'.repeat(7)]) {
      const res = await request(api.app.server).delete(`/feedback/${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.message, bad).toContain('params.id');
    }
    // Deleted, the image may be sent again with another class.
    await post(104, 8).expect(201);
  });

  it('when a version is published, then it is measured in the background and GET /feedback, /models and /models/:v show its figure', async () => {
    const version = await publishUntrained(api.store, trainingReportFixture(), 3);
    await api.predictor.refresh();
    // As the API process does when the registry announces a version (src/api/server.ts).
    feedback.evaluations.modelsChanged();
    await feedback.evaluations.settled();
    const summary = (await get('/feedback').expect(200)).body;
    expect(summary.pending).toBe(false);
    const figure = summary.versions.find((v: { version: number }) => v.version === version);
    expect(figure).toMatchObject({
      version,
      examples: 5,
      trainedOnFeedback: false,
      revision: summary.revision,
    });
    expect(figure.correct).toBeLessThanOrEqual(5);
    const one = (await get(`/models/${version}`).expect(200)).body;
    expect(one.feedback).toEqual(figure);
    const list = (await get('/models').expect(200)).body;
    expect(list.models[0].feedback).toEqual(figure);
  });

  it('when feedback is asked for as a dataset, then it is not listed; its record is a 404 pointing at /feedback, and it cannot be deleted', async () => {
    const listed = (await get('/datasets').expect(200)).body.datasets.map((d: { id: string }) => d.id);
    expect(listed).not.toContain('feedback');
    const one = await get('/datasets/feedback').expect(404);
    expect(one.body.error.message).toContain('GET /feedback');
    await get('/datasets/feedback/samples.png').expect(404);
    const deleted = await send(api.app.server, routes.dataset('DELETE', 'feedback')).expect(403);
    expect(deleted.body.error).toMatchObject({ code: 'read_only' });
    expect(deleted.body.error.message).toContain('DELETE /feedback/:id');
  });

  it('when /openapi.json is read, then it documents every feedback route with a summary and its answers', async () => {
    const spec = (await get('/openapi.json').expect(200)).body;
    // Each operation's documented status codes, as a client generator would see them.
    const operations: [string, string, string[]][] = [
      ['/feedback', 'post', ['200', '201', '400', '409', '413', '415', '503']],
      ['/feedback', 'get', ['200']],
      ['/feedback/examples', 'get', ['200', '400']],
      ['/feedback/samples.png', 'get', ['200', '404']],
      ['/feedback/{id}', 'delete', ['204', '400', '404']],
    ];
    for (const [path, method, codes] of operations) {
      const operation = spec.paths[path]?.[method];
      expect(operation?.summary, `${method} ${path}`).toMatch(/^[A-Z].{20,}/);
      expect(
        Object.keys(operation?.responses ?? {})
          .filter((c) => /^\d{3}$/.test(c))
          .sort(),
        `${method} ${path}`,
      ).toEqual(expect.arrayContaining(codes));
    }
    expect(Object.keys(spec.paths['/feedback/{id}']).sort()).toEqual(['delete']);
  });
});

describe('feedback settings', () => {
  const KEY = 'a-long-enough-feedback-key-0123';
  const body = (seed: number) => ({ image: byteImage(seed), scale: 'byte', label: 2 });

  describe('FEEDBACK=off', () => {
    const api = useTestApi('feedback-off');

    it('when feedback is off, then every feedback route is a 404 and versions show no figure', async () => {
      for (const [method, path] of [
        ['post', '/feedback'],
        ['get', '/feedback'],
        ['get', '/feedback/examples'],
        ['get', '/feedback/samples.png'],
        ['delete', `/feedback/${'a'.repeat(20)}`],
      ] as const) {
        const res = await request(api.app.server)[method](path).send(body(1));
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      // Not a special name then: just no such dataset.
      await request(api.app.server).get('/datasets/feedback').expect(404);
      await request(api.app.server).delete('/datasets/feedback').expect(404);
    });
  });

  describe('FEEDBACK_REQUIRES_KEY', () => {
    let feedback: FeedbackParts;
    const api = useTestApi('feedback-key', async (scope) => {
      feedback = feedbackParts(scope);
      return { feedback, auth: { apiKey: KEY, protectFeedback: true } };
    });

    it('when it is set, then POST /feedback needs the key and stores nothing without it; the GETs do not', async () => {
      const none = await request(api.app.server).post('/feedback').send(body(1)).expect(401);
      expect(none.body.error.message).toContain('Authorization: Bearer');
      await request(api.app.server).post('/feedback').set('x-api-key', 'wrong').send(body(1)).expect(401);
      expect(await feedback.store.count()).toBe(0);
      await request(api.app.server).post('/feedback').set('x-api-key', KEY).send(body(1)).expect(201);
      await request(api.app.server).get('/feedback').expect(200);
      await request(api.app.server).get('/feedback/examples').expect(200);
      await request(api.app.server).get('/feedback/samples.png').expect(200);
    });
  });

  describe('without FEEDBACK_REQUIRES_KEY, with API_KEY', () => {
    let feedback: FeedbackParts;
    const api = useTestApi('feedback-open', async (scope) => {
      feedback = feedbackParts(scope);
      return { feedback, auth: { apiKey: KEY } };
    });

    it('when a client sends feedback without the key, then it is stored; deleting it needs the key', async () => {
      const res = await request(api.app.server).post('/feedback').send(body(1)).expect(201);
      const denied = await request(api.app.server).delete(`/feedback/${res.body.id}`).expect(401);
      expect(denied.body.error.code).toBe('unauthorized');
      expect(await feedback.store.get(res.body.id)).not.toBeNull();
      await request(api.app.server).delete(`/feedback/${res.body.id}`).set('x-api-key', KEY).expect(204);
    });
  });

  describe('without API_KEY, on loopback', () => {
    let feedback: FeedbackParts;
    const api = useTestApi('feedback-host', async (scope) => {
      feedback = feedbackParts(scope);
      return { feedback, auth: { loopbackHostOnly: true } };
    });

    it('when feedback comes addressed to another name (DNS rebinding), then 403 and nothing is stored; to localhost, 201', async () => {
      const foreign = await request(api.app.server)
        .post('/feedback')
        .set('host', 'attacker.example')
        .send(body(1))
        .expect(403);
      expect(foreign.body.error.code).toBe('forbidden_host');
      expect(await feedback.store.count()).toBe(0);
      await request(api.app.server).post('/feedback').set('host', 'localhost:3000').send(body(1)).expect(201);
      await request(api.app.server).get('/feedback').set('host', 'attacker.example').expect(200);
    });
  });

  describe('FEEDBACK_RATE_LIMIT_PER_MINUTE', () => {
    let feedback: FeedbackParts;
    const api = useTestApi('feedback-rate', async (scope) => {
      feedback = feedbackParts(scope);
      return {
        feedback,
        rateLimit: {
          redis: scope.redis,
          prefix: scope.prefix,
          perMinute: 100,
          predictPerMinute: 3,
          feedbackPerMinute: 2,
          // An hour's window: the requests below cannot fall into two windows and reset the counts.
          windowMs: 3_600_000,
        },
      };
    });

    it('when a client goes over it, then POST /feedback gets 429 while /predict and the rest keep their own counts', async () => {
      await request(api.app.server).post('/feedback').send(body(1)).expect(201);
      await request(api.app.server).post('/feedback').send(body(2)).expect(201);
      const over = await request(api.app.server).post('/feedback').send(body(3)).expect(429);
      expect(over.body.error.message).toContain('rate limit of 2 requests per 3600 s');
      expect(await feedback.store.count()).toBe(2);
      // /predict's count is its own: 503 (no model yet) is past the limit check, three times.
      for (let i = 0; i < 3; i++)
        await request(api.app.server)
          .post('/predict')
          .send({ image: new Array(784).fill(0) })
          .expect(503);
      await request(api.app.server)
        .post('/predict')
        .send({ image: new Array(784).fill(0) })
        .expect(429);
      await request(api.app.server).get('/feedback').expect(200);
      await request(api.app.server).get('/jobs').expect(200);
      await request(api.app.server).post('/feedback').send(body(3)).expect(429);
    });
  });

  describe('FEEDBACK_MAX_EXAMPLES', () => {
    let feedback: FeedbackParts;
    const api = useTestApi('feedback-max', async (scope) => {
      feedback = feedbackParts(scope);
      return { feedback, feedbackMaxExamples: 2 };
    });

    it('when the store is full, then a new image is a 409 and not stored, a known one still a 200; a delete makes room', async () => {
      const first = await request(api.app.server).post('/feedback').send(body(1)).expect(201);
      await request(api.app.server).post('/feedback').send(body(2)).expect(201);
      const full = await request(api.app.server).post('/feedback').send(body(3)).expect(409);
      expect(full.body.error.code).toBe('feedback_full');
      expect(full.body.error.message).toContain('FEEDBACK_MAX_EXAMPLES is 2');
      expect(await feedback.store.count()).toBe(2);
      await request(api.app.server).post('/feedback').send(body(1)).expect(200);
      expect((await request(api.app.server).get('/feedback').expect(200)).body.maxExamples).toBe(2);
      await request(api.app.server).delete(`/feedback/${first.body.id}`).expect(204);
      await request(api.app.server).post('/feedback').send(body(3)).expect(201);
    });
  });
});
