import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { patchGeometry, type PatchGeometry } from './conv2d-patches.js';
import { assertFloatNHWC } from './wasm-conv2d-backprop-filter.js';
import { heapF32, matMul, transposeLast2, viewAs, type WasmKernels } from './wasm-kernel-context.js';

/**
 * The input gradient of a 2-D convolution for wasm, replacing the shipped one, a direct loop that
 * took a large share of a seed-CNN training step.
 * Stride 1: the gradient is itself a convolution, of dy (padded so the result has the input's
 * size) with the filter flipped in space and its channels swapped, which the shipped XNNPACK
 * Conv2D runs fast. Other strides: each position's patch gradient is dy[position, :] x W^T (one
 * matrix product for all positions), then col2im adds the patches back onto the input.
 */
export function wasmConv2DBackpropInputConfig(k: WasmKernels): KernelConfig {
  const kernelFunc = (args: {
    inputs: { dy: TensorInfo; filter: TensorInfo };
    backend: BackendWasm;
    attrs: Conv2DBackpropInputAttrs;
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs;
    assertFloatNHWC('Conv2DBackpropInput', [dy, filter], attrs.dataFormat);
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const g = patchGeometry(info);
    return g.strideHeight === 1 && g.strideWidth === 1
      ? byConvolution(k, backend, dy, filter, info)
      : byPatches(k, backend, dy, filter, g, attrs.inputShape);
  };
  return {
    kernelName: Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}

function byConvolution(
  k: WasmKernels,
  backend: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { filterHeight: fh, filterWidth: fw, inChannels: c, outChannels: o, padInfo } = info;
  const flipped = backend.makeOutput([fh, fw, o, c], 'float32');
  try {
    const w = heapF32(backend, filter);
    const wf = heapF32(backend, flipped);
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        const from = ((fh - 1 - y) * fw + (fw - 1 - x)) * c * o;
        const to = (y * fw + x) * o * c;
        for (let ci = 0; ci < c; ci++) {
          for (let oi = 0; oi < o; oi++) wf[to + oi * c + ci] = w[from + ci * o + oi]!;
        }
      }
    }
    const pad: backend_util.ExplicitPadding = [
      [0, 0],
      [fh - 1 - padInfo.top, fh - 1 - padInfo.bottom],
      [fw - 1 - padInfo.left, fw - 1 - padInfo.right],
      [0, 0],
    ];
    return k.conv2d({
      inputs: { x: dy, filter: flipped },
      backend,
      attrs: { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
    }) as TensorInfo;
  } finally {
    backend.disposeData(flipped.dataId);
  }
}

function byPatches(
  k: WasmKernels,
  backend: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  g: PatchGeometry,
  inputShape: number[],
): TensorInfo {
  const taps = g.filterHeight * g.filterWidth * g.inChannels;
  const positions = g.batch * g.outHeight * g.outWidth;
  const outChannels = filter.shape[3]!;
  const temporaries: TensorInfo[] = [];
  try {
    const filterT = transposeLast2(k, backend, viewAs(filter, [1, taps, outChannels]));
    temporaries.push(filterT);
    const patchGrads = matMul(k, backend, viewAs(dy, [1, positions, outChannels]), filterT);
    temporaries.push(patchGrads);
    const dx = backend.makeOutput([...inputShape], 'float32');
    k.loops.scatterPatches(backend, patchGrads, dx, g);
    return dx;
  } finally {
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
}
