import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { errorMessage, syncDirectory, writeDurably } from '../fs-durable.js';
import { expectedByteLength, loadModel, saveModel } from '../ml/model-io.js';
import type { EpochSummary, NamedTensor } from '../ml/train.js';
import { epochSummarySchema } from '../ml/training-report-schema.js';

const POINTER = 'latest.json';
const EPOCH_DIR = /^epoch-([1-9][0-9]*)$/;
const pointerSchema = z.object({ epoch: z.int().positive(), dir: z.string().regex(EPOCH_DIR) });
const optimizerSpecsSchema = z.array(
  z.object({
    name: z.string(),
    shape: z.array(z.int().min(0)),
    dtype: z.enum(['float32', 'int32', 'bool', 'complex64', 'string']),
  }),
);

export interface Checkpoint {
  model: tf.LayersModel;
  optimizerWeights: NamedTensor[];
  history: EpochSummary[];
}

export interface CheckpointsOptions {
  /**
   * A checkpoint that could not be read (torn by a crash or a power cut, say): it is skipped for
   * the one before it, or a fresh start. @default ignored
   */
  onCorrupt?: (problem: string) => void;
}

/**
 * The last finished epochs of each running job: model, optimizer state and history, so a job
 * picked up again after a crash resumes there instead of starting over. A checkpoint becomes
 * current only when `latest.json` (renamed into place last) points at it, so a crash mid-save
 * leaves the previous one in force. Every file is fsynced before the rename that points at it,
 * and the previous checkpoint is kept: a torn one (a disk that lost writes) falls back to it.
 */
export class Checkpoints {
  constructor(
    private readonly root: string,
    private readonly options: CheckpointsOptions = {},
  ) {}

  async save(
    jobId: string,
    state: { model: tf.LayersModel; optimizer: tf.Optimizer; history: EpochSummary[] },
  ): Promise<void> {
    const jobDir = this.jobDir(jobId);
    const epoch = state.history.length;
    const name = `epoch-${epoch}`;
    const dir = join(jobDir, name);
    const previous = (await this.pointer(jobDir, () => undefined))?.dir;
    await rm(dir, { recursive: true, force: true });
    // Written aside and renamed into place, fsynced.
    await saveModel(state.model, dir);
    const weights = await state.optimizer.getWeights();
    try {
      const { data, specs } = await tf.io.encodeWeights(weights);
      await writeDurably(join(dir, 'optimizer.bin'), new Uint8Array(data));
      await writeDurably(join(dir, 'optimizer.json'), Buffer.from(JSON.stringify(specs)));
    } finally {
      // The moments are the optimizer's live variables; only the iteration count is a fresh tensor.
      tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
    }
    await writeDurably(join(dir, 'history.json'), Buffer.from(JSON.stringify(state.history)));
    await syncDirectory(dir);
    const tmp = join(jobDir, `${POINTER}.tmp`);
    await rm(tmp, { force: true });
    await writeDurably(tmp, Buffer.from(JSON.stringify({ epoch, dir: name })));
    await rename(tmp, join(jobDir, POINTER));
    await syncDirectory(jobDir);
    await this.removeAllBut(jobDir, [name, previous]);
  }

  /**
   * The newest checkpoint that reads back whole: the one `latest.json` names, else the others
   * newest first. Null when there is none (a fresh start); each one skipped is told to onCorrupt.
   */
  async load(jobId: string): Promise<Checkpoint | null> {
    const jobDir = this.jobDir(jobId);
    const named = (await this.pointer(jobDir, (problem) => this.options.onCorrupt?.(problem)))?.dir;
    const others = (await readdir(jobDir).catch(() => []))
      .map((entry) => ({ entry, epoch: Number(EPOCH_DIR.exec(entry)?.[1] ?? NaN) }))
      .filter((d) => Number.isInteger(d.epoch) && d.entry !== named)
      .sort((a, b) => b.epoch - a.epoch)
      .map((d) => d.entry);
    for (const name of named ? [named, ...others] : others) {
      try {
        return await this.read(join(jobDir, name), Number(EPOCH_DIR.exec(name)![1]));
      } catch (err) {
        this.options.onCorrupt?.(`checkpoint ${join(jobDir, name)} is unreadable: ${errorMessage(err)}`);
      }
    }
    return null;
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.jobDir(jobId), { recursive: true, force: true });
  }

  private async read(dir: string, epoch: number): Promise<Checkpoint> {
    const specs = optimizerSpecsSchema.parse(JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')));
    const data = await readFile(join(dir, 'optimizer.bin'));
    const expected = expectedByteLength(specs, data).bytes;
    if (data.byteLength !== expected)
      throw new Error(`optimizer.bin has ${data.byteLength} bytes, its specs need ${expected}`);
    const history = z
      .array(epochSummarySchema)
      .length(epoch, `history.json must hold the ${epoch} epochs its directory is named for`)
      .parse(JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')));
    // Last: the only part that holds tensors, so nothing needs disposing when the rest is torn.
    const model = await loadModel(dir);
    const map = tf.io.decodeWeights(
      data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      specs,
    );
    const optimizerWeights = specs.map((s) => ({ name: s.name, tensor: map[s.name]! }));
    return { model, optimizerWeights, history };
  }

  /** What `latest.json` says; null when it is missing, and when it is torn (told to `onTorn`). */
  private async pointer(
    jobDir: string,
    onTorn: (problem: string) => void,
  ): Promise<z.infer<typeof pointerSchema> | null> {
    const file = join(jobDir, POINTER);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return null;
    }
    try {
      return pointerSchema.parse(JSON.parse(text));
    } catch (err) {
      onTorn(`${file} is unreadable: ${errorMessage(err)}`);
      return null;
    }
  }

  private jobDir(jobId: string): string {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(jobId)) throw new RangeError(`not a job id: ${JSON.stringify(jobId)}`);
    return join(this.root, jobId);
  }

  private async removeAllBut(jobDir: string, keep: (string | undefined)[]): Promise<void> {
    await mkdir(jobDir, { recursive: true });
    for (const entry of await readdir(jobDir)) {
      if (!keep.includes(entry) && entry !== POINTER)
        await rm(join(jobDir, entry), { recursive: true, force: true });
    }
  }
}
