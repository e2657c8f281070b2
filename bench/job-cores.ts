/**
 * The seed recipe as REST jobs on the whole product, as `npm start` runs it, against the seed's
 * PyTorch script training the same epochs, in the same run. Each layout starts `src/main.ts` with
 * its own settings (worker processes, threads per job), posts one job and then two at once, and
 * times each from POST /jobs until GET /jobs/:id shows it finished. Needs Redis at REDIS_URL.
 * Prints one JSON object.
 *
 *   npm run bench:job-cores -- [--epochs 10] [--layouts 1x2,2x1,2x2] [--no-torch]
 *
 * A layout WxT runs W worker processes that train each job on T threads.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { resolveDatasetDir } from '../src/ml/data/dataset.js';
import { printReport } from './report.js';

const PYTHON = '/usr/bin/python3';
const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' },
    layouts: { type: 'string', default: '1x2,2x1,2x2' },
    'no-torch': { type: 'boolean', default: false },
  },
});
const epochs = Number(args.epochs);
const layouts = args.layouts.split(',').map((l) => {
  const [workers, threads] = l.split('x').map(Number);
  if (!workers || !threads) throw new Error(`--layouts: expected WxT like 1x2, got '${l}'`);
  return { workers, threads };
});

const results = [];
for (const layout of layouts) {
  const service = await startService(layout.workers, layout.threads);
  try {
    const alone = (await runJobs(service.url, 1))[0]!;
    const together = await runJobs(service.url, 2);
    results.push({
      layout: `${layout.workers}x${layout.threads}`,
      ...layout,
      oneJobSeconds: alone,
      twoJobsSeconds: together,
      twoJobsMeanSeconds: (together[0]! + together[1]!) / 2,
      twoJobsLastSeconds: Math.max(...together),
    });
  } finally {
    await service.stop();
  }
}
const torch = args['no-torch'] ? null : { threads1: await runTorch(1), threads2: await runTorch(2) };
printReport('job-cores', {
  epochs,
  layouts: results,
  pytorch: torch,
  ratios: torch
    ? results.map((r) => ({
        layout: r.layout,
        oneJobOverPytorch2Threads: torch.threads2 ? r.oneJobSeconds / torch.threads2 : null,
        oneJobOverPytorch1Thread: torch.threads1 ? r.oneJobSeconds / torch.threads1 : null,
      }))
    : null,
});

async function startService(workers: number, threads: number) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-cores-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_PREFIX: `bench-cores-${process.pid}-${workers}x${threads}`,
      MODEL_DIR: join(dir, 'models'),
      CHECKPOINT_DIR: join(dir, 'checkpoints'),
      WORKERS: String(workers),
      TRAINING_THREADS: String(threads),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Timed from the POST: wait until every worker has said it is ready.
  await new Promise<void>((resolve, reject) => {
    let ready = 0;
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines)
        if (line.includes('"training worker ready"') && ++ready === workers) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the service exited (code ${code}) before it was ready`)));
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Posts `count` seed-recipe jobs at once; resolves to each one's seconds from POST to finished. */
async function runJobs(url: string, count: number): Promise<number[]> {
  const started = performance.now();
  const ids = await Promise.all(
    Array.from({ length: count }, async () => {
      const res = await fetch(`${url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ epochs }),
      });
      if (res.status !== 202) throw new Error(`POST /jobs answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    }),
  );
  return Promise.all(
    ids.map(async (id) => {
      for (;;) {
        const view = (await (await fetch(`${url}/jobs/${id}`)).json()) as {
          state: string;
          finishedAt: string | null;
        };
        if (view.finishedAt) {
          if (view.state !== 'completed') throw new Error(`job ${id} ended ${view.state}`);
          return (performance.now() - started) / 1000;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }),
  );
}

/** The seed's PyTorch script, whole (data loading, `epochs` epochs, evaluation), in seconds. */
async function runTorch(threads: number): Promise<number | null> {
  if (!existsSync(PYTHON)) return null;
  const started = performance.now();
  try {
    await promisify(execFile)(
      PYTHON,
      [
        'bench/seed_torch.py',
        '--epochs',
        String(epochs),
        '--threads',
        String(threads),
        '--data',
        resolveDatasetDir('mnist'),
      ],
      { maxBuffer: 1 << 20 },
    );
    return (performance.now() - started) / 1000;
  } catch (error) {
    console.error(`PyTorch reference skipped: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}
