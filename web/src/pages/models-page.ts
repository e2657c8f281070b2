import { apiCall } from '../api/client.js';
import { loadDatasets } from '../api/datasets.js';
import { errorText, fill, h } from '../dom.js';
import { PRODUCTION } from '../logic/aliases.js';
import { baseVersionOf, datasetName } from '../logic/datasets.js';
import { formatPercent } from '../logic/format.js';
import { modelDetail } from './model-detail.js';
import type { Page } from './page.js';
import { promoteButton } from './promote-button.js';

/** Models: every version with its metrics, or one version in detail (issue 6). */
export function modelsPage(root: HTMLElement, version: number | undefined): Page {
  if (version !== undefined) return modelDetail(root, version);
  const body = h('tbody');
  const status = h('p', { role: 'status' });
  fill(
    root,
    h('h2', {}, 'Models'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'models-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Version', 'Created', 'Architecture', 'Trained on', 'Validation', 'Test', 'Aliases', ''].map(
              (t) => h('th', { scope: 'col' }, t),
            ),
          ),
        ),
        body,
      ),
    ),
    status,
  );

  async function load(): Promise<void> {
    try {
      const [list, aliases, { datasets }] = await Promise.all([
        apiCall((api) => api.GET('/models')),
        apiCall((api) => api.GET('/models/aliases')),
        loadDatasets(),
      ]);
      if (list.models.length === 0) {
        fill(
          body,
          h(
            'tr',
            {},
            h('td', { colspan: 8 }, 'No model yet: ', h('a', { href: '#/train' }, 'train one'), '.'),
          ),
        );
        return;
      }
      fill(
        body,
        ...list.models.map((m) => {
          const names = Object.entries(aliases)
            .filter(([, v]) => v === m.version)
            .map(([name]) => name);
          if (list.serving === m.version) names.unshift('serving');
          const base = baseVersionOf(m.params);
          return h(
            'tr',
            {},
            h('td', {}, h('a', { href: `#/models/${m.version}` }, `Version ${m.version}`)),
            h('td', {}, new Date(m.createdAt).toLocaleString()),
            h('td', {}, m.architecture),
            h(
              'td',
              { class: 'trained-on' },
              `${datasetName(m.params.dataset, datasets)}, ${m.trainImages.toLocaleString('en-US')} images`,
              base === undefined
                ? null
                : h(
                    'span',
                    { class: 'hint' },
                    ' fine-tuned from ',
                    h('a', { href: `#/models/${base}` }, `version ${base}`),
                  ),
            ),
            h('td', {}, formatPercent(m.accuracy.validation, 2)),
            h('td', {}, formatPercent(m.accuracy.test, 2)),
            h('td', {}, ...names.map((name) => h('span', { class: 'badge' }, name))),
            h(
              'td',
              {},
              promoteButton(m.version, aliases[PRODUCTION] === m.version, status, () => void load()),
            ),
          );
        }),
      );
    } catch (error) {
      status.textContent = `Could not list the models: ${errorText(error)}`;
    }
  }
  void load();
  return { close: () => undefined };
}
