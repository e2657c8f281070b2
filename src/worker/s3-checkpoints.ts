import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../fs-durable.js';
import { STAGING } from '../registry/store-cleanup.js';
import type { S3Objects } from '../store/s3-objects.js';
import { settleAll } from '../store/settle-all.js';
import {
  checkJobId,
  epochOf,
  pointerSchema,
  POINTER,
  readCheckpointFiles,
  writeCheckpointFiles,
  type Checkpoint,
  type CheckpointPointer,
  type Checkpoints,
  type CheckpointsOptions,
  type CheckpointState,
} from './checkpoints.js';

const CHECKPOINTS = 'checkpoints/';
/** A checkpoint's files have plain names: no object name makes a local path outside its dir. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Checkpoints in S3-compatible object storage: `checkpoints/<job>/epoch-<N>/<file>` and
 * `checkpoints/<job>/latest.json`, put last. Checkpoints are written and read through local
 * directories under `<cacheDir>/.staging/`, removed after each save or load (a crash's leftovers
 * there are the dataset store's cleanStaging() to delete).
 */
export class S3Checkpoints implements Checkpoints {
  constructor(
    readonly objects: S3Objects,
    readonly cacheDir: string,
    readonly options: CheckpointsOptions = {},
  ) {}

  async save(jobId: string, state: CheckpointState): Promise<void> {
    const jobDir = this.jobDir(jobId);
    const epoch = state.history.length;
    const name = `epoch-${epoch}`;
    const previous = (await this.pointer(jobDir, () => undefined))?.dir;
    const local = this.localDir();
    try {
      await writeCheckpointFiles(local, state);
      // A save of this epoch again (after a resume from the one before) replaces it whole.
      await this.objects.removeAll(`${jobDir}${name}/`);
      const files = await readdir(local);
      await settleAll(
        files.map((file) => this.objects.upload(`${jobDir}${name}/${file}`, join(local, file))),
      );
      await this.objects.put(jobDir + POINTER, JSON.stringify({ epoch, dir: name }));
    } finally {
      await rm(local, { recursive: true, force: true }).catch(() => undefined);
    }
    const stale = (await this.objects.list(jobDir))
      .map((o) => o.name)
      .filter((object) => {
        const dir = object.slice(jobDir.length).split('/')[0]!;
        return object !== jobDir + POINTER && dir !== name && dir !== previous;
      });
    await this.objects.remove(stale);
  }

  async load(jobId: string): Promise<Checkpoint | null> {
    const jobDir = this.jobDir(jobId);
    const named = (await this.pointer(jobDir, (problem) => this.options.onCorrupt?.(problem)))?.dir;
    const others = (await this.objects.children(jobDir))
      .filter((child) => child.endsWith('/'))
      .map((child) => child.slice(0, -1))
      .map((entry) => ({ entry, epoch: epochOf(entry) }))
      .filter((d) => Number.isInteger(d.epoch) && d.entry !== named)
      .sort((a, b) => b.epoch - a.epoch)
      .map((d) => d.entry);
    for (const name of named ? [named, ...others] : others) {
      const local = this.localDir();
      try {
        // What was uploaded; one missing (a torn save) fails readCheckpointFiles below.
        const files = (await this.objects.list(`${jobDir}${name}/`))
          .map((o) => o.name.slice(`${jobDir}${name}/`.length))
          .filter((file) => FILE_NAME.test(file));
        await settleAll(
          files.map((file) => this.objects.download(`${jobDir}${name}/${file}`, join(local, file))),
        );
        return await readCheckpointFiles(local, epochOf(name));
      } catch (err) {
        this.options.onCorrupt?.(
          `checkpoint ${this.where(jobDir + name)} is unreadable: ${errorMessage(err)}`,
        );
      } finally {
        await rm(local, { recursive: true, force: true }).catch(() => undefined);
      }
    }
    return null;
  }

  async remove(jobId: string): Promise<void> {
    await this.objects.removeAll(this.jobDir(jobId));
  }

  /** What `latest.json` says; null when it is missing, and when it is torn (told to `onTorn`). */
  private async pointer(
    jobDir: string,
    onTorn: (problem: string) => void,
  ): Promise<CheckpointPointer | null> {
    const bytes = await this.objects.get(jobDir + POINTER);
    if (!bytes) return null;
    try {
      return pointerSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch (err) {
      onTorn(`${this.where(jobDir + POINTER)} is unreadable: ${errorMessage(err)}`);
      return null;
    }
  }

  private jobDir(jobId: string): string {
    return `${CHECKPOINTS}${checkJobId(jobId)}/`;
  }

  private localDir(): string {
    return join(this.cacheDir, STAGING, `checkpoint-${randomUUID()}`);
  }

  private where(name: string): string {
    return `s3://${this.objects.bucket}/${this.objects.key(name)}`;
  }
}
