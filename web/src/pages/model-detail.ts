import { apiCall } from '../api/client.js';
import { loadDatasets } from '../api/datasets.js';
import type { ModelMetadata, VersionFeedbackAccuracy } from '../api/types.js';
import { errorText, fill, h } from '../dom.js';
import { PRODUCTION } from '../logic/aliases.js';
import { baseVersionOf, datasetName, type KnownDataset } from '../logic/datasets.js';
import { feedbackFigureText } from '../logic/feedback.js';
import { formatDuration, formatNumber, formatPercent, formatRate } from '../logic/format.js';
import { heatColour, rowShares, textColourOn } from '../logic/heat-colour.js';
import type { Page } from './page.js';
import { promoteButton } from './promote-button.js';

/** Images shown at first; the rest behind a button, so a page view is not 100 image requests. */
const GALLERY_FIRST = 30;

/**
 * One version: its numbers, confusion matrix as a heat map, and the test images it got wrong, each
 * class by its name (names are user-supplied for uploaded sets: text only, never markup).
 */
export function modelDetail(root: HTMLElement, version: number): Page {
  const status = h('p', { role: 'status', id: 'model-status' });
  fill(
    root,
    h('p', {}, h('a', { href: '#/models' }, '← All models')),
    h('h2', {}, `Model version ${version}`),
    status,
  );

  async function load(): Promise<void> {
    try {
      const [model, aliases, { datasets }] = await Promise.all([
        // With its accuracy on the feedback when the service measures it (issue 17).
        apiCall((api) => api.GET('/models/{version}', { params: { path: { version } } })),
        apiCall((api) => api.GET('/models/aliases')),
        loadDatasets(),
      ]);
      const names = Object.entries(aliases)
        .filter(([, v]) => v === version)
        .map(([name]) => name);
      fill(
        root,
        h('p', {}, h('a', { href: '#/models' }, '← All models')),
        h('h2', {}, `Model version ${version} `, ...names.map((n) => h('span', { class: 'badge' }, n))),
        promoteButton(version, aliases[PRODUCTION] === version, status, () => void load()),
        status,
        summary(model, datasets),
        accuracyTable(model),
        confusionMatrix(model.confusion, model.classes),
        gallery(version, model.misclassified, model.classes),
      );
    } catch (error) {
      status.textContent = `Could not load version ${version}: ${errorText(error)}`;
    }
  }
  void load();
  return { close: () => undefined };
}

function summary(
  model: ModelMetadata & { feedback?: VersionFeedbackAccuracy | null },
  datasets: readonly KnownDataset[],
): HTMLElement {
  const base = baseVersionOf(model.params);
  const onFeedback = feedbackFigureText(model.feedback);
  const rows: [string, string | Node][] = [
    ['Dataset', `${datasetName(model.params.dataset, datasets)}, ${model.classes.length} classes`],
    ...(base === undefined
      ? []
      : [['Fine-tuned from', h('a', { href: `#/models/${base}` }, `version ${base}`)] as [string, Node]]),
    ['Created', new Date(model.createdAt).toLocaleString()],
    ['Job', model.jobId ?? 'none (command line)'],
    ['Architecture', `${model.architecture}, ${model.parameterCount.toLocaleString('en-US')} parameters`],
    [
      'Training',
      `${model.params.epochs} epoch${model.params.epochs === 1 ? '' : 's'} on ${model.trainImages.toLocaleString('en-US')} images, ${model.params.optimizer} at ${model.params.learningRate}`,
    ],
    [
      'Time',
      `${formatDuration(model.trainingSeconds)} on ${model.backend}, ${formatRate(model.imagesPerSecond)}`,
    ],
    ...(onFeedback === null
      ? []
      : [
          ['On feedback', h('a', { href: '#/feedback', id: 'model-feedback' }, onFeedback)] as [string, Node],
        ]),
  ];
  return h(
    'dl',
    { class: 'stats' },
    ...rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );
}

function accuracyTable(model: ModelMetadata): HTMLElement {
  const splits = [
    ['Train', 'train'],
    ['Validation', 'validation'],
    ['Test', 'test'],
  ] as const;
  return h(
    'section',
    { 'aria-labelledby': 'accuracy-heading' },
    h('h3', { id: 'accuracy-heading' }, 'Accuracy'),
    h(
      'table',
      { id: 'accuracy-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Split'),
          h('th', { scope: 'col' }, 'Accuracy'),
          h('th', { scope: 'col' }, 'Loss'),
        ),
      ),
      h(
        'tbody',
        {},
        ...splits.map(([name, key]) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, name),
            h('td', {}, formatPercent(model.accuracy[key], 2)),
            h('td', {}, formatNumber(model.loss[key])),
          ),
        ),
      ),
    ),
  );
}

/** A class's name in a header cell: cut to the cell's width by CSS, whole in its tooltip. */
const className = (name: string) => h('span', { class: 'class-name', title: name }, name);

/** Rows are the true class, columns the predicted one; shaded by share of the row. */
function confusionMatrix(confusion: number[][], classes: readonly string[]): HTMLElement {
  const shares = rowShares(confusion);
  const name = (label: number) => classes[label] ?? String(label);
  const cell = (count: number, share: number, truth: number, predicted: number) => {
    const td = h(
      'td',
      {
        class: truth === predicted ? 'diagonal' : null,
        title: `true ${name(truth)}, predicted ${name(predicted)}: ${count} (${formatPercent(share)} of the true ${name(truth)})`,
      },
      count,
    );
    // Set through the CSSOM, which the page's CSP allows (a style attribute it would not).
    td.style.backgroundColor = heatColour(share);
    td.style.color = textColourOn(share);
    return td;
  };
  return h(
    'section',
    { 'aria-labelledby': 'confusion-heading' },
    h('h3', { id: 'confusion-heading' }, 'Confusion matrix (test set)'),
    h(
      'p',
      { class: 'hint' },
      'Rows: the true class. Columns: what the model said. Darker: a larger share of that row.',
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'confusion', id: 'confusion-matrix' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'true \\ predicted')),
            ...confusion.map((_, p) => h('th', { scope: 'col' }, className(name(p)))),
          ),
        ),
        h(
          'tbody',
          {},
          ...confusion.map((row, t) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, className(name(t))),
              ...row.map((count, p) => cell(count, shares[t]![p]!, t, p)),
            ),
          ),
        ),
      ),
    ),
  );
}

function gallery(
  version: number,
  items: ModelMetadata['misclassified'],
  classes: readonly string[],
): HTMLElement {
  const name = (label: number) => classes[label] ?? String(label);
  const grid = h('div', { class: 'gallery', id: 'misclassified' });
  const more = h('button', { type: 'button', class: 'secondary' }, `Show all ${items.length}`);
  const note = h('p', { class: 'hint', hidden: true });
  const figure = (item: ModelMetadata['misclassified'][number], i: number) => {
    const caption = `true ${name(item.label)}, predicted ${name(item.predicted)}`;
    const image = h('img', {
      src: `/models/${version}/misclassified/${i}.png`,
      width: 56,
      height: 56,
      alt: `Test image ${item.index}: ${caption}`,
      loading: 'lazy',
    });
    image.addEventListener(
      'error',
      () => {
        // Versions published before images were kept have none: say so once.
        image.hidden = true;
        note.textContent = 'This version was published before the images of its errors were kept.';
        note.hidden = false;
      },
      { once: true },
    );
    return h('figure', {}, image, h('figcaption', {}, caption, h('br'), formatPercent(item.confidence, 0)));
  };
  grid.append(...items.slice(0, GALLERY_FIRST).map(figure));
  more.hidden = items.length <= GALLERY_FIRST;
  more.addEventListener('click', () => {
    grid.append(...items.slice(GALLERY_FIRST).map((item, i) => figure(item, GALLERY_FIRST + i)));
    more.hidden = true;
  });
  return h(
    'section',
    { 'aria-labelledby': 'misclassified-heading' },
    h(
      'h3',
      { id: 'misclassified-heading' },
      `Misclassified test images (${items.length} kept, most confident first)`,
    ),
    items.length === 0 ? h('p', {}, 'None: every test image was right.') : null,
    note,
    grid,
    more,
  );
}
