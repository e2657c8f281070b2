import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { syncDirectory, writeDurably } from '../fs-durable.js';
import { expectedByteLength, loadModel, saveModel } from '../ml/model-io.js';
import type { EpochSummary, NamedTensor } from '../ml/train.js';
import { epochSummarySchema } from '../ml/training-report-schema.js';

export interface Checkpoint {
  model: tf.LayersModel;
  optimizerWeights: NamedTensor[];
  history: EpochSummary[];
}

export interface CheckpointState {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
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
 * picked up again after a crash resumes there instead of starting over. Two backends keep the
 * same promises (test/worker/checkpoints-contract.test.ts checks both): a directory
 * (file-checkpoints.ts) and S3-compatible object storage (s3-checkpoints.ts).
 *
 * - A checkpoint becomes current only when the job's pointer names it, written last, so a crash
 *   mid-save leaves the previous one in force.
 * - The previous checkpoint is kept: a torn one falls back to it.
 */
export interface Checkpoints {
  save(jobId: string, state: CheckpointState): Promise<void>;
  /**
   * The newest checkpoint that reads back whole: the one the pointer names, else the others newest
   * first. Null when there is none (a fresh start); each one skipped is told to onCorrupt.
   */
  load(jobId: string): Promise<Checkpoint | null>;
  remove(jobId: string): Promise<void>;
}

export const POINTER = 'latest.json';
export const EPOCH_DIR = /^epoch-([1-9][0-9]*)$/;
export const pointerSchema = z.object({ epoch: z.int().positive(), dir: z.string().regex(EPOCH_DIR) });
export type CheckpointPointer = z.infer<typeof pointerSchema>;

const optimizerSpecsSchema = z.array(
  z.object({
    name: z.string(),
    shape: z.array(z.int().min(0)),
    dtype: z.enum(['float32', 'int32', 'bool', 'complex64', 'string']),
  }),
);

/** Throws a RangeError unless `jobId` is a job id: no path or key is built from anything else. */
export function checkJobId(jobId: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(jobId)) throw new RangeError(`not a job id: ${JSON.stringify(jobId)}`);
  return jobId;
}

/** The epoch a checkpoint directory is named for; NaN for other names. */
export function epochOf(name: string): number {
  return Number(EPOCH_DIR.exec(name)?.[1] ?? NaN);
}

/** Writes one checkpoint's files into the new directory `dir`, each fsynced. */
export async function writeCheckpointFiles(dir: string, state: CheckpointState): Promise<void> {
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
}

/** The checkpoint files in `dir`, checked whole; throws on anything torn. */
export async function readCheckpointFiles(dir: string, epoch: number): Promise<Checkpoint> {
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
