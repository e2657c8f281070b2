import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkApiExposure, loadConfig, trainingThreads, withoutCredentials } from './config.js';
import { redisAnswers } from './redis-answers.js';
import { createLogger } from './logger.js';
import { runProcess } from './run-process.js';
import { siblingModule } from './thread-start.js';

/**
 * glibc's malloc arenas for the processes started here, unless MALLOC_ARENA_MAX is already set:
 * its default (8 per core) lets the API's memory grow with decoded images; 2 keeps it flat, with
 * /predict no slower (docs/RELIABILITY.md). Read by glibc at process start, so it is set for the
 * children; the Dockerfile sets it for the image.
 */
const GLIBC_ARENAS = '2';

/**
 * `npm start`: the whole product on one machine. The API and WORKERS training workers (one by
 * default, training each job on every core), each its own process; and, when nothing answers at
 * REDIS_URL but redis-server is installed, a private Redis with persistence under REDIS_DATA_DIR,
 * stopped again on exit.
 */
const entry = (name: string) => siblingModule(import.meta.url, name).pathname;

runProcess(async () => {
  const config = loadConfig();
  // The API would refuse and be restarted every second: refuse once, here.
  checkApiExposure(config);
  const logger = createLogger(config.LOG_LEVEL, 'main');
  const redis = (await redisAnswers(config.REDIS_URL))
    ? undefined
    : startPrivateRedis(config.REDIS_URL, config.REDIS_DATA_DIR);
  if (redis) {
    logger.info(
      { url: withoutCredentials(config.REDIS_URL), dir: config.REDIS_DATA_DIR },
      'started a private Redis',
    );
    if (!(await waitForRedis(config.REDIS_URL, redis))) {
      // Not left behind to answer the next start in its place.
      await stopChild(redis, 'SIGTERM', 5000);
      throw new Error(`the private Redis did not answer at ${withoutCredentials(config.REDIS_URL)}`);
    }
  }
  const children = new Set<ChildProcess>();
  let stopping = false;
  const start = (name: string, file: string) => {
    const child = spawn(process.execPath, [...process.execArgv, file], {
      stdio: 'inherit',
      env: {
        MALLOC_ARENA_MAX: GLIBC_ARENAS,
        ...process.env,
        // The cores are shared out between all the workers started here, not per worker.
        TRAINING_THREADS: String(trainingThreads(config, config.WORKERS)),
      },
    });
    children.add(child);
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) {
        logger.info({ process: name, code, signal }, 'stopped');
        return;
      }
      logger.error({ process: name, code, signal }, 'a process exited; starting it again in 1 s');
      setTimeout(() => !stopping && start(name, file), 1000).unref();
    });
  };
  start('api', entry('api/server'));
  for (let i = 0; i < config.WORKERS; i++) start(`worker-${i + 1}`, entry('worker/main'));
  logger.info({ workers: config.WORKERS, port: config.PORT }, 'digit-service started');

  return async (signal: string) => {
    stopping = true;
    logger.info({ signal }, 'stopping the API and the workers');
    // Workers may take their grace time to hand jobs back, the API its drain time.
    const patienceMs = Math.max(config.WORKER_SHUTDOWN_GRACE_MS, config.SHUTDOWN_DRAIN_MS) + 15_000;
    await Promise.all([...children].map((child) => stopChild(child, signal, patienceMs)));
    if (redis) await stopChild(redis, 'SIGTERM', 30_000);
  };
});

/**
 * Until the private Redis answers, or its process exits. It starts in milliseconds on a quiet
 * machine; on one loaded with other work it can take seconds, hence the generous bound.
 */
async function waitForRedis(url: string, child: ChildProcess, patienceMs = 60_000): Promise<boolean> {
  const until = Date.now() + patienceMs;
  while (Date.now() < until && child.exitCode === null && child.signalCode === null) {
    if (await redisAnswers(url)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function startPrivateRedis(url: string, dataDir: string): ChildProcess {
  const { hostname, port } = new URL(url);
  // Its password, if it has one, stays out of the messages.
  const shown = withoutCredentials(url);
  if (!['127.0.0.1', 'localhost', '::1'].includes(hostname)) {
    throw new Error(`no Redis answers at ${shown}; start one there, or point REDIS_URL at one`);
  }
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error(
      `no Redis answers at ${shown} and redis-server is not installed: install Redis ` +
        '(apt-get install redis-server, brew install redis) or set REDIS_URL to a running one',
    );
  }
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  return spawn(
    'redis-server',
    [
      '--port',
      port || '6379',
      '--bind',
      hostname === 'localhost' ? '127.0.0.1' : hostname,
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--maxmemory-policy',
      'noeviction',
    ],
    // Its own process group: a terminal's Ctrl-C must not stop Redis while workers still need it
    // to hand their jobs back. We stop it last.
    { stdio: 'ignore', detached: true },
  );
}

function stopChild(child: ChildProcess, signal: string, patienceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), patienceMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill(signal as NodeJS.Signals);
  });
}
