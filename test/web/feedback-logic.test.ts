import { describe, expect, it } from 'vitest';
import {
  FEEDBACK_DATASET as SERVICE_FEEDBACK_DATASET,
  feedbackSummarySchema,
} from '../../src/feedback/feedback-schema.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import type { FeedbackSummary, ModelList } from '../../web/src/api/types.js';
import {
  accuracyRows,
  chooseFineTuneBase,
  exampleCaption,
  FEEDBACK_DATASET,
  feedbackFigureText,
  FINE_TUNE,
  fineTuneBody,
  outcomeOfAnswer,
  outcomeOfError,
  recentDays,
  stillMeasuring,
} from '../../web/src/logic/feedback.js';

const AT = '2026-11-30T12:00:00.000Z';

const summary = (over: Partial<FeedbackSummary> = {}): FeedbackSummary =>
  feedbackSummarySchema.parse({
    total: 15,
    maxExamples: 10_000,
    revision: 7,
    perClass: [{ class: '7', count: 15, train: 12, test: 3 }],
    daily: [{ date: '2026-11-30', count: 15 }],
    versions: [],
    pending: false,
    ...over,
  });

const figure = (version: number, over: Record<string, unknown> = {}) => ({
  version,
  accuracy: 14 / 15,
  correct: 14,
  examples: 15,
  trainedOnFeedback: false,
  revision: 7,
  evaluatedAt: AT,
  ...over,
});

const model = (version: number, dataset = 'mnist') =>
  ({ version, params: { dataset } }) as unknown as ModelList['models'][number];

describe("a correction's answer on the try page", () => {
  it('when the API stored it now, then the page thanks and names the class; when before, it says already stored', () => {
    expect(outcomeOfAnswer({ created: true, class: '7' })).toEqual({
      kind: 'stored',
      text: 'Thanks: stored as \u201c7\u201d.',
      retry: false,
    });
    expect(outcomeOfAnswer({ created: false, class: 'Ankle boot' })).toMatchObject({
      kind: 'known',
      text: expect.stringMatching(/^Already stored: .*\u201cAnkle boot\u201d\.$/),
      retry: false,
    });
  });

  it.each([
    [409, 'this image was stored before as 3', false],
    [400, "label: 12 is not one of version 1's classes", false],
    [429, 'rate limit: 30 corrections a minute, try again in 12 s', true],
    [503, 'the store is away', true],
    [401, 'this route needs the API key', true],
    [0, 'Failed to fetch', true],
  ])(
    'when the API answers %i, then the page shows its message and the buttons come back only when trying again could help',
    (status, message, retry) => {
      expect(outcomeOfError(status, message)).toEqual({
        kind: 'refused',
        text: `Not stored: ${message}`,
        retry,
      });
    },
  );

  it('when the route is off (404), then the page says the service does not collect corrections', () => {
    expect(outcomeOfError(404, 'Route POST:/feedback not found')).toEqual({
      kind: 'refused',
      text: 'Not stored: this service does not collect corrections.',
      retry: false,
    });
  });
});

describe("each version's accuracy on the feedback", () => {
  it('when versions are measured, then each row has its accuracy, correct / examples and whether it trained on feedback, newest first', () => {
    const rows = accuracyRows(
      [1, 2],
      summary({
        versions: [figure(1), figure(2, { accuracy: 1, correct: 3, examples: 3, trainedOnFeedback: true })],
      }),
    );
    expect(rows).toEqual([
      { version: 2, accuracy: '100.0 %', counts: '3 / 3', trainedOnFeedback: 'yes', measuring: false },
      { version: 1, accuracy: '93.3 %', counts: '14 / 15', trainedOnFeedback: 'no', measuring: false },
    ]);
    expect(stillMeasuring(rows, { pending: false })).toBe(false);
  });

  it('when a version has no figure yet or one older than the feedback, then it reads measuring…, the old figure kept beside it', () => {
    const rows = accuracyRows([3, 1], summary({ revision: 9, versions: [figure(1)], pending: true }));
    expect(rows).toEqual([
      {
        version: 3,
        accuracy: 'measuring\u2026',
        counts: '\u2014',
        trainedOnFeedback: '\u2014',
        measuring: true,
      },
      {
        version: 1,
        accuracy: 'measuring\u2026 (was 93.3 %)',
        counts: '14 / 15',
        trainedOnFeedback: 'no',
        measuring: true,
      },
    ]);
    expect(stillMeasuring(rows, { pending: false })).toBe(true);
  });

  it('when there is no feedback, or none of a version\u2019s classes, then it says so instead of measuring forever', () => {
    expect(accuracyRows([1], summary({ total: 0, perClass: [], daily: [] }))[0]).toMatchObject({
      accuracy: 'no examples yet',
      measuring: false,
    });
    expect(
      accuracyRows([1], summary({ versions: [figure(1, { accuracy: null, correct: 0, examples: 0 })] }))[0],
    ).toMatchObject({ accuracy: 'no examples', counts: '0 / 0', measuring: false });
  });

  it("when a version's detail shows its figure, then it reads as a share of the corrections, and is left out when there is none", () => {
    expect(feedbackFigureText(figure(1))).toBe('93.3 %: 14 of 15 corrections');
    expect(
      feedbackFigureText(figure(2, { accuracy: 1, correct: 3, examples: 3, trainedOnFeedback: true })),
    ).toBe('100.0 %: 3 of 3 corrections (the test fifth: it trained on the rest)');
    expect(feedbackFigureText(figure(3, { accuracy: null, correct: 0, examples: 0 }))).toBe(
      'no corrections of its classes to measure on',
    );
    expect(feedbackFigureText(null)).toBeNull();
    expect(feedbackFigureText(undefined)).toBeNull();
  });

  it('when a measured version is not in the model list (the list came first), then it still has its row', () => {
    expect(accuracyRows([], summary({ versions: [figure(4)] })).map((r) => r.version)).toEqual([4]);
  });

  it('when there are many days, then the last ones are shown, oldest first', () => {
    const daily = Array.from({ length: 20 }, (_, i) => ({
      date: `2026-11-${String(i + 1).padStart(2, '0')}`,
      count: 1,
    }));
    expect(recentDays(daily, 14).map((d) => d.date)).toEqual(daily.slice(6).map((d) => d.date));
  });

  it('when an example is captioned, then it names its class and what the client was told, if it said', () => {
    expect(exampleCaption({ class: '7', predicted: '1', modelVersion: 3 })).toEqual({
      label: '7',
      detail: 'read as 1 by v3',
    });
    expect(exampleCaption({ class: 'Coat', predicted: 'Shirt', modelVersion: null }).detail).toBe(
      'read as Shirt',
    );
    expect(exampleCaption({ class: '7', predicted: null, modelVersion: null }).detail).toBe(
      'no prediction sent',
    );
  });
});

describe('the fine-tune the feedback view starts', () => {
  it('when production names a version, then that version is the base, even when newer ones exist', () => {
    expect(chooseFineTuneBase([model(1), model(2, 'fashion-mnist'), model(3)], { production: 2 })).toEqual({
      version: 2,
      dataset: 'fashion-mnist',
      reason: 'production',
    });
  });

  it('when there is no production alias (or it names a version gone), then the newest version is the base', () => {
    expect(chooseFineTuneBase([model(3), model(5), model(4)], {})).toEqual({
      version: 5,
      dataset: 'mnist',
      reason: 'latest',
    });
    expect(chooseFineTuneBase([model(3)], { production: 9, staging: 3 })).toMatchObject({
      version: 3,
      reason: 'latest',
    });
    expect(chooseFineTuneBase([], {})).toBeNull();
  });

  it("when the job body is built, then it trains the base's data set and the feedback, oversampled, gently, and the API's schema takes it", () => {
    const body = fineTuneBody({ version: 2, dataset: 'mnist' });
    expect(body).toEqual({
      baseVersion: 2,
      dataset: 'mnist',
      datasets: ['mnist', 'feedback'],
      feedbackWeight: 20,
      epochs: FINE_TUNE.epochs,
      learningRate: FINE_TUNE.learningRate,
    });
    expect(FINE_TUNE.learningRate).toBeLessThan(trainParamsSchema.parse({}).learningRate);
    const parsed = trainParamsSchema.safeParse(body);
    expect(parsed.success, parsed.error?.message).toBe(true);
  });

  it("when the page names the feedback data set, then it is the service's own name for it", () => {
    expect(FEEDBACK_DATASET).toBe(SERVICE_FEEDBACK_DATASET);
  });
});
