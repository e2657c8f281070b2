import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { useTestApi } from '../helpers/api.js';
import { trainAndPublish } from '../helpers/models.js';
import { exited } from '../helpers/processes.js';
import { workerOptions } from '../helpers/training-worker.js';

const DOC = join(import.meta.dirname, '../../docs/examples.md');
const EXAMPLES = join(import.meta.dirname, '../../docs/examples');
/** Every example, each run below: a file added to docs/examples without a run here fails the doc test. */
const RUN = ['predict.mjs', 'predict.py', 'predict.sh', 'train.py'];
/** Debian's interpreter, with Debian's python3-requests (in .ci/run's apt packages). */
const PYTHON = '/usr/bin/python3';
const API_KEY = 'examples-test-key-0123456789';

/** Each `File: [`examples/x`](examples/x)` of the doc with the code block right after it. */
function shownFiles(markdown: string): Map<string, string> {
  const shown = new Map<string, string>();
  const pattern = /^File: \[`examples\/([^`]+)`\]\(examples\/\1\)\n\n```[a-z]*\n([\s\S]*?)^```$/gm;
  for (const [, name, code] of markdown.matchAll(pattern)) shown.set(name!, code!);
  return shown;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; what it printed and its exit code. */
async function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const result: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (result.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (result.stderr += chunk.toString()));
  const failed = new Promise<never>((_, reject) => child.once('error', reject));
  result.code = await Promise.race([exited(child), failed]);
  return result;
}

/** The line `<how>: <class> (<percent> %), model version <n>` the Node and Python examples print. */
function printedAnswer(stdout: string, how: string) {
  const line = new RegExp(`^${how}: (\\S+) \\((\\d+\\.\\d) %\\), model version (\\d+)$`, 'm').exec(stdout);
  expect(line, `a "${how}: ..." line in:\n${stdout}`).not.toBeNull();
  return { digit: line![1], percent: Number(line![2]), version: Number(line![3]) };
}

describe('docs/examples.md: the client examples, run against a real API', () => {
  // The key on /predict too, so an example that forgot to send it fails here.
  const api = useTestApi('examples', { auth: { apiKey: API_KEY, protectPredict: true } }, { listen: true });
  let cwd: string;

  /** The environment an example gets: the API's address and (unless `withKey` is false) its key. */
  function env(withKey = true): NodeJS.ProcessEnv {
    const given: NodeJS.ProcessEnv = {
      ...process.env,
      API_URL: `http://127.0.0.1:${api.port}`,
      // A proxy set on the machine must not stand between the examples and 127.0.0.1.
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    };
    if (withKey) given.API_KEY = API_KEY;
    else delete given.API_KEY;
    return given;
  }

  /** How each kind of example is started, from a directory of its own (the curl one writes digit.png). */
  async function runExample(name: string, args: string[] = [], withKey = true): Promise<Run> {
    const file = join(EXAMPLES, name);
    if (name.endsWith('.py')) await needRequests();
    const [command, ...before] = name.endsWith('.mjs')
      ? [process.execPath]
      : name.endsWith('.py')
        ? [PYTHON]
        : ['bash'];
    return run(command!, [...before, file, ...args], { cwd, env: env(withKey) });
  }

  /** Python with requests, or a failure saying how to get it: never a silent skip. */
  async function needRequests(): Promise<void> {
    const check = await run(PYTHON, ['-c', 'import requests'], { cwd, env: env() }).catch((error: Error) => ({
      code: -1,
      stdout: '',
      stderr: error.message,
    }));
    if (check.code !== 0)
      throw new Error(
        `the Python examples need ${PYTHON} with requests: apt-get install -y python3 python3-requests ` +
          `(${check.stderr.trim()})`,
      );
  }

  beforeAll(async () => {
    cwd = join(api.dir, 'cwd');
    await mkdir(cwd, { recursive: true });
    await initBackend('wasm');
    // Reads the first 7 of MNIST's test set (the one the examples fetch) as a 7.
    const model = await trainAndPublish(api.store, { trainSize: 10_000, augment: true, seed: 1 });
    model.dispose();
    await api.predictor.refresh();
  }, 120_000);

  it('when the doc is read, then each example file is shown in it byte for byte, and each one is run here', async () => {
    const shown = shownFiles(await readFile(DOC, 'utf8'));
    const files = (await readdir(EXAMPLES)).sort();
    expect(files).toEqual([...RUN].sort());
    expect([...shown.keys()].sort()).toEqual(files);
    for (const name of files)
      expect(shown.get(name), `the block under examples/${name} in docs/examples.md`).toBe(
        await readFile(join(EXAMPLES, name), 'utf8'),
      );
  });

  it.each(['predict.mjs', 'predict.py'])(
    'when %s runs, then it prints 7 for the PNG and for the JSON numbers, with the confidence and version',
    async (name) => {
      const result = await runExample(name);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      for (const how of ['image/png', 'json']) {
        const answer = printedAnswer(result.stdout, how);
        expect(answer).toMatchObject({ digit: '7', version: 1 });
        expect(answer.percent).toBeGreaterThan(0);
        expect(answer.percent).toBeLessThanOrEqual(100);
      }
    },
  );

  it('when predict.sh runs, then it saves digit.png (the 7 of /samples/7.png) and prints both answers as JSON', async () => {
    const result = await runExample('predict.sh');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const answers = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(answers).toHaveLength(2);
    for (const answer of answers) {
      expect(answer.modelVersion).toBe(1);
      expect(answer.predictions[0]).toMatchObject({ label: 7, class: '7' });
    }
    const served = await request(api.app.server).get('/samples/7.png').buffer(true).expect(200);
    expect(await readFile(join(cwd, 'digit.png'))).toEqual(served.body);
  });

  it.each(['predict.mjs', 'predict.py', 'predict.sh'])(
    "when %s runs without API_KEY on a service that wants it, then it fails with the API's 401",
    async (name) => {
      const result = await runExample(name, [], false);
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toContain('"code":"unauthorized"');
    },
  );

  describe('with a training worker', () => {
    let worker: Awaited<ReturnType<typeof startTrainingWorker>>;
    beforeAll(async () => {
      worker = await startTrainingWorker(workerOptions(api, { jobs: api.jobs }));
    });
    afterAll(() => worker?.close());

    it(
      'when train.py runs with a tiny job, then it follows it to the end and prints the new version and its test accuracy',
      { timeout: 120_000 },
      async () => {
        const params = { epochs: 1, trainSize: 1000, validationSize: 500 };
        const result = await runExample('train.py', [JSON.stringify(params)]);
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        const queued = /^job (\S+) queued$/m.exec(result.stdout);
        const done = /^model version (\d+): test accuracy (\d+\.\d\d) %$/m.exec(result.stdout);
        expect(queued, result.stdout).not.toBeNull();
        expect(done, result.stdout).not.toBeNull();
        const metadata = await api.store.get(Number(done![1]));
        expect(metadata).toMatchObject({ version: 2, jobId: queued![1], params });
        expect(Number(done![2])).toBe(Number((metadata!.accuracy.test * 100).toFixed(2)));
      },
    );
  });
});
