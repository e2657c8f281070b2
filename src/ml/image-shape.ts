/**
 * MNIST's image format, which the model takes as it is: square single-channel images of this side,
 * row-major. Anything else is rejected or brought to it (image-preprocess.ts), never fed as is.
 */
export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
