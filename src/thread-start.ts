import { Worker as Thread } from 'node:worker_threads';

/**
 * Starts a worker thread on a module given as `file` (a URL of this package's .ts source in
 * development and tests, or of the built .js beside it). From source, Node 20 does not pass tsx's
 * loader on to worker threads, so the thread registers it before importing the .ts file.
 */
export function startThread(file: URL, workerData: unknown): Thread {
  if (!file.pathname.endsWith('.ts')) return new Thread(file, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file.href)}); })`;
  return new Thread(boot, { eval: true, workerData });
}

/** The module at path `name` (no extension) from `importMetaUrl`'s folder: .ts from source, .js built. */
export function siblingModule(importMetaUrl: string, name: string): URL {
  const fromSource = importMetaUrl.endsWith('.ts');
  return new URL(`./${name}${fromSource ? '.ts' : '.js'}`, importMetaUrl);
}
