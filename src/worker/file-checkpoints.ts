import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, syncDirectory, writeDurably } from '../fs-durable.js';
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

/**
 * Checkpoints in a directory the workers share: `<root>/<job>/epoch-<N>/` and `latest.json`,
 * renamed into place last. Every file is fsynced before the rename that points at it.
 */
export class FileCheckpoints implements Checkpoints {
  constructor(
    private readonly root: string,
    private readonly options: CheckpointsOptions = {},
  ) {}

  async save(jobId: string, state: CheckpointState): Promise<void> {
    const jobDir = this.jobDir(jobId);
    const epoch = state.history.length;
    const name = `epoch-${epoch}`;
    const dir = join(jobDir, name);
    const previous = (await this.pointer(jobDir, () => undefined))?.dir;
    await rm(dir, { recursive: true, force: true });
    await writeCheckpointFiles(dir, state);
    const tmp = join(jobDir, `${POINTER}.tmp`);
    await rm(tmp, { force: true });
    await writeDurably(tmp, Buffer.from(JSON.stringify({ epoch, dir: name })));
    await rename(tmp, join(jobDir, POINTER));
    await syncDirectory(jobDir);
    await this.removeAllBut(jobDir, [name, previous]);
  }

  async load(jobId: string): Promise<Checkpoint | null> {
    const jobDir = this.jobDir(jobId);
    const named = (await this.pointer(jobDir, (problem) => this.options.onCorrupt?.(problem)))?.dir;
    const others = (await readdir(jobDir).catch(() => []))
      .map((entry) => ({ entry, epoch: epochOf(entry) }))
      .filter((d) => Number.isInteger(d.epoch) && d.entry !== named)
      .sort((a, b) => b.epoch - a.epoch)
      .map((d) => d.entry);
    for (const name of named ? [named, ...others] : others) {
      try {
        return await readCheckpointFiles(join(jobDir, name), epochOf(name));
      } catch (err) {
        this.options.onCorrupt?.(`checkpoint ${join(jobDir, name)} is unreadable: ${errorMessage(err)}`);
      }
    }
    return null;
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.jobDir(jobId), { recursive: true, force: true });
  }

  /** What `latest.json` says; null when it is missing, and when it is torn (told to `onTorn`). */
  private async pointer(
    jobDir: string,
    onTorn: (problem: string) => void,
  ): Promise<CheckpointPointer | null> {
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
    return join(this.root, checkJobId(jobId));
  }

  private async removeAllBut(jobDir: string, keep: (string | undefined)[]): Promise<void> {
    await mkdir(jobDir, { recursive: true });
    for (const entry of await readdir(jobDir)) {
      if (!keep.includes(entry) && entry !== POINTER)
        await rm(join(jobDir, entry), { recursive: true, force: true });
    }
  }
}
