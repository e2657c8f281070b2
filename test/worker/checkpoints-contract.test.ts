import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import type { Checkpoint, Checkpoints } from '../../src/worker/checkpoints.js';
import { epochRecord, saveEpochs } from '../helpers/checkpoints.js';
import { STORE_KINDS, useStoreBackend, type StoreSpace } from '../helpers/store-backends.js';

const CHECKPOINT_FILES = ['history.json', 'model.json', 'optimizer.bin', 'optimizer.json', 'weights.bin'];

/** A tensor's values as bytes, copied (the tensor may be disposed after). */
function bytesOf(tensor: tf.Tensor): Buffer {
  const values = tensor.dataSync();
  return Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** The Checkpoints promises (src/worker/checkpoints.ts), kept alike by every backend. */
describe.each(STORE_KINDS)('checkpoints on the %s store', (kind) => {
  const backend = useStoreBackend(kind, 'checkpoints-contract');
  const problems: string[] = [];
  const loaded: Checkpoint[] = [];
  let space: StoreSpace;
  let checkpoints: Checkpoints;

  /** What is stored for job `id`: its pointer and its epoch dirs, each with the files in it. */
  async function storedFor(id: string): Promise<Record<string, string[]>> {
    const found: Record<string, string[]> = {};
    for (const name of await space.stored(`checkpoints/${id}/`)) {
      const [entry, ...rest] = name.slice(`checkpoints/${id}/`.length).split('/');
      (found[entry!] ??= []).push(rest.join('/'));
    }
    for (const files of Object.values(found)) files.sort();
    return found;
  }

  async function load(id: string): Promise<Checkpoint | null> {
    const checkpoint = await checkpoints.load(id);
    if (checkpoint) loaded.push(checkpoint);
    return checkpoint;
  }

  beforeAll(async () => {
    await initBackend('wasm');
    space = backend.space();
    checkpoints = space.stores.checkpoints({ onCorrupt: (problem) => problems.push(problem) });
  });
  afterEach(() => {
    problems.length = 0;
    for (const c of loaded.splice(0)) {
      c.model.dispose();
      tf.dispose(c.optimizerWeights.map((w) => w.tensor));
    }
  });

  it('when a state is saved, then load gives back the same weights, optimizer state and history', async () => {
    const model = buildModel('seed', 3);
    const optimizer = tf.train.adam();
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5);
    const history = [epochRecord(1), epochRecord(2)];
    let weights: Buffer[];
    let moments: { name: string; bytes: Buffer }[];
    try {
      optimizer.minimize(() => tf.mean(model.apply(x) as tf.Tensor) as tf.Scalar);
      await checkpoints.save('round-trip', { model, optimizer, history });
      weights = model.getWeights().map(bytesOf);
      const named = await optimizer.getWeights();
      moments = named.map((w) => ({ name: w.name, bytes: bytesOf(w.tensor) }));
      tf.dispose(named.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
    } finally {
      x.dispose();
      model.dispose();
      optimizer.dispose();
    }
    const checkpoint = (await load('round-trip'))!;
    expect(checkpoint.history).toEqual(history);
    const back = checkpoint.model.getWeights().map(bytesOf);
    expect(back.length).toBe(weights.length);
    back.forEach((bytes, i) => expect(bytes.equals(weights[i]!), `weight ${i}`).toBe(true));
    expect(checkpoint.optimizerWeights.map((w) => w.name)).toEqual(moments.map((m) => m.name));
    checkpoint.optimizerWeights.forEach((w, i) =>
      expect(bytesOf(w.tensor).equals(moments[i]!.bytes), w.name).toBe(true),
    );
    expect(problems).toEqual([]);
  });

  it('when epochs are saved, then the newest and the one before it are kept whole, and the newest loads', async () => {
    await saveEpochs(checkpoints, 'kept', 3);
    expect(await storedFor('kept')).toEqual({
      'epoch-2': CHECKPOINT_FILES,
      'epoch-3': CHECKPOINT_FILES,
      'latest.json': [''],
    });
    expect((await load('kept'))?.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(problems).toEqual([]);
    // Saved and read back through local files: none is left behind.
    expect(await space.local()).toEqual([]);
  });

  const cutInHalf = async (name: string) => {
    const bytes = await space.read(name);
    await space.write(name, bytes.subarray(0, bytes.length / 2));
  };
  it.each([
    ['weights.bin', 'deleted', (name: string) => space.delete(name)],
    ['optimizer.bin', 'cut in half', cutInHalf],
    ['history.json', 'emptied', (name: string) => space.write(name, '')],
    ['model.json', 'garbled', (name: string) => space.write(name, '{"modelTopology": {"trunc')],
  ])(
    'when the newest checkpoint has its %s %s (a torn write), then the one before it loads and the problem is told',
    async (file, _how, tear) => {
      const id = `torn-${file.replace('.', '-')}`;
      await saveEpochs(checkpoints, id, 2);
      await tear(`checkpoints/${id}/epoch-2/${file}`);
      expect((await load(id))?.history.map((h) => h.epoch)).toEqual([1]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`${id}/epoch-2`);
    },
  );

  it('when latest.json itself is torn, then the newest readable checkpoint loads and the problem is told', async () => {
    await saveEpochs(checkpoints, 'torn-pointer', 2);
    await space.write('checkpoints/torn-pointer/latest.json', '{"epoch": 2, "di');
    expect((await load('torn-pointer'))?.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('latest.json is unreadable');
  });

  it('when a job resumed from the one before a torn checkpoint saves that epoch again, then the new save replaces it whole', async () => {
    await saveEpochs(checkpoints, 'saved-again', 2);
    await space.delete('checkpoints/saved-again/epoch-2/optimizer.json');
    expect((await load('saved-again'))?.history.map((h) => h.epoch)).toEqual([1]);
    await saveEpochs(checkpoints, 'saved-again', 2, { from: 2 });
    problems.length = 0;
    expect((await load('saved-again'))?.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(problems).toEqual([]);
    expect((await storedFor('saved-again'))['epoch-2']).toEqual(CHECKPOINT_FILES);
  });

  it('when every checkpoint is torn, then there is none to resume from: a fresh start', async () => {
    await saveEpochs(checkpoints, 'all-torn', 2);
    await cutInHalf('checkpoints/all-torn/epoch-1/optimizer.bin');
    await space.write('checkpoints/all-torn/epoch-2/history.json', '');
    expect(await load('all-torn')).toBeNull();
    expect(problems).toHaveLength(2);
  });

  it('when a job has no checkpoint, then load answers null and tells of no problem', async () => {
    expect(await load('never-saved')).toBeNull();
    expect(problems).toEqual([]);
  });

  it("when a job's checkpoints are removed, then nothing of them is stored and load answers null", async () => {
    await saveEpochs(checkpoints, 'removed', 2);
    await checkpoints.remove('removed');
    expect(await space.stored('checkpoints/removed/')).toEqual([]);
    expect(await load('removed')).toBeNull();
    await checkpoints.remove('removed');
    await checkpoints.remove('never-saved');
    expect(problems).toEqual([]);
  });

  it('when a job id could name another place, then it is refused before anything is read or written', async () => {
    for (const bad of ['../escape', 'a/b', '', 'x'.repeat(129)]) {
      await expect(checkpoints.load(bad), bad).rejects.toThrow(RangeError);
      await expect(checkpoints.remove(bad), bad).rejects.toThrow(RangeError);
    }
  });
});
