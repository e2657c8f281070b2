import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/ml/data/dataset.js';
import { pickLabels, writeIdxDataset } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { runInTerminal } from '../helpers/terminal.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/train.ts'];

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], {
      timeout: 120_000,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run train', () => {
  const dir = useTempDir('cli');

  it('when asked for --help, then it lists every option and exits 0', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const flag of [
      '--architecture',
      '--epochs',
      '--batch-size',
      '--learning-rate',
      '--learning-rate-schedule',
      '--optimizer',
      '--seed',
      '--train-size',
      '--validation-size',
      '--dataset',
      '--dataset-dir',
      '--augment',
      '--backend',
      '--threads',
      '--out',
      '--json',
    ]) {
      expect(stdout).toContain(flag);
    }
  });

  it.each([
    [['--epochs', '0'], '--epochs: Too small'],
    [['--epochs', 'ten'], '--epochs: Invalid input: expected number'],
    [['--batch-size', '5000'], '--batch-size: Too big'],
    [['--learning-rate', '0'], '--learning-rate'],
    [['--optimizer', 'adagrad'], '--optimizer: Invalid option'],
    [['--learning-rate-schedule', 'linear'], '--learning-rate-schedule: Invalid option'],
    [['--architecture', 'resnet'], '--architecture: Invalid option'],
    [['--dataset', 'relative/dir'], '--dataset: dataset must be'],
    [['--backend', 'gpu'], "--backend: expected node, wasm or cpu, got 'gpu'"],
    [['--threads', '0'], "--threads: expected a whole number from 1 to 64, got '0'"],
    [['--threads', '1.5'], "--threads: expected a whole number from 1 to 64, got '1.5'"],
    [['--threads', 'all'], "--threads: expected a whole number from 1 to 64, got 'all'"],
    [['--bogus'], "Unknown option '--bogus'"],
    [['--dataset', 'Letters-3kq9x2ab'], '--dataset: dataset must be'],
    [['extra'], 'Unexpected argument'],
  ])('when given %j, then it exits 2 naming the problem', async (args, message) => {
    const { code, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('when the dataset directory does not exist, then it exits 1 with the reason', async () => {
    const { code, stderr } = await cli(['--dataset', join(dir, 'nowhere'), '--epochs', '1']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/training failed: .*nowhere.*does not exist/);
  });

  it('when it trains, then it prints an epoch line, saves the model and reports JSON', async () => {
    const out = join(dir, 'model');
    const { code, stdout, stderr } = await cli([
      ...['--epochs', '1', '--train-size', '1000', '--validation-size', '500', '--backend', 'wasm'],
      ...['--threads', '2', '--out', out, '--json'],
    ]);
    expect(code).toBe(0);
    expect(stderr).toMatch(/backend: wasm/);
    expect(stderr).toMatch(
      /epoch 1\/1 {2}loss \d\.\d{4} \(last batch \d\.\d{4}\) {2}acc [\d.]+ % {2}val_loss/,
    );
    // Not a terminal: plain lines at each quarter of the epoch (16 batches of 64), no \r to garble a log.
    expect(stdout + stderr).not.toContain('\r');
    const batchLines = stderr.match(
      /^epoch 1\/1 {2}batch +\d+\/16 {2}loss \d\.\d{4} {2}acc +[\d.]+ % +\d+ img\/s {2}ETA +\d+:\d\d$/gm,
    );
    expect(batchLines?.map((line) => /batch +(\d+)/.exec(line)?.[1])).toEqual(['4', '8', '12']);
    const report = JSON.parse(stdout) as {
      backend: string;
      threads: number;
      parameterCount: number;
      trainImages: number;
      accuracy: { train: number; validation: number; test: number };
      confusion: number[][];
    };
    expect(report).toMatchObject({ backend: 'wasm', threads: 2, parameterCount: 60_074, trainImages: 1000 });
    expect(report.accuracy.test).toBeGreaterThan(0.5);
    expect(report.confusion.flat().reduce((a, b) => a + b, 0)).toBe(10_000);
    for (const file of ['model.json', 'weights.bin', 'training.json']) {
      expect((await stat(join(out, file))).size).toBeGreaterThan(0);
    }
    expect(JSON.parse(await readFile(join(out, 'training.json'), 'utf8'))).toMatchObject({ backend: 'wasm' });
  });

  it('when run in a terminal, then a bar within the epoch is redrawn in place, then blanked for the epoch line', async () => {
    const { code, output } = await runInTerminal([
      ...[process.execPath, ...CLI, '--epochs', '1', '--train-size', '1000', '--validation-size', '500'],
      ...['--backend', 'wasm', '--threads', '1'],
    ]);
    expect(code).toBe(0);
    // The first batch is always drawn; a terminal turns each \n into \r\n, so '\r' then text is a redraw.
    expect(output).toMatch(
      /\repoch 1\/1 \[>? *\] {2}1\/16 {2}loss \d\.\d{4} {2}acc +[\d.]+ % +\d+ img\/s {2}ETA +\d+:\d\d/,
    );
    expect(output).toMatch(/\r +\repoch 1\/1 {2}loss \d\.\d{4} \(last batch/);
    expect(output).not.toMatch(/^epoch 1\/1 {2}batch/m);
  });

  it("when given an uploaded dataset's id, then it trains on it from DATASET_DIR, printing the default validation size and the class names", async () => {
    const root = join(dir, 'datasets');
    const mnist = await loadDataset('mnist');
    await writeIdxDataset(join(root, 'shapes-0a1b2c3d'), {
      train: pickLabels(mnist.train, [0, 1, 7], 600),
      test: pickLabels(mnist.test, [0, 1, 7], 90),
      classes: ['ring', 'bar', 'hook'],
    });
    const args = ['--dataset', 'shapes-0a1b2c3d', '--epochs', '1', '--backend', 'wasm', '--threads', '1'];
    const { code, stdout } = await cli(args, { DATASET_DIR: root });
    expect(code).toBe(0);
    expect(stdout).toContain('"validationSize":100');
    expect(stdout).toMatch(/^ {2}2: {2}( +\d+){3}$/m);
    expect(stdout).toContain('labels: 0 ring, 1 bar, 2 hook');

    const missing = await cli([...args, '--dataset-dir', join(dir, 'nowhere')], { DATASET_DIR: root });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("training failed: no uploaded dataset 'shapes-0a1b2c3d'");
  });
});
