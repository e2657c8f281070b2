// SKELETON (to be replaced): checkpoints in S3.
import type { S3Objects } from '../store/s3-objects.js';
import type { Checkpoints, CheckpointsOptions } from './checkpoints.js';

const todo = (): never => {
  throw new Error('S3Checkpoints: not implemented yet');
};

export class S3Checkpoints implements Checkpoints {
  constructor(
    readonly objects: S3Objects,
    readonly cacheDir: string,
    readonly options: CheckpointsOptions = {},
  ) {}
  save = todo;
  load = todo;
  remove = todo;
}
