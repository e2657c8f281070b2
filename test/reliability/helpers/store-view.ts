import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Objects } from '../../../src/store/s3-objects.js';
import { sleep } from '../../helpers/until.js';

/** What a reader of the store sees at one moment. */
export interface StoreSnapshot {
  /** Versions visible and complete, ascending. */
  versions: number[];
  /** Versions visible but not complete: a broken invariant. */
  partial: string[];
}

/**
 * The model store as the scenarios look at it, from outside the service: the same questions on a
 * directory store and on an S3 store, so a scenario asserts the same things on both.
 */
export interface StoreView {
  readonly kind: 'file' | 's3';
  inspect(): Promise<StoreSnapshot>;
  /** The job a visible version's metadata names (null for none). */
  jobOf(version: number): Promise<string | null>;
  /** Whether anything of the job's checkpoint is left in the store. */
  hasCheckpoint(jobId: string): Promise<boolean>;
  close(): void;
}

const VERSION_FILES = ['metadata.json', 'model.json', 'weights.bin'];
/** Written last: a version is visible once its metadata is there (src/registry/model-store.ts). */
const MARKER = 'metadata.json';
const VERSION = /^[1-9][0-9]*$/;

function snapshot(files: Map<string, Set<string>>, visible: (names: Set<string>) => boolean): StoreSnapshot {
  const versions: number[] = [];
  const partial: string[] = [];
  for (const [name, names] of files) {
    if (!VERSION.test(name) || !visible(names)) continue;
    const missing = VERSION_FILES.filter((f) => !names.has(f));
    if (missing.length) partial.push(`${name} (missing ${missing.join(', ')})`);
    else versions.push(Number(name));
  }
  return { versions: versions.sort((a, b) => a - b), partial };
}

/**
 * A directory store: a numbered directory is visible as soon as it exists (it is renamed into
 * place whole), so one with a file missing is partial.
 */
export class FileStoreView implements StoreView {
  readonly kind = 'file';

  constructor(
    readonly modelDir: string,
    readonly checkpointDir: string,
  ) {}

  inspect(): Promise<StoreSnapshot> {
    return Promise.resolve(this.inspectNow());
  }

  /** Synchronous, for callers that look from a file-system event. */
  inspectNow(): StoreSnapshot {
    const files = new Map<string, Set<string>>();
    for (const name of readdirOrNone(this.modelDir))
      files.set(name, new Set(readdirOrNone(join(this.modelDir, name))));
    return snapshot(files, () => true);
  }

  jobOf(version: number): Promise<string | null> {
    const text = readFileSync(join(this.modelDir, String(version), MARKER), 'utf8');
    return Promise.resolve((JSON.parse(text) as { jobId: string | null }).jobId);
  }

  hasCheckpoint(jobId: string): Promise<boolean> {
    return Promise.resolve(existsSync(join(this.checkpointDir, jobId)));
  }

  close(): void {}
}

/**
 * An S3 store, listed straight from the server (not through a scenario's fault proxy, so it can
 * look while the service cannot): a version is visible once its metadata object is there, and
 * objects of a version without it are a publication under way, not yet anyone's to read.
 */
export class S3StoreView implements StoreView {
  readonly kind = 's3';

  constructor(readonly objects: S3Objects) {}

  async inspect(): Promise<StoreSnapshot> {
    const files = new Map<string, Set<string>>();
    for (const { name } of await this.objects.list('models/')) {
      const [, version, file] = name.split('/');
      if (version === undefined || file === undefined) continue;
      if (!files.has(version)) files.set(version, new Set());
      files.get(version)!.add(file);
    }
    return snapshot(files, (names) => names.has(MARKER));
  }

  async jobOf(version: number): Promise<string | null> {
    const text = await this.objects.get(`models/${version}/${MARKER}`);
    if (!text)
      throw new Error(
        `no metadata for version ${version} in s3://${this.objects.bucket}/${this.objects.prefix}`,
      );
    return (JSON.parse(text.toString('utf8')) as { jobId: string | null }).jobId;
  }

  async hasCheckpoint(jobId: string): Promise<boolean> {
    return (await this.objects.list(`checkpoints/${jobId}/`)).length > 0;
  }

  close(): void {
    this.objects.close();
  }
}

function readdirOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Looks at the store every `everyMs` until stopped; what it saw, including every partial version. */
export function watchStore(view: StoreView, everyMs = 10) {
  const partial = new Set<string>();
  const seen = new Set<number>();
  const failures: string[] = [];
  let looks = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const now = await view.inspect();
        looks++;
        now.partial.forEach((p) => partial.add(p));
        now.versions.forEach((v) => seen.add(v));
      } catch (err) {
        // A look that failed saw nothing; kept, so a watcher that never worked does not pass.
        failures.push((err as Error).message);
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      if (looks === 0) throw new Error(`the store watcher never managed a look: ${failures[0]}`);
      return { looks, partial: [...partial], seen: [...seen].sort((a, b) => a - b) };
    },
  };
}
