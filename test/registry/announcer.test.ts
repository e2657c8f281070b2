import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MODEL_CHANNEL,
  publishVersion,
  subscribeVersions,
  type VersionEvent,
} from '../../src/registry/announcer.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const announcerUrl = pathToFileURL(path.join(projectRoot, 'src/registry/announcer.ts')).href;
const runId = `test-${process.pid}-${Date.now()}`;
let testNumber = 0;
let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  await redis.quit();
});

/** Pub/sub stores nothing in Redis, so a fresh prefix per test is all the isolation and cleanup needed. */
function freshPrefix(): string {
  return `${runId}-${++testNumber}`;
}

/** Collects events and lets a test wait for the next one. */
function recorder() {
  const events: VersionEvent[] = [];
  let wake: () => void = () => undefined;
  return {
    events,
    onVersion: (event: VersionEvent) => {
      events.push(event);
      wake();
    },
    async waitFor(count: number, timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${events.length} of ${count} events arrived`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

async function subscribers(prefix: string): Promise<number> {
  const reply = (await redis.call('PUBSUB', 'NUMSUB', MODEL_CHANNEL(prefix))) as [string, number];
  return Number(reply[1]);
}

describe('announcer', () => {
  it('when a version is announced, then a subscriber hears it', async () => {
    const prefix = freshPrefix();
    const heard = recorder();
    const subscription = await subscribeVersions(REDIS_URL, prefix, heard.onVersion);
    try {
      const event = { version: 3, createdAt: '2026-01-02T03:04:05.678Z' };
      expect(await publishVersion(redis, prefix, event)).toBe(1);
      await heard.waitFor(1);
      expect(heard.events).toEqual([event]);
    } finally {
      await subscription.close();
    }
  });

  it('when malformed messages arrive on the channel, then they are ignored and later announcements still heard', async () => {
    const prefix = freshPrefix();
    const heard = recorder();
    const subscription = await subscribeVersions(REDIS_URL, prefix, heard.onVersion);
    try {
      const channel = MODEL_CHANNEL(prefix);
      for (const raw of [
        'not json',
        'null',
        '{"version": 0, "createdAt": "2026-01-02T03:04:05.678Z"}',
        '{"version": "4", "createdAt": "2026-01-02T03:04:05.678Z"}',
        '{"version": 4, "createdAt": "yesterday"}',
      ]) {
        await redis.publish(channel, raw);
      }
      await publishVersion(redis, prefix, { version: 5, createdAt: '2026-01-02T03:04:05.678Z' });
      await heard.waitFor(1);
      expect(heard.events.map((e) => e.version)).toEqual([5]);
    } finally {
      await subscription.close();
    }
  });

  it('when subscribing with an existing connection, then it subscribes on a duplicate and the original stays usable', async () => {
    const prefix = freshPrefix();
    const heard = recorder();
    const subscription = await subscribeVersions(redis, prefix, heard.onVersion);
    try {
      expect(await redis.ping()).toBe('PONG');
      await publishVersion(redis, prefix, { version: 1, createdAt: '2026-01-02T03:04:05.678Z' });
      await heard.waitFor(1);
      expect(heard.events).toHaveLength(1);
    } finally {
      await subscription.close();
    }
    expect(redis.status).toBe('ready');
  });

  it('when a subscription is closed, then Redis no longer counts it and nothing more is heard', async () => {
    const prefix = freshPrefix();
    const heard = recorder();
    const subscription = await subscribeVersions(REDIS_URL, prefix, heard.onVersion);
    expect(await subscribers(prefix)).toBe(1);
    await subscription.close();
    expect(await subscribers(prefix)).toBe(0);
    expect(await publishVersion(redis, prefix, { version: 1, createdAt: '2026-01-02T03:04:05.678Z' })).toBe(
      0,
    );
  });

  it('when a process subscribes, hears an announcement and closes, then it exits by itself', async () => {
    const prefix = freshPrefix();
    // Exits only if close() (and the publisher's quit) leave no open handles behind.
    const code = `
      import { Redis } from 'ioredis';
      import { publishVersion, subscribeVersions } from ${JSON.stringify(announcerUrl)};
      const heard = new Promise((resolve) => {
        subscribeVersions(${JSON.stringify(REDIS_URL)}, ${JSON.stringify(prefix)}, resolve).then(async (s) => {
          const redis = new Redis(${JSON.stringify(REDIS_URL)});
          await publishVersion(redis, ${JSON.stringify(prefix)}, { version: 9, createdAt: new Date().toISOString() });
          await redis.quit();
          const event = await heard;
          await s.close();
          process.stdout.write(JSON.stringify(event));
        });
      });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(timer);
    expect({ exitCode, signal, stderr }).toEqual({ exitCode: 0, signal: null, stderr: '' });
    expect(JSON.parse(stdout)).toMatchObject({ version: 9 });
  });

  it('when an announcement is not a valid event, then publishVersion rejects it without sending it', async () => {
    const prefix = freshPrefix();
    const heard = recorder();
    const subscription = await subscribeVersions(REDIS_URL, prefix, heard.onVersion);
    try {
      await expect(publishVersion(redis, prefix, { version: 1.5, createdAt: 'now' })).rejects.toThrow(
        /version/,
      );
      await publishVersion(redis, prefix, { version: 2, createdAt: '2026-01-02T03:04:05.678Z' });
      await heard.waitFor(1);
      expect(heard.events.map((e) => e.version)).toEqual([2]);
    } finally {
      await subscription.close();
    }
  });
});
