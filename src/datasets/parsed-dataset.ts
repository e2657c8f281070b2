import type { SkippedFile } from './dataset-record.js';
import type { LabelledImages } from './labelled-images.js';

/** An upload read and checked, before it is split and stored. */
export interface ParsedDataset {
  format: 'folders' | 'idx' | 'csv';
  /** The name of label i at index i; every label of `train` and `test` is below its length. */
  classes: string[];
  train: LabelledImages;
  /** The upload's own test set; null when a share of `train` is to be held out. */
  test: LabelledImages | null;
  /** Every file left out, in a stable order (the record lists the first ones). */
  skipped: SkippedFile[];
}
