import { open, writeFile } from 'node:fs/promises';

/** fsyncs a directory, so a rename into it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms (Windows) and file systems cannot fsync a directory; that is no save failure.
    if (isErrno(err, 'EISDIR') || isErrno(err, 'EPERM') || isErrno(err, 'EINVAL')) return;
    throw err;
  } finally {
    await handle?.close();
  }
}

/** Writes a new file (never an existing one) and fsyncs it before returning. */
export async function writeDurably(file: string, chunks: Uint8Array | Uint8Array[]): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await writeFile(handle, Array.isArray(chunks) ? chunks : [chunks]);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
