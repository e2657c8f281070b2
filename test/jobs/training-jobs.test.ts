import { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { TRAINING_QUEUE, type JobResult, type JobView } from '../../src/jobs/job-schema.js';
import type { Ending } from '../../src/jobs/job-endings.js';
import { JobConflictError } from '../../src/jobs/training-jobs.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { barrier } from '../helpers/barrier.js';
import { connect } from '../helpers/redis.js';
import { useTrainingJobs } from '../helpers/training-jobs.js';

const params = trainParamsSchema.parse({ epochs: 1, trainSize: 100 });

describe('training jobs: idempotency keys', () => {
  const { jobs } = useTrainingJobs('idempotency');

  it('when requests with one key arrive together, then exactly one creates the job and the others get it', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => jobs.enqueue(params, 'same-moment')));
    expect(new Set(answers.map((a) => a.view.id)).size).toBe(1);
    expect(answers.filter((a) => a.created)).toHaveLength(1);
    expect(answers.every((a) => JSON.stringify(a.view.params) === JSON.stringify(params))).toBe(true);
    expect((await jobs.counts()).queued).toBe(1);
  });

  it('when requests with one key but other parameters arrive together, then all but the first are conflicts', async () => {
    const other = trainParamsSchema.parse({ epochs: 2, trainSize: 100 });
    const answers = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => jobs.enqueue(i % 2 ? other : params, 'same-moment-other-params')),
    );
    const created = answers.filter((a) => a.status === 'fulfilled' && a.value.created);
    const conflicts = answers.filter((a) => a.status === 'rejected' && a.reason instanceof JobConflictError);
    expect(created).toHaveLength(1);
    // Five asked for what was created (one created it, four get it back); five asked for something else.
    expect(conflicts).toHaveLength(5);
  });
});

describe('training jobs: views', () => {
  const { prefix, jobs } = useTrainingJobs('views');
  const result: JobResult = {
    modelVersion: 1,
    metrics: {
      accuracy: { train: 1, validation: null, test: 1 },
      loss: { train: 0, validation: null, test: 0 },
      trainingSeconds: 1,
      imagesPerSecond: 1,
    },
  };

  it('when a job finishes while it is being read, then a final state always comes with its result and end time', async () => {
    const connection = connect();
    const worker = new Worker(TRAINING_QUEUE, async () => result, { connection, prefix, concurrency: 4 });
    const torn: JobView[] = [];
    try {
      for (let round = 0; round < 40; round++) {
        const { view } = await jobs.enqueue(params);
        for (;;) {
          const seen = await jobs.get(view.id);
          if (seen?.state === 'completed') {
            if (seen.result === null || seen.finishedAt === null) torn.push(seen);
            break;
          }
        }
      }
    } finally {
      await worker.close();
      await connection.quit();
    }
    expect(torn).toEqual([]);
  });
});

describe('training jobs: a cancel against the job publishing its version', () => {
  const { jobs } = useTrainingJobs('endings');

  it('when the worker has claimed the publication, then a cancel is a conflict and the job is not shown cancelled', async () => {
    const { view } = await jobs.enqueue(params);
    expect(await jobs.endings.claim(view.id, 'publishing')).toBe('publishing');
    await expect(jobs.cancel(view.id)).rejects.toThrow(
      /publishing its model version; it can no longer be cancelled/,
    );
    expect((await jobs.get(view.id))!.state).toBe('queued');
    expect(await jobs.isCancelRequested(view.id)).toBe(false);
  });

  it('when the job was cancelled first, then its claim to publish answers cancelled', async () => {
    const { view } = await jobs.enqueue(params);
    expect((await jobs.cancel(view.id))!.state).toBe('cancelled');
    expect(await jobs.endings.claim(view.id, 'publishing')).toBe('cancelled');
  });

  it('when a publication failed and gave its claim back, then the retry can be cancelled', async () => {
    const { view } = await jobs.enqueue(params);
    await jobs.endings.claim(view.id, 'publishing');
    await jobs.endings.releasePublishing(view.id);
    expect((await jobs.cancel(view.id))!.state).toBe('cancelled');
    // Giving back a claim that is not a publishing one changes nothing.
    await jobs.endings.releasePublishing(view.id);
    expect(await jobs.isCancelRequested(view.id)).toBe(true);
  });

  it('when a cancel and a claim to publish are both past their checks and in flight together, then on 50 jobs each has exactly one winner and both sides agree', async () => {
    const views = await Promise.all(
      Array.from({ length: 50 }, () => jobs.enqueue(params).then((e) => e.view)),
    );
    // Both sides are held just before their atomic claim (the cancel after it has read the job's
    // state), then released in the same tick: both claims are in flight at once, which is the race
    // the ending key closes. Which one Redis runs first is chosen by construction, half each way,
    // so both orders are exercised on any machine however busy.
    const claim = jobs.endings.claim.bind(jobs.endings);
    const outcomes: { first: Ending; cancel: 'accepted' | 'refused'; claim: Ending }[] = [];
    try {
      for (const [i, view] of views.entries()) {
        const first: Ending = i % 2 === 0 ? 'cancelled' : 'publishing';
        const gate = barrier<Ending>(2, [first, first === 'cancelled' ? 'publishing' : 'cancelled']);
        jobs.endings.claim = async (id, ending) => {
          await gate.arrive(ending);
          return claim(id, ending);
        };
        const cancel = jobs.cancel(view.id).then(
          () => 'accepted' as const,
          (error: Error) => {
            // Refused for losing the race, not for anything else.
            expect(error.message).toMatch(/is publishing its model version/);
            return 'refused' as const;
          },
        );
        const published = jobs.endings.claim(view.id, 'publishing');
        outcomes.push({ first, cancel: await cancel, claim: await published });
      }
    } finally {
      jobs.endings.claim = claim;
    }
    for (const o of outcomes) {
      expect(o.cancel === 'accepted' ? 'cancelled' : 'publishing').toBe(o.claim);
      expect(o.claim).toBe(o.first);
    }
    expect(outcomes.filter((o) => o.cancel === 'accepted')).toHaveLength(25);
  });
});
