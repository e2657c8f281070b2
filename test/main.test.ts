import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exited as exitOf } from './helpers/processes.js';
import { freePort } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
describe('npm start', () => {
  let dir: string;
  // Ports the system says are free: the private Redis of `npm start` goes on one, the API on the
  // other. Ports derived from the process id once landed on RabbitMQ's epmd (4369), and the API,
  // unable to listen, was restarted until the test timed out.
  let redisPort: number;
  let apiPort: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'main-'));
    redisPort = await freePort();
    do apiPort = await freePort();
    while (apiPort === redisPort);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const env = (extra: Record<string, string> = {}) => ({
    ...process.env,
    MALLOC_ARENA_MAX: undefined,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_DATA_DIR: join(dir, 'redis'),
    REDIS_PREFIX: `test-main-${process.pid}`,
    MODEL_DIR: join(dir, 'models'),
    CHECKPOINT_DIR: join(dir, 'checkpoints'),
    PORT: String(apiPort),
    WORKERS: '1',
    LOG_LEVEL: 'warn',
    ...extra,
  });

  // Start-up takes a few seconds on a quiet machine and far longer on a loaded one: the tests wait
  // for it without a bound of their own (the test's timeout is the only net).
  const STARTUP_PATIENCE_MS = 300_000;
  const started: ChildProcess[] = [];
  const start = (extra: Record<string, string>, options: Parameters<typeof spawn>[2] = {}) => {
    const main = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: env(extra), ...options });
    started.push(main);
    return main;
  };

  /** True once /readyz answers 200; false if the process exits first. */
  async function becomesReady(main: ChildProcess): Promise<boolean> {
    for (;;) {
      if (main.exitCode !== null || main.signalCode !== null) return false;
      const ready = await fetch(`http://127.0.0.1:${apiPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return true;
      await sleep(100);
    }
  }

  // A test that failed half-way must not leave its processes, or its private Redis, to the next.
  afterEach(() => {
    for (const main of started.splice(0)) {
      if (main.exitCode !== null || main.signalCode !== null) continue;
      spawnSync('pkill', ['-KILL', '-P', String(main.pid)]);
      main.kill('SIGKILL');
    }
    spawnSync('redis-cli', ['-p', String(redisPort), 'shutdown', 'nosave']);
  });

  it(
    'when no Redis answers, then it starts a private one with persistence, serves /readyz, and stops everything on SIGTERM',
    { timeout: STARTUP_PATIENCE_MS },
    async () => {
      const main = start({}, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      main.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // What it said, should it exit instead of becoming ready.
      expect(await becomesReady(main), stderr).toBe(true);
      expect(await readdir(join(dir, 'redis'))).toContain('appendonlydir');
      // The API and the worker run with 2 glibc malloc arenas (see src/main.ts).
      const children = spawnSync('pgrep', ['-P', String(main.pid)], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean);
      const nodeEnvs: string[][] = [];
      for (const pid of children) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.startsWith(process.execPath))
          nodeEnvs.push((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0'));
      }
      expect(nodeEnvs).toHaveLength(2);
      for (const environ of nodeEnvs) expect(environ).toContain('MALLOC_ARENA_MAX=2');
      const exited = exitOf(main);
      main.kill('SIGTERM');
      expect(await exited).toBe(0);
      const ping = spawnSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8' });
      expect(ping.stdout.trim()).not.toBe('PONG');
    },
  );

  it(
    'when Ctrl-C reaches the whole process group, then the API and workers stop cleanly before the private Redis, and it exits 0',
    { timeout: STARTUP_PATIENCE_MS },
    async () => {
      // Its own process group, as a terminal gives `npm start`.
      const main = start({ LOG_LEVEL: 'info' }, { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      let out = '';
      main.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      expect(await becomesReady(main)).toBe(true);
      // A process still loading has no signal handler yet and would die of the SIGINT: wait for the
      // worker too, which starts beside the API and may be ready later.
      while (!out.includes('training worker ready')) await sleep(50);
      const exited = exitOf(main);
      process.kill(-main.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      // Every process logged its own clean stop; none died of the second SIGINT.
      const lines = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; process?: string; code?: number; signal?: string });
      const messages = lines.map((l) => l.msg);
      const stopped = lines.filter((l) => l.msg === 'stopped');
      expect(stopped.map((l) => l.process).sort()).toEqual(['api', 'worker-1']);
      for (const line of stopped) expect(line).toMatchObject({ code: 0, signal: null });
      expect(messages).toContain('stopping: no new connections, finishing requests in flight');
      expect(messages).toContain('stopping: current jobs finish or hand over');
      expect(messages).not.toContain('a process exited; starting it again in 1 s');
      const ping = spawnSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8' });
      expect(ping.stdout.trim()).not.toBe('PONG');
    },
  );

  it(
    'when no Redis answers and redis-server is not installed, then it exits 1 saying how to get Redis',
    { timeout: STARTUP_PATIENCE_MS },
    async () => {
      const main = start({ PATH: '/nonexistent' }, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      main.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => main.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr).toContain('redis-server is not installed');
      expect(stderr).toContain('REDIS_URL');
    },
  );
});
