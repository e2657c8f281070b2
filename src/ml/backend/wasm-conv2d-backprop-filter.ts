import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { patchGeometry } from './conv2d-patches.js';
import { matMul, viewAs, type WasmKernels } from './wasm-kernel-context.js';

/**
 * The filter gradient of a 2-D convolution, which the wasm backend does not ship
 * (`Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'`), so conv nets cannot train
 * there as shipped. dW[fy, fx, c, o] = sum over (n, oy, ox) of the input pixel that tap saw
 * times dy[n, oy, ox, o]: one matrix product of the input patches (one row per tap, laid out
 * straight in the wasm heap) with dy seen as [positions, O]. Its [taps, O] result is already the
 * [FH, FW, C, O] filter layout. The product is ours rather than the shipped BatchMatMul, which
 * packs dy first and is several times slower here (bench/kernels.ts measures both).
 */
export function wasmConv2DBackpropFilterConfig(k: WasmKernels): KernelConfig {
  const kernelFunc = (args: {
    inputs: { x: TensorInfo; dy: TensorInfo };
    backend: BackendWasm;
    attrs: Conv2DBackpropFilterAttrs;
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { x, dy } = inputs;
    assertFloatNHWC('Conv2DBackpropFilter', [x, dy], attrs.dataFormat);
    const g = patchGeometry(
      backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        attrs.filterShape,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      ),
    );
    const taps = g.filterHeight * g.filterWidth * g.inChannels;
    const positions = g.batch * g.outHeight * g.outWidth;
    const outChannels = attrs.filterShape[3];
    const patches = backend.makeOutput([1, taps, positions], 'float32');
    try {
      k.loops.gatherPatchesByTap(backend, x, patches, g);
      const dyMatrix = viewAs(dy, [1, positions, outChannels]);
      if (!k.loops.matMulUnpacked || outChannels < 4) {
        const dw = matMul(k, backend, patches, dyMatrix);
        dw.shape = [...attrs.filterShape];
        return dw;
      }
      const dw = backend.makeOutput([...attrs.filterShape], 'float32');
      k.loops.matMulUnpacked(backend, patches, dyMatrix, viewAs(dw, [1, taps, outChannels]));
      return dw;
    } finally {
      backend.disposeData(patches.dataId);
    }
  };
  return {
    kernelName: Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}

export function assertFloatNHWC(kernel: string, tensors: TensorInfo[], dataFormat: 'NHWC' | 'NCHW'): void {
  for (const t of tensors) {
    if (t.dtype !== 'float32') throw new Error(`${kernel} on wasm needs float32 tensors, got ${t.dtype}`);
  }
  if (dataFormat !== 'NHWC') throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
}
