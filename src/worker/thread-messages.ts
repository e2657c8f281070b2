import type { StoreAccess } from '../store/open-stores.js';
import type { BatchPoint, JobProgress, JobResult } from '../jobs/job-schema.js';
import type { TrainParams } from '../ml/train-params.js';
import type { BackendName } from '../ml/backend/index.js';

/** What the BullMQ worker hands the training thread. */
export interface ThreadInput {
  jobId: string;
  params: TrainParams;
  /** The store the job reads datasets and checkpoints from and publishes to. */
  store: StoreAccess;
  backend?: BackendName;
  /** Data-parallel threads the job trains on (src/ml/parallel). */
  threads: number;
  /** The per-batch curve of the job's earlier attempts, from its last progress (src/jobs/batch-history.ts). */
  batchHistory: BatchPoint[];
}

export type FromThread =
  | {
      type: 'started';
      backend: string;
      resumedFromEpoch: number;
      /** Checkpoints that could not be read back, skipped for an older one or a fresh start. */
      corruptCheckpoints: string[];
    }
  | { type: 'progress'; progress: JobProgress }
  /** The version is visible: announce it now, before the checkpoint is cleared away. */
  | { type: 'published'; version: number }
  | { type: 'done'; result: JobResult }
  /** Trained and evaluated: may it publish? (The job's ending, claimed in Redis, has the last word.) */
  | { type: 'may-publish' }
  | {
      type: 'failed';
      message: string;
      unrecoverable: boolean;
      cancelled: boolean;
      /** Stopped for a shutdown: the checkpoint stays for the worker that takes the job next. */
      handedOver: boolean;
    };

/**
 * `cancel` stops within a batch and drops the checkpoint. `handover` stops at the end of the
 * current epoch (its checkpoint saved), or within a batch when `now` (the grace time is up).
 */
export type ToThread =
  | { type: 'cancel'; reason: string }
  | { type: 'handover'; now: boolean }
  | { type: 'publish'; allowed: boolean };
