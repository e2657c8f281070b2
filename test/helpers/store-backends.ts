import { lstat, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { isErrno } from '../../src/fs-durable.js';
import { openStores, type Stores } from '../../src/store/open-stores.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import type { StoreLocation } from '../../src/store/store-location.js';
import { S3_CREDENTIALS, S3Server } from './s3-server.js';
import { useTempDir } from './temp-dir.js';

/** The store backends a contract suite runs against (`describe.each(STORE_KINDS)`). */
export const STORE_KINDS = ['directory', 's3'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/**
 * One fresh, empty store of a backend, and the raw access a test needs to look behind it (what is
 * stored, what is left locally) and to tear or age what it holds. Names are the store's own:
 * `datasets/<id>/dataset.json`, `checkpoints/<job>/latest.json`.
 */
export interface StoreSpace {
  readonly kind: StoreKind;
  readonly stores: Stores;
  /** Every file (directory) or object (S3) whose name starts with `dir`, visible or not. */
  stored(dir: string): Promise<string[]>;
  /** What uploads, deletions and transfers in progress keep locally: the staging and trash dirs' entries. */
  local(): Promise<string[]>;
  /** The local dir under which a dataset's files are read for training (the store, or S3's cache). */
  readonly localRoot: string;
  read(name: string): Promise<Buffer>;
  write(name: string, bytes: Uint8Array | string): Promise<void>;
  delete(name: string): Promise<void>;
  /** Makes a stored file or object look last written at `when` (as a crash long ago left it). */
  age(name: string, when: Date): Promise<void>;
  /** S3 only: the objects under the store's prefix, and the local cache dir. */
  readonly s3?: { objects: S3Objects; cacheDir: string };
  close(): Promise<void>;
}

/**
 * A backend for the calling describe block: a temp dir, and for S3 an s3rver on 127.0.0.1 the block
 * starts before its first test and stops after its last. `space()` opens a fresh store in it.
 */
export function useStoreBackend(kind: StoreKind, name: string): { space(): StoreSpace } {
  const dir = useTempDir(`${name}-${kind}`);
  let server: S3Server | undefined;
  const opened: StoreSpace[] = [];
  beforeAll(async () => {
    if (kind === 's3') server = await S3Server.start(join(dir, 's3'));
  });
  afterAll(async () => {
    for (const space of opened.splice(0)) await space.close();
    await server?.stop();
  });
  let made = 0;
  return {
    space() {
      const name = `space-${++made}`;
      const space = kind === 's3' ? s3Space(server!, name, join(dir, name)) : directorySpace(join(dir, name));
      opened.push(space);
      return space;
    },
  };
}

function directorySpace(root: string): StoreSpace {
  const location: StoreLocation = {
    kind: 'file',
    modelDir: join(root, 'models'),
    checkpointDir: join(root, 'checkpoints'),
    datasetDir: join(root, 'datasets'),
    feedbackDir: join(root, 'feedback'),
  };
  const hidden = (name: string) => name.split('/').some((part) => part === '.staging' || part === '.trash');
  return {
    kind: 'directory',
    stores: openStores({ location }),
    localRoot: location.datasetDir,
    stored: async (dir) =>
      (await walk(root, { dirs: false })).filter((name) => name.startsWith(dir) && !hidden(name)),
    local: async () =>
      (await walk(root, { dirs: true })).filter(
        (name) => hidden(name) && !/(^|\/)\.(staging|trash)$/.test(name),
      ),
    read: (name) => readFile(join(root, name)),
    write: async (name, bytes) => {
      await mkdir(dirname(join(root, name)), { recursive: true });
      await writeFile(join(root, name), bytes);
    },
    delete: (name) => rm(join(root, name), { recursive: true }),
    age: (name, when) => utimes(join(root, name), when, when),
    close: () => Promise.resolve(),
  };
}

function s3Space(server: S3Server, name: string, cacheDir: string): StoreSpace {
  const location = server.location(`${name}/`, cacheDir);
  const objects = S3Objects.open(location, { credentials: S3_CREDENTIALS });
  const stores = openStores({ location }, { credentials: S3_CREDENTIALS });
  const WORK = ['.staging', '.trash', 'datasets/.staging', 'datasets/.trash'];
  return {
    kind: 's3',
    stores,
    s3: { objects, cacheDir },
    close: async () => {
      objects.close();
      await stores.close();
    },
    localRoot: join(cacheDir, 'datasets'),
    stored: async (dir) => (await objects.list(dir)).map((o) => o.name),
    local: async () => {
      const found: string[] = [];
      for (const work of WORK)
        found.push(...(await walk(join(cacheDir, work), { dirs: true })).map((n) => `${work}/${n}`));
      return found;
    },
    read: async (name) => {
      const bytes = await objects.get(name);
      if (!bytes) throw new Error(`no object ${name}`);
      return bytes;
    },
    write: async (name, bytes) => {
      await objects.put(name, bytes);
    },
    delete: (name) => objects.remove([name]),
    age: (name, when) => server.age(objects.key(name), when),
  };
}

/** Every file (and directory, with `dirs`) under `root`, as '/'-separated paths relative to it. */
async function walk(root: string, { dirs }: { dirs: boolean }): Promise<string[]> {
  const found: string[] = [];
  async function visit(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const name of names) {
      const path = join(dir, name);
      const isDir = (await lstat(path)).isDirectory();
      if (dirs || !isDir) found.push(relative(root, path).split('\\').join('/'));
      if (isDir) await visit(path);
    }
  }
  await visit(root);
  return found.sort();
}
