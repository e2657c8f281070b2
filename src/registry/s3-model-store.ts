// SKELETON (to be replaced): the S3 model store.
import type { S3Objects } from '../store/s3-objects.js';
import type { ModelStore } from './model-store.js';
import type { VersionClaims } from './version-claims.js';

const todo = (): never => {
  throw new Error('S3ModelStore: not implemented yet');
};

export class S3ModelStore implements ModelStore {
  constructor(
    readonly objects: S3Objects,
    readonly claims: VersionClaims,
  ) {}
  get location(): string {
    return `s3://${this.objects.bucket}/${this.objects.prefix}models/`;
  }
  publish = todo;
  list = todo;
  findByJob = todo;
  get = todo;
  latest = todo;
  load = todo;
  misclassifiedSprite = todo;
  remove = todo;
  cleanStaging = todo;
  probe = todo;
}
