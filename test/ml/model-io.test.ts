import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import {
  fileSystemIO,
  loadModel,
  loadModelFromFiles,
  ModelDirExistsError,
  modelFiles,
  saveModel,
} from '../../src/ml/model-io.js';
import { useTempDir } from '../helpers/temp-dir.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const modelIoUrl = pathToFileURL(path.join(projectRoot, 'src/ml/model-io.ts')).href;

// conv 3x3x1x4 + bias 4, dense (13*13*4)x10 + bias 10, all float32.
const EXPECTED_WEIGHT_BYTES = (3 * 3 * 1 * 4 + 4 + 13 * 13 * 4 * 10 + 10) * 4;

const tmpRoot = useTempDir('model-io-test');
let dir: string;
let caseNumber = 0;
let tensorsBefore: number;
let allowedTfjsLeaks: number;

function buildModel(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}

function randomBatch(): tf.Tensor4D {
  return tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 42);
}

function predict(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

async function saveFixture(target: string): Promise<void> {
  const model = buildModel();
  try {
    await saveModel(model, target);
  } finally {
    model.dispose();
  }
}

async function readModelJSON(target: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(target, 'model.json'), 'utf8')) as Record<string, unknown>;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function tempSiblings(target: string): Promise<string[]> {
  const prefix = `${path.basename(target)}.tmp-`;
  return (await readdir(path.dirname(target))).filter((name) => name.startsWith(prefix));
}

/** Runs an ES module snippet in a fresh Node process (with tsx, so it can import our .ts sources). */
function runNode(
  code: string,
  fileSizeLimitBlocks: number,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // RLIMIT_FSIZE makes the kernel fail writes past the limit (EFBIG), like a full disk or quota would.
    const child = spawn(
      'sh',
      [
        '-c',
        `ulimit -f ${fileSizeLimitBlocks} && exec "$0" "$@"`,
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        code,
      ],
      { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(() => initBackend('wasm'));

beforeEach(async () => {
  // A failed cross-backend test must not leave the rest of the file running on cpu.
  await tf.setBackend('wasm');
  dir = path.join(tmpRoot, `case-${++caseNumber}`, 'model');
  await mkdir(path.dirname(dir));
  tensorsBefore = tf.memory().numTensors;
  allowedTfjsLeaks = 0;
});

afterEach(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore + allowedTfjsLeaks);
});

describe('saveModel', () => {
  it('writes model.json and weights.bin in the tfjs layers format', async () => {
    await saveFixture(dir);

    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    const json = await readModelJSON(dir);
    expect(Object.keys(json).sort()).toEqual(
      ['convertedBy', 'format', 'generatedBy', 'modelTopology', 'weightsManifest'].sort(),
    );
    expect(json.format).toBe('layers-model');
    expect(json.generatedBy).toBe(`TensorFlow.js tfjs-layers v${tf.version_layers}`);
    expect(json.convertedBy).toBeNull();
    expect(json.modelTopology).toMatchObject({ class_name: 'Sequential' });
    expect(json.weightsManifest).toEqual([
      {
        paths: ['weights.bin'],
        weights: [
          expect.objectContaining({ shape: [3, 3, 1, 4], dtype: 'float32' }),
          expect.objectContaining({ shape: [4], dtype: 'float32' }),
          expect.objectContaining({ shape: [676, 10], dtype: 'float32' }),
          expect.objectContaining({ shape: [10], dtype: 'float32' }),
        ],
      },
    ]);
    expect((await stat(path.join(dir, 'weights.bin'))).size).toBe(EXPECTED_WEIGHT_BYTES);
    expect(await tempSiblings(dir)).toEqual([]);
  });

  it('returns artifact sizes like the built-in tfjs handlers do', async () => {
    const model = buildModel();
    try {
      const result = await model.save(fileSystemIO(dir));
      expect(result.modelArtifactsInfo).toMatchObject({
        modelTopologyType: 'JSON',
        weightDataBytes: EXPECTED_WEIGHT_BYTES,
      });
    } finally {
      model.dispose();
    }
  });

  it('keeps the training config, optimizer weights and user metadata when asked', async () => {
    const model = buildModel();
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    model.setUserDefinedMetadata({ dataset: 'mnist', epochs: 1 });
    const [x, y] = tf.tidy(() => [randomBatch(), tf.oneHot(tf.range(0, 8, 1, 'int32'), 10)]);
    let loaded: tf.LayersModel | undefined;
    try {
      // One step, so Adam has moment estimates worth saving.
      await model.fit(x!, y!, { epochs: 1, batchSize: 8, verbose: 0 });
      await saveModel(model, dir, { includeOptimizer: true });

      const json = await readModelJSON(dir);
      expect(json.trainingConfig).toMatchObject({ loss: 'categorical_crossentropy' });
      expect(json.userDefinedMetadata).toEqual({ dataset: 'mnist', epochs: 1 });
      const [group] = json.weightsManifest as { weights: { group?: string }[] }[];
      expect(group!.weights.some((w) => w.group === 'optimizer')).toBe(true);

      loaded = await loadModel(dir);
      expect(loaded.optimizer).toBeDefined();
      expect(loaded.getUserDefinedMetadata()).toEqual({ dataset: 'mnist', epochs: 1 });
      const [saved, restored] = await Promise.all([
        model.optimizer.getWeights(),
        loaded.optimizer.getWeights(),
      ]);
      try {
        expect(restored.map((w) => w.name)).toEqual(saved.map((w) => w.name));
        for (const [i, w] of restored.entries()) {
          expect(w.tensor.dataSync()).toEqual(saved[i]!.tensor.dataSync());
        }
      } finally {
        // getWeights() hands out a fresh iteration-count scalar next to the live moment variables.
        tf.dispose([...saved, ...restored].filter((w) => w.name === 'iter').map((w) => w.tensor));
      }
    } finally {
      tf.dispose([x!, y!]);
      model.dispose();
      // loadTrainingConfig() compiles with an optimizer instance, so the model does not own it.
      loaded?.optimizer.dispose();
      loaded?.dispose();
    }
    // LayersModel.save({ includeOptimizer }) itself never disposes that iteration-count scalar.
    allowedTfjsLeaks = 1;
  });

  it('leaves out the optimizer by default', async () => {
    const model = buildModel();
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    try {
      await saveModel(model, dir);
    } finally {
      model.dispose();
    }
    const json = await readModelJSON(dir);
    expect(json).not.toHaveProperty('trainingConfig');
    expect((await stat(path.join(dir, 'weights.bin'))).size).toBe(EXPECTED_WEIGHT_BYTES);
  });

  it('saves into an existing empty directory', async () => {
    await mkdir(dir);
    await saveFixture(dir);
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
  });

  it('refuses to overwrite an existing model and leaves it intact', async () => {
    await saveFixture(dir);
    const before = await readFile(path.join(dir, 'weights.bin'));

    await expect(saveFixture(dir)).rejects.toThrow(ModelDirExistsError);
    await expect(saveFixture(dir)).rejects.toThrow(/Refusing to save model to .*already exists/);

    expect(await readFile(path.join(dir, 'weights.bin'))).toEqual(before);
    expect(await tempSiblings(dir)).toEqual([]);
  });

  it('refuses to replace a file at the target path', async () => {
    await writeFile(dir, 'not a model');
    await expect(saveFixture(dir)).rejects.toThrow(ModelDirExistsError);
    expect(await readFile(dir, 'utf8')).toBe('not a model');
  });

  it('fails without leaving a directory when the parent path is a file', async () => {
    const parentFile = path.join(path.dirname(dir), 'parent');
    await writeFile(parentFile, '');
    const target = path.join(parentFile, 'model');

    await expect(saveFixture(target)).rejects.toThrow(`Cannot save model to ${target}`);
    expect(await readdir(path.dirname(dir))).toEqual(['parent']);
  });

  it.skipIf(process.platform === 'win32')(
    'leaves no model directory when weights.bin fails mid-write (file size limit)',
    async () => {
      // A dense 784x128 layer is ~400 KB of weights, far beyond the 32-64 KB the limit allows
      // (`ulimit -f` counts 512- or 1024-byte blocks depending on the shell).
      const code = `
        import * as tf from '@tensorflow/tfjs';
        import { saveModel } from ${JSON.stringify(modelIoUrl)};
        const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [784], units: 128 })] });
        try {
          await saveModel(model, ${JSON.stringify(dir)});
          process.stdout.write(JSON.stringify({ saved: true }));
        } catch (err) {
          process.stdout.write(JSON.stringify({ saved: false, message: err.message }));
        }
      `;
      const { status, stdout, stderr } = await runNode(code, 64);

      expect(status, stderr).toBe(0);
      expect(JSON.parse(stdout)).toEqual({ saved: false, message: expect.stringMatching(/EFBIG/) });
      expect(await exists(dir)).toBe(false);
      expect(await tempSiblings(dir)).toEqual([]);
      await expect(loadModel(dir)).rejects.toThrow('does not exist');
    },
  );
});

describe('loadModel', () => {
  it('predicts exactly like the saved model on the same backend', async () => {
    const model = buildModel();
    const x = randomBatch();
    let loaded: tf.LayersModel | undefined;
    try {
      const expected = predict(model, x);
      await saveModel(model, dir);
      loaded = await loadModel(dir);
      expect(predict(loaded, x)).toEqual(expected);
    } finally {
      tf.dispose(x);
      model.dispose();
      loaded?.dispose();
    }
  });

  it('predicts within 1e-5 under cpu what a model saved under wasm predicted', async () => {
    const model = buildModel();
    const x = randomBatch();
    let loaded: tf.LayersModel | undefined;
    try {
      expect(tf.getBackend()).toBe('wasm');
      const expected = predict(model, x);
      await saveModel(model, dir);

      await tf.setBackend('cpu');
      loaded = await loadModel(dir);
      const actual = predict(loaded, x);

      expect(actual).toHaveLength(expected.length);
      for (const [i, value] of actual.entries()) {
        expect(Math.abs(value - expected[i]!)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      tf.dispose(x);
      model.dispose();
      loaded?.dispose();
      await tf.setBackend('wasm');
    }
  });

  it('fails naming the path when model.json is missing', async () => {
    await expect(loadModel(dir)).rejects.toThrow(`${path.join(dir, 'model.json')} does not exist`);
  });

  it('fails clearly when model.json is not JSON', async () => {
    await saveFixture(dir);
    await writeFile(path.join(dir, 'model.json'), '{"modelTopology": {');
    await expect(loadModel(dir)).rejects.toThrow(/model\.json is not valid JSON/);
  });

  it.each(['modelTopology', 'weightsManifest'])('fails clearly when model.json lacks %s', async (key) => {
    await saveFixture(dir);
    const json = await readModelJSON(dir);
    delete json[key];
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await expect(loadModel(dir)).rejects.toThrow(`model.json has no ${key}`);
  });

  it('fails with both byte counts when weights.bin is shorter than the manifest says', async () => {
    await saveFixture(dir);
    await truncate(path.join(dir, 'weights.bin'), 100);
    await expect(loadModel(dir)).rejects.toThrow(
      `100 bytes on disk, manifest needs ${EXPECTED_WEIGHT_BYTES} bytes`,
    );
  });

  it('fails naming the file when weights.bin is missing', async () => {
    await saveFixture(dir);
    await rm(path.join(dir, 'weights.bin'));
    await expect(loadModel(dir)).rejects.toThrow(`reading weights file ${path.join(dir, 'weights.bin')}`);
  });

  it.each(['../escape.bin', 'sub/../../escape.bin', '/etc/passwd'])(
    'refuses the weight path %s that escapes the model directory',
    async (weightsPath) => {
      await saveFixture(dir);
      // A valid weights file outside the directory, so only the path check can stop the load.
      const weights = await readFile(path.join(dir, 'weights.bin'));
      await writeFile(path.join(path.dirname(dir), 'escape.bin'), weights);
      const json = await readModelJSON(dir);
      const [group] = json.weightsManifest as { paths: string[] }[];
      group!.paths = [weightsPath];
      await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));

      await expect(loadModel(dir)).rejects.toThrow(`weights path "${weightsPath}" points outside`);
    },
  );
});

describe('modelFiles and loadModelFromFiles', () => {
  it('when a model is serialised in memory, then its files are byte for byte what saveModel writes', async () => {
    const model = buildModel();
    try {
      const files = await modelFiles(model);
      await saveModel(model, dir);
      expect(files.modelJson.equals(await readFile(path.join(dir, 'model.json')))).toBe(true);
      expect(files.weights.equals(await readFile(path.join(dir, 'weights.bin')))).toBe(true);
      expect(files.weights.length).toBe(EXPECTED_WEIGHT_BYTES);
    } finally {
      model.dispose();
    }
  });

  it('when files from memory are loaded, then the model predicts exactly like the one serialised', async () => {
    const model = buildModel();
    const x = randomBatch();
    let loaded: tf.LayersModel | undefined;
    try {
      loaded = await loadModelFromFiles(await modelFiles(model), 's3://bucket/models/1');
      expect(predict(loaded, x)).toEqual(predict(model, x));
    } finally {
      tf.dispose(x);
      model.dispose();
      loaded?.dispose();
    }
  });

  it('when the weights are short, then loading fails naming where they came from and both byte counts', async () => {
    const model = buildModel();
    const files = await modelFiles(model);
    model.dispose();
    await expect(
      loadModelFromFiles({ ...files, weights: files.weights.subarray(0, 100) }, 's3://bucket/models/1'),
    ).rejects.toThrow(
      `weights in s3://bucket/models/1/weights.bin are shorter than the manifest says: 100 bytes on disk, manifest needs ${EXPECTED_WEIGHT_BYTES} bytes`,
    );
  });

  it('when model.json names another weights file, then loading refuses it', async () => {
    const model = buildModel();
    const files = await modelFiles(model);
    model.dispose();
    const json = JSON.parse(files.modelJson.toString('utf8')) as { weightsManifest: { paths: string[] }[] };
    json.weightsManifest[0]!.paths = ['../other/weights.bin'];
    await expect(
      loadModelFromFiles({ ...files, modelJson: Buffer.from(JSON.stringify(json)) }, 's3://b/models/1'),
    ).rejects.toThrow('weights path "../other/weights.bin" is not weights.bin');
  });
});
