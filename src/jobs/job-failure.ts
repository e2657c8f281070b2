import { basename, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { resolveDatasetDir } from '../ml/data/dataset.js';
import type { TrainParams } from '../ml/train-params.js';

/**
 * Why a job failed, as clients see it. The worker's log keeps the whole error; the job's view
 * shows a code and a plain message, never stack traces, server paths or errno text (issue 12).
 */
export const jobFailureCodeSchema = z
  .enum(['invalid_params', 'dataset_unusable', 'time_limit', 'worker_lost', 'internal'])
  .describe(
    'invalid_params, dataset_unusable, time_limit: the job as asked cannot train (the message says why); ' +
      'worker_lost: its workers kept dying; internal: a problem on the server (see its logs)',
  );
export type JobFailureCode = z.infer<typeof jobFailureCodeSchema>;

/** Failures the client's own request caused, whose message it may read. */
type ClientCause = Extract<JobFailureCode, 'invalid_params' | 'dataset_unusable' | 'time_limit'>;
const CLIENT_CAUSES = new Set<string>(['invalid_params', 'dataset_unusable', 'time_limit']);

/** The failure reason a worker records for a cause the client may be told about. */
export function clientFailure(code: ClientCause, message: string): string {
  return `[${code}] ${message}`;
}

// BullMQ's reason for a job whose workers died more often than maxStalledCount allows.
const STALLED = 'job stalled more than allowable limit';
const TAGGED = /^\[([a-z_]+)\] ([\s\S]*)$/;
// An absolute path: a slash after a space, quote, colon or the start, then path characters.
const ABSOLUTE_PATH = /(?<=^|[\s'"(:=])\/[^\s'"(),;:]*/g;

/** The code and message a client sees for a failed job's recorded reason. */
export function publicFailure(
  reason: string | undefined,
  job: { id: string; params: TrainParams },
): { code: JobFailureCode; message: string } {
  const tagged = TAGGED.exec(reason ?? '');
  if (tagged && CLIENT_CAUSES.has(tagged[1]!)) {
    return { code: tagged[1] as ClientCause, message: withoutServerPaths(tagged[2]!, job.params.dataset) };
  }
  if (reason === STALLED) {
    return {
      code: 'worker_lost',
      message: 'the workers training this job stopped answering too many times, so it was given up',
    };
  }
  return {
    code: 'internal',
    message: `training failed because of a problem on the server; its logs have the details (job ${job.id})`,
  };
}

/**
 * The client's own data set path stays (it sent it); a built-in data set's directory becomes its
 * name; any other server path becomes its last part.
 */
function withoutServerPaths(message: string, dataset: string): string {
  const own = isAbsolute(dataset) ? resolve(dataset) : undefined;
  const builtIn = own ? undefined : datasetDir(dataset);
  return message.replace(ABSOLUTE_PATH, (path) => {
    if (own && (path === own || path.startsWith(`${own}/`))) return path;
    if (builtIn && path === builtIn) return `the ${dataset} data set`;
    if (builtIn && path.startsWith(`${builtIn}/`)) return `${basename(path)} of the ${dataset} data set`;
    return basename(path);
  });
}

function datasetDir(dataset: string): string | undefined {
  try {
    return resolveDatasetDir(dataset as TrainParams['dataset']);
  } catch {
    return undefined;
  }
}
