import { describe, expect, it } from 'vitest';
import { clientFailure, publicFailure } from '../../src/jobs/job-failure.js';
import { resolveDatasetDir } from '../../src/ml/data/dataset.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';

const job = (dataset = 'mnist') => ({ id: 'j1', params: trainParamsSchema.parse({ epochs: 1, dataset }) });

describe('what a client is told about a failed job', () => {
  it('when the reason was tagged as the client’s to fix, then its code and words come through', () => {
    const reason = clientFailure(
      'time_limit',
      'training took longer than JOB_MAX_SECONDS (2 s) and was stopped',
    );
    expect(publicFailure(reason, job())).toEqual({
      code: 'time_limit',
      message: 'training took longer than JOB_MAX_SECONDS (2 s) and was stopped',
    });
  });

  it('when a built-in data set’s files are named, then the server path becomes the data set’s name', () => {
    const dir = resolveDatasetDir('fashion-mnist');
    const reason = clientFailure(
      'dataset_unusable',
      `dataset directory ${dir} is missing t10k-labels-idx1-ubyte`,
    );
    expect(publicFailure(reason, job('fashion-mnist')).message).toBe(
      'dataset directory the fashion-mnist data set is missing t10k-labels-idx1-ubyte',
    );
    const file = clientFailure(
      'dataset_unusable',
      `${dir}/train-labels-idx1-ubyte: label 10 at index 0 is outside 0..9`,
    );
    expect(publicFailure(file, job('fashion-mnist')).message).toBe(
      'train-labels-idx1-ubyte of the fashion-mnist data set: label 10 at index 0 is outside 0..9',
    );
  });

  it('when another server path appears in a client failure, then only its last part is shown', () => {
    const reason = clientFailure(
      'dataset_unusable',
      "cannot read '/var/lib/digits/cache/x.idx' (see /etc/digits)",
    );
    expect(publicFailure(reason, job('/home/me/data')).message).toBe("cannot read 'x.idx' (see digits)");
  });

  it.each([
    ["EACCES: permission denied, mkdir '/srv/models/.staging'"],
    ['Error: boom\n    at run (/app/dist/worker/training-thread.js:10:5)'],
    ['[made_up] a tag nobody defined'],
    [''],
    [undefined],
  ])('when the reason is %j, then the client gets code internal and a plain message', (reason) => {
    expect(publicFailure(reason, job())).toEqual({
      code: 'internal',
      message: 'training failed because of a problem on the server; its logs have the details (job j1)',
    });
  });

  it('when BullMQ gave the job up after its workers kept dying, then worker_lost', () => {
    expect(publicFailure('job stalled more than allowable limit', job()).code).toBe('worker_lost');
  });
});
