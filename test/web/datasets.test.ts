import { describe, expect, it } from 'vitest';
import { BUILT_IN_DATASETS as SERVICE_BUILT_INS } from '../../src/ml/data/dataset.js';
import type { DatasetRecord } from '../../web/src/api/types.js';
import {
  baseVersionOf,
  BUILT_IN_DATASETS,
  datasetName,
  datasetOptionLabel,
  sortDatasets,
} from '../../web/src/logic/datasets.js';
import { truncate } from '../../web/src/logic/format.js';

const upload = (id: string, name: string, classes: number, train: number): DatasetRecord => ({
  id,
  name,
  builtIn: false,
  format: 'csv',
  classes: Array.from({ length: classes }, (_, i) => `c${i}`),
  counts: { train, test: 10, perClass: [] },
  skipped: [],
  skippedCount: 0,
  createdAt: '2026-11-30T12:00:00.000Z',
});

describe('data sets as the page lists them (issue 15)', () => {
  it("when the page falls back to the built-ins, then they are the service's own, by id and name", () => {
    expect(BUILT_IN_DATASETS.map(({ id, name }) => [id, name])).toEqual(
      Object.entries(SERVICE_BUILT_INS).map(([id, { name }]) => [id, name]),
    );
  });

  it('when uploads and built-ins come mixed, then the built-ins come first in their order, then uploads by name', () => {
    const list = [
      upload('zeta-aaaaaaaa', 'Zeta', 2, 5),
      BUILT_IN_DATASETS[1]!,
      upload('alpha-bbbbbbbb', 'alpha', 3, 5),
      BUILT_IN_DATASETS[0]!,
    ];
    expect(sortDatasets(list).map((d) => d.id)).toEqual([
      'fashion-mnist',
      'mnist',
      'alpha-bbbbbbbb',
      'zeta-aaaaaaaa',
    ]);
  });

  it('when an option is labelled, then an upload shows its class count and training size', () => {
    expect(datasetOptionLabel(BUILT_IN_DATASETS[0]!)).toBe('MNIST (built-in)');
    expect(datasetOptionLabel(upload('letters-3kq9x2ab', 'Letters', 26, 3000))).toBe(
      'Letters: 26 classes, 3,000 training images',
    );
    expect(datasetOptionLabel(upload('one-3kq9x2ab', 'One', 2, 1))).toBe('One: 2 classes, 1 training image');
    expect(datasetOptionLabel({ id: 'x-3kq9x2ab', name: 'X', builtIn: false })).toBe('X');
  });

  it('when a model names a data set, then the page shows its name, or the id when it knows none', () => {
    const known = [...BUILT_IN_DATASETS, upload('letters-3kq9x2ab', 'Letters', 26, 3000)];
    expect(datasetName('fashion-mnist', known)).toBe('Fashion-MNIST');
    expect(datasetName('letters-3kq9x2ab', known)).toBe('Letters');
    expect(datasetName('gone-3kq9x2ab', known)).toBe('gone-3kq9x2ab');
  });

  it('when params record a base version, then it is read; anything else is no fine-tune', () => {
    expect(baseVersionOf({ dataset: 'mnist', baseVersion: 3 })).toBe(3);
    expect(baseVersionOf({ dataset: 'mnist' })).toBeUndefined();
    for (const bad of [0, -1, 1.5, '3', null]) expect(baseVersionOf({ baseVersion: bad })).toBeUndefined();
  });

  it('when a name is too long for an axis, then it is cut by characters with an ellipsis', () => {
    expect(truncate('Ankle boot', 12)).toBe('Ankle boot');
    expect(truncate('A very long class name', 12)).toBe('A very long\u2026');
    expect(truncate('日本語の長いクラス名です', 5)).toBe('日本語の\u2026');
    expect(truncate('😀😀😀', 2)).toBe('😀\u2026');
  });
});
