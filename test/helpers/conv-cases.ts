/** A 2-D convolution's shapes, for kernel tests. */
export interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
}

/**
 * The seed CNN's convolutions (at batch 64), then the wide CNN's at `wideBatch`: the batch only
 * repeats the work, so a slow reference can take a small one.
 */
export const cnnConvolutions = (wideBatch: number): ConvCase[] => [
  { x: [64, 28, 28, 1], filter: [3, 3, 1, 6], strides: 1, pad: 'valid' },
  { x: [64, 13, 13, 6], filter: [3, 3, 6, 16], strides: 1, pad: 'valid' },
  { x: [wideBatch, 28, 28, 1], filter: [3, 3, 1, 32], strides: 1, pad: 'valid' },
  { x: [wideBatch, 13, 13, 32], filter: [3, 3, 32, 64], strides: 1, pad: 'valid' },
  { x: [wideBatch, 11, 11, 64], filter: [3, 3, 64, 64], strides: 1, pad: 'valid' },
];

/** Explicit padding, different on each side. */
export const unevenPadding: ConvCase = {
  x: [2, 6, 5, 2],
  filter: [3, 3, 2, 3],
  strides: 1,
  pad: [
    [0, 0],
    [1, 2],
    [2, 0],
    [0, 0],
  ],
};
