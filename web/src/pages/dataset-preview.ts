import { fill, h } from '../dom.js';
import type { KnownDataset } from '../logic/datasets.js';

const number = (n: number) => n.toLocaleString('en-US');

/**
 * The data set the training form has selected: examples of each class (GET
 * /datasets/:id/samples.png), its class names and counts, and the files its upload skipped. Names
 * come from whoever uploaded the set, so they only ever go in as text.
 */
export function datasetPreview() {
  const image = h('img', { class: 'samples', id: 'dataset-samples', alt: '', hidden: true });
  const noImage = h('p', { class: 'hint', hidden: true }, 'No example images from this service.');
  const facts = h('p', { class: 'hint', id: 'dataset-facts' });
  const names = h('ol', {
    class: 'class-names',
    id: 'dataset-classes',
    start: 0,
    'aria-label': 'Class names',
  });
  const skipped = h('details', { class: 'skipped', hidden: true });
  const element = h(
    'figure',
    { class: 'dataset-preview', id: 'dataset-preview', 'aria-live': 'polite' },
    h('div', { class: 'samples-box' }, image, noImage),
    h('figcaption', {}, facts, names, skipped),
  );
  // Shown once it has loaded: an API without the route (or a set without samples) shows no broken image.
  image.addEventListener('load', () => (image.hidden = false));
  image.addEventListener('error', () => (noImage.hidden = false));

  function show(dataset: KnownDataset): void {
    image.hidden = true;
    noImage.hidden = true;
    image.alt = `Examples of ${dataset.name}, one row per class`;
    image.src = `/datasets/${encodeURIComponent(dataset.id)}/samples.png`;

    const classes = dataset.classes ?? [];
    const counts = dataset.counts;
    facts.textContent = [
      classes.length > 0 ? `${classes.length} classes` : null,
      counts ? `${number(counts.train)} training and ${number(counts.test)} test images` : null,
    ]
      .filter(Boolean)
      .join('; ');
    const perClass = new Map(counts?.perClass.map((c) => [c.class, c]));
    fill(
      names,
      ...classes.map((name) => {
        const count = perClass.get(name);
        const title = count ? `${name}: ${number(count.train)} training, ${number(count.test)} test` : name;
        return h('li', { title }, name);
      }),
    );

    const files = dataset.skipped ?? [];
    const total = dataset.skippedCount ?? files.length;
    skipped.hidden = total === 0;
    fill(
      skipped,
      h('summary', {}, `${number(total)} file${total === 1 ? '' : 's'} left out of the upload`),
      h('ul', {}, ...files.map(({ file, reason }) => h('li', {}, h('code', {}, file), `: ${reason}`))),
      total > files.length ? h('p', { class: 'hint' }, `and ${number(total - files.length)} more`) : null,
    );
  }

  return { element, show };
}
