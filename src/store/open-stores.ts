import { Redis } from 'ioredis';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { DatasetStore } from '../datasets/dataset-store.js';
import { FileDatasetStore } from '../datasets/file-dataset-store.js';
import type { FeedbackStore } from '../feedback/feedback-store.js';
import { FileFeedbackStore } from '../feedback/file-feedback-store.js';
import { S3FeedbackStore } from '../feedback/s3-feedback-store.js';
import { S3DatasetStore } from '../datasets/s3-dataset-store.js';
import { FileModelStore } from '../registry/file-model-store.js';
import type { ModelStore } from '../registry/model-store.js';
import { S3ModelStore } from '../registry/s3-model-store.js';
import { RedisVersionClaims } from '../registry/version-claims.js';
import type { Checkpoints, CheckpointsOptions } from '../worker/checkpoints.js';
import { FileCheckpoints } from '../worker/file-checkpoints.js';
import { S3Checkpoints } from '../worker/s3-checkpoints.js';
import { S3Objects } from './s3-objects.js';
import { describeLocation, type StoreLocation } from './store-location.js';

/**
 * How a process (or a worker thread) reaches the store: where it is and, for an S3 store, the
 * Redis that hands out version numbers (s3-model-store.ts says why). Plain data, so a worker
 * thread can be given it.
 */
export interface StoreAccess {
  location: StoreLocation;
  /** Needed by an S3 store only, and only to publish. */
  redis?: { url: string; prefix: string } | undefined;
}

export interface Stores {
  /** For logs: a directory or s3://bucket/prefix, never credentials. */
  readonly description: string;
  readonly models: ModelStore;
  readonly datasets: DatasetStore;
  readonly feedback: FeedbackStore;
  checkpoints(options?: CheckpointsOptions): Checkpoints;
  /** Closes the connections an S3 store opened. */
  close(): Promise<void>;
}

export interface OpenStoresOptions {
  /** For tests against a local S3 server; otherwise the AWS SDK's default chain finds them. */
  credentials?: S3ClientConfig['credentials'];
}

/** The model, dataset, feedback and checkpoint stores at `access.location`, on its backend. */
export function openStores(access: StoreAccess, options: OpenStoresOptions = {}): Stores {
  const { location } = access;
  const description = describeLocation(location);
  if (location.kind === 'file') {
    return {
      description,
      models: new FileModelStore(location.modelDir),
      datasets: new FileDatasetStore(location.datasetDir),
      feedback: new FileFeedbackStore(location.feedbackDir),
      checkpoints: (checkpointOptions) => new FileCheckpoints(location.checkpointDir, checkpointOptions),
      close: async () => undefined,
    };
  }
  const objects = S3Objects.open(location, options.credentials ? { credentials: options.credentials } : {});
  let redis: Redis | undefined;
  const claims = new RedisVersionClaims(
    () => {
      if (!access.redis) throw new Error(`publishing to ${description} needs Redis, which was not given`);
      redis ??= new Redis(access.redis.url, { maxRetriesPerRequest: 2, lazyConnect: false });
      return redis;
    },
    access.redis ? `${access.redis.prefix}:store:model-versions` : '',
  );
  return {
    description,
    models: new S3ModelStore(objects, claims),
    datasets: new S3DatasetStore(objects, location.cacheDir),
    feedback: new S3FeedbackStore(objects),
    checkpoints: (checkpointOptions) => new S3Checkpoints(objects, location.cacheDir, checkpointOptions),
    close: async () => {
      objects.close();
      await redis?.quit().catch(() => redis?.disconnect());
    },
  };
}
