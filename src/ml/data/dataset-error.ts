/** A data set that cannot be used as asked: missing, malformed or inconsistent. The client's to fix. */
export class DatasetError extends Error {
  override name = 'DatasetError';
}
