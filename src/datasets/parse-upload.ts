import { readCsvDataset } from './csv-dataset.js';
import type { DatasetLimits } from './dataset-limits.js';
import type { UploadContentType } from './dataset-upload.js';
import { isIgnoredEntry } from './entry-names.js';
import type { ParsedDataset } from './parsed-dataset.js';
import { ZipArchive } from './zip-archive.js';
import { readFolderDataset } from './zip-folders.js';
import { isIdxName, readIdxDataset } from './zip-idx.js';

/** Reads an upload, staged whole in `file`, as one of the layouts a dataset may come in. */
export async function parseUpload(
  file: string,
  contentType: UploadContentType,
  classes: string[] | undefined,
  limits: DatasetLimits,
  signal?: AbortSignal,
): Promise<ParsedDataset> {
  if (contentType === 'text/csv') return readCsvDataset(file, classes, limits, signal);
  const zip = await ZipArchive.open(file, limits);
  try {
    const files = zip.files.filter((entry) => !isIgnoredEntry(entry.name));
    return files.some((entry) => isIdxName(entry.name))
      ? await readIdxDataset(zip, files, limits, signal)
      : await readFolderDataset(zip, files, limits.maxClasses, signal);
  } finally {
    zip.close();
  }
}
