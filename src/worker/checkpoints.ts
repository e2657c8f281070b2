import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { loadModel, saveModel } from '../ml/model-io.js';
import type { EpochSummary, NamedTensor } from '../ml/train.js';

const POINTER = 'latest.json';
const pointerSchema = z.object({ epoch: z.int().positive(), dir: z.string().regex(/^epoch-\d+$/) });

export interface Checkpoint {
  model: tf.LayersModel;
  optimizerWeights: NamedTensor[];
  history: EpochSummary[];
}

/**
 * The last finished epoch of each running job: model, optimizer state and history, so a job
 * picked up again after a crash resumes there instead of starting over. A checkpoint becomes
 * current only when `latest.json` (renamed into place last) points at it, so a crash mid-save
 * leaves the previous one in force.
 */
export class Checkpoints {
  constructor(private readonly root: string) {}

  async save(
    jobId: string,
    state: { model: tf.LayersModel; optimizer: tf.Optimizer; history: EpochSummary[] },
  ): Promise<void> {
    const jobDir = this.jobDir(jobId);
    const epoch = state.history.length;
    const name = `epoch-${epoch}`;
    await rm(join(jobDir, name), { recursive: true, force: true });
    await saveModel(state.model, join(jobDir, name));
    const weights = await state.optimizer.getWeights();
    try {
      const { data, specs } = await tf.io.encodeWeights(weights);
      await writeFile(join(jobDir, name, 'optimizer.bin'), new Uint8Array(data));
      await writeFile(join(jobDir, name, 'optimizer.json'), JSON.stringify(specs));
    } finally {
      // The moments are the optimizer's live variables; only the iteration count is a fresh tensor.
      tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
    }
    await writeFile(join(jobDir, name, 'history.json'), JSON.stringify(state.history));
    const tmp = join(jobDir, `${POINTER}.tmp`);
    await writeFile(tmp, JSON.stringify({ epoch, dir: name }));
    await rename(tmp, join(jobDir, POINTER));
    await this.removeAllBut(jobDir, name);
  }

  async load(jobId: string): Promise<Checkpoint | null> {
    const jobDir = this.jobDir(jobId);
    const pointer = await readFile(join(jobDir, POINTER), 'utf8').then(
      (text) => pointerSchema.parse(JSON.parse(text)),
      () => null,
    );
    if (!pointer) return null;
    const dir = join(jobDir, pointer.dir);
    const model = await loadModel(dir);
    const specs = JSON.parse(
      await readFile(join(dir, 'optimizer.json'), 'utf8'),
    ) as tf.io.WeightsManifestEntry[];
    const data = await readFile(join(dir, 'optimizer.bin'));
    const map = tf.io.decodeWeights(
      data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      specs,
    );
    const optimizerWeights = specs.map((s) => ({ name: s.name, tensor: map[s.name]! }));
    const history = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')) as EpochSummary[];
    return { model, optimizerWeights, history };
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.jobDir(jobId), { recursive: true, force: true });
  }

  private jobDir(jobId: string): string {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(jobId)) throw new RangeError(`not a job id: ${JSON.stringify(jobId)}`);
    return join(this.root, jobId);
  }

  private async removeAllBut(jobDir: string, keep: string): Promise<void> {
    await mkdir(jobDir, { recursive: true });
    for (const entry of await readdir(jobDir)) {
      if (entry !== keep && entry !== POINTER)
        await rm(join(jobDir, entry), { recursive: true, force: true });
    }
  }
}
