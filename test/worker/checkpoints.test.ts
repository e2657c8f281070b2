import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { FileCheckpoints } from '../../src/worker/file-checkpoints.js';
import type { Checkpoint } from '../../src/worker/checkpoints.js';
import { saveEpochs as saveHelper } from '../helpers/checkpoints.js';
import { useTempDir } from '../helpers/temp-dir.js';

describe('checkpoints', () => {
  const root = useTempDir('checkpoints');
  const problems: string[] = [];
  let checkpoints: FileCheckpoints;
  const loaded: Checkpoint[] = [];

  const saveEpochs = (id: string, n: number) => saveHelper(checkpoints, id, n);

  async function load(id: string): Promise<Checkpoint | null> {
    const checkpoint = await checkpoints.load(id);
    if (checkpoint) loaded.push(checkpoint);
    return checkpoint;
  }

  beforeAll(async () => {
    await initBackend('wasm');
    checkpoints = new FileCheckpoints(root, { onCorrupt: (problem) => problems.push(problem) });
  });
  afterEach(() => {
    problems.length = 0;
    for (const c of loaded.splice(0)) {
      c.model.dispose();
      tf.dispose(c.optimizerWeights.map((w) => w.tensor));
    }
  });

  it('when epochs are saved, then the newest and the one before it are kept, and the newest loads', async () => {
    await saveEpochs('kept', 3);
    expect((await readdir(join(root, 'kept'))).sort()).toEqual(['epoch-2', 'epoch-3', 'latest.json']);
    const checkpoint = await load('kept');
    expect(checkpoint?.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(checkpoint?.optimizerWeights.length).toBeGreaterThan(1);
    expect(problems).toEqual([]);
  });

  it.each([
    ['weights.bin', 'cut in half', (f: string) => readFile(f).then((b) => truncate(f, b.length / 2))],
    ['optimizer.bin', 'cut in half', (f: string) => readFile(f).then((b) => truncate(f, b.length / 2))],
    ['history.json', 'emptied', (f: string) => truncate(f, 0)],
    ['model.json', 'garbled', (f: string) => writeFile(f, '{"modelTopology": {"trunc')],
  ])(
    'when the newest checkpoint has its %s %s (a torn write), then the one before it loads and the problem is told',
    async (file, _how, tear) => {
      const id = `torn-${file.replace('.', '-')}`;
      await saveEpochs(id, 2);
      await tear(join(root, id, 'epoch-2', file));
      const checkpoint = await load(id);
      expect(checkpoint?.history.map((h) => h.epoch)).toEqual([1]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(join(id, 'epoch-2'));
    },
  );

  it('when latest.json itself is torn, then the newest readable checkpoint loads', async () => {
    await saveEpochs('torn-pointer', 2);
    await writeFile(join(root, 'torn-pointer', 'latest.json'), '{"epoch": 2, "di');
    const checkpoint = await load('torn-pointer');
    expect(checkpoint?.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('latest.json is unreadable');
  });

  it('when every checkpoint is torn, then there is none to resume from: a fresh start', async () => {
    await saveEpochs('all-torn', 2);
    await truncate(join(root, 'all-torn', 'epoch-1', 'optimizer.bin'), 3);
    await truncate(join(root, 'all-torn', 'epoch-2', 'history.json'), 0);
    expect(await load('all-torn')).toBeNull();
    expect(problems).toHaveLength(2);
  });

  it('when a job has no checkpoint, then load answers null and tells of no problem', async () => {
    expect(await load('never-saved')).toBeNull();
    expect(problems).toEqual([]);
  });
});
