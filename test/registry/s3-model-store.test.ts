import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import type { ModelMetadata } from '../../src/registry/model-store.js';
import { S3ModelStore } from '../../src/registry/s3-model-store.js';
import { RedisVersionClaims } from '../../src/registry/version-claims.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import { gate, type Gate } from '../helpers/gate.js';
import { REDIS_URL, useRedisPrefix } from '../helpers/redis.js';
import { S3_CREDENTIALS, S3Server } from '../helpers/s3-server.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/**
 * What only the S3 backend has: its key layout, its claim markers, its probe. The promises both
 * backends keep are in model-store-contract.test.ts.
 */
const dir = useTempDir('s3-model-store');
const { redis, prefix: redisPrefix } = useRedisPrefix('s3-model-store');
let server: S3Server;
let made = 0;
let storePrefix: string;
let counterKey: string;
const opened: { objects: S3Objects; redis: Redis }[] = [];

beforeAll(async () => {
  await initBackend('wasm');
  server = await S3Server.start(path.join(dir, 's3'));
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  storePrefix = `store-${++made}/`;
  counterKey = `${redisPrefix}:store-${made}:model-versions`;
});

afterEach(async () => {
  for (const { objects, redis } of opened.splice(0)) {
    objects.close();
    await redis.quit();
  }
});

function openObjects(): S3Objects {
  return S3Objects.open(server.location(storePrefix, path.join(dir, 'cache')), {
    credentials: S3_CREDENTIALS,
  });
}

/** An S3ModelStore on `objects`, with a Redis connection of its own. */
function openStore(objects = openObjects()): S3ModelStore {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  opened.push({ objects, redis: client });
  return new S3ModelStore(objects, new RedisVersionClaims(() => client, counterKey));
}

async function publishSeed(store: S3ModelStore, seed: number): Promise<ModelMetadata> {
  const model = buildModel('seed', seed);
  const report = trainingReportFixture();
  const images = new Uint8Array(report.misclassified.length * IMAGE_PIXELS);
  try {
    return await store.publish(model, report, { jobId: `seed-${seed}`, misclassifiedImages: images });
  } finally {
    model.dispose();
  }
}

/**
 * Claim markers as a server that enforces `If-None-Match: *` writes them (AWS S3 does): s3rver
 * ignores the header, so the check is made here, one request before the PUT, which is enough for
 * a test whose publishers take turns. The first marker write waits at `holdMarker` when it is set.
 */
class EnforcingObjects extends S3Objects {
  holdMarker: Gate | undefined;

  constructor(base: S3Objects) {
    super(base.client, base.bucket, base.prefix);
  }

  override async put(name: string, body: Uint8Array | string, options: { ifAbsent?: boolean } = {}) {
    if (name.includes('/.claims/') && this.holdMarker) {
      const held = this.holdMarker;
      this.holdMarker = undefined;
      await held.pass();
    }
    if (options.ifAbsent && (await this.get(name)) !== null) return false;
    return super.put(name, body, options);
  }
}

describe('S3ModelStore layout', () => {
  it('when a version is published, then its files, its metadata and its claim marker are stored under the prefix', async () => {
    const store = openStore();
    await publishSeed(store, 1);
    const names = (await openObjects().list('')).map((o) => o.name).sort();
    expect(names).toEqual([
      'models/.claims/1',
      'models/1/metadata.json',
      'models/1/misclassified.png',
      'models/1/model.json',
      'models/1/weights.bin',
    ]);
    expect(store.location).toBe(`s3://${server.bucket}/${storePrefix}models/`);
  });

  it('when a version is removed, then everything of it goes but its claim marker', async () => {
    const store = openStore();
    await publishSeed(store, 1);
    expect(await store.remove(1)).toBe(true);
    expect((await openObjects().list('')).map((o) => o.name)).toEqual(['models/.claims/1']);
  });

  it('when cleanStaging() removes a leftover, then it answers its key prefix in the bucket', async () => {
    const store = openStore();
    await openObjects().put('models/4/weights.bin', 'half');
    // s3rver reports an object's file mtime as its LastModified: an hour ago.
    const anHourAgo = new Date(Date.now() - 3_600_000);
    const file = path.join(server.dir, server.bucket, storePrefix, 'models/4/weights.bin._S3rver_object');
    await utimes(file, anHourAgo, anHourAgo);
    expect(await store.cleanStaging(60_000)).toEqual([`${storePrefix}models/4/`]);
  });
});

describe('S3ModelStore claims', () => {
  it('when Redis lost its counter while a publisher held a number, then a server that enforces If-None-Match makes it claim another', async () => {
    const slow = new EnforcingObjects(openObjects());
    slow.holdMarker = gate();
    const held = slow.holdMarker;
    const first = publishSeed(openStore(slow), 1);
    await held.arrived;

    // Redis hands out 1 again, and the marker of the held publisher is not written yet.
    await redis.del(counterKey);
    const other = await publishSeed(openStore(new EnforcingObjects(openObjects())), 2);
    expect(other.version).toBe(1);

    held.open();
    const retried = await first;
    expect(retried.version).toBe(2);
    const reader = openStore();
    expect((await reader.list()).map((m) => [m.version, m.jobId])).toEqual([
      [1, 'seed-2'],
      [2, 'seed-1'],
    ]);
  });
});

describe('S3ModelStore probe', () => {
  it('when the server is down, then probe() rejects, and once it is back, probe() resolves', async () => {
    const store = openStore();
    await publishSeed(store, 1);
    await store.probe();
    await server.stop();
    try {
      await expect(store.probe()).rejects.toThrow();
    } finally {
      await server.resume();
    }
    await store.probe();
  });
});
