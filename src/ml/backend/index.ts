import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { registerWasmTrainingKernels } from './wasm-training-kernels.js';

export const backendNameSchema = z.enum(['node', 'wasm', 'cpu']);
export type BackendName = z.infer<typeof backendNameSchema>;

export interface BackendInfo {
  /** The backend that runs the math: `tensorflow` for tfjs-node, else `wasm` or `cpu`. */
  name: BackendName;
  /** Why this one: forced by TF_BACKEND, or the first that loaded. */
  reason: string;
  /** Backends tried before it, with the error that ruled each out. */
  skipped: { name: BackendName; error: string }[];
  simd?: boolean;
}

const order: BackendName[] = ['node', 'wasm', 'cpu'];
let chosen: BackendInfo | undefined;

/**
 * Picks the fastest TensorFlow.js backend that works here: tfjs-node when installed (an optional
 * dependency whose install downloads libtensorflow, which may not be reachable), else wasm with
 * the kernels it lacks for training, else the pure-JS cpu backend.
 * `preferred` (TF_BACKEND) forces one and fails if it cannot load. Idempotent per process:
 * TensorFlow.js has one global engine.
 */
export async function initBackend(preferred?: BackendName): Promise<BackendInfo> {
  if (chosen) {
    if (preferred && preferred !== chosen.name) {
      throw new Error(`TensorFlow.js backend is already '${chosen.name}', cannot switch to '${preferred}'`);
    }
    return chosen;
  }
  // Production mode skips per-op debug checks and tfjs's console banners; we log the choice ourselves.
  tf.enableProdMode();
  const candidates = preferred ? [preferred] : order;
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    try {
      await activate(name);
      chosen = {
        name,
        reason: preferred ? 'forced by TF_BACKEND' : skipped.length ? 'fallback' : 'fastest available',
        skipped,
        ...(name === 'wasm' ? { simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT') } : {}),
      };
      return chosen;
    } catch (err) {
      const error = describeLoadError(name, err);
      if (preferred)
        throw new Error(`TensorFlow.js backend '${name}' could not start: ${error}`, { cause: err });
      skipped.push({ name, error });
    }
  }
  throw new Error(`No TensorFlow.js backend could start: ${JSON.stringify(skipped)}`);
}

/** The backend `initBackend` chose in this thread: what a data-parallel replica must start too. */
export function activeBackend(): BackendName {
  if (!chosen) throw new Error('initBackend has not run in this thread');
  return chosen.name;
}

async function activate(name: BackendName): Promise<void> {
  if (name === 'node') {
    // A variable specifier keeps TypeScript from requiring the optional package's types.
    const nodePackage = '@tensorflow/tfjs-node';
    await import(nodePackage);
    if (!(await tf.setBackend('tensorflow')))
      throw new Error('tfjs-node loaded but its backend did not start');
    return;
  }
  if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmTrainingKernels();
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' did not start`);
}

function describeLoadError(name: BackendName, err: unknown): string {
  const code = (err as { code?: string }).code;
  if (name === 'node' && code === 'ERR_MODULE_NOT_FOUND') return '@tensorflow/tfjs-node is not installed';
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}
