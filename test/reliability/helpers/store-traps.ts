import type { SeenRequest } from '../../helpers/s3-fault-proxy.js';

/**
 * The requests of the S3 model store's layout (src/registry/s3-model-store.ts) that scenarios
 * set the fault proxy's traps on, in one place. `prefix` is the cluster's key prefix (no '/').
 */

const models = (prefix: string) => `${prefix}/models/`;

/** The version a key names under `<prefix>/models/<N>/<file>`, or null. */
function versionFile(prefix: string, key: string | null, file: string): number | null {
  if (key === null || !key.startsWith(models(prefix))) return null;
  const [version, name, ...rest] = key.slice(models(prefix).length).split('/');
  if (name !== file || rest.length > 0 || !/^[1-9][0-9]*$/.test(version ?? '')) return null;
  return Number(version);
}

/** A publisher writing its claim marker for a version number: the first step of making it visible. */
export const claimWrite =
  (prefix: string) =>
  (r: SeenRequest): boolean =>
    r.method === 'PUT' && r.key !== null && r.key.startsWith(`${models(prefix)}.claims/`);

/** The write that makes a version visible: its metadata, written last. */
export const versionMarkerWrite =
  (prefix: string) =>
  (r: SeenRequest): boolean =>
    r.method === 'PUT' && versionFile(prefix, r.key, 'metadata.json') !== null;

/** A reader fetching the weights of a version above `above`: the heavy part of a model load. */
export const weightsRead =
  (prefix: string, above: number) =>
  (r: SeenRequest): boolean =>
    r.method === 'GET' && (versionFile(prefix, r.key, 'weights.bin') ?? 0) > above;

/** The version a trapped request was about: its files' or its claim marker's. */
export function versionOf(prefix: string, r: SeenRequest): number | null {
  if (r.key === null || !r.key.startsWith(models(prefix))) return null;
  const m = /^(?:\.claims\/)?([1-9][0-9]*)(?:\/|$)/.exec(r.key.slice(models(prefix).length));
  return m ? Number(m[1]) : null;
}
