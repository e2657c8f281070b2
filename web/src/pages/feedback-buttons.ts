import { ApiError, apiCall } from '../api/client.js';
import type { PredictResponse } from '../api/types.js';
import { errorText, fill, h } from '../dom.js';
import { outcomeOfAnswer, outcomeOfError, type FeedbackOutcome } from '../logic/feedback.js';

/** One prediction the buttons are about: the very image that went to /predict, and its answer. */
interface Asked {
  answer: PredictResponse;
  image: Blob;
  busy: boolean;
  /** A correction was sent and answered for good: the buttons stay off for this prediction. */
  done: boolean;
}

/**
 * "Right?" under a prediction (issue 17): "Yes" sends the predicted class as the label, one
 * button per class sends that one. The POST /feedback body holds the image that went to /predict
 * as a data URL, the version that answered and what it predicted, so the API stores the 28x28
 * image the model saw. The API key is asked for on a 401, as for every other request.
 */
export function feedbackButtons() {
  const yes = h('button', { type: 'button', id: 'feedback-yes' }, 'Yes');
  const classes = h('div', {
    class: 'class-buttons',
    id: 'feedback-classes',
    role: 'group',
    'aria-labelledby': 'feedback-no',
  });
  const outcome = h('p', { class: 'feedback-outcome', id: 'feedback-outcome', role: 'status' });
  const element = h(
    'section',
    { class: 'feedback', id: 'feedback', 'aria-labelledby': 'feedback-question', hidden: true },
    h('p', { class: 'question' }, h('strong', { id: 'feedback-question' }, 'Right?'), ' ', yes),
    h('p', { class: 'hint', id: 'feedback-no' }, 'No, it is:'),
    classes,
    outcome,
  );

  let current: Asked | undefined;
  let names: readonly string[] = [];

  const buttons = () => [yes, ...classes.querySelectorAll('button')];
  const setDisabled = (disabled: boolean) => {
    for (const button of buttons()) button.disabled = disabled;
  };
  const showOutcome = (result: FeedbackOutcome | null) => {
    outcome.textContent = result?.text ?? '';
    if (result) outcome.dataset.kind = result.kind;
    else delete outcome.dataset.kind;
  };

  function renderClasses(): void {
    fill(
      classes,
      ...names.map((name, label) => {
        // Names are user-supplied for uploaded sets: text only, never markup.
        const button = h('button', { type: 'button', class: 'secondary small', title: name }, name);
        button.addEventListener('click', () => void send(label));
        return button;
      }),
    );
    setDisabled(current === undefined || current.busy || current.done);
  }

  async function send(label: number): Promise<void> {
    const asked = current;
    if (!asked || asked.busy || asked.done) return;
    asked.busy = true;
    setDisabled(true);
    outcome.textContent = 'Sending\u2026';
    let result: FeedbackOutcome;
    try {
      const image = await dataUrl(asked.image);
      const answer = await apiCall((api) =>
        api.POST('/feedback', {
          body: {
            image,
            label,
            modelVersion: asked.answer.modelVersion,
            predicted: asked.answer.predictions[0]!.label,
          },
        }),
      );
      result = outcomeOfAnswer(answer);
    } catch (error) {
      // No status: the request never got an answer (offline, the service gone).
      result = outcomeOfError(error instanceof ApiError ? error.status : 0, errorText(error));
    }
    asked.busy = false;
    asked.done = !result.retry;
    // A newer prediction took the buttons meanwhile: this answer is about one no longer shown.
    if (current !== asked) return;
    showOutcome(result);
    setDisabled(asked.done);
  }

  yes.addEventListener('click', () => {
    if (current) void send(current.answer.predictions[0]!.label);
  });

  return {
    element,
    /** A new prediction: the buttons are about it from now on. */
    ask(answer: PredictResponse, image: Blob): void {
      current = { answer, image, busy: false, done: false };
      showOutcome(null);
      setDisabled(false);
      element.hidden = false;
    },
    /** The classes' names, one button each (the version's own once the page has them). */
    name(classNames: readonly string[]): void {
      if (classNames.length === names.length && classNames.every((n, i) => n === names[i])) return;
      names = [...classNames];
      renderClasses();
    },
    hide(): void {
      current = undefined;
      element.hidden = true;
      showOutcome(null);
    },
  };
}

function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener('load', () => resolve(reader.result as string));
    reader.addEventListener('error', () => reject(reader.error ?? new Error('the image could not be read')));
    reader.readAsDataURL(blob);
  });
}
