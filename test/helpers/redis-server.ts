import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { redisAnswers } from '../../src/redis-answers.js';

// Killed with the test process whatever way it ends, so no server outlives its run.
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of a test's own, on its own port and directory, for tests that stop and restart
 * Redis (the shared one on 6379 must stay up for everyone else). With `persist`, every write goes
 * to the append-only file first, so a restart keeps what was acknowledged.
 */
export class RedisServer {
  readonly url: string;
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: { persist?: boolean; logFile?: string } = {},
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const persistence = this.options.persist
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no'];
    this.child = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''],
        ...persistence,
        ...[
          '--maxmemory-policy',
          'noeviction',
          '--logfile',
          this.options.logFile ?? join(this.dir, 'redis.log'),
        ],
      ],
      { stdio: 'ignore' },
    );
    const child = this.child;
    alive.add(child);
    child.once('exit', () => alive.delete(child));
    for (let i = 0; i < 1200; i++) {
      if (await this.answers()) return;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** SIGKILL (a crash) or SIGTERM (a clean stop), and wait for the process to be gone. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  }

  answers(): Promise<boolean> {
    return redisAnswers(this.url);
  }
}
