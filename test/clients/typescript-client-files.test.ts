import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_DIR, renderClientFiles } from '../../scripts/client/client-files.js';
import { serviceSpec } from '../../scripts/client/service-spec.js';
import { useRedisPrefix } from '../helpers/redis.js';

describe('clients/typescript', () => {
  const { redis, prefix } = useRedisPrefix('client-files');

  it('when a route changes, then the committed openapi.json and schema.ts are what npm run client:generate writes', async () => {
    const files = await renderClientFiles(await serviceSpec(redis, prefix));
    expect(Object.keys(files)).toEqual(['openapi.json', 'src/schema.ts']);
    for (const [path, text] of Object.entries(files)) {
      const committed = await readFile(join(CLIENT_DIR, path), 'utf8').catch(() => '(missing)');
      expect(committed, `clients/typescript/${path} is out of date: run npm run client:generate`).toBe(text);
    }
  });
});
