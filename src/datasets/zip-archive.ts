import type { Readable } from 'node:stream';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { errorMessage } from '../fs-durable.js';
import type { DatasetLimits } from './dataset-limits.js';
import { datasetTooLarge, formatCount, invalidArchive, shownName, unsafeArchive } from './dataset-errors.js';

/** Entries larger than this must not inflate more than RATIO_LIMIT times their compressed size. */
const RATIO_CHECKED_ABOVE = 1024 * 1024;
/** Real data deflates a few times at most (MNIST's idx files about 6:1); a bomb, thousands. */
export const RATIO_LIMIT = 100;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const STORED = 0;
const DEFLATED = 8;

export interface ZipFileEntry {
  /** The entry's path as the zip gives it, checked: relative, no '..', '/' separators. */
  name: string;
  /** Bytes it declares it inflates to; reading it fails if it inflates to more. */
  size: number;
  entry: Entry;
}

/**
 * A zip upload read with yauzl, treated as hostile: its directory is checked whole before any
 * entry's data is read (entry count, paths, links, declared sizes and ratios), and an entry's data
 * is only ever read into memory, bounded by its declared size, never written under its name.
 */
export class ZipArchive {
  private constructor(
    private readonly zip: ZipFile,
    /** File entries (no directories), in archive order. */
    readonly files: ZipFileEntry[],
  ) {}

  static async open(file: string, limits: DatasetLimits): Promise<ZipArchive> {
    let zip: ZipFile;
    try {
      // Names decoded and checked here rather than by yauzl, so a refusal can name the entry.
      zip = await yauzl.openPromise(file, {
        lazyEntries: true,
        autoClose: false,
        decodeStrings: false,
        validateEntrySizes: true,
        strictFileNames: false,
      });
    } catch (error) {
      throw invalidArchive(`not a zip archive, or a truncated one: ${errorMessage(error)}`, error);
    }
    try {
      return new ZipArchive(zip, await checkedFiles(zip, limits));
    } catch (error) {
      zip.close();
      throw error;
    }
  }

  /** An entry's data, checked to inflate to exactly its declared size. */
  async read(file: ZipFileEntry): Promise<Buffer> {
    const { entry, name } = file;
    if (entry.isEncrypted()) {
      throw invalidArchive(`entry ${shownName(name)} is encrypted: upload a zip without a password`);
    }
    if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
      throw invalidArchive(
        `entry ${shownName(name)} uses compression method ${entry.compressionMethod}: ` +
          'only stored and deflated entries are read (what "compress folder" and zip tools write)',
      );
    }
    let stream: Readable;
    try {
      stream = await this.zip.openReadStreamPromise(entry);
    } catch (error) {
      throw invalidArchive(`entry ${shownName(name)} cannot be read: ${errorMessage(error)}`, error);
    }
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (error) {
      stream.destroy();
      const message = errorMessage(error);
      if (/^too many bytes/.test(message)) {
        throw unsafeArchive(
          `entry ${shownName(name)} inflates to more than the ${formatCount(file.size)} bytes it declares: refused`,
          error,
        );
      }
      throw invalidArchive(`entry ${shownName(name)} is corrupt or truncated: ${message}`, error);
    }
    return Buffer.concat(chunks);
  }

  close(): void {
    this.zip.close();
  }
}

async function checkedFiles(zip: ZipFile, limits: DatasetLimits): Promise<ZipFileEntry[]> {
  if (zip.entryCount > limits.maxFiles) {
    throw datasetTooLarge(
      `the zip holds ${formatCount(zip.entryCount)} entries, more than the limit of ` +
        `${formatCount(limits.maxFiles)} (DATASET_MAX_FILES)`,
    );
  }
  const files: ZipFileEntry[] = [];
  let declared = 0;
  let index = 0;
  const entries = zip.eachEntry();
  for (;;) {
    let next: IteratorResult<Entry>;
    try {
      next = await entries.next();
    } catch (error) {
      throw invalidArchive(
        `the zip's directory is corrupt at entry ${index + 1} of ${zip.entryCount}: ${errorMessage(error)}`,
        error,
      );
    }
    if (next.done) break;
    index++;
    const entry = next.value;
    const name = checkedName(entry);
    declared += entry.uncompressedSize;
    if (declared > limits.maxUncompressedBytes) {
      throw datasetTooLarge(
        `the zip's entries inflate to more than ${formatCount(limits.maxUncompressedBytes)} bytes ` +
          `(DATASET_MAX_UNCOMPRESSED_BYTES), reached at entry ${shownName(name)}`,
      );
    }
    checkRatio(entry, name);
    if (!name.endsWith('/')) files.push({ name, size: entry.uncompressedSize, entry });
  }
  return files;
}

function checkedName(entry: Entry): string {
  const name = yauzl.getFileNameLowLevel(
    entry.generalPurposeBitFlag,
    entry.fileNameRaw,
    entry.extraFields,
    false,
  );
  const problem = yauzl.validateFileName(name);
  if (problem !== null || name.includes('\0')) {
    const why = /^absolute path/.test(problem ?? '')
      ? 'an absolute path'
      : /relative path/.test(problem ?? '')
        ? 'a path that climbs out of the archive with ".."'
        : 'a path with invalid characters';
    throw unsafeArchive(`entry ${shownName(name)} is refused: ${why} (zip-slip)`);
  }
  if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) {
    throw unsafeArchive(`entry ${shownName(name)} is a symbolic link: links are refused`);
  }
  return name;
}

function checkRatio(entry: Entry, name: string): void {
  const { uncompressedSize, compressedSize } = entry;
  if (uncompressedSize > RATIO_CHECKED_ABOVE && uncompressedSize > RATIO_LIMIT * compressedSize) {
    const ratio = compressedSize > 0 ? Math.round(uncompressedSize / compressedSize) : Infinity;
    throw unsafeArchive(
      `entry ${shownName(name)} would inflate ${formatCount(compressedSize)} bytes to ` +
        `${formatCount(uncompressedSize)} (${formatCount(ratio)}:1, more than ${RATIO_LIMIT}:1): refused as a zip bomb`,
    );
  }
}
