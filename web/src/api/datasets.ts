import { errorText } from '../dom.js';
import { BUILT_IN_DATASETS, sortDatasets, type KnownDataset } from '../logic/datasets.js';
import { apiCall } from './client.js';

export interface Datasets {
  /** Built-ins first, then uploads; only the built-ins when the list could not be had. */
  datasets: KnownDataset[];
  /** Why the list is only the built-ins; null when it came from the API. */
  problem: string | null;
}

/**
 * GET /datasets, never asking for the API key (the page reads it on its way) and never failing: an
 * API without the route, or one that wants a key nobody gave, still trains on its built-ins.
 */
export async function loadDatasets(): Promise<Datasets> {
  try {
    const list = await apiCall((api) => api.GET('/datasets'), { askKey: false });
    if (!Array.isArray(list?.datasets)) throw new Error('the answer has no datasets');
    return { datasets: sortDatasets(list.datasets), problem: null };
  } catch (error) {
    return { datasets: [...BUILT_IN_DATASETS], problem: errorText(error) };
  }
}
