import type { DatasetRecord } from '../api/types.js';

/**
 * What the page knows of a data set: the whole record from GET /datasets, or only the id and name
 * of a built-in when the list could not be had (an older API, or one that wants a key).
 */
export type KnownDataset = Pick<DatasetRecord, 'id' | 'name' | 'builtIn'> & Partial<DatasetRecord>;

/** The data sets every deployment has (src/ml/data/dataset.ts BUILT_IN_DATASETS; a test keeps them equal). */
export const BUILT_IN_DATASETS: readonly KnownDataset[] = Object.freeze([
  { id: 'mnist', name: 'MNIST', builtIn: true },
  { id: 'fashion-mnist', name: 'Fashion-MNIST', builtIn: true },
]);

/** Built-ins first, in the API's order; then uploads by name. */
export function sortDatasets<T extends KnownDataset>(datasets: readonly T[]): T[] {
  const builtIn = datasets.filter((d) => d.builtIn);
  const uploaded = datasets
    .filter((d) => !d.builtIn)
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  return [...builtIn, ...uploaded];
}

const count = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** An option of the dataset select: "MNIST (built-in)", "Letters: 26 classes, 3,000 training images". */
export function datasetOptionLabel(dataset: KnownDataset): string {
  if (dataset.builtIn) return `${dataset.name} (built-in)`;
  const parts = [
    dataset.classes ? count(dataset.classes.length, 'class', 'classes') : null,
    dataset.counts ? count(dataset.counts.train, 'training image') : null,
  ].filter((part) => part !== null);
  return parts.length > 0 ? `${dataset.name}: ${parts.join(', ')}` : dataset.name;
}

/** A data set's name for an id a model or job records; the id itself when the page does not know it. */
export function datasetName(id: string, known: readonly KnownDataset[]): string {
  return known.find((d) => d.id === id)?.name ?? id;
}

/**
 * The version a model was fine-tuned from, from its params (issue 15); undefined for a model
 * trained from new weights, or published before fine-tuning existed.
 */
export function baseVersionOf(params: object): number | undefined {
  const value = (params as { baseVersion?: unknown }).baseVersion;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}
