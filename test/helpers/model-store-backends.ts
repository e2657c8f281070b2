import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import type { ModelMetadata, ModelStore, PublishOptions } from '../../src/registry/model-store.js';
import { S3ModelStore } from '../../src/registry/s3-model-store.js';
import { RedisVersionClaims } from '../../src/registry/version-claims.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import type { Gate } from './gate.js';
import { REDIS_URL, useRedisPrefix } from './redis.js';
import { S3_CREDENTIALS, S3Server } from './s3-server.js';
import { useTempDir } from './temp-dir.js';

/**
 * Faults and holds injected into a store by subclassing its real parts (never a mock): the store
 * still reads and writes its real disk or S3 server. Fields may be set after the store is opened.
 */
export interface StoreHooks {
  /** The next publication fails once its number is claimed, before its version is visible. */
  failAfterClaim?: boolean;
  /** Publications wait here with their model.json already stored and their version not visible. */
  holdPublish?: Gate;
  /** Loads wait here between reading the version's metadata and reading its model files. */
  holdLoad?: Gate;
  /** Removals wait here once begun: on S3, after metadata.json is deleted (the version invisible). */
  holdRemove?: Gate;
}

/** One backend of the model store, as the contract suite drives it. */
export interface ModelStoreBackend {
  readonly name: string;
  /** Registers what the backend needs for a describe block (servers, Redis, temp dirs). */
  useSuite(): void;
  /** Points later open() calls at a new, empty store. */
  fresh(): void;
  /** One more store instance on the current store, with clients of its own. */
  open(hooks?: StoreHooks): ModelStore;
  /** Every file or object stored, relative to the models root ('3/weights.bin', '.claims/3'). */
  stored(): Promise<string[]>;
  /** What instances from open() did to the store: the requests they sent (S3), the files they left (directory). */
  traffic(): Promise<string[]>;
  /** Replaces version N's metadata.json with `text` (creating the version's place if need be). */
  writeMetadata(version: number, text: string): Promise<void>;
  /** Leaves what a publisher killed mid-publication leaves, the way this backend leaves it. */
  leaveCrashLeftover(): Promise<void>;
  /** Makes everything stored look `ms` older. */
  age(ms: number): Promise<void>;
  /** Deletes the shared number counter (Redis); absent where the store itself is the counter. */
  forgetCounter?: () => Promise<void>;
}

/** FileModelStore with the hooks of StoreHooks, on its real directory. */
class HookedFileModelStore extends FileModelStore {
  constructor(
    root: string,
    private readonly hooks: StoreHooks,
  ) {
    super(root);
  }

  // publish() first asks for a version's directory once it has claimed the number: fail there.
  override dir(version: number): string {
    if (this.hooks.failAfterClaim) {
      this.hooks.failAfterClaim = false;
      throw new Error('injected: the store failed after the number was claimed');
    }
    return super.dir(version);
  }

  override publish(...[model, report, options]: Parameters<FileModelStore['publish']>) {
    const held: PublishOptions = {
      ...options,
      // Here the model is written (in .staging) and the version is not yet visible.
      beforeVisible: async () => {
        await this.hooks.holdPublish?.pass();
        await options.beforeVisible?.();
      },
    };
    return super.publish(model, report, held);
  }

  // load() reads the metadata through get(), then the model files.
  override async get(version: number): Promise<ModelMetadata | null> {
    const metadata = await super.get(version);
    await this.hooks.holdLoad?.pass();
    return metadata;
  }

  // A removal is one rename: there is no later point at which it is under way.
  override async remove(version: number): Promise<boolean> {
    await this.hooks.holdRemove?.pass();
    return super.remove(version);
  }
}

export function fileBackend(): ModelStoreBackend {
  let dir = '';
  let root = '';
  let made = 0;
  return {
    name: 'FileModelStore',
    useSuite() {
      dir = useTempDir('model-store-contract-file');
    },
    fresh() {
      root = path.join(dir, `store-${++made}`);
    },
    open: (hooks = {}) => new HookedFileModelStore(root, hooks),
    stored: () => filesUnder(root),
    traffic: () => filesUnder(root),
    async writeMetadata(version, text) {
      await mkdir(path.join(root, String(version)), { recursive: true });
      await writeFile(path.join(root, String(version), 'metadata.json'), text);
    },
    async leaveCrashLeftover() {
      await mkdir(path.join(root, '.staging', 'torn'), { recursive: true });
      await writeFile(path.join(root, '.staging', 'torn', 'model.json'), '{}');
    },
    age: (ms) => ageAll(root, ms),
  };
}

/** S3Objects with the hooks of StoreHooks, sending its real requests to the server; logs them. */
class HookedObjects extends S3Objects {
  constructor(
    base: S3Objects,
    private readonly hooks: StoreHooks,
    private readonly log: string[],
  ) {
    super(base.client, base.bucket, base.prefix);
  }

  override async get(name: string): Promise<Buffer | null> {
    this.log.push(`GET ${name}`);
    if (/\/(model\.json|weights\.bin)$/.test(name)) await this.hooks.holdLoad?.pass();
    return super.get(name);
  }

  override async put(name: string, body: Uint8Array | string, options?: { ifAbsent?: boolean }) {
    this.log.push(`PUT ${name}`);
    if (name.endsWith('/weights.bin') && this.hooks.failAfterClaim) {
      this.hooks.failAfterClaim = false;
      throw new Error('injected: the store failed after the number was claimed');
    }
    // metadata.json comes once the files are stored: the last moment before the version is visible.
    if (name.endsWith('/metadata.json')) await this.hooks.holdPublish?.pass();
    return super.put(name, body, options);
  }

  override async remove(names: readonly string[]): Promise<void> {
    this.log.push(`DELETE ${names.join(' ')}`);
    if (!names.some((name) => name.endsWith('/metadata.json'))) await this.hooks.holdRemove?.pass();
    return super.remove(names);
  }

  override async children(dir: string): Promise<string[]> {
    this.log.push(`LIST ${dir}`);
    return super.children(dir);
  }

  override async list(dir: string) {
    this.log.push(`LIST ${dir}**`);
    return super.list(dir);
  }
}

class LoggedClaims extends RedisVersionClaims {
  constructor(
    redis: Redis,
    key: string,
    private readonly log: string[],
  ) {
    super(() => redis, key);
  }

  override async claim(floor: number): Promise<number> {
    this.log.push(`CLAIM ${floor}`);
    return super.claim(floor);
  }
}

/** S3ModelStore on an s3rver the suite starts, numbers from RedisVersionClaims on the real Redis. */
export function s3Backend(): ModelStoreBackend {
  let dir = '';
  let server: S3Server | undefined;
  let redisKeys = '';
  let inspect: S3Objects | undefined;
  let redis: Redis | undefined;
  let made = 0;
  let prefix = '';
  let counterKey = '';
  let log: string[] = [];
  const opened: { objects: S3Objects; redis: Redis }[] = [];
  const location = () => server!.location(prefix, path.join(dir, 'cache'));
  const base = () => (inspect ??= S3Objects.open(location(), { credentials: S3_CREDENTIALS }));

  return {
    name: 'S3ModelStore',
    useSuite() {
      dir = useTempDir('model-store-contract-s3');
      const shared = useRedisPrefix('model-store-contract');
      redis = shared.redis;
      redisKeys = shared.prefix;
      beforeAll(async () => {
        server = await S3Server.start(path.join(dir, 's3'));
      });
      afterEach(async () => {
        for (const { objects, redis } of opened.splice(0)) {
          objects.close();
          await redis.quit();
        }
        inspect?.close();
        inspect = undefined;
      });
      afterAll(async () => {
        await server?.stop();
      });
    },
    fresh() {
      prefix = `store-${++made}/`;
      counterKey = `${redisKeys}:store-${made}:model-versions`;
      log = [];
    },
    open(hooks = {}) {
      const objects = new HookedObjects(
        S3Objects.open(location(), { credentials: S3_CREDENTIALS }),
        hooks,
        log,
      );
      const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
      opened.push({ objects, redis: client });
      return new S3ModelStore(objects, new LoggedClaims(client, counterKey, log));
    },
    async stored() {
      return (await base().list('models/')).map((o) => o.name.slice('models/'.length)).sort();
    },
    traffic: async () => [...log],
    async writeMetadata(version, text) {
      await base().put(`models/${version}/metadata.json`, text);
    },
    async leaveCrashLeftover() {
      // Claimed, one file uploaded, then killed: a number far above the rest, as in the file store.
      await base().put('models/.claims/90', 'claimed\n');
      await base().put('models/90/model.json', '{}');
    },
    // s3rver reports an object's file mtime as its LastModified.
    age: (ms) => ageAll(path.join(server!.dir, server!.bucket, prefix), ms),
    async forgetCounter() {
      await redis!.del(counterKey);
    },
  };
}

/** Files under `root`, relative to it with '/' between parts, sorted; none when it does not exist. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

async function ageAll(root: string, ms: number): Promise<void> {
  const then = new Date(Date.now() - ms);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const e of entries) await utimes(path.join(e.parentPath, e.name), then, then);
}
