import { apiCall, rawBody } from '../api/client.js';
import type { DatasetRecord } from '../api/types.js';
import { errorText, h } from '../dom.js';

/** The type POST /datasets takes for a file, from its name: browsers label zips and CSVs differently. */
export function uploadType(fileName: string): 'application/zip' | 'text/csv' {
  return /\.csv$/i.test(fileName) ? 'text/csv' : 'application/zip';
}

/**
 * Uploading a dataset from the page (POST /datasets): a name and a zip or CSV file. The service
 * checks everything and says what is wrong; its message is shown as it came. `uploaded` gets the
 * stored record. Inside the training form, so nothing here is `required`: an empty upload must
 * not stop a job from starting.
 */
export function datasetUpload(uploaded: (record: DatasetRecord) => void): HTMLElement {
  const name = h('input', { id: 'upload-name', maxlength: 64, placeholder: 'Letters', autocomplete: 'off' });
  const file = h('input', { id: 'upload-file', type: 'file', accept: '.zip,.csv,application/zip,text/csv' });
  const status = h('p', { class: 'hint', id: 'upload-status', role: 'status' });
  const send = h('button', { type: 'button', class: 'secondary small' }, 'Upload');

  send.addEventListener('click', async () => {
    const chosen = file.files?.[0];
    const given = name.value.trim();
    if (!chosen || !given) {
      status.textContent = 'Choose a file and give the dataset a name.';
      return;
    }
    send.disabled = true;
    status.textContent = `Uploading ${chosen.name}: every image is checked and preprocessed, which takes a while for a large set.`;
    try {
      const type = uploadType(chosen.name);
      const record = await apiCall((api) =>
        api.POST('/datasets', { params: { query: { name: given } }, ...rawBody(chosen, type) }),
      );
      const skipped = record.skippedCount > 0 ? `, ${record.skippedCount} files left out` : '';
      status.textContent = `Stored ${record.name}: ${record.classes.length} classes, ${record.counts.train.toLocaleString('en-US')} training images${skipped}.`;
      uploaded(record);
    } catch (error) {
      status.textContent = `Could not upload: ${errorText(error)}`;
    } finally {
      send.disabled = false;
    }
  });

  return h(
    'details',
    { class: 'dataset-upload', id: 'dataset-upload' },
    h('summary', {}, 'Upload a dataset'),
    h(
      'p',
      { class: 'hint' },
      'A zip with a folder of PNG or JPEG images per class, a zip of MNIST idx files, or a CSV ' +
        '(label, then 784 pixels 0-255 per row).',
    ),
    h(
      'div',
      { class: 'field-grid data-fields' },
      h('div', { class: 'field' }, h('label', { for: 'upload-name' }, 'Name of the dataset'), name),
      h('div', { class: 'field' }, h('label', { for: 'upload-file' }, 'Zip or CSV file'), file),
    ),
    send,
    status,
  );
}
