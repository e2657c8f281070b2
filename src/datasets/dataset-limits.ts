import type { Config } from '../config.js';

/** What one upload may cost: the DATASET_* settings, as ingestion takes them. */
export interface DatasetLimits {
  /** Body bytes (DATASET_MAX_BYTES). */
  maxBytes: number;
  /** Bytes a zip's entries may inflate to, all together (DATASET_MAX_UNCOMPRESSED_BYTES). */
  maxUncompressedBytes: number;
  /** Entries in a zip, and images in a dataset (DATASET_MAX_FILES). */
  maxFiles: number;
  /** Classes in a dataset (DATASET_MAX_CLASSES). */
  maxClasses: number;
}

export function datasetLimits(
  config: Pick<
    Config,
    'DATASET_MAX_BYTES' | 'DATASET_MAX_UNCOMPRESSED_BYTES' | 'DATASET_MAX_FILES' | 'DATASET_MAX_CLASSES'
  >,
): DatasetLimits {
  return {
    maxBytes: config.DATASET_MAX_BYTES,
    maxUncompressedBytes: config.DATASET_MAX_UNCOMPRESSED_BYTES,
    maxFiles: config.DATASET_MAX_FILES,
    maxClasses: config.DATASET_MAX_CLASSES,
  };
}
