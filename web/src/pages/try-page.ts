import { ApiError, apiRequest } from '../api/client.js';
import type { JobView, ModelList, PredictResponse } from '../api/types.js';
import { probabilityChart } from '../charts.js';
import { errorText, fill, h } from '../dom.js';
import { DrawingPad } from '../drawing-pad.js';
import { formatPercent } from '../logic/format.js';
import { QUICK_JOB } from '../logic/train-form.js';
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
    { class: 'big-label', id: 'predicted-label', 'aria-label': 'Predicted digit' },
    '?',
  );
  const confidence = h('span', { id: 'confidence' }, '—');
  const version = h('span', { id: 'model-version' }, '—');
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
  const chartCanvas = h('canvas', { 'aria-label': 'Bar chart: the probability of each digit' });
  const probabilities = h('ol', { class: 'probabilities', id: 'probabilities', start: 0 });
  const status = h('p', { class: 'error', role: 'alert' });
  const notice = noModelNotice(status);

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
        h('p', { class: 'hint' }, 'Draw one digit, 0 to 9. It is read each time you lift the pen.'),
        clear,
        h('label', { for: 'digit-file', class: 'hint' }, 'Or choose an image of one digit (PNG or JPEG):'),
        file,
      ),
      h(
        'div',
        { class: 'result', 'aria-live': 'polite' },
        h('p', { class: 'answer' }, 'The model reads ', label, h('br'), 'with ', confidence, ' confidence'),
        h('p', {}, 'Model version ', version),
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
      const answer = await apiRequest<PredictResponse>('/predict?include=input', {
        method: 'POST',
        blob: await image,
      });
      if (mine !== asked) return;
      show(answer);
      status.textContent = '';
      notice.hide();
    } catch (error) {
      if (mine !== asked) return;
      if (error instanceof ApiError && error.status === 503 && error.code === 'no_model') notice.show();
      else status.textContent = `Could not read the ${what}: ${errorText(error)}`;
    }
  }

  function show(answer: PredictResponse): void {
    const prediction = answer.predictions[0]!;
    label.textContent = String(prediction.label);
    confidence.textContent = formatPercent(prediction.confidence);
    version.textContent = String(answer.modelVersion);
    if (prediction.input) {
      input.src = prediction.input;
      seen.hidden = false;
    }
    chart.show(prediction.probabilities);
    fill(
      probabilities,
      ...prediction.probabilities.map((p, digit) => h('li', {}, `${digit}: ${formatPercent(p)}`)),
    );
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
    confidence.textContent = '—';
    seen.hidden = true;
    chart.show(new Array<number>(10).fill(0));
    fill(probabilities);
    status.textContent = '';
  });

  // Say so before anyone draws, rather than after.
  apiRequest<ModelList>('/models')
    .then((list) => list.models.length === 0 && notice.show())
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
      const job = await apiRequest<JobView>('/jobs', { method: 'POST', json: QUICK_JOB });
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
