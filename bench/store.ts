/**
 * Model store speed (issue 16): publishing and loading the seed CNN on the directory store (a temp
 * dir) and on the S3 store (s3rver as its own process on 127.0.0.1, numbers from Redis), in the
 * same run and taking turns, so both see the same machine. Also what one S3 claim costs: the
 * Redis counter and the claim marker's PUT, and the two listings that give its floor. Medians of
 * `--reps` after one warm-up each. Needs Redis at REDIS_URL. Prints JSON.
 *
 *   npm run bench:store -- [--reps 20]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { buildModel } from '../src/ml/architectures.js';
import { initBackend } from '../src/ml/backend/index.js';
import { modelFiles } from '../src/ml/model-io.js';
import { FileModelStore } from '../src/registry/file-model-store.js';
import type { ModelStore } from '../src/registry/model-store.js';
import { S3ModelStore } from '../src/registry/s3-model-store.js';
import { RedisVersionClaims } from '../src/registry/version-claims.js';
import { S3Objects } from '../src/store/s3-objects.js';
import { freePort } from '../test/helpers/redis-server.js';
import { S3_CREDENTIALS } from '../test/helpers/s3-server.js';
import { trainingReportFixture } from '../test/helpers/training-report.js';
import { until } from '../test/helpers/until.js';
import { printReport } from './report.js';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '20' } } });
const reps = Number(args.reps);
if (!(Number.isInteger(reps) && reps > 0)) throw new RangeError(`--reps must be >= 1, got ${args.reps}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (ms: number) => Math.round(ms * 100) / 100;
async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

await initBackend('wasm');
const dir = await mkdtemp(join(tmpdir(), 'bench-store-'));
const bucket = 'bench-store';
const port = await freePort();
const s3rverBin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
const server = spawn(
  process.execPath,
  [
    s3rverBin,
    '-d',
    join(dir, 's3'),
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-s',
    '--configure-bucket',
    bucket,
  ],
  { stdio: 'ignore' },
);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2 });
const counterKey = `bench-store-${process.pid}:model-versions`;
const objects = S3Objects.open(
  {
    kind: 's3',
    bucket,
    prefix: 'bench/',
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    cacheDir: join(dir, 'cache'),
  },
  { credentials: S3_CREDENTIALS },
);
try {
  await until('s3rver to answer', () =>
    objects.probeList('').then(
      () => true,
      () => undefined,
    ),
  );
  const claims = new RedisVersionClaims(() => redis, counterKey);
  const stores: Record<'file' | 's3', ModelStore> = {
    file: new FileModelStore(join(dir, 'models')),
    s3: new S3ModelStore(objects, claims),
  };
  const model = buildModel('seed', 1);
  const report = trainingReportFixture();
  const { modelJson, weights } = await modelFiles(model);
  const samples = {
    file: { publish: [] as number[], load: [] as number[] },
    s3: { publish: [] as number[], load: [] as number[] },
  };

  for (let rep = 0; rep <= reps; rep++) {
    for (const kind of ['file', 's3'] as const) {
      const store = stores[kind];
      let version = 0;
      const publishMs = await timed(async () => {
        version = (await store.publish(model, report, { jobId: null })).version;
      });
      const loadMs = await timed(async () => (await store.load(version)).dispose());
      // Round 0 warms up (JIT, connections, directories).
      if (rep === 0) continue;
      samples[kind].publish.push(publishMs);
      samples[kind].load.push(loadMs);
    }
  }
  model.dispose();

  // One claim as S3ModelStore makes it, step by step; numbers far above the published ones.
  const claim = { floorLists: [] as number[], redisClaim: [] as number[], markerPut: [] as number[] };
  for (let rep = 0; rep <= reps; rep++) {
    const floorMs = await timed(() =>
      Promise.all([objects.children('models/.claims/'), objects.children('models/')]),
    );
    let version = 0;
    const redisMs = await timed(async () => (version = await claims.claim(1_000_000)));
    const markerMs = await timed(() =>
      objects.put(`models/.claims/${version}`, 'bench\n', { ifAbsent: true }),
    );
    if (rep === 0) continue;
    claim.floorLists.push(floorMs);
    claim.redisClaim.push(redisMs);
    claim.markerPut.push(markerMs);
  }

  const summary = (xs: number[]) => ({
    medianMs: round(median(xs)),
    minMs: round(Math.min(...xs)),
    maxMs: round(Math.max(...xs)),
  });
  const file = { publish: summary(samples.file.publish), load: summary(samples.file.load) };
  const s3 = { publish: summary(samples.s3.publish), load: summary(samples.s3.load) };
  printReport('store', {
    reps,
    model: { architecture: 'seed', modelJsonBytes: modelJson.length, weightsBytes: weights.length },
    file,
    s3,
    s3OverFile: {
      publish: Number((s3.publish.medianMs / file.publish.medianMs).toFixed(2)),
      load: Number((s3.load.medianMs / file.load.medianMs).toFixed(2)),
    },
    s3Claim: {
      redisClaimPlusMarkerMs: round(median(claim.redisClaim.map((ms, i) => ms + claim.markerPut[i]!))),
      redisClaim: summary(claim.redisClaim),
      markerPut: summary(claim.markerPut),
      floorLists: summary(claim.floorLists),
    },
  });
} finally {
  objects.close();
  await redis.del(counterKey).catch(() => undefined);
  await redis.quit();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await rm(dir, { recursive: true, force: true });
}
