import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config.js';
import { storeLocation } from '../store/store-location.js';
import { backendNameSchema, initBackend } from '../ml/backend/index.js';
import { trainingImageCount } from '../ml/data/dataset.js';
import { saveModel } from '../ml/model-io.js';
import { runTraining, type TrainingReport } from '../ml/run-training.js';
import { defaultValidationSize, trainParamsSchema, type TrainParams } from '../ml/train-params.js';
import { ProgressPrinter } from './progress-printer.js';
import { percent as pct } from './progress-text.js';

const DEFAULTS = trainParamsSchema.parse({});
const HELP = `Train the CNN on MNIST (or any MNIST-shaped idx data set, uploaded or not) from the command line.

Usage: npm run train -- [options]

Options (defaults are the seed tutorial's recipe):
  --architecture NAME   seed | wide                         (default ${DEFAULTS.architecture})
  --epochs N            1..100                              (default ${DEFAULTS.epochs})
  --batch-size N        1..1024                             (default ${DEFAULTS.batchSize})
  --learning-rate X     in (0, 1]                           (default ${DEFAULTS.learningRate})
  --learning-rate-schedule NAME
                        constant | cosine (down to 0 over the run) (default ${DEFAULTS.learningRateSchedule})
  --optimizer NAME      adam | sgd | momentum | rmsprop     (default ${DEFAULTS.optimizer})
  --seed N              0..2147483647; same seed and backend, same weights (default ${DEFAULTS.seed})
  --train-size N        train on the first N training images only (default: all but validation's)
  --validation-size N   images held out from the end of the training file
                        (default: a sixth of it, at most 10,000: 10,000 for MNIST)
  --dataset NAME        mnist | fashion-mnist | an uploaded dataset's id | /absolute/dir/with/idx/files
                        (default ${DEFAULTS.dataset}); a classes.txt beside the idx files names the labels
  --dataset-dir DIR     where uploaded datasets' ids are (default: the datasets of a directory STORE_URL, ./data/datasets)
  --augment             shift training images by up to 2 pixels at random
  --backend NAME        node | wasm | cpu; also TF_BACKEND (default: fastest available)
  --threads N           data-parallel training threads, 1..64 (default: this machine's cores)
  --out DIR             save the model (model.json, weights.bin) and training.json there
  --json                print the final report as JSON instead of a table
  -h, --help            show this help

Exit codes: 0 trained, 1 training failed, 2 bad options.`;

const options = {
  architecture: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'learning-rate': { type: 'string' },
  'learning-rate-schedule': { type: 'string' },
  optimizer: { type: 'string' },
  seed: { type: 'string' },
  'train-size': { type: 'string' },
  'validation-size': { type: 'string' },
  dataset: { type: 'string' },
  'dataset-dir': { type: 'string' },
  augment: { type: 'boolean' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

const NUMERIC = new Set(['epochs', 'batchSize', 'learningRate', 'seed', 'trainSize', 'validationSize']);
const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

class UsageError extends Error {}

function parseCommandLine(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const {
    help,
    json,
    out,
    backend,
    threads: threadsFlag,
    'dataset-dir': datasetDir,
    ...rest
  } = parsed.values;
  const raw: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(rest)) {
    const key = camel(flag);
    raw[key] = NUMERIC.has(key) && value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;
  }
  const params = trainParamsSchema.safeParse(raw);
  if (!params.success) {
    const problems = params.error.issues.map((i) => `--${kebab(String(i.path[0] ?? '?'))}: ${i.message}`);
    throw new UsageError(problems.join('\n'));
  }
  const backendName = backend ?? process.env.TF_BACKEND;
  const chosen = backendName ? backendNameSchema.safeParse(backendName) : undefined;
  if (chosen && !chosen.success)
    throw new UsageError(`--backend: expected node, wasm or cpu, got '${backendName}'`);
  const threads = threadsFlag === undefined ? availableParallelism() : Number(threadsFlag);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64)
    throw new UsageError(`--threads: expected a whole number from 1 to 64, got '${threadsFlag}'`);
  return {
    help: help ?? false,
    json: json ?? false,
    out,
    backend: chosen?.data,
    threads,
    datasetDir: datasetDir ?? storeDatasetDir(),
    params: params.data,
  };
}

/** Uploaded datasets where the service keeps them, when that is a directory (STORE_URL, DATASET_DIR). */
function storeDatasetDir(): string | undefined {
  const location = storeLocation(loadConfig());
  return location.kind === 'file' ? location.datasetDir : undefined;
}

function summary(report: TrainingReport): string {
  const { classes } = report;
  const name = (label: number) => classes[label] ?? String(label);
  const width = Math.max(5, ...report.confusion.flat().map((n) => String(n).length + 1));
  const digits = classes.every((c, i) => c === String(i));
  const lines = [
    '',
    `            train      validation  test`,
    `accuracy    ${pct(report.accuracy.train)}    ${pct(report.accuracy.validation)}     ${pct(report.accuracy.test)}`,
    '',
    'confusion matrix on test (rows: true label, columns: predicted)',
    `      ${classes.map((_, c) => String(c).padStart(width)).join('')}`,
    ...report.confusion.map(
      (row, c) => `${String(c).padStart(3)}:  ${row.map((n) => String(n).padStart(width)).join('')}`,
    ),
    // Names can be long: they go under the matrix rather than in its header.
    ...(digits ? [] : [`labels: ${classes.map((c, i) => `${i} ${c}`).join(', ')}`]),
    '',
    `most confident test errors: ${report.misclassified
      .slice(0, 8)
      .map((m) => `#${m.index} predicted ${name(m.predicted)}, true ${name(m.label)} (${pct(m.confidence)})`)
      .join('; ')}`,
    `training time ${report.trainingSeconds.toFixed(1)} s on ${report.backend} (${report.threads} threads), ` +
      `${Math.round(report.imagesPerSecond)} images/s, ${report.parameterCount.toLocaleString('en')} parameters`,
  ];
  return lines.join('\n');
}

/** The parameters with validationSize filled as loadDataset would, so the printed ones say it. */
async function withValidationSize(params: TrainParams, datasetDir: string | undefined): Promise<TrainParams> {
  if (params.validationSize !== undefined) return params;
  const images = await trainingImageCount(params.dataset, datasetDir);
  return { ...params, validationSize: defaultValidationSize(images) };
}

async function main(argv: string[]): Promise<number> {
  let cli;
  try {
    cli = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\nRun with --help for the options.`);
    return 2;
  }
  if (cli.help) {
    console.log(HELP);
    return 0;
  }
  const backend = await initBackend(cli.backend);
  // With --json, stdout is the report alone: the rest goes to stderr.
  const log = cli.json ? console.error : console.log;
  const progress = new ProgressPrinter(cli.json ? process.stderr : process.stdout);
  log(
    `backend: ${backend.name}${backend.simd ? ' (simd)' : ''}, ${backend.reason}` +
      backend.skipped.map((s) => `; skipped ${s.name}: ${s.error}`).join(''),
  );
  const params = await withValidationSize(cli.params, cli.datasetDir);
  log(`params: ${JSON.stringify(params)}`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort(new Error('interrupted')));
  let trained;
  try {
    trained = await runTraining(params, {
      backend,
      threads: cli.threads,
      uploadedRoot: cli.datasetDir,
      signal: controller.signal,
      // Every batch: the printer chooses which to show, at most ten a second on a terminal.
      progressIntervalMs: 0,
      onProgress: (p) => progress.update(p),
    });
  } finally {
    progress.end();
  }
  const { model, report } = trained;
  try {
    if (cli.out) {
      await saveModel(model, cli.out);
      await writeFile(join(cli.out, 'training.json'), `${JSON.stringify(report, null, 2)}\n`);
      log(`saved to ${cli.out}`);
    }
  } finally {
    model.dispose();
  }
  if (cli.json) console.log(JSON.stringify(report));
  else console.log(summary(report));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`training failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
