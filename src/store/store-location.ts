import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * Where the store is, resolved from STORE_URL and the settings beside it: a plain value that a
 * worker thread can be handed, so every process and thread opens the same store (open-stores.ts).
 */
export const storeLocationSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('file'),
    modelDir: z.string(),
    checkpointDir: z.string(),
    datasetDir: z.string(),
    /** The feedback examples (POST /feedback): always `<root>/feedback`, no setting moves it. */
    feedbackDir: z.string(),
  }),
  z.object({
    kind: z.literal('s3'),
    bucket: z.string(),
    /** Key prefix every object is under: '' or ends in '/'. */
    prefix: z.string(),
    endpoint: z.string().optional(),
    region: z.string(),
    forcePathStyle: z.boolean(),
    /** Local copies of datasets for training (they never change, so a copy stays good). */
    cacheDir: z.string(),
  }),
]);
export type StoreLocation = z.infer<typeof storeLocationSchema>;
export type S3Location = Extract<StoreLocation, { kind: 's3' }>;

/** The config fields a location is resolved from (a subset of Config, so tests pass just these). */
export interface StoreSettings {
  STORE_URL: string;
  S3_ENDPOINT?: string | undefined;
  S3_REGION: string;
  S3_FORCE_PATH_STYLE: boolean;
  STORE_CACHE_DIR: string;
  MODEL_DIR?: string | undefined;
  CHECKPOINT_DIR?: string | undefined;
  DATASET_DIR?: string | undefined;
}

// Bucket names as S3 allows them for new buckets (lower case, 3-63, no dots at the ends).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const DIR_SETTINGS = ['MODEL_DIR', 'CHECKPOINT_DIR', 'DATASET_DIR'] as const;

/** What is wrong with a STORE_URL, or null. The config schema reports it under STORE_URL. */
export function storeUrlProblem(url: string): string | null {
  if (url.trim() === '') return 'must be a directory, file:///path or s3://bucket/prefix';
  // Else ' s3://b' would be a local directory named ' s3:' and 's3://b/x ' a prefix 'x /'.
  if (url !== url.trim()) return 'must not begin or end with spaces';
  if (url.startsWith('s3://')) {
    const { bucket, prefix } = splitS3Url(url);
    if (!BUCKET.test(bucket)) return 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -';
    if (prefix.split('/').some((part) => part === '.' || part === '..'))
      return 'the prefix of s3://bucket/prefix must not hold . or .. parts';
    return null;
  }
  // Any other scheme, or a typo such as s3:/bucket, would be taken for a relative directory, and
  // this process would keep a store of its own that no other one sees.
  if (/^[a-z][a-z0-9+.-]+:/i.test(url) && !url.startsWith('file://'))
    return 'must be a directory, file:///path or s3://bucket/prefix';
  if (url.startsWith('file://')) {
    try {
      fileURLToPath(url);
    } catch {
      return 'a file:// URL must name an absolute path (file:///data)';
    }
  }
  return null;
}

/** Resolves the store's location from the settings; throws a plain Error naming the clash. */
export function storeLocation(settings: StoreSettings): StoreLocation {
  const url = settings.STORE_URL;
  if (url.startsWith('s3://')) {
    const set = DIR_SETTINGS.filter((name) => settings[name] !== undefined);
    if (set.length > 0)
      throw new Error(
        `${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} for a directory store, but STORE_URL is ${url}: unset ${set.length > 1 ? 'them' : 'it'}`,
      );
    const { bucket, prefix } = splitS3Url(url);
    return {
      kind: 's3',
      bucket,
      prefix,
      ...(settings.S3_ENDPOINT ? { endpoint: settings.S3_ENDPOINT } : {}),
      region: settings.S3_REGION,
      forcePathStyle: settings.S3_FORCE_PATH_STYLE,
      cacheDir: path.resolve(settings.STORE_CACHE_DIR),
    };
  }
  const root = url.startsWith('file://') ? fileURLToPath(url) : url;
  return {
    kind: 'file',
    modelDir: path.resolve(settings.MODEL_DIR ?? path.join(root, 'models')),
    checkpointDir: path.resolve(settings.CHECKPOINT_DIR ?? path.join(root, 'checkpoints')),
    datasetDir: path.resolve(settings.DATASET_DIR ?? path.join(root, 'datasets')),
    feedbackDir: path.resolve(root, 'feedback'),
  };
}

/** `s3://bucket/a/b` -> bucket and the key prefix `a/b/` ('' for none). */
function splitS3Url(url: string): { bucket: string; prefix: string } {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const parts = (slash === -1 ? '' : rest.slice(slash + 1)).split('/').filter(Boolean);
  return { bucket, prefix: parts.length > 0 ? `${parts.join('/')}/` : '' };
}

/** How logs and errors name a store: a path, or s3://bucket/prefix (never credentials). */
export function describeLocation(location: StoreLocation): string {
  if (location.kind === 's3') return `s3://${location.bucket}/${location.prefix}`;
  const dirs = [location.modelDir, location.checkpointDir, location.datasetDir, location.feedbackDir];
  const root = path.dirname(location.modelDir);
  // One root unless MODEL_DIR and the like moved some of it elsewhere: then name each.
  return dirs.every((dir) => path.dirname(dir) === root) ? root : dirs.join(', ');
}
