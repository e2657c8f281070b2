import { parentPort, workerData } from 'node:worker_threads';
import { BatchHistory, batchPoint } from '../jobs/batch-history.js';
import { clientFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-schema.js';
import { DatasetError, isUploadedDatasetId } from '../ml/data/dataset.js';
import { IdxFormatError } from '../ml/data/idx.js';
import { initBackend } from '../ml/backend/index.js';
import { BaseModelError, type BaseModel } from '../ml/base-weights.js';
import { runTraining } from '../ml/run-training.js';
import { trainingDatasets } from '../ml/train-params.js';
import type { EpochSummary, TrainProgress } from '../ml/train.js';
import { ModelNotFoundError, type ModelStore, type ModelMetadata } from '../registry/model-store.js';
import { openStores } from '../store/open-stores.js';
import type { FromThread, ThreadInput, ToThread } from './thread-messages.js';

/**
 * Trains one job off the worker's main thread, whose event loop must stay free to renew the
 * BullMQ job lock (a CPU-bound loop there makes jobs stall: BullMQ's docs on sandboxing).
 */
const input = workerData as ThreadInput;
const port = parentPort!;
const stores = openStores(input.store);
const send = (message: FromThread) => port.postMessage(message);
const controller = new AbortController();
const HANDED_OVER = 'handed over for a shutdown';
let handoverRequested = false;
let publishAnswer: ((allowed: boolean) => void) | undefined;
port.on('message', (message: ToThread) => {
  if (message.type === 'cancel') controller.abort(new Error(message.reason));
  else if (message.type === 'publish') publishAnswer?.(message.allowed);
  else if (message.now) controller.abort(new Error(HANDED_OVER));
  else handoverRequested = true;
});

/** Asks the worker whether the job may still publish: no cancel claimed its ending first. */
function mayPublish(): Promise<boolean> {
  return new Promise((resolve) => {
    publishAnswer = resolve;
    send({ type: 'may-publish' });
  });
}

const toRecord = (h: EpochSummary) => ({
  epoch: h.epoch,
  loss: h.loss,
  accuracy: h.accuracy,
  valLoss: h.valLoss,
  valAccuracy: h.valAccuracy,
  seconds: h.seconds,
});

/**
 * The version a fine-tuning job starts from. None when resuming: the checkpoint holds where the
 * run got to, and the base may even have been deleted since.
 */
async function loadBase(store: ModelStore, resuming: boolean): Promise<BaseModel | undefined> {
  const version = input.params.baseVersion;
  if (version === undefined || resuming) return undefined;
  try {
    return { model: await store.load(version), version };
  } catch (error) {
    if (!(error instanceof ModelNotFoundError)) throw error;
    const missing = `baseVersion ${version}: there is no model version ${version} to fine-tune from`;
    throw new BaseModelError(missing, { cause: error });
  }
}

const resultOf = (m: ModelMetadata): JobResult => ({
  modelVersion: m.version,
  metrics: {
    accuracy: m.accuracy,
    loss: m.loss,
    trainingSeconds: m.trainingSeconds,
    imagesPerSecond: m.imagesPerSecond,
  },
});

/**
 * Where the uploaded datasets the job names are on this machine (fetched first from a remote
 * store): one directory, under which each is `<id>/`.
 */
async function uploadedRoot(datasets: readonly string[]): Promise<string | undefined> {
  let found: string | undefined;
  for (const dataset of datasets.filter(isUploadedDatasetId)) {
    const root = await stores.datasets.trainingRoot(dataset);
    if (root === null) throw new DatasetError(`no uploaded dataset '${dataset}'`);
    found = root;
  }
  return found;
}

async function main(): Promise<void> {
  const store = stores.models;
  const corruptCheckpoints: string[] = [];
  const checkpoints = stores.checkpoints({
    onCorrupt: (problem) => corruptCheckpoints.push(problem),
  });
  // A retry of a job whose worker died after publishing: the version is there, report it.
  const published = await store.findByJob(input.jobId);
  if (published) {
    await checkpoints.remove(input.jobId);
    send({ type: 'done', result: resultOf(published) });
    return;
  }
  const backend = await initBackend(input.backend);
  const checkpoint = await checkpoints.load(input.jobId);
  const history: EpochSummary[] = [...(checkpoint?.history ?? [])];
  send({ type: 'started', backend: backend.name, resumedFromEpoch: history.length, corruptCheckpoints });
  let batches = 0;
  const curve = new BatchHistory(input.params.epochs, {
    earlier: input.batchHistory,
    epochsDone: history.length,
  });
  const report = (p: TrainProgress) => {
    curve.add(batchPoint(p));
    send({
      type: 'progress',
      progress: {
        epoch: p.epoch,
        epochs: p.epochs,
        batch: p.batch,
        batches: p.batches,
        percent: p.percent,
        imagesPerSecond: p.imagesPerSecond,
        etaSeconds: p.etaSeconds,
        loss: p.loss,
        accuracy: p.accuracy,
        history: history.map(toRecord),
        batchHistory: curve.points,
      },
    });
  };
  const base = await loadBase(store, checkpoint !== null);
  const {
    model,
    report: training,
    misclassifiedImages,
  } = await runTraining(input.params, {
    backend,
    threads: input.threads,
    uploadedRoot: await uploadedRoot(trainingDatasets(input.params)),
    // A failure to read it is the store's, not the job's: an ordinary error, which is retried.
    feedback: () => stores.feedback.list(),
    signal: controller.signal,
    ...(checkpoint ? { resume: checkpoint } : base ? { base } : {}),
    onProgress: (p) => {
      batches = p.batches;
      if (p.kind === 'epoch') return; // reported with its history entry from onEpochEnd
      report(p);
    },
    onEpochEnd: async (end) => {
      await checkpoints.save(input.jobId, end);
      history.splice(0, history.length, ...end.history);
      const last = end.history.at(-1)!;
      report({
        kind: 'epoch',
        epoch: end.epoch,
        epochs: input.params.epochs,
        batch: batches,
        batches,
        percent: (100 * end.epoch) / input.params.epochs,
        loss: last.loss,
        accuracy: last.accuracy,
        imagesPerSecond: last.imagesPerSecond,
        elapsedSeconds: 0,
        etaSeconds: (input.params.epochs - end.epoch) * last.seconds,
      });
      // The epoch is saved: a good place to stop when the worker is shutting down.
      if (handoverRequested && end.epoch < input.params.epochs) controller.abort(new Error(HANDED_OVER));
    },
  }).finally(() => base?.model.dispose());
  try {
    let already: ModelMetadata | null = null;
    const metadata = await store
      .publish(model, training, {
        jobId: input.jobId,
        misclassifiedImages,
        beforeVisible: async () => {
          // A cancel sent during the final evaluation (synchronous work), or one whose message was
          // lost, must still stop the job before a version appears; a hand-over need not, the work
          // is done. The worker answers by claiming the job's ending in Redis, fenced with its
          // lock (src/jobs/job-endings.ts).
          const allowed = await mayPublish();
          const reason = controller.signal.reason as Error | undefined;
          if (controller.signal.aborted && reason?.message !== HANDED_OVER) throw reason;
          // The worker sends the cancel itself first, so a cancel has already aborted us above.
          if (!allowed) throw new Error('the worker refused to publish');
          // A worker that lost this job may have published it since we looked at the start.
          already = await store.findByJob(input.jobId);
          if (already) throw new Error(`job ${input.jobId} already published version ${already.version}`);
        },
      })
      .catch((error: unknown) => {
        if (already) return already;
        throw error;
      });
    send({ type: 'published', version: metadata.version });
    await checkpoints.remove(input.jobId);
    send({ type: 'done', result: resultOf(metadata) });
  } finally {
    model.dispose();
  }
}

main()
  .catch(async (error: unknown) => {
    const abortReason = controller.signal.aborted ? (controller.signal.reason as Error).message : undefined;
    const handedOver = abortReason === HANDED_OVER;
    const cancelled = abortReason !== undefined && !handedOver;
    if (cancelled)
      await stores
        .checkpoints()
        .remove(input.jobId)
        .catch(() => undefined);
    send({
      type: 'failed',
      // A data set or base version the job named that cannot be used is the client's to fix: tagged
      // so it is told why.
      message:
        error instanceof DatasetError || error instanceof IdxFormatError
          ? clientFailure('dataset_unusable', error.message)
          : error instanceof BaseModelError
            ? clientFailure('invalid_params', error.message)
            : error instanceof Error
              ? error.message
              : String(error),
      // Retrying cannot fix a data set or a base version that is not there, or a cancelled job.
      unrecoverable: cancelled || error instanceof DatasetError || error instanceof BaseModelError,
      cancelled,
      handedOver,
    });
  })
  // Its connections (an S3 client, Redis for version numbers) would keep the thread alive.
  .finally(() => stores.close());
