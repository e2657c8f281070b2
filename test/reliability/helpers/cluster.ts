import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { S3Objects } from '../../../src/store/s3-objects.js';
import { exited } from '../../helpers/processes.js';
import { freePort, RedisServer } from '../../helpers/redis-server.js';
import { S3_CREDENTIALS } from '../../helpers/s3-server.js';
import { until } from '../../helpers/until.js';
import type { S3ServerInfo } from './s3-server-main.js';
import { FileStoreView, S3StoreView, type StoreView } from './store-view.js';

/**
 * Real processes for one scenario: its own redis-server (append-only file, fsync on every write)
 * on a free port in a temp dir, its own store (directories in that temp dir, or an S3 server of
 * its own), and API and worker processes started as `npm run start:api` and
 * `npm run start:worker` start them, configured only through their environment. Everything is
 * killed in `close()`, and with SIGKILL when the test process exits for any other reason.
 */

export const ROOT = resolve(import.meta.dirname, '../../..');

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function kill(child: ChildProcess, signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(force);
}

/** `until`, with a shorter net: a scenario's processes answer within seconds or not at all. */
export const waitUntil = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> => until(what, probe, { timeoutMs, everyMs });

export interface NodeProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resident memory in bytes, from /proc. */
  rss(): number;
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ApiProcess extends NodeProcess {
  port: number;
  url: string;
}

export interface ClusterOptions {
  /**
   * 'file': directories in the cluster's temp dir (STORE_URL, MODEL_DIR, CHECKPOINT_DIR, DATASET_DIR).
   * 's3': an S3 server of the cluster's own (s3rver on 127.0.0.1), STORE_URL=s3://..., and a
   * local cache directory per process: no process shares a disk with another.
   * @default 'file'
   */
  store?: 'file' | 's3';
}

export class Cluster {
  readonly prefix: string;
  /** The directory store's paths (a 'file' cluster only). */
  readonly modelDir: string;
  readonly checkpointDir: string;
  readonly datasetDir: string;
  readonly logDir: string;
  /** The model store as the scenario looks at it, on either backend. */
  readonly store: StoreView;
  private readonly children: NodeProcess[] = [];
  private counter = 0;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly redis: RedisServer,
    /** The S3 server of an 's3' cluster, and its process. */
    readonly s3: S3ServerInfo | undefined,
    private readonly s3Process: ChildProcess | undefined,
  ) {
    this.prefix = `rel-${name}`;
    this.modelDir = join(dir, 'models');
    this.checkpointDir = join(dir, 'checkpoints');
    this.datasetDir = join(dir, 'datasets');
    this.logDir = join(ROOT, 'test-artifacts', 'reliability-logs', name);
    this.store = s3
      ? new S3StoreView(S3Objects.open(s3.location, { credentials: S3_CREDENTIALS }))
      : new FileStoreView(this.modelDir, this.checkpointDir);
  }

  static async start(name: string, options: ClusterOptions = {}): Promise<Cluster> {
    const dir = await mkdtemp(join(tmpdir(), `reliability-${name}-`));
    const logDir = join(ROOT, 'test-artifacts', 'reliability-logs', name);
    await rm(logDir, { recursive: true, force: true });
    mkdirSync(logDir, { recursive: true });
    const redis = new RedisServer(await freePort(), join(dir, 'redis'), {
      persist: true,
      logFile: join(logDir, 'redis.log'),
    });
    await redis.start();
    const s3 = options.store === 's3' ? await startS3Server(dir, `rel-${name}`, logDir) : undefined;
    return new Cluster(name, dir, redis, s3?.info, s3?.child);
  }

  /** What every process of this cluster is told; `extra` adds to or overrides it. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // As the Dockerfile and `npm start` run the service; the parent's value wins, to compare.
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
      HOST: '127.0.0.1',
      REDIS_URL: this.redis.url,
      REDIS_PREFIX: this.prefix,
      ...(this.s3
        ? this.s3.env
        : {
            // The root too: what has no directory setting of its own (feedback/) goes under it,
            // not under ./data of the working directory.
            STORE_URL: this.dir,
            MODEL_DIR: this.modelDir,
            CHECKPOINT_DIR: this.checkpointDir,
            DATASET_DIR: this.datasetDir,
          }),
      TF_BACKEND: 'wasm',
      // Scenarios run two or three workers side by side on a 2-core machine: a thread per job
      // keeps them from asking for more threads than there are cores.
      TRAINING_THREADS: '1',
      // The suite sends thousands of requests from one address; scenario 6 turns the limit on.
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      ...extra,
    };
  }

  /** `inspect`: open the V8 inspector on a free port, so the suite can force a GC (`collectGarbage`). */
  async startApi(
    extra: Record<string, string> = {},
    options: { inspect?: boolean } = {},
  ): Promise<ApiProcess> {
    const port = await freePort();
    const proc = this.spawnNode(
      'api',
      'src/api/server.ts',
      { PORT: String(port), ...extra },
      options.inspect,
    );
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(
      `${proc.name} to answer /healthz`,
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited: ${proc.log().slice(-2000)}`);
        const ok = await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        return ok ? true : undefined;
      },
      60_000,
    );
    return { ...proc, port, url };
  }

  /**
   * A worker process; `ready` resolves once it has logged that it takes jobs. `uid`: run it as
   * that user (through setpriv), e.g. so that file permissions bind it when the suite is root.
   */
  startWorker(
    extra: Record<string, string> = {},
    options: { uid?: number } = {},
  ): NodeProcess & { ready: Promise<void> } {
    const proc = this.spawnNode(
      'worker',
      'src/worker/main.ts',
      { LOG_LEVEL: 'info', ...extra },
      false,
      options.uid,
    );
    const ready = waitUntil(
      `${proc.name} to be ready`,
      () => {
        if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited: ${proc.log().slice(-2000)}`);
        return proc.log().includes('training worker ready') ? true : undefined;
      },
      60_000,
      100,
    ).then(() => undefined);
    ready.catch(() => undefined);
    return { ...proc, ready };
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((c) => c.kill('SIGKILL')));
    await this.redis.stop('SIGKILL');
    this.store.close();
    if (this.s3Process) await kill(this.s3Process, 'SIGKILL');
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * `node --import tsx <entry>` rather than the tsx binary: tsx's CLI runs the program in a
   * child process of its own, and a SIGKILL sent to the CLI would not reach it.
   */
  private spawnNode(
    kind: string,
    entry: string,
    extra: Record<string, string>,
    inspect = false,
    uid?: number,
  ): NodeProcess {
    const name = `${kind}-${++this.counter}`;
    const logFile = join(this.logDir, `${name}.log`);
    // Each process its own local disk, as on machines that share only the S3 store.
    const cache: Record<string, string> = this.s3 ? { STORE_CACHE_DIR: join(this.dir, 'cache', name) } : {};
    const fd = openSync(logFile, 'a');
    const flags = inspect ? ['--inspect=127.0.0.1:0'] : [];
    const command = [process.execPath, ...flags, '--import', 'tsx', entry];
    // setpriv execs node, so the pid (and a SIGKILL sent to it) is node's.
    const asUser = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
    const [file, ...args] = [...asUser, ...command];
    const child = spawn(file!, args, {
      cwd: ROOT,
      env: this.env({ ...cache, ...extra }),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    running.add(child);
    child.once('exit', () => running.delete(child));
    const proc: NodeProcess = {
      name,
      child,
      pid: child.pid!,
      logFile,
      rss: () => rssOf(child.pid!),
      log: () => readFileSync(logFile, 'utf8'),
      kill: (signal: NodeJS.Signals = 'SIGTERM') => kill(child, signal),
    };
    this.children.push(proc);
    return proc;
  }
}

/**
 * An S3 server in a process of its own (s3-server-main.ts), its objects in `<dir>/s3`: the scenario's
 * own work in the test process must not slow the store down.
 */
async function startS3Server(
  dir: string,
  prefix: string,
  logDir: string,
): Promise<{ child: ChildProcess; info: S3ServerInfo }> {
  const fd = openSync(join(logDir, 's3-server.log'), 'a');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/reliability/helpers/s3-server-main.ts',
      join(dir, 's3'),
      prefix,
      join(dir, 'cache', 'scenario'),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', fd] },
  );
  closeSync(fd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(
        `the S3 server exited (${String(code)}) before it listened; see ${logDir}/s3-server.log`,
      );
    }),
  ])) as [string];
  lines.close();
  return { child, info: JSON.parse(line) as S3ServerInfo };
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb[1]) * 1024;
}

/**
 * A full garbage collection in a process started with `inspect`, through the inspector protocol
 * (from a helper process: Node 20 has a WebSocket client only behind a flag). Memory read after
 * it is what the process holds, not garbage an idle process has had no reason to collect yet.
 */
export async function collectGarbage(proc: NodeProcess): Promise<void> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(proc.log())?.[1];
  if (!url) throw new Error(`${proc.name} was not started with the inspector`);
  const script = `
    const ws = new WebSocket(${JSON.stringify(url)});
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    ws.onmessage = (m) => { if (JSON.parse(m.data).id === 1) { ws.close(); process.exit(0); } };
    ws.onerror = () => process.exit(1);
    setTimeout(() => process.exit(2), 20000);`;
  const helper = spawn(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', script], {
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((r) => helper.once('exit', r));
  if (code !== 0) throw new Error(`could not collect garbage in ${proc.name} (helper exit ${code})`);
}
