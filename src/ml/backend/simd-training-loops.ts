import { readFileSync } from 'node:fs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { PatchGeometry } from './conv2d-patches.js';
import type { TrainingLoops } from './wasm-kernel-context.js';

// This project's TypeScript libs (ES2023, @types/node 20) do not declare WebAssembly's globals.
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Built from assembly/training-kernels.ts by `npm run build:kernels`; `npm run build` copies it to dist. */
const wasmFile = new URL('./training-kernels.wasm', import.meta.url);

type Geometry = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];
interface Exports {
  gatherPatchesByTap(src: number, dst: number, ...g: Geometry): void;
  scatterPatches(cols: number, dx: number, ...g: Geometry): void;
  maxPoolGrad(x: number, dy: number, dx: number, ...g: Geometry): void;
  matMulUnpacked(a: number, b: number, c: number, m: number, k: number, n: number): void;
}

/**
 * The training kernels' loops in WebAssembly SIMD. The module imports the wasm backend's own
 * memory and works on its tensors in place (no copies): it holds no data of its own, only
 * functions over the heap addresses it is given. Compiled here, once, so a missing or broken
 * file fails kernel registration rather than the first training step; instantiated per backend,
 * whose memory is known only once it has started.
 */
export function simdTrainingLoops(): TrainingLoops {
  const module = compile();
  const instances = new WeakMap<BackendWasm, Exports>();
  const exportsFor = (backend: BackendWasm): Exports => {
    let found = instances.get(backend);
    if (!found) {
      found = new wasm.Instance(module, { env: { memory: heapMemory(backend) } })
        .exports as unknown as Exports;
      instances.set(backend, found);
    }
    return found;
  };
  const at = (backend: BackendWasm, t: TensorInfo) => backend.getMemoryOffset(t.dataId);
  return {
    gatherPatchesByTap(backend, x, patches, g) {
      exportsFor(backend).gatherPatchesByTap(at(backend, x), at(backend, patches), ...geometry(g));
    },
    scatterPatches(backend, cols, dx, g) {
      exportsFor(backend).scatterPatches(at(backend, cols), at(backend, dx), ...geometry(g));
    },
    maxPoolGrad(backend, x, dy, dx, g) {
      exportsFor(backend).maxPoolGrad(at(backend, x), at(backend, dy), at(backend, dx), ...geometry(g));
    },
    matMulUnpacked(backend, a, b, c) {
      const [m, k] = a.shape.slice(-2) as [number, number];
      const n = b.shape[b.shape.length - 1]!;
      if (n < 4 || b.shape[b.shape.length - 2] !== k || c.shape.slice(-2).join() !== `${m},${n}`) {
        throw new Error(
          `matMulUnpacked needs [m, k] x [k, n >= 4] into [m, n], got ${a.shape} x ${b.shape} into ${c.shape}`,
        );
      }
      exportsFor(backend).matMulUnpacked(at(backend, a), at(backend, b), at(backend, c), m, k, n);
    },
  };
}

function compile(): object {
  let bytes: Buffer;
  try {
    bytes = readFileSync(wasmFile);
  } catch (err) {
    throw new Error(
      `the wasm training kernels are missing (${wasmFile.pathname}): run 'npm run build:kernels', ` +
        `and from dist/, 'npm run build', which copies them`,
      { cause: err },
    );
  }
  try {
    return new wasm.Module(bytes);
  } catch (err) {
    throw new Error(
      `the wasm training kernels (${wasmFile.pathname}) do not compile here (they need wasm SIMD)`,
      {
        cause: err,
      },
    );
  }
}

/** The backend's heap: the emscripten module exports its memory as `asm.memory`. */
function heapMemory(backend: BackendWasm): WasmMemory {
  const module = backend.wasm as unknown as { asm?: { memory?: unknown }; HEAPU8?: Uint8Array };
  const memory = module.asm?.memory;
  if (!(memory instanceof wasm.Memory) || memory.buffer !== module.HEAPU8?.buffer) {
    throw new Error(
      'the wasm backend does not expose its heap memory as asm.memory (tfjs-backend-wasm 4.22 does)',
    );
  }
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) {
    throw new Error(
      'the multithreaded wasm backend is not supported: our training kernels import an unshared memory',
    );
  }
  return memory;
}

function geometry(g: PatchGeometry): Geometry {
  return [
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
  ];
}
