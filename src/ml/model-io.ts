import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { errorMessage, isErrno, syncDirectory, writeDurably } from '../fs-durable.js';

/**
 * Saving and loading of TensorFlow.js Layers models in a directory, in the layout tfjs-node's
 * `file://` handler uses (`model.json` + `weights.bin`), so models stay interchangeable with
 * tfjs-node and tfjs-converter tooling. tfjs-node cannot be installed here, so this is our own.
 */

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** Bytes per value, as tfjs-core encodes weights (its own table is not exported). */
const BYTES_PER_VALUE: Record<string, number> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint16: 2,
  uint8: 1,
  bool: 1,
  complex64: 8,
};
const QUANTIZATION_DTYPES = new Set(['uint8', 'uint16', 'float16']);
/** tfjs prefixes each encoded string with its byte length as a uint32. */
const STRING_LENGTH_BYTES = 4;

/** Thrown when a save would replace an existing model (or anything else) at the target path. */
export class ModelDirExistsError extends Error {
  constructor(
    readonly dir: string,
    options?: ErrorOptions,
  ) {
    super(
      `Refusing to save model to ${dir}: it already exists and is not an empty directory; ` +
        'remove it or choose another directory',
      options,
    );
    this.name = 'ModelDirExistsError';
  }
}

export interface SaveModelOptions {
  /** Also save the optimizer state and training config, so training can resume after loading. */
  includeOptimizer?: boolean;
}

/**
 * An IOHandler for `model.save()` / `tf.loadLayersModel()` backed by the directory `dir`.
 * Saving never overwrites a non-empty `dir` and never leaves a partial model under `dir`.
 */
export function fileSystemIO(dir: string): tf.io.IOHandler {
  // resolve() also drops a trailing slash, which would otherwise put the temp dir inside `dir`.
  const root = path.resolve(dir);
  return {
    save: (artifacts) => saveArtifacts(root, artifacts),
    load: () => loadArtifacts(root),
  };
}

export async function saveModel(
  model: tf.LayersModel,
  dir: string,
  options?: SaveModelOptions,
): Promise<void> {
  await model.save(fileSystemIO(dir), { includeOptimizer: options?.includeOptimizer ?? false });
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileSystemIO(dir));
}

/** A model's two files, byte for byte as saveModel writes them into its directory. */
export interface ModelFiles {
  modelJson: Buffer;
  weights: Buffer;
}

/** The files saveModel would write for `model`, in memory: for stores that are not a directory. */
export async function modelFiles(model: tf.LayersModel): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  await model.save(
    {
      save: async (artifacts) => {
        const { json, shards } = serialise(artifacts);
        files = { modelJson: Buffer.from(json, 'utf8'), weights: Buffer.concat(shards) };
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      },
    },
    { includeOptimizer: false },
  );
  if (!files) throw new Error('Model.save() finished without handing over its artifacts');
  return files;
}

/**
 * The model in `files` (as modelFiles() or saveModel write them), checked as loadModel checks a
 * directory. `where` names their place in errors (`<where>/model.json`).
 */
export async function loadModelFromFiles(files: ModelFiles, where: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel({
    load: async () => {
      const modelJSON = parseModelJSON(files.modelJson.toString('utf8'), `${where}/${MODEL_JSON}`);
      return tf.io.getModelArtifactsForJSON(modelJSON, (manifest) =>
        readWeights(manifest, {
          where: (relative) => `${where}/${relative}`,
          read: async (relative) => {
            // Only the file modelFiles() writes is there to read.
            if (relative !== WEIGHTS_BIN) {
              throw new Error(`Cannot load model: weights path "${relative}" is not ${WEIGHTS_BIN}`);
            }
            return files.weights;
          },
        }),
      );
    },
  });
}

/** model.json's text and the weight shards for `artifacts`; throws on what cannot be stored. */
function serialise(artifacts: tf.io.ModelArtifacts): { json: string; shards: Uint8Array[] } {
  const topology = artifacts.modelTopology;
  if (topology instanceof ArrayBuffer) {
    throw new Error('Saving a binary (protobuf) model topology is not supported, only JSON topologies');
  }
  // loadArtifacts() rejects a model.json without topology, so do not write one.
  if (topology == null) throw new Error('Model artifacts have no modelTopology to save');
  if ((artifacts.weightData == null) !== (artifacts.weightSpecs == null)) {
    throw new Error('Model artifacts must have both weightData and weightSpecs, or neither');
  }
  const shards = toShards(artifacts.weightData);
  const manifest: tf.io.WeightsManifestConfig = [
    { paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] },
  ];
  return { json: JSON.stringify(modelJSONFor(topology, artifacts, manifest)), shards };
}

async function saveArtifacts(root: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  // Serialise before touching the disk, so an unserialisable model fails without side effects.
  const { json, shards } = serialise(artifacts);

  await assertFreeTarget(root);
  const parent = path.dirname(root);
  let tmp: string;
  try {
    await mkdir(parent, { recursive: true });
    tmp = await mkdtemp(`${root}.tmp-`);
  } catch (err) {
    throw new Error(`Cannot save model to ${root}: ${errorMessage(err)}`, { cause: err });
  }

  let published = false;
  try {
    await writeDurably(path.join(tmp, WEIGHTS_BIN), shards);
    await writeDurably(path.join(tmp, MODEL_JSON), [Buffer.from(json, 'utf8')]);
    // The entries must be on disk before the rename makes them reachable under `root`.
    await syncDirectory(tmp);
    try {
      // rename() replaces an empty directory but fails on a non-empty one, which catches a
      // concurrent writer that published `root` after assertFreeTarget() looked.
      await rename(tmp, root);
    } catch (err) {
      if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST') || isErrno(err, 'ENOTDIR')) {
        throw refuseOverwrite(root, err);
      }
      throw err;
    }
    published = true;
    await syncDirectory(parent);
  } catch (err) {
    if (published) {
      throw new Error(`Model saved to ${root}, but it may not survive a power loss: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    // Best effort: a leftover temp dir is harmless clutter, the original error is what matters.
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof ModelDirExistsError) throw err;
    throw new Error(`Cannot save model to ${root}: ${errorMessage(err)}`, { cause: err });
  }
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/**
 * Mirrors tfjs-core's getModelJSONForModelArtifacts, which 4.22 does not export from `tf.io`.
 * Keys whose value is undefined vanish in JSON.stringify, so optional fields need no guards.
 */
function modelJSONFor(
  topology: tf.io.ModelJSON['modelTopology'],
  artifacts: tf.io.ModelArtifacts,
  manifest: tf.io.WeightsManifestConfig,
): tf.io.ModelJSON {
  return {
    modelTopology: topology,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    // tfjs writes an explicit null for models that were not converted from Python.
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: manifest,
    trainingConfig: artifacts.trainingConfig,
    signature: artifacts.signature,
    userDefinedMetadata: artifacts.userDefinedMetadata,
    modelInitializer: artifacts.modelInitializer,
    initializerSignature: artifacts.initializerSignature,
  };
}

function toShards(weightData: tf.io.WeightData | undefined): Uint8Array[] {
  if (weightData == null) return [];
  // Writing the shards one after another spares the copy CompositeArrayBuffer.join() would make.
  const buffers = Array.isArray(weightData) ? weightData : [weightData];
  return buffers.map((buffer) => new Uint8Array(buffer));
}

async function assertFreeTarget(root: string): Promise<void> {
  let stats;
  try {
    stats = await stat(root);
  } catch (err) {
    // ENOTDIR here means an ancestor is a file, not `root`: mkdir() below reports that clearly.
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
    throw new Error(`Cannot save model to ${root}: ${errorMessage(err)}`, { cause: err });
  }
  if (!stats.isDirectory() || (await readdir(root)).length > 0) throw refuseOverwrite(root);
}

function refuseOverwrite(root: string, cause?: unknown): ModelDirExistsError {
  return new ModelDirExistsError(root, cause === undefined ? undefined : { cause });
}

async function loadArtifacts(root: string): Promise<tf.io.ModelArtifacts> {
  const modelJSON = await readModelJSON(path.join(root, MODEL_JSON));
  return tf.io.getModelArtifactsForJSON(modelJSON, (manifest) =>
    readWeights(manifest, {
      where: (relative) => path.join(root, relative),
      read: (relative) => readWeightsFile(root, relative),
    }),
  );
}

async function readModelJSON(file: string): Promise<tf.io.ModelJSON> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new Error(`Cannot load model: ${file} does not exist`, { cause: err });
    throw new Error(`Cannot load model: reading ${file} failed: ${errorMessage(err)}`, { cause: err });
  }
  return parseModelJSON(text, file);
}

/** model.json's text as tfjs reads it, after checking what tfjs relies on; `file` names it in errors. */
function parseModelJSON(text: string, file: string): tf.io.ModelJSON {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot load model: ${file} is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
  if (!isRecord(parsed)) throw new Error(`Cannot load model: ${file} does not hold a JSON object`);
  if (!isRecord(parsed.modelTopology)) {
    throw new Error(`Cannot load model: ${file} has no modelTopology object`);
  }
  if (!Array.isArray(parsed.weightsManifest)) {
    throw new Error(`Cannot load model: ${file} has no weightsManifest array`);
  }
  parsed.weightsManifest.forEach((group, i) => validateGroup(group, `${file}: weightsManifest[${i}]`));
  // Only the fields tfjs needs were checked; the rest is read as tfjs would read it.
  return parsed as unknown as tf.io.ModelJSON;
}

function validateGroup(group: unknown, where: string): asserts group is tf.io.WeightsManifestConfig[number] {
  if (!isRecord(group)) throw new Error(`Cannot load model: ${where} is not an object`);
  const { paths, weights } = group;
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string')) {
    throw new Error(`Cannot load model: ${where}.paths must be a non-empty array of strings`);
  }
  if (!Array.isArray(weights)) throw new Error(`Cannot load model: ${where}.weights must be an array`);
  weights.forEach((spec, i) => validateSpec(spec, `${where}.weights[${i}]`));
}

function validateSpec(spec: unknown, where: string): void {
  if (!isRecord(spec) || typeof spec.name !== 'string') {
    throw new Error(`Cannot load model: ${where} has no name`);
  }
  const { shape, dtype, quantization } = spec;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`Cannot load model: ${where} (${spec.name}) has an invalid shape`);
  }
  if (typeof dtype !== 'string' || (dtype !== 'string' && BYTES_PER_VALUE[dtype] === undefined)) {
    throw new Error(`Cannot load model: ${where} (${spec.name}) has an unknown dtype ${String(dtype)}`);
  }
  if (quantization !== undefined) {
    if (!isRecord(quantization) || !QUANTIZATION_DTYPES.has(String(quantization.dtype))) {
      throw new Error(`Cannot load model: ${where} (${spec.name}) has an invalid quantization`);
    }
  }
}

/** Where a model's weight files are read from: a directory, or bytes already in memory. */
interface WeightFiles {
  read(relative: string): Promise<Uint8Array>;
  /** How errors name a file. */
  where(relative: string): string;
}

/**
 * Reads every group's files and checks each group's bytes against its specs, because tfjs does
 * not: short data fails with a RangeError or shape error that names no file, and surplus bytes
 * (weights that belong to some other model) are silently ignored.
 */
async function readWeights(
  manifest: tf.io.WeightsManifestConfig,
  files: WeightFiles,
): Promise<[tf.io.WeightsManifestEntry[], tf.io.WeightData]> {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    const groupBuffers: Uint8Array[] = [];
    for (const relative of group.paths) {
      groupBuffers.push(await files.read(relative));
    }
    const actual = groupBuffers.reduce((sum, b) => sum + b.byteLength, 0);
    const groupData = groupBuffers.length === 1 ? groupBuffers[0]! : Buffer.concat(groupBuffers);
    const expected = expectedByteLength(group.weights, groupData);
    if (actual !== expected.bytes) {
      const names = group.paths.map((p) => files.where(p)).join(', ');
      const relation = actual < expected.bytes ? 'shorter' : 'longer';
      throw new Error(
        `Cannot load model: weights in ${names} are ${relation} than the manifest says: ` +
          `${actual} bytes on disk, manifest needs ${expected.exact ? '' : 'at least '}${expected.bytes} bytes`,
      );
    }
    specs.push(...group.weights);
    for (const b of groupBuffers) {
      // A Buffer can be a view into a larger shared ArrayBuffer; tfjs slices whole ArrayBuffers.
      const whole = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
      buffers.push(
        whole
          ? (b.buffer as ArrayBuffer)
          : (b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer),
      );
    }
  }
  return [specs, buffers.length === 1 ? buffers[0]! : buffers];
}

async function readWeightsFile(root: string, relative: string): Promise<Uint8Array> {
  const file = path.resolve(root, relative);
  const fromRoot = path.relative(root, file);
  if (
    fromRoot === '' ||
    fromRoot === '..' ||
    fromRoot.startsWith(`..${path.sep}`) ||
    path.isAbsolute(fromRoot)
  ) {
    throw new Error(`Cannot load model: weights path "${relative}" points outside ${root}`);
  }
  try {
    return await readFile(file);
  } catch (err) {
    throw new Error(`Cannot load model: reading weights file ${file} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * Bytes the specs occupy. String weights carry their lengths inline, so they are measured from
 * the data; when the data ends inside them, the result is only a lower bound.
 */
export function expectedByteLength(
  specs: tf.io.WeightsManifestEntry[],
  data: Uint8Array,
): { bytes: number; exact: boolean } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.quantization) {
      offset += size * (BYTES_PER_VALUE[spec.quantization.dtype] ?? 0);
    } else if (spec.dtype === 'string') {
      for (let i = 0; i < size; i++) {
        if (offset + STRING_LENGTH_BYTES > data.byteLength) {
          return { bytes: offset + STRING_LENGTH_BYTES, exact: false };
        }
        // tfjs writes the length with a Uint32Array, i.e. in host byte order: little-endian in practice.
        offset += STRING_LENGTH_BYTES + view.getUint32(offset, true);
      }
    } else {
      offset += size * (BYTES_PER_VALUE[spec.dtype] ?? 0);
    }
  }
  return { bytes: offset, exact: true };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
