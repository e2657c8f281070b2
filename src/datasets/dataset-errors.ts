import type { ErrorCode, ErrorStatus } from '../error-codes.js';
import { DomainError } from '../errors.js';

/**
 * What an upload can be refused for, each a stable `error.code`. The messages name the file, line
 * or class at fault, so a user can fix the upload without reading our code.
 */
export const DATASET_ERROR_CODES = {
  /** 413: over DATASET_MAX_BYTES, _UNCOMPRESSED_BYTES or _FILES. */
  tooLarge: 'dataset_too_large',
  /** 400: not a zip, or a corrupt or truncated one. */
  invalidArchive: 'invalid_archive',
  /** 400: a zip built to attack its reader: zip-slip paths, symlinks, bombs, lying sizes. */
  unsafeArchive: 'unsafe_archive',
  /** 400: a readable upload that is no dataset: layout, classes, labels, too many bad images. */
  invalidDataset: 'invalid_dataset',
  /** 400: a CSV not in the Kaggle digit-recognizer layout. */
  invalidCsv: 'invalid_csv',
  /** 400: the body ended before its end (the client went away or cut it). */
  uploadIncomplete: 'upload_incomplete',
  /** 415: neither application/zip nor text/csv. */
  unsupportedType: 'unsupported_media_type',
} as const;

const fail =
  <C extends ErrorCode>(status: ErrorStatus<C>, code: C) =>
  (message: string, cause?: unknown) =>
    new DomainError(message, { status, code, cause });

export const datasetTooLarge = fail(413, DATASET_ERROR_CODES.tooLarge);
export const invalidArchive = fail(400, DATASET_ERROR_CODES.invalidArchive);
export const unsafeArchive = fail(400, DATASET_ERROR_CODES.unsafeArchive);
export const invalidDataset = fail(400, DATASET_ERROR_CODES.invalidDataset);
export const invalidCsv = fail(400, DATASET_ERROR_CODES.invalidCsv);
export const uploadIncomplete = fail(400, DATASET_ERROR_CODES.uploadIncomplete);
export const unsupportedUploadType = fail(415, DATASET_ERROR_CODES.unsupportedType);

/**
 * A name from an upload (an entry's path, a folder) as a message or listing may show it: quoted,
 * control and format characters (bidi overrides, zero widths) replaced, long ones shortened.
 */
export function shownName(name: string, max = 200): string {
  return JSON.stringify(cleanText(name, max));
}

/** Text from an upload made safe to show: control and format characters replaced, at most `max` long. */
export function cleanText(text: string, max = 200): string {
  const clean = text.replace(/[\p{Cc}\p{Cf}]/gu, '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** 1,234,567: sizes and counts in messages, readable at a glance. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}
