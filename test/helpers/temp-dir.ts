import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

let made = 0;

/**
 * A directory of the calling describe block's own (or the file's), made before its first test and
 * removed after its last. The path is known at once, so the block can name it as it is defined.
 */
export function useTempDir(name: string): string {
  const dir = join(tmpdir(), `${name}-${process.pid}-${Date.now()}-${++made}`);
  beforeAll(async () => {
    await mkdir(dir, { recursive: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}
