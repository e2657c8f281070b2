import { z } from 'zod';
import { invalidField } from '../errors.js';
import { datasetNameSchema } from './dataset-record.js';
import { unsupportedUploadType } from './dataset-errors.js';

/** The body types `POST /datasets` takes. */
export const UPLOAD_CONTENT_TYPES = ['application/zip', 'text/csv'] as const;
export type UploadContentType = (typeof UPLOAD_CONTENT_TYPES)[number];

/** What came with the body: the request's query and headers, as the route read them. */
export interface DatasetUpload {
  /** `?name=`: see datasetNameSchema. */
  name: string;
  contentType: UploadContentType;
  /** `?classes=` of a CSV upload: the name of label i at index i. */
  classes?: string[];
  /** Content-Length, when the client sent one: over the limit is refused before reading. */
  declaredBytes?: number;
}

/**
 * The upload type from a Content-Type header: parameters (`; charset=utf-8`) and case ignored,
 * and the name Windows browsers give zips taken too. 415 for anything else, saying what would do.
 */
export function parseUploadContentType(header: string | undefined): UploadContentType {
  const type = header?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/zip' || type === 'application/x-zip-compressed') return 'application/zip';
  if (type === 'text/csv') return 'text/csv';
  const given = type ? `Content-Type ${type.slice(0, 100)}` : 'a body without a Content-Type';
  return unsupportedType(given);
}

function unsupportedType(given: string): never {
  throw unsupportedUploadType(
    `${given} is not a dataset upload; send application/zip (class folders or idx files) or text/csv`,
  );
}

/** `?classes=a,b,c`: names separated by commas, spaces around each ignored. */
export function parseClassesParam(text: string): string[] {
  return text.split(',').map((name) => name.trim());
}

/** The upload's own fields, checked before a byte of the body is read. */
export function checkUpload(upload: DatasetUpload): void {
  const name = datasetNameSchema.safeParse(upload.name);
  if (!name.success) throw invalidField('name', `name: ${name.error.issues[0]?.message ?? 'invalid'}`);
  if (!(UPLOAD_CONTENT_TYPES as readonly string[]).includes(upload.contentType)) {
    unsupportedType(`Content-Type ${String(upload.contentType).slice(0, 100)}`);
  }
  if (upload.classes !== undefined && upload.contentType !== 'text/csv') {
    throw invalidField(
      'classes',
      'classes: only a CSV upload takes ?classes=; a zip names its classes by its folders or its classes.txt',
    );
  }
  const declared = z.int().min(0).optional().safeParse(upload.declaredBytes);
  if (!declared.success)
    throw new RangeError(`declaredBytes must be a byte count, got ${upload.declaredBytes}`);
}
