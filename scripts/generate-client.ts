import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { CLIENT_DIR, renderClientFiles } from './client/client-files.js';
import { serviceSpec } from './client/service-spec.js';

/**
 * `npm run client:generate`: builds the app in this process (it needs Redis at REDIS_URL, as the
 * tests do), takes its OpenAPI document and writes clients/typescript/openapi.json and the types
 * in clients/typescript/src/schema.ts. test/clients/typescript-client-files.test.ts fails while the
 * committed files are not what this writes.
 */
async function main(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  await reachRedis(url);
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const prefix = `client-generate-${process.pid}-${Date.now()}`;
  try {
    const files = await renderClientFiles(await serviceSpec(redis, prefix));
    for (const [path, text] of Object.entries(files)) {
      const file = join(CLIENT_DIR, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text);
      process.stdout.write(`wrote ${file}\n`);
    }
  } finally {
    // The job queue leaves its meta key behind.
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
  }
}

/** One try at Redis, so that without it this stops with a message rather than waiting for it. */
async function reachRedis(url: string): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  // The refusal comes as an error event; connect() then only says the connection closed.
  let refusal: Error | undefined;
  probe.on('error', (error: Error) => (refusal ??= error));
  try {
    await probe.connect();
    await probe.quit();
  } catch (error) {
    probe.disconnect();
    const reason = (refusal ?? (error as Error)).message;
    throw new Error(`client:generate builds the app, which needs Redis at ${url}: ${reason}`, {
      cause: error,
    });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
