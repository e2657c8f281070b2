// SKELETON (to be replaced): the S3 dataset store.
import type { S3Objects } from '../store/s3-objects.js';
import type { DatasetStore } from './dataset-store.js';

const todo = (): never => {
  throw new Error('S3DatasetStore: not implemented yet');
};

export class S3DatasetStore implements DatasetStore {
  constructor(
    readonly objects: S3Objects,
    readonly cacheDir: string,
  ) {}
  get location(): string {
    return `s3://${this.objects.bucket}/${this.objects.prefix}datasets/`;
  }
  ingest = todo;
  list = todo;
  get = todo;
  samplesPng = todo;
  remove = todo;
  trainingRoot = todo;
  cleanStaging = todo;
}
