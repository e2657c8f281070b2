import { randomBytes } from 'node:crypto';
import { uploadedDatasetIdSchema } from '../ml/data/dataset.js';

const SUFFIX_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const SUFFIX_LENGTH = 8;
/** So that slug, '-' and the suffix fit the 64 characters of an id. */
const MAX_SLUG_LENGTH = 40;

/**
 * A new id for a dataset named `name`: its name as lower-case ASCII words joined by '-' (accents
 * dropped; 'dataset' when nothing is left, as for a name in another script), then 8 random
 * letters and digits: "Lettres accentuées" gives `lettres-accentuees-3kq9x2ab`.
 */
export function newDatasetId(name: string): string {
  const slug =
    name
      .normalize('NFKD')
      .replace(/\p{M}/gu, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, MAX_SLUG_LENGTH)
      .replace(/^-+|-+$/g, '') || 'dataset';
  const bytes = randomBytes(SUFFIX_LENGTH);
  const suffix = Array.from(bytes, (b) => SUFFIX_CHARS[b % SUFFIX_CHARS.length]).join('');
  return uploadedDatasetIdSchema.parse(`${slug}-${suffix}`);
}
