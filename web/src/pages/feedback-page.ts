import { apiCall } from '../api/client.js';
import { loadDatasets } from '../api/datasets.js';
import type { FeedbackExampleView, FeedbackSummary, ModelList } from '../api/types.js';
import { errorText, fill, h } from '../dom.js';
import { datasetName, type KnownDataset } from '../logic/datasets.js';
import {
  accuracyRows,
  chooseFineTuneBase,
  exampleCaption,
  FINE_TUNE,
  fineTuneBody,
  recentDays,
  stillMeasuring,
  type FineTuneBase,
} from '../logic/feedback.js';
import type { Page } from './page.js';

/** Examples per request of the gallery: a page view is not hundreds of images. */
const GALLERY_PAGE = 30;
/** Days shown in the per-day table (the API leaves out days with none). */
const DAYS = 14;
/** While a version's figure is being measured in the background, the view asks again this often. */
const MEASURING_REFRESH_MS = 3_000;

/**
 * Feedback (issue 17): the corrections sent from the try page and client apps, counted per class
 * and per day, how each version does on them, the examples as a gallery (each can be deleted, with
 * the API key when the service has one), and a button that fine-tunes production on its data set
 * and the corrections.
 */
export function feedbackPage(root: HTMLElement): Page {
  const status = h('p', { role: 'status', id: 'feedback-status' });
  const total = h('p', { id: 'feedback-total' }, '…');
  const classesBody = h('tbody');
  const dailyBody = h('tbody');
  const accuracyBody = h('tbody');
  const measuringNote = h(
    'p',
    { class: 'hint', id: 'feedback-measuring', hidden: true },
    'Measuring in the background: the figures update on their own.',
  );
  const fineTune = h('section', { id: 'fine-tune', 'aria-labelledby': 'fine-tune-heading' });
  const grid = h('div', { class: 'gallery', id: 'feedback-gallery' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show more');
  const galleryNote = h('p', { class: 'hint', id: 'feedback-gallery-note' });

  const table = (id: string, headers: string[], body: HTMLElement) =>
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id },
        h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', { scope: 'col' }, t)))),
        body,
      ),
    );

  fill(
    root,
    h('h2', {}, 'Feedback'),
    h(
      'p',
      { class: 'hint' },
      'Corrections sent from the Try it page ("Right?") and by client apps (POST /feedback). ',
      'One in five is kept out of training, so every version can be measured on examples it has not seen.',
    ),
    status,
    h(
      'section',
      { 'aria-labelledby': 'feedback-counts-heading' },
      h('h3', { id: 'feedback-counts-heading' }, 'How many'),
      total,
      h(
        'div',
        { class: 'count-tables' },
        table('feedback-classes', ['Class', 'Examples', 'Train', 'Test'], classesBody),
        table('feedback-daily', ['Day (UTC)', 'Examples'], dailyBody),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'feedback-accuracy-heading' },
      h('h3', { id: 'feedback-accuracy-heading' }, 'Accuracy of each version on the feedback'),
      h(
        'p',
        { class: 'hint' },
        'A version trained on feedback is measured on the test fifth only; any other on every example.',
      ),
      table(
        'feedback-accuracy',
        ['Version', 'Accuracy', 'Correct / examples', 'Trained on feedback'],
        accuracyBody,
      ),
      measuringNote,
    ),
    fineTune,
    h(
      'section',
      { 'aria-labelledby': 'feedback-gallery-heading' },
      h('h3', { id: 'feedback-gallery-heading' }, 'Examples, newest first'),
      galleryNote,
      grid,
      more,
    ),
  );

  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let datasets: readonly KnownDataset[] = [];
  let models: ModelList['models'] = [];

  // A hidden tab waits for its turn instead of asking.
  const refresh = () => {
    if (document.visibilityState === 'visible') void loadSummary();
    else timer = setTimeout(refresh, MEASURING_REFRESH_MS);
  };

  // Set when a load failed: the next good load clears that message, and only that one (a
  // "deleted" message must stay while the counts reload after it).
  let loadFailed = false;
  /** The counts and figures; again soon while a figure is being measured. */
  async function loadSummary(): Promise<void> {
    clearTimeout(timer);
    try {
      const [summary, list, aliases, known] = await Promise.all([
        apiCall((api) => api.GET('/feedback')),
        apiCall((api) => api.GET('/models')),
        apiCall((api) => api.GET('/models/aliases')),
        datasets.length > 0 ? { datasets } : loadDatasets(),
      ]);
      if (closed) return;
      datasets = known.datasets;
      models = list.models;
      const rows = showSummary(summary);
      showFineTune(chooseFineTuneBase(models, aliases), summary);
      if (loadFailed) status.textContent = '';
      loadFailed = false;
      if (stillMeasuring(rows, summary)) timer = setTimeout(refresh, MEASURING_REFRESH_MS);
    } catch (error) {
      if (closed) return;
      loadFailed = true;
      status.textContent = `Could not load the feedback: ${errorText(error)}`;
    }
  }

  function showSummary(summary: FeedbackSummary) {
    total.textContent =
      `${summary.total.toLocaleString('en-US')} example${summary.total === 1 ? '' : 's'} ` +
      `(at most ${summary.maxExamples.toLocaleString('en-US')} are kept)`;
    const none = (columns: number, text: string) => h('tr', {}, h('td', { colspan: columns }, text));
    fill(
      classesBody,
      ...summary.perClass.map((c) =>
        h(
          'tr',
          {},
          // Class names are user-supplied for uploaded sets: text only.
          h('th', { scope: 'row', class: 'class-name', title: c.class }, c.class),
          h('td', {}, c.count),
          h('td', {}, c.train),
          h('td', {}, c.test),
        ),
      ),
    );
    if (summary.perClass.length === 0) fill(classesBody, none(4, 'None yet.'));
    fill(
      dailyBody,
      ...recentDays(summary.daily, DAYS).map((d) => h('tr', {}, h('td', {}, d.date), h('td', {}, d.count))),
    );
    if (summary.daily.length === 0) fill(dailyBody, none(2, 'None yet.'));

    const rows = accuracyRows(
      models.map((m) => m.version),
      summary,
    );
    fill(
      accuracyBody,
      ...rows.map((row) =>
        h(
          'tr',
          { 'data-version': row.version, 'data-measuring': row.measuring },
          h('th', { scope: 'row' }, h('a', { href: `#/models/${row.version}` }, `Version ${row.version}`)),
          h('td', { class: 'accuracy' }, row.accuracy),
          h('td', {}, row.counts),
          h('td', {}, row.trainedOnFeedback),
        ),
      ),
    );
    if (rows.length === 0) fill(accuracyBody, none(4, 'No model yet.'));
    measuringNote.hidden = !stillMeasuring(rows, summary);
    return rows;
  }

  function showFineTune(base: FineTuneBase | null, summary: FeedbackSummary): void {
    const heading = h('h3', { id: 'fine-tune-heading' }, 'Fine-tune on the feedback');
    if (!base) {
      fill(
        fineTune,
        heading,
        h('p', {}, 'No model to fine-tune yet: ', h('a', { href: '#/train' }, 'train one'), '.'),
      );
      return;
    }
    const setName = datasetName(base.dataset, datasets);
    const which = base.reason === 'production' ? 'production' : 'the latest version';
    const button = h(
      'button',
      { type: 'button', id: 'fine-tune-button', disabled: summary.total === 0 },
      `Fine-tune ${which} on ${setName} + feedback`,
    );
    const result = h('p', { class: 'error', role: 'alert', id: 'fine-tune-error' });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const job = await apiCall((api) => api.POST('/jobs', { body: fineTuneBody(base) }));
        location.hash = `#/train/${job.id}`;
      } catch (error) {
        result.textContent = `Could not start the fine-tune: ${errorText(error)}`;
        button.disabled = false;
      }
    });
    fill(
      fineTune,
      heading,
      h(
        'p',
        { id: 'fine-tune-base' },
        `Starts from version ${base.version}`,
        base.reason === 'production'
          ? ' (production)'
          : ' (the latest: no version is production yet; the Models page promotes one)',
        `, trains ${FINE_TUNE.epochs} epochs at learning rate ${FINE_TUNE.learningRate} on ${setName} and the `,
        `feedback, each correction seen ${FINE_TUNE.feedbackWeight} times an epoch.`,
      ),
      summary.total === 0 ? h('p', { class: 'hint' }, 'There is no feedback to train on yet.') : null,
      button,
      result,
    );
  }

  // ---- the gallery ----
  const shown = new Set<string>();
  let nextOffset = 0;

  async function loadExamples(): Promise<void> {
    more.disabled = true;
    try {
      const page = await apiCall((api) =>
        api.GET('/feedback/examples', { params: { query: { offset: nextOffset, limit: GALLERY_PAGE } } }),
      );
      if (closed) return;
      nextOffset = page.offset + page.examples.length;
      // Examples stored since the first page push older ones down a place: show each once.
      grid.append(...page.examples.filter((e) => !shown.has(e.id)).map(figure));
      for (const e of page.examples) shown.add(e.id);
      more.hidden = nextOffset >= page.total;
      galleryNote.textContent = page.total === 0 ? 'None yet: correct a prediction on the Try it page.' : '';
    } catch (error) {
      if (!closed) galleryNote.textContent = `Could not load the examples: ${errorText(error)}`;
    } finally {
      more.disabled = false;
    }
  }

  function figure(example: FeedbackExampleView): HTMLElement {
    const caption = exampleCaption(example);
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'secondary small',
        'aria-label': `Delete example ${example.id}`,
        title: 'Delete this example (needs the API key when the service has one)',
      },
      'Delete',
    );
    const item = h(
      'figure',
      { 'data-id': example.id },
      h('img', {
        src: example.image,
        width: 56,
        height: 56,
        alt: `Feedback example: ${caption.label}, ${caption.detail}`,
      }),
      h(
        'figcaption',
        {},
        h('strong', { class: 'example-class' }, caption.label),
        h('br'),
        h('span', { class: 'example-detail' }, caption.detail),
      ),
      remove,
    );
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      try {
        // Admin: a 401 asks for the API key, as promoting and cancelling do.
        await apiCall((api) => api.DELETE('/feedback/{id}', { params: { path: { id: example.id } } }));
        item.remove();
        shown.delete(example.id);
        nextOffset = Math.max(0, nextOffset - 1);
        status.textContent = `Example ${example.id} deleted.`;
        void loadSummary();
      } catch (error) {
        status.textContent = `Could not delete example ${example.id}: ${errorText(error)}`;
        remove.disabled = false;
      }
    });
    return item;
  }

  more.addEventListener('click', () => void loadExamples());
  void loadSummary();
  void loadExamples();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
