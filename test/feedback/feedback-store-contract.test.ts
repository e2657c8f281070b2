import { beforeEach, describe, expect, it } from 'vitest';
import { FeedbackRecordError } from '../../src/feedback/feedback-records.js';
import { feedbackId, type FeedbackExample } from '../../src/feedback/feedback-schema.js';
import type { FeedbackStore } from '../../src/feedback/feedback-store.js';
import { S3FeedbackStore } from '../../src/feedback/s3-feedback-store.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import { barrier } from '../helpers/barrier.js';
import { STORE_KINDS, useStoreBackend, type StoreSpace } from '../helpers/store-backends.js';

/** A made-up image of its own for each `seed`, and so an id of its own. */
function pixelsOf(seed: number): Uint8Array {
  return Uint8Array.from({ length: IMAGE_PIXELS }, (_, i) => (i * 31 + seed * 97 + ((i * seed) % 13)) % 256);
}

/** An example of image `seed`, sent `second` seconds after a fixed time. */
function example(seed: number, fields: Partial<FeedbackExample> & { second?: number } = {}): FeedbackExample {
  const { second = seed, ...rest } = fields;
  const pixels = pixelsOf(seed);
  return {
    id: feedbackId(pixels),
    class: String(seed % 10),
    modelVersion: null,
    predicted: null,
    createdAt: new Date(Date.UTC(2025, 0, 1, 12, 0, second)).toISOString(),
    pixels: Buffer.from(pixels).toString('base64'),
    ...rest,
  };
}

const recordName = (id: string) => `feedback/${id}.json`;

/** The FeedbackStore promises (src/feedback/feedback-store.ts), kept alike by every backend. */
describe.each(STORE_KINDS)('feedback on the %s store', (kind) => {
  const backend = useStoreBackend(kind, 'feedback-contract');
  let space: StoreSpace;
  let store: FeedbackStore;

  beforeEach(() => {
    space = backend.space();
    store = space.stores.feedback;
  });

  it('when an example is added, then it is found, listed and counted, as one record and nothing else', async () => {
    const a = example(1, { modelVersion: 3, predicted: '7' });
    expect(await store.add(a)).toEqual({ created: true, stored: a });
    expect(await store.get(a.id)).toEqual(a);
    expect(await store.list()).toEqual([a]);
    expect(await store.count()).toBe(1);
    expect(await space.stored('feedback/')).toEqual([recordName(a.id)]);
    expect(await space.local()).toEqual([]);
    const objects = space.s3?.objects;
    expect(store.location).toEqual(
      objects ? `s3://${objects.bucket}/${objects.prefix}feedback/` : expect.stringMatching(/\/feedback$/),
    );
  });

  it('when the store is empty, then list and count say so, and get and remove find nothing', async () => {
    const a = example(1);
    expect(await store.list()).toEqual([]);
    expect(await store.count()).toBe(0);
    expect(await store.get(a.id)).toBeNull();
    expect(await store.remove(a.id)).toBe(false);
    // Not ids: no path or key is made of them.
    for (const id of ['../x', 'ABCDEF0123456789ABCD', '', 'a'.repeat(21)]) {
      expect(await store.get(id)).toBeNull();
      expect(await store.remove(id)).toBe(false);
    }
  });

  it('when an example is removed, then it is gone, a second remove finds nothing, and the image can be added again', async () => {
    const [a, b] = [example(1), example(2)];
    await store.add(a);
    await store.add(b);
    expect(await store.remove(a.id)).toBe(true);
    expect(await store.get(a.id)).toBeNull();
    expect(await store.list()).toEqual([b]);
    expect(await store.count()).toBe(1);
    expect(await store.remove(a.id)).toBe(false);
    const again = { ...a, class: '8' };
    expect(await store.add(again)).toEqual({ created: true, stored: again });
    expect(await store.get(a.id)).toEqual(again);
  });

  it('when the same image is added again, with another class, then the first stays and the second is told of it', async () => {
    const first = example(1, { class: '3' });
    await store.add(first);
    const second = example(1, { class: '5', second: 30, predicted: '3' });
    expect(await store.add(second)).toEqual({ created: false, stored: first });
    expect(await store.get(first.id)).toEqual(first);
    expect(await store.count()).toBe(1);
  });

  it('when two adds of one image with different classes race, then exactly one stores it and both answer what is stored', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const three = example(seed, { class: '3' });
      const five = example(seed, { class: '5' });
      const answers = await Promise.all([store.add(three), store.add(five)]);
      expect(answers.filter((a) => a.created)).toHaveLength(1);
      const stored = answers.find((a) => a.created)!.stored;
      expect([three, five]).toContainEqual(stored);
      expect(answers.map((a) => a.stored)).toEqual([stored, stored]);
      expect(await store.get(three.id)).toEqual(stored);
    }
    expect(await store.count()).toBe(5);
    expect(await space.local()).toEqual([]);
  });

  it('when records are broken, then list and get leave them out, count counts them, and remove deletes them', async () => {
    const [good, torn, other, wrongShape] = [example(1), example(2), example(3), example(4)];
    await store.add(good);
    await space.write(recordName(torn.id), '{"id":');
    // A whole example, but stored under another image's name (copied by hand).
    await space.write(recordName(other.id), JSON.stringify(good));
    await space.write(recordName(wrongShape.id), JSON.stringify({ ...wrongShape, pixels: 'AAAA' }));
    await space.write('feedback/notes.txt', 'not an example');
    expect(await store.list()).toEqual([good]);
    for (const broken of [torn, other, wrongShape]) expect(await store.get(broken.id)).toBeNull();
    expect(await store.count()).toBe(4);
    // Adding the image again does not hide the broken record nor overwrite it: it says what is wrong.
    await expect(store.add(torn)).rejects.toThrow(FeedbackRecordError);
    await expect(store.add(torn)).rejects.toThrow(`DELETE /feedback/${torn.id}`);
    expect(await store.remove(torn.id)).toBe(true);
    expect(await store.add(torn)).toEqual({ created: true, stored: torn });
  });

  it('when examples were sent at various times, then list gives them oldest first, then by id', async () => {
    const at = (seed: number, createdAt: string) => example(seed, { createdAt });
    const examples = [
      at(1, '2025-01-01T12:00:00Z'),
      at(2, '2025-01-01T11:59:59.999Z'),
      at(3, '2025-01-01T12:00:00.5Z'),
      at(4, '2025-01-01T12:00:00.000Z'),
      at(5, '2024-12-31T23:00:00Z'),
      at(6, '2025-01-01T12:00:00Z'),
    ];
    for (const e of examples) await store.add(e);
    const listed = await store.list();
    const byTimeThenId = [...examples].sort(
      (a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id),
    );
    expect(listed.map((e) => e.id)).toEqual(byTimeThenId.map((e) => e.id));
    expect(listed.map((e) => e.createdAt).slice(0, 2)).toEqual([
      '2024-12-31T23:00:00Z',
      '2025-01-01T11:59:59.999Z',
    ]);
    expect(listed.at(-1)!.createdAt).toBe('2025-01-01T12:00:00.5Z');
  });

  it('when an example is not one (a bad id or pixels), then add refuses it and stores nothing', async () => {
    await expect(store.add({ ...example(1), id: 'nope' })).rejects.toThrow();
    await expect(store.add({ ...example(1), pixels: 'AAAA' })).rejects.toThrow();
    expect(await space.stored('feedback/')).toEqual([]);
  });
});

describe('feedback on the directory store: temp files', () => {
  const backend = useStoreBackend('directory', 'feedback-temp');

  it('when an add crashed and left its temp file, then list and count ignore it, and cleanStaging removes it once old', async () => {
    const space = backend.space();
    const store = space.stores.feedback;
    const a = example(1);
    await store.add(a);
    const leftover = `feedback/.staging/${example(2).id}-crashed.json`;
    await space.write(leftover, JSON.stringify(example(2)));
    expect(await store.list()).toEqual([a]);
    expect(await store.count()).toBe(1);
    expect(await store.cleanStaging(60_000)).toEqual([]);
    await space.age(leftover, new Date(Date.now() - 3_600_000));
    expect(await store.cleanStaging(60_000)).toEqual([expect.stringMatching(/-crashed\.json$/)]);
    expect(await space.local()).toEqual([]);
    expect(await store.list()).toEqual([a]);
  });
});

/** S3Objects that logs its GETs, and can hold PUTs at a barrier. */
class WatchedObjects extends S3Objects {
  gets: string[] = [];
  /** What each PUT answered: false when the server refused it (If-None-Match). */
  puts: boolean[] = [];
  holdPut: (() => Promise<void>) | undefined;
  /** Sends PUTs without `If-None-Match`, as to a server that ignores it. */
  unconditional = false;

  constructor(base: S3Objects) {
    super(base.client, base.bucket, base.prefix);
  }

  override async get(name: string): Promise<Buffer | null> {
    this.gets.push(name);
    return super.get(name);
  }

  override async put(name: string, body: Uint8Array | string, options: { ifAbsent?: boolean } = {}) {
    await this.holdPut?.();
    const written = await super.put(name, body, this.unconditional ? {} : options);
    this.puts.push(written);
    return written;
  }
}

describe('feedback on the S3 store', () => {
  const backend = useStoreBackend('s3', 'feedback-s3');
  let space: StoreSpace;

  beforeEach(() => {
    space = backend.space();
  });

  const watched = () => new WatchedObjects(space.s3!.objects);

  it('when two API processes add one image at once, both past their look for it, then If-None-Match lets exactly one write', async () => {
    const three = example(1, { class: '3' });
    const five = example(1, { class: '5' });
    // Both have found no object when either PUT leaves; "three"'s reaches the server first.
    const both = barrier<'three' | 'five'>(2, ['three', 'five']);
    const [first, second] = [watched(), watched()];
    first.holdPut = () => both.arrive('three');
    second.holdPut = () => both.arrive('five');
    const answers = await Promise.all([
      new S3FeedbackStore(first).add(three),
      new S3FeedbackStore(second).add(five),
    ]);
    expect([...first.puts, ...second.puts].sort()).toEqual([false, true]);
    expect(answers.filter((a) => a.created)).toHaveLength(1);
    const stored = answers.find((a) => a.created)!.stored;
    expect(answers.map((a) => a.stored)).toEqual([stored, stored]);
    expect(await space.stores.feedback.get(three.id)).toEqual(stored);
  });

  it('when the server ignores If-None-Match, then the same image sent again still finds the first', async () => {
    const objects = watched();
    objects.unconditional = true;
    const store = new S3FeedbackStore(objects);
    const first = example(1, { class: '3' });
    await store.add(first);
    expect(await store.add(example(1, { class: '5' }))).toEqual({ created: false, stored: first });
    expect(await store.get(first.id)).toEqual(first);
  });

  it('when list() is called again, then it fetches no unchanged example, and one removed and added anew is fetched again', async () => {
    const objects = watched();
    const store = new S3FeedbackStore(objects);
    const writer = space.stores.feedback;
    const [a, b, c] = [example(1), example(2), example(3)];
    for (const e of [a, b, c]) await writer.add(e);

    expect(await store.list()).toEqual([a, b, c]);
    expect(objects.gets.sort()).toEqual([a, b, c].map((e) => recordName(e.id)).sort());
    objects.gets = [];
    expect(await store.list()).toEqual([a, b, c]);
    expect(objects.gets).toEqual([]);

    // Another process deletes b and adds its image again with another class; c goes.
    await writer.remove(b.id);
    const b2 = { ...b, class: '9' };
    await writer.add(b2);
    await writer.remove(c.id);
    expect(await store.list()).toEqual([a, b2]);
    expect(objects.gets).toEqual([recordName(b.id)]);

    // A broken record is read once too, and stays left out.
    const broken = example(4);
    await space.write(recordName(broken.id), 'torn');
    objects.gets = [];
    expect(await store.list()).toEqual([a, b2]);
    expect(await store.list()).toEqual([a, b2]);
    expect(objects.gets).toEqual([recordName(broken.id)]);
  });
});
