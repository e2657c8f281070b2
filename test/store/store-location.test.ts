import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  describeLocation,
  storeLocation,
  storeLocationSchema,
  storeUrlProblem,
} from '../../src/store/store-location.js';

/** Where the config puts the store, resolved as every process resolves it. */
const locationOf = (env: NodeJS.ProcessEnv) => storeLocation(loadConfig(env));

describe('STORE_URL: a directory', () => {
  it('when nothing is set, then the store is ./data with models, checkpoints and datasets in it', () => {
    expect(locationOf({})).toEqual({
      kind: 'file',
      modelDir: path.resolve('data/models'),
      checkpointDir: path.resolve('data/checkpoints'),
      datasetDir: path.resolve('data/datasets'),
      feedbackDir: path.resolve('data/feedback'),
    });
  });

  it.each([
    ['/srv/digits', '/srv/digits'],
    ['/srv/digits/', '/srv/digits'],
    ['relative/store', path.resolve('relative/store')],
    ['file:///srv/digits', '/srv/digits'],
    ['file://localhost/srv/digits', '/srv/digits'],
    ['file:///srv/with%20space', '/srv/with space'],
  ])('when STORE_URL is %s, then the kinds are directories under %s', (url, root) => {
    expect(locationOf({ STORE_URL: url })).toEqual({
      kind: 'file',
      modelDir: path.join(root, 'models'),
      checkpointDir: path.join(root, 'checkpoints'),
      datasetDir: path.join(root, 'datasets'),
      feedbackDir: path.join(root, 'feedback'),
    });
  });

  it('when MODEL_DIR, CHECKPOINT_DIR or DATASET_DIR is set, then that kind alone moves, resolved', () => {
    expect(locationOf({ STORE_URL: '/srv/digits', MODEL_DIR: '/mnt/models' })).toEqual({
      kind: 'file',
      modelDir: '/mnt/models',
      checkpointDir: '/srv/digits/checkpoints',
      datasetDir: '/srv/digits/datasets',
      feedbackDir: '/srv/digits/feedback',
    });
    expect(
      locationOf({ STORE_URL: 'file:///srv/digits', CHECKPOINT_DIR: 'ckpt', DATASET_DIR: '/mnt/sets' }),
    ).toMatchObject({ checkpointDir: path.resolve('ckpt'), datasetDir: '/mnt/sets' });
  });

  it('when the store is a directory, then logs name its root, and S3 settings are ignored', () => {
    const location = locationOf({ STORE_URL: '/srv/digits', S3_ENDPOINT: 'http://minio:9000' });
    expect(describeLocation(location)).toBe('/srv/digits');
    expect(location).not.toHaveProperty('endpoint');
  });
});

describe('STORE_URL: S3-compatible object storage', () => {
  it.each([
    ['s3://digits', 'digits', ''],
    ['s3://digits/', 'digits', ''],
    ['s3://digits/store', 'digits', 'store/'],
    ['s3://digits/a/b/', 'digits', 'a/b/'],
    ['s3://digits//a//b', 'digits', 'a/b/'],
    ['s3://my.bucket-2/x', 'my.bucket-2', 'x/'],
  ])('when STORE_URL is %s, then the bucket is %s and the key prefix %j', (url, bucket, prefix) => {
    expect(locationOf({ STORE_URL: url })).toMatchObject({ kind: 's3', bucket, prefix });
  });

  it('when the S3 settings are given, then the location carries them, and the cache dir resolved', () => {
    const location = locationOf({
      STORE_URL: 's3://digits/store',
      S3_ENDPOINT: 'http://minio:9000',
      S3_REGION: 'eu-west-3',
      S3_FORCE_PATH_STYLE: 'true',
      STORE_CACHE_DIR: 'cache',
    });
    expect(location).toEqual({
      kind: 's3',
      bucket: 'digits',
      prefix: 'store/',
      endpoint: 'http://minio:9000',
      region: 'eu-west-3',
      forcePathStyle: true,
      cacheDir: path.resolve('cache'),
    });
    expect(describeLocation(location)).toBe('s3://digits/store/');
  });

  it("when no S3 setting is given, then AWS's own endpoint, us-east-1, virtual-host style and ./data/cache", () => {
    const location = locationOf({ STORE_URL: 's3://digits' });
    expect(location).toEqual({
      kind: 's3',
      bucket: 'digits',
      prefix: '',
      region: 'us-east-1',
      forcePathStyle: false,
      cacheDir: path.resolve('data/cache'),
    });
    expect(describeLocation(location)).toBe('s3://digits/');
  });

  it('when a location is resolved, then it survives the schema a worker thread is handed it through', () => {
    for (const url of ['./data', 's3://digits/a/b']) {
      const location = locationOf({ STORE_URL: url, S3_ENDPOINT: 'https://s3.example' });
      expect(storeLocationSchema.parse(structuredClone(location))).toEqual(location);
    }
  });

  it.each([
    [
      { MODEL_DIR: '/data/models' },
      /MODEL_DIR is for a directory store, but STORE_URL is s3:\/\/digits\/x: unset it/,
    ],
    [
      { CHECKPOINT_DIR: '/c', DATASET_DIR: '/d' },
      /CHECKPOINT_DIR, DATASET_DIR are for a directory store, but STORE_URL is s3:\/\/digits\/x: unset them/,
    ],
  ])('when %j is set with an S3 store, then start-up stops naming it and STORE_URL', (dirs, message) => {
    const env = { STORE_URL: 's3://digits/x', ...dirs };
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('when a directory setting is set but empty (a blank line in a compose file), then it counts as not set', () => {
    expect(locationOf({ STORE_URL: 's3://digits', MODEL_DIR: '', DATASET_DIR: '' })).toMatchObject({
      kind: 's3',
    });
  });
});

describe('STORE_URL and the S3 settings: bad values stop start-up', () => {
  it.each([
    ['http://x', 'must be a directory, file:///path or s3://bucket/prefix'],
    ['https://bucket.s3.amazonaws.com/x', 'must be a directory, file:///path or s3://bucket/prefix'],
    ['S3://digits', 'must be a directory, file:///path or s3://bucket/prefix'],
    ['   ', 'must be a directory, file:///path or s3://bucket/prefix'],
    ['s3:/digits', 'must be a directory, file:///path or s3://bucket/prefix'],
    ['file:', 'must be a directory, file:///path or s3://bucket/prefix'],
    [' s3://digits/x', 'must not begin or end with spaces'],
    ['s3://digits/x ', 'must not begin or end with spaces'],
    ['s3://UPPER', 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    ['s3://', 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    ['s3://b/../x', 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    ['s3://digits_1', 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    ['s3://-digits', 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    [`s3://${'a'.repeat(64)}`, 'the bucket of s3://bucket/prefix must be 3-63 characters a-z 0-9 . -'],
    ['s3://digits/../x', 'the prefix of s3://bucket/prefix must not hold . or .. parts'],
    ['s3://digits/a/./b', 'the prefix of s3://bucket/prefix must not hold . or .. parts'],
    ['s3://digits/a/..', 'the prefix of s3://bucket/prefix must not hold . or .. parts'],
    ['file://relative', 'a file:// URL must name an absolute path (file:///data)'],
    ['file://other-host/data', 'a file:// URL must name an absolute path (file:///data)'],
  ])('when STORE_URL is %j, then start-up stops naming STORE_URL: %s', (url, problem) => {
    expect(storeUrlProblem(url)).toBe(problem);
    expect(() => loadConfig({ STORE_URL: url })).toThrow(ConfigError);
    expect(() => loadConfig({ STORE_URL: url })).toThrow(`STORE_URL: ${problem}`);
  });

  it.each([
    [{ S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT: must be an http:// or https:// URL'],
    [{ S3_ENDPOINT: 'ftp://minio:9000' }, 'S3_ENDPOINT: must be an http:// or https:// URL'],
    [{ S3_REGION: 'EU West' }, 'S3_REGION: a region name such as us-east-1'],
    [{ S3_FORCE_PATH_STYLE: 'yes' }, 'S3_FORCE_PATH_STYLE: must be true or false'],
  ])('when %j, then start-up stops with a message naming %s', (env, message) => {
    const withS3 = { STORE_URL: 's3://digits', ...env };
    expect(() => loadConfig(withS3)).toThrow(ConfigError);
    expect(() => loadConfig(withS3)).toThrow(message);
  });
});
