import { ApiError, apiCall, rawBody } from '../api/client.js';
import type { ModelMetadata, PredictResponse } from '../api/types.js';
import { probabilityChart } from '../charts.js';
import { errorText, fill, h } from '../dom.js';
import { DrawingPad } from '../drawing-pad.js';
import { formatPercent } from '../logic/format.js';
import { QUICK_JOB } from '../logic/train-form.js';
import { feedbackButtons } from './feedback-buttons.js';
import type { Page } from './page.js';

/** Try it: draw a digit, see what the served model makes of it (issue 6). */
export function tryPage(root: HTMLElement): Page {
  const canvas = h('canvas', {
    class: 'pad',
    'aria-label': 'Drawing area: draw one digit with the mouse, a pen or a finger',
  });
  const clear = h('button', { type: 'button' }, 'Clear');
  // The way in without a pointer (keyboard, screen reader), and for a photo of a digit on paper.
  const file = h('input', { type: 'file', id: 'digit-file', accept: 'image/png,image/jpeg' });
  const label = h(
    'output',
    { class: 'big-label', id: 'predicted-label', 'aria-label': 'Predicted class' },
    '?',
  );
  const confidence = h('span', { id: 'confidence' }, '—');
  const version = h('span', { id: 'model-version' }, '—');
  // Until there is an answer, a plain prompt stands where it will be.
  const prompt = h(
    'p',
    { class: 'answer', id: 'try-prompt' },
    'Draw a digit on the pad, or choose an image: what the model reads in it shows here.',
  );
  const reading = h(
    'div',
    { id: 'reading', hidden: true },
    h('p', { class: 'answer' }, 'The model reads ', label, h('br'), 'with ', confidence, ' confidence'),
    h('p', {}, 'Model version ', version),
  );
  const input = h('img', {
    class: 'model-input',
    id: 'model-input',
    width: 112,
    height: 112,
    alt: 'The 28 by 28 image the model saw',
  });
  const seen = h(
    'figure',
    { class: 'seen', hidden: true },
    input,
    h('figcaption', {}, 'What the model saw (28 × 28)'),
  );
  const chartCanvas = h('canvas', { 'aria-label': 'Bar chart: the probability of each class' });
  const probabilities = h('ol', { class: 'probabilities', id: 'probabilities', start: 0 });
  const status = h('p', { class: 'error', role: 'alert' });
  const notice = noModelNotice(status);
  // What the served model can answer: digits, garments or a set someone uploaded (issue 15).
  const knows = h('div', { class: 'hint', id: 'model-classes', hidden: true });
  // "Right?" after each prediction: corrections for the feedback loop (issue 17).
  const feedback = feedbackButtons();

  fill(
    root,
    h('h2', {}, 'Try it'),
    notice.element,
    h(
      'div',
      { class: 'try-grid' },
      h(
        'div',
        { class: 'pad-column' },
        canvas,
        h(
          'p',
          { class: 'hint' },
          'Draw one digit (or whatever the model below was trained on). It is read each time you lift the pen.',
        ),
        knows,
        clear,
        h('label', { for: 'digit-file', class: 'hint' }, 'Or choose an image of one digit (PNG or JPEG):'),
        file,
      ),
      h(
        'div',
        { class: 'result', 'aria-live': 'polite' },
        prompt,
        reading,
        feedback.element,
        seen,
        h('figure', { class: 'chart-box small' }, chartCanvas),
        h('details', {}, h('summary', {}, 'Probabilities as numbers'), probabilities),
      ),
    ),
    status,
  );

  const chart = probabilityChart(chartCanvas);
  let asked = 0;
  const pad = new DrawingPad(canvas, () => {
    if (!pad.isEmpty) void predict(pad.toPng(), 'drawing');
  });

  async function predict(image: Promise<Blob> | Blob, what: 'drawing' | 'image'): Promise<void> {
    // Only the answer to the latest drawing or image is shown, whatever order the answers come in.
    const mine = ++asked;
    try {
      const sent = await image;
      const answer = await apiCall((api) =>
        api.POST('/predict', { params: { query: { include: 'input' } }, ...rawBody(sent, sent.type) }),
      );
      if (mine !== asked) return;
      // A correction sends the very image that was read, so the API stores what the model saw.
      feedback.ask(answer, sent);
      show(answer);
      status.textContent = '';
      notice.hide();
    } catch (error) {
      if (mine !== asked) return;
      feedback.hide();
      if (error instanceof ApiError && error.status === 503 && error.code === 'no_model') notice.show();
      else status.textContent = `Could not read the ${what}: ${errorText(error)}`;
    }
  }

  /** The class names of the version asked last (or served), for the bars; indices until they come. */
  let known: { version: number; classes: readonly string[] } | undefined;
  let asking: number | undefined;
  let last: PredictResponse | undefined;

  function show(answer: PredictResponse): void {
    last = answer;
    const prediction = answer.predictions[0]!;
    // Names are user-supplied: textContent only, never markup.
    label.textContent = prediction.class;
    label.title = `class ${prediction.label}`;
    label.classList.toggle('long', [...prediction.class].length > 3);
    confidence.textContent = formatPercent(prediction.confidence);
    version.textContent = String(answer.modelVersion);
    prompt.hidden = true;
    reading.hidden = false;
    if (prediction.input) {
      input.src = prediction.input;
      seen.hidden = false;
    }
    showProbabilities(answer);
    if (known?.version !== answer.modelVersion && asking !== answer.modelVersion)
      void learnClasses(answer.modelVersion);
  }

  function showProbabilities(answer: PredictResponse): void {
    const prediction = answer.predictions[0]!;
    const classes = known?.version === answer.modelVersion ? known.classes : [];
    const names = prediction.probabilities.map((_, i) =>
      i === prediction.label ? prediction.class : (classes[i] ?? String(i)),
    );
    chart.show(prediction.probabilities, names);
    feedback.name(names);
    fill(
      probabilities,
      ...prediction.probabilities.map((p, i) => h('li', {}, `${names[i]}: ${formatPercent(p)}`)),
    );
  }

  /** A version's class names, from its metadata: for the bars and the hint under the pad. */
  async function learnClasses(modelVersion: number): Promise<void> {
    asking = modelVersion;
    let model: ModelMetadata;
    try {
      model = await apiCall((api) =>
        api.GET('/models/{version}', { params: { path: { version: modelVersion } } }),
      );
    } catch {
      return; // Only the hint and the other bars' names are missing: each answer names its class.
    }
    if (asking !== modelVersion) return;
    known = { version: modelVersion, classes: model.classes };
    fill(
      knows,
      `Version ${modelVersion} knows ${model.classes.length} classes:`,
      h(
        'ol',
        { class: 'class-names', start: 0 },
        ...model.classes.map((name) => h('li', { title: name }, name)),
      ),
    );
    knows.hidden = false;
    if (last?.modelVersion === modelVersion) showProbabilities(last);
    else if (!last) chart.show(new Array<number>(model.classes.length).fill(0), model.classes);
  }

  file.addEventListener('change', () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    // The answer is about the image now, not about what was on the pad.
    pad.clear();
    void predict(chosen, 'image');
  });

  clear.addEventListener('click', () => {
    pad.clear();
    file.value = '';
    asked++;
    label.textContent = '?';
    label.classList.remove('long');
    confidence.textContent = '—';
    reading.hidden = true;
    prompt.hidden = false;
    seen.hidden = true;
    last = undefined;
    feedback.hide();
    const classes = known?.classes ?? [];
    chart.show(new Array<number>(classes.length).fill(0), classes);
    fill(probabilities);
    status.textContent = '';
  });

  // Say so before anyone draws, rather than after.
  apiCall((api) => api.GET('/models'))
    .then((list) => {
      if (list.models.length === 0) notice.show();
      else if (list.serving !== null) void learnClasses(list.serving);
    })
    .catch((error: unknown) => (status.textContent = `Could not list the models: ${errorText(error)}`));

  return { close: () => chart.destroy() };
}

/** Shown while no model exists: one button starts a small job and opens its live view. */
function noModelNotice(status: HTMLElement) {
  const button = h('button', { type: 'button' }, 'Train a quick model');
  const element = h(
    'div',
    { class: 'notice', id: 'no-model', role: 'status', hidden: true },
    h('p', {}, h('strong', {}, 'No model is trained yet,'), ' so there is nothing to ask.'),
    h(
      'p',
      {},
      `A quick job trains ${QUICK_JOB.epochs} epoch on ${QUICK_JOB.trainSize.toLocaleString('en-US')} images: `,
      'seconds to a minute, usually over 90 % right. The Train page has every setting.',
    ),
    button,
  );
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const job = await apiCall((api) => api.POST('/jobs', { body: QUICK_JOB }));
      location.hash = `#/train/${job.id}`;
    } catch (error) {
      status.textContent = `Could not start the job: ${errorText(error)}`;
      button.disabled = false;
    }
  });
  return {
    element,
    show: () => (element.hidden = false),
    hide: () => (element.hidden = true),
  };
}
