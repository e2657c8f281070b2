import { ApiError, apiCall, serviceDocument } from '../api/client.js';
import { loadDatasets, type Datasets } from '../api/datasets.js';
import type { JobView } from '../api/types.js';
import { errorText, fill, h } from '../dom.js';
import { BUILT_IN_DATASETS, datasetName, datasetOptionLabel, type KnownDataset } from '../logic/datasets.js';
import { formErrors } from '../logic/form-errors.js';
import { PRESETS, presetValues } from '../logic/presets.js';
import {
  bodyFromValues,
  DATA_FIELDS,
  fieldsFromSchema,
  jobBodySchema,
  withDataChoices,
  type FieldSpec,
} from '../logic/train-form.js';
import { datasetPreview } from './dataset-preview.js';
import { datasetUpload } from './dataset-upload.js';
import { jobView } from './job-view.js';
import type { Page } from './page.js';

const RECENT = 10;
/** The list also refreshes on its own while the page is open, for jobs started elsewhere. */
const LIST_REFRESH_MS = 5_000;

/** Train: the parameters form, the live view of one job and the recent jobs (issue 6). */
export function trainPage(root: HTMLElement, jobId: string | undefined): Page {
  const form = h('form', { class: 'train-form', novalidate: true, 'aria-labelledby': 'train-heading' });
  // Someone watching a job wants its charts on the first screen: the job comes first, and the
  // form, long with its data set preview, folds away under its heading until asked for.
  const newJob = h(
    'details',
    { class: 'new-job', id: 'new-job', open: !jobId },
    h('summary', {}, h('h2', { id: 'train-heading' }, 'Train a model')),
    form,
  );
  const live = h('section', {
    class: 'job-live',
    id: 'job-live',
    'aria-label': 'Job progress',
    tabindex: -1,
    hidden: !jobId,
  });
  const jobsTable = h('tbody');
  const listStatus = h('p', { class: 'error', role: 'alert' });
  const refresh = h('button', { type: 'button', class: 'secondary small' }, 'Refresh');
  fill(
    root,
    live,
    newJob,
    h(
      'section',
      { 'aria-labelledby': 'jobs-heading' },
      h('h2', { id: 'jobs-heading' }, 'Recent jobs ', refresh),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'jobs-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Job', 'State', 'Created', 'Dataset', 'Epochs', 'Images', 'Result'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          jobsTable,
        ),
      ),
      listStatus,
    ),
  );

  let watching: { close(): void } | undefined;
  const watch = (id: string) => {
    watching?.close();
    live.hidden = false;
    watching = jobView(live, id, () => void loadJobs());
    // The job's view is the top of the page, wherever a link to it was followed from.
    window.scrollTo({ top: 0 });
  };
  if (jobId) watch(jobId);

  // Names for the jobs' data sets; ids until the list has come.
  let known: readonly KnownDataset[] = BUILT_IN_DATASETS;
  const datasets = loadDatasets();

  async function loadJobs(): Promise<void> {
    try {
      const list = await apiCall((api) => api.GET('/jobs', { params: { query: { limit: RECENT } } }));
      fill(jobsTable, ...list.jobs.map((job) => jobRow(job, known)));
      if (list.jobs.length === 0) fill(jobsTable, h('tr', {}, h('td', { colspan: 7 }, 'No jobs yet.')));
      listStatus.textContent = '';
    } catch (error) {
      listStatus.textContent = `Could not list the jobs: ${errorText(error)}`;
    }
  }
  refresh.addEventListener('click', () => void loadJobs());
  void loadJobs();
  const timer = setInterval(() => document.visibilityState === 'visible' && void loadJobs(), LIST_REFRESH_MS);

  void datasets.then((loaded) => {
    known = loaded.datasets;
    void loadJobs();
  });
  void buildForm(form, datasets, (job) => {
    history.replaceState(null, '', `#/train/${job.id}`);
    watch(job.id);
    newJob.open = false;
    // The button pressed has folded away with the form: focus goes to the job.
    live.focus({ preventScroll: true });
    void loadJobs();
  });

  return {
    close() {
      clearInterval(timer);
      watching?.close();
    },
  };
}

function jobRow(job: JobView, known: readonly KnownDataset[]): HTMLTableRowElement {
  const version = job.result?.modelVersion;
  return h(
    'tr',
    {},
    h('td', {}, h('a', { href: `#/train/${job.id}` }, job.id)),
    h('td', {}, h('span', { class: 'state', 'data-state': job.state }, job.state)),
    h('td', {}, new Date(job.createdAt).toLocaleString()),
    h('td', {}, datasetName(job.params.dataset, known)),
    h('td', {}, job.params.epochs),
    h('td', {}, job.params.trainSize?.toLocaleString('en-US') ?? 'all'),
    h('td', {}, version ? h('a', { href: `#/models/${version}` }, `version ${version}`) : (job.error ?? '')),
  );
}

/**
 * The form, built from the API's own description of POST /jobs (see logic/train-form.ts), with
 * what to train on first: the data set and the version to fine-tune from, as the API lists them.
 */
async function buildForm(
  form: HTMLFormElement,
  datasetList: Promise<Datasets>,
  started: (job: JobView) => void,
): Promise<void> {
  let fields: FieldSpec[];
  let datasets: KnownDataset[];
  try {
    const [spec, loaded, versions] = await Promise.all([
      serviceDocument(),
      datasetList,
      // Without the list, the form still trains from new weights.
      apiCall((api) => api.GET('/models')).then(
        (list) => list.models,
        () => [],
      ),
    ]);
    datasets = loaded.datasets;
    fields = withDataChoices(
      fieldsFromSchema(jobBodySchema(spec)),
      datasets.map((d) => ({ value: d.id, label: datasetOptionLabel(d) })),
      versions.map((m) => ({
        version: m.version,
        dataset: datasetName(m.params.dataset, datasets),
        testAccuracy: m.accuracy.test,
      })),
    );
  } catch (error) {
    fill(
      form,
      h(
        'p',
        { class: 'error', role: 'alert' },
        `Could not load the training parameters: ${errorText(error)}`,
      ),
    );
    return;
  }
  const controls = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const messages = new Map<string, HTMLElement>();
  const general = h('div', { class: 'error', role: 'alert', id: 'form-errors' });
  const submit = h('button', { type: 'submit' }, 'Start training');
  const data = h('div', { class: 'field-grid data-fields' });
  const grid = h('div', { class: 'field-grid' });
  for (const field of fields) {
    const { row, control, message } = fieldRow(field);
    controls.set(field.name, control);
    messages.set(field.name, message);
    (DATA_FIELDS.includes(field.name) ? data : grid).append(row);
  }
  // Recipes set hyperparameters; what to train on stays as chosen.
  const hyperparameters = fields.filter((f) => !DATA_FIELDS.includes(f.name));
  const presets = h(
    'div',
    { class: 'presets', role: 'group', 'aria-label': 'Recipes' },
    'Recipes: ',
    ...PRESETS.map((preset) => {
      const button = h(
        'button',
        { type: 'button', class: 'secondary small', title: preset.description },
        preset.label,
      );
      button.addEventListener('click', () => {
        for (const [name, value] of Object.entries(presetValues(hyperparameters, preset))) {
          const control = controls.get(name)!;
          if (control instanceof HTMLInputElement && control.type === 'checkbox')
            control.checked = value === true;
          else control.value = String(value);
        }
        showErrors({ fields: {}, general: [] });
      });
      return button;
    }),
  );
  const preview = datasetPreview();
  const datasetSelect = controls.get('dataset')!;
  const showDataset = () => {
    const chosen = datasets.find((d) => d.id === datasetSelect.value);
    if (chosen) preview.show(chosen);
  };
  datasetSelect.addEventListener('change', showDataset);
  showDataset();
  // A dataset uploaded here joins the select, chosen.
  const upload = datasetUpload((record) => {
    datasets.push(record);
    datasetSelect.append(h('option', { value: record.id }, datasetOptionLabel(record)));
    datasetSelect.value = record.id;
    showDataset();
  });
  fill(
    form,
    h(
      'section',
      { class: 'data-choice', 'aria-labelledby': 'data-heading' },
      h('h3', { id: 'data-heading' }, 'What to train on'),
      data,
      preview.element,
      upload,
    ),
    h('h3', {}, 'How to train'),
    h(
      'p',
      { class: 'hint' },
      'Defaults are the service\u2019s own; the seed tutorial\u2019s recipe unless you change them.',
    ),
    presets,
    grid,
    general,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values: Record<string, string | boolean> = {};
    for (const [name, control] of controls)
      values[name] =
        control instanceof HTMLInputElement && control.type === 'checkbox' ? control.checked : control.value;
    showErrors({ fields: {}, general: [] });
    submit.disabled = true;
    try {
      started(await apiCall((api) => api.POST('/jobs', { body: bodyFromValues(fields, values) })));
    } catch (error) {
      if (error instanceof ApiError && error.status === 400)
        showErrors(
          formErrors(
            error.body,
            fields.map((f) => f.name),
          ),
        );
      else showErrors({ fields: {}, general: [`Could not start the job: ${errorText(error)}`] });
    } finally {
      submit.disabled = false;
    }
  });

  function showErrors(errors: ReturnType<typeof formErrors>): void {
    for (const [name, message] of messages) {
      const text = errors.fields[name];
      message.textContent = text ?? '';
      message.hidden = !text;
      const control = controls.get(name)!;
      if (text) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    }
    fill(general, ...errors.general.map((text) => h('p', {}, text)));
    const first = fields.find((f) => errors.fields[f.name]);
    if (first) controls.get(first.name)!.focus();
  }
}

function fieldRow(field: FieldSpec) {
  const id = `field-${field.name}`;
  const messageId = `${id}-error`;
  const helpId = `${id}-help`;
  const describedBy = [field.description ? helpId : null, messageId].filter(Boolean).join(' ');
  let control: HTMLInputElement | HTMLSelectElement;
  if (field.choices) {
    control = h('select', { id, name: field.name, 'aria-describedby': describedBy });
    for (const { value, label } of field.choices)
      control.append(h('option', { value, selected: value === String(field.defaultValue ?? '') }, label));
  } else if (field.kind === 'select') {
    control = h('select', { id, name: field.name, 'aria-describedby': describedBy });
    // No default in the schema: the API's choice depends on other fields (the base version's
    // architecture), so the form offers to leave it to the API, as an empty field does.
    if (field.defaultValue === undefined && !field.required)
      control.append(h('option', { value: '', selected: true }, 'default'));
    for (const option of field.options ?? [])
      control.append(h('option', { value: option, selected: option === field.defaultValue }, option));
  } else if (field.kind === 'checkbox') {
    control = h('input', {
      id,
      name: field.name,
      type: 'checkbox',
      checked: field.defaultValue === true,
      'aria-describedby': describedBy,
    });
  } else {
    const numeric = field.kind === 'integer' || field.kind === 'number';
    control = h('input', {
      id,
      name: field.name,
      type: numeric ? 'number' : 'text',
      inputmode: field.kind === 'integer' ? 'numeric' : field.kind === 'number' ? 'decimal' : null,
      min: field.min,
      max: field.max,
      step: field.kind === 'number' ? 'any' : field.kind === 'integer' ? 1 : null,
      value: field.defaultValue === undefined ? null : String(field.defaultValue),
      placeholder: field.defaultValue === undefined ? 'default' : null,
      'aria-describedby': describedBy,
    });
  }
  const message = h('p', { class: 'field-error', id: messageId, hidden: true });
  const row = h(
    'div',
    { class: `field field-${field.kind}` },
    h('label', { for: id }, field.label),
    control,
    field.description ? h('p', { class: 'hint', id: helpId }, field.description) : null,
    message,
  );
  return { row, control, message };
}
