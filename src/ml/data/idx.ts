/**
 * Reader for the IDX format of the original MNIST distribution: a big-endian header (magic number,
 * then one 32-bit size per dimension) followed by the raw data. Only unsigned-byte files are read,
 * which is what MNIST-like data sets ship.
 */
import { open, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { constants, gunzip, gunzipSync } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

/** 0x0000, type code 0x08 (unsigned byte), 3 dimensions: count, rows, columns. */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** 0x0000, type code 0x08 (unsigned byte), 1 dimension: count. */
export const IDX_LABELS_MAGIC = 0x00000801;

export class IdxFormatError extends Error {
  override name = 'IdxFormatError';

  constructor(
    readonly source: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${source}: ${detail}`, options);
  }
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count * rows * cols bytes, row-major, 0..255. */
  pixels: Uint8Array;
}

export interface IdxLabels {
  count: number;
  /** Any byte value: the format allows labels above 9, callers check their own range. */
  labels: Uint8Array;
}

interface IdxKind {
  magic: number;
  description: string;
}

const IMAGES: IdxKind = { magic: IDX_IMAGES_MAGIC, description: 'an image file' };
const LABELS: IdxKind = { magic: IDX_LABELS_MAGIC, description: 'a label file' };

/** Parses an uncompressed IDX image file; `pixels` is a view of `bytes`, not a copy. */
export function parseIdxImages(bytes: Uint8Array, source: string): IdxImages {
  const [count = 0, rows = 0, cols = 0] = readHeader(bytes, source, IMAGES);
  const pixels = dataView(bytes, source, 16, count * rows * cols, `${count} images of ${rows} x ${cols}`);
  return { count, rows, cols, pixels };
}

/** Parses an uncompressed IDX label file; `labels` is a view of `bytes`, not a copy. */
export function parseIdxLabels(bytes: Uint8Array, source: string): IdxLabels {
  const [count = 0] = readHeader(bytes, source, LABELS);
  const labels = dataView(bytes, source, 8, count, `${count} labels of 1 byte`);
  return { count, labels };
}

export async function readIdxImages(path: string): Promise<IdxImages> {
  return parseIdxImages(await readIdxBytes(path), path);
}

export async function readIdxLabels(path: string): Promise<IdxLabels> {
  return parseIdxLabels(await readIdxBytes(path), path);
}

/** Bytes read to find an IDX header in a file, raw or gzip (its header first, then deflate). */
const HEAD_BYTES = 1024;

/**
 * The number of images an IDX image file holds, from its header alone (raw or gzip): cheap enough
 * for the API to check a job's size against the real data set without loading it.
 */
export async function readIdxImageCount(path: string): Promise<number> {
  const handle = await open(path, 'r');
  let head: Uint8Array;
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (isGzip(head)) {
    try {
      // A sync flush decompresses what the first bytes hold, instead of failing on the cut;
      // from 1 KiB, at most about 1 MiB comes out.
      head = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch (error) {
      throw notGzip(path, error);
    }
  }
  const [count = 0] = readHeader(head, path, IMAGES);
  return count;
}

/** Reads a file, gunzipping it when its content (not its name) says it is gzip. */
async function readIdxBytes(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path);
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzipAsync(bytes);
  } catch (error) {
    throw notGzip(path, error);
  }
}

function notGzip(path: string, error: unknown): IdxFormatError {
  const reason = error instanceof Error ? error.message : String(error);
  return new IdxFormatError(path, `starts like a gzip file (0x1f 0x8b) but does not decompress: ${reason}`, {
    cause: error,
  });
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function describeMagic(magic: number): string {
  if (magic === IDX_IMAGES_MAGIC) return ` (${IMAGES.description})`;
  if (magic === IDX_LABELS_MAGIC) return ` (${LABELS.description})`;
  return '';
}

/** Checks the magic number and returns the size of each dimension. */
function readHeader(bytes: Uint8Array, source: string, kind: IdxKind): number[] {
  const expected = `${kind.description} (magic ${hex(kind.magic)})`;
  if (bytes.length === 0) throw new IdxFormatError(source, `file is empty, expected ${expected}`);
  const dimensions = kind.magic & 0xff;
  const headerLength = 4 + 4 * dimensions;
  if (bytes.length < 4) throw truncatedHeader(source, kind, headerLength, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== kind.magic) {
    throw new IdxFormatError(source, `expected ${expected}, found ${hex(magic)}${describeMagic(magic)}`);
  }
  if (bytes.length < headerLength) throw truncatedHeader(source, kind, headerLength, bytes.length);
  return Array.from({ length: dimensions }, (_, i) => view.getUint32(4 + 4 * i));
}

function truncatedHeader(source: string, kind: IdxKind, needed: number, actual: number): IdxFormatError {
  return new IdxFormatError(
    source,
    `truncated header: ${kind.description} needs ${needed} header bytes, file has ${actual} bytes`,
  );
}

/** The data bytes after the header, which must be exactly as many as the header announces. */
function dataView(
  bytes: Uint8Array,
  source: string,
  headerLength: number,
  expectedLength: number,
  contents: string,
): Uint8Array {
  const actualLength = bytes.length - headerLength;
  if (actualLength !== expectedLength) {
    const problem = actualLength < expectedLength ? 'truncated data' : 'unexpected bytes after the data';
    throw new IdxFormatError(
      source,
      `${problem}: header says ${contents} = ${expectedLength} bytes, file has ${actualLength} bytes of data`,
    );
  }
  // A plain Uint8Array (not a Buffer subarray) so callers see one type whatever they passed in.
  return new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, expectedLength);
}
