/**
 * /predict under load, with micro-batching on and off: the API runs as its own process (as in
 * production) and autocannon drives it from this one with single-image requests, at a fixed rate
 * and at full load. Also the in-process latency of one prediction, next to the seed's PyTorch
 * in the same run. Needs Redis at REDIS_URL. Prints JSON.
 *
 *   npm run bench:predict -- [--seconds 10] [--rate 500]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { initBackend } from '../src/ml/backend/index.js';
import { loadDataset, resolveDatasetDir } from '../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../src/ml/image-shape.js';
import { predictBatch } from '../src/ml/predict.js';
import { runTraining } from '../src/ml/run-training.js';
import { trainParamsSchema } from '../src/ml/train-params.js';
import { FileModelStore } from '../src/registry/file-model-store.js';
import { printReport } from './report.js';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '10' }, rate: { type: 'string', default: '500' } },
});
const seconds = Number(args.seconds);
const rate = Number(args.rate);

const backend = await initBackend('wasm');
const dir = await mkdtemp(join(tmpdir(), 'bench-predict-'));
const store = new FileModelStore(join(dir, 'models'));
const { model, report } = await runTraining(
  trainParamsSchema.parse({ epochs: 1, trainSize: 10_000, validationSize: 0 }),
  {
    backend,
  },
);
await store.publish(model, report, { jobId: null });

// In-process: one image through the seed CNN, median of 2,000 after warm-up.
const test = (await loadDataset('mnist')).test;
const image = Float32Array.from(test.images.subarray(0, IMAGE_PIXELS), (v) => v / 255);
for (let i = 0; i < 200; i++) predictBatch(model, [image]);
const samples: number[] = [];
for (let i = 0; i < 2000; i++) {
  const t = performance.now();
  predictBatch(model, [image]);
  samples.push((performance.now() - t) * 1000);
}
samples.sort((a, b) => a - b);
const oneImageMicros = samples[1000]!;
model.dispose();

const body = JSON.stringify({ image: Array.from(image, (v) => Math.round(v * 1000) / 1000) });
const port = 3900 + (process.pid % 90);
const configurations = [
  { name: 'micro-batching on (max 64, 1 ms)', env: { PREDICT_MAX_BATCH: '64', PREDICT_MAX_DELAY_MS: '1' } },
  {
    name: 'micro-batching on (max 64, same tick only)',
    env: { PREDICT_MAX_BATCH: '64', PREDICT_MAX_DELAY_MS: '0' },
  },
  { name: 'micro-batching off', env: { PREDICT_MAX_BATCH: '1', PREDICT_MAX_DELAY_MS: '0' } },
];
const results = [];
for (const configuration of configurations) {
  const api = await startApi(configuration.env);
  try {
    const oneConnection = await load({ connections: 1 });
    const atRate = await load({ connections: 32, overallRate: rate });
    const paced = await pacedLoad(rate);
    const full = await load({ connections: 64 });
    results.push({
      configuration: configuration.name,
      oneConnection,
      [`at${rate}PerSecond`]: atRate,
      [`at${rate}PerSecondEvenlyPaced`]: paced,
      fullLoad: full,
    });
  } finally {
    api.kill('SIGTERM');
    await new Promise((resolve) => api.once('exit', resolve));
  }
}
await rm(dir, { recursive: true, force: true });
await removeRedisKeys(`bench-predict-${process.pid}`);

const torch = await torchPredict();
printReport('predict', {
  inProcess: {
    oneImageMicros,
    pytorchOneImageMicros: torch?.predictOneImageMicros ?? null,
    ratio: torch ? oneImageMicros / torch.predictOneImageMicros : null,
  },
  http: results,
});

async function load(options: { connections: number; overallRate?: number }) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    duration: seconds,
    ...options,
  });
  return {
    connections: options.connections,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/**
 * An open-loop load at an even rate: request i is sent at start + i/rate whether or not earlier
 * ones have answered (so a slow server cannot slow the client down and hide its queue).
 * autocannon's overallRate sends each second's quota in bursts, which measures burst handling.
 */
async function pacedLoad(perSecond: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const total = perSecond * seconds;
  const latencies: number[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now() + 50;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    pending.push(
      post(agent).then(
        () => void latencies.push(performance.now() - sent),
        () => void errors++,
      ),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 100) / 100;
  return { requests: total, errors, latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) } };
}

function post(agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/predict',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function startApi(env: Record<string, string>): Promise<ChildProcess> {
  const api = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
    env: {
      ...process.env,
      ...env,
      PORT: String(port),
      MODEL_DIR: join(dir, 'models'),
      REDIS_PREFIX: `bench-predict-${process.pid}`,
      TF_BACKEND: 'wasm',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/models`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return api;
    await new Promise((r) => setTimeout(r, 100));
  }
  api.kill('SIGKILL');
  throw new Error('the API did not start');
}

async function removeRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
}

async function torchPredict(): Promise<{ predictOneImageMicros: number } | null> {
  try {
    const { stdout } = await promisify(execFile)('/usr/bin/python3', [
      'bench/seed_torch.py',
      ...[
        '--epochs',
        '1',
        '--train-size',
        '5000',
        '--threads',
        '1',
        '--predict',
        '--data',
        resolveDatasetDir('mnist'),
      ],
    ]);
    return JSON.parse(stdout) as { predictOneImageMicros: number };
  } catch (error) {
    console.error(`PyTorch reference skipped: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
}
