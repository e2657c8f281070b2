/**
 * The feedback loop as the page shows it (issue 17): what a correction's answer means, each
 * version's accuracy on the corrections, and the fine-tune job the feedback view starts. Pure, so
 * test/web/feedback-logic.test.ts covers it without a browser.
 */
import type { FeedbackCreated, FeedbackSummary, ModelList, VersionFeedbackAccuracy } from '../api/types.js';
import { PRODUCTION } from './aliases.js';
import { formatPercent } from './format.js';

/** The name jobs give the feedback examples (src/feedback/feedback-schema.ts; a test keeps them equal). */
export const FEEDBACK_DATASET = 'feedback';

/**
 * The fine-tune recipe: a few epochs at a third of the default learning rate, so the base keeps
 * what it knows of its own data set, and each correction seen 20 times an epoch, so a hundred of
 * them weigh against sixty thousand training images.
 */
export const FINE_TUNE = { epochs: 2, learningRate: 0.0003, feedbackWeight: 20 } as const;

// ---- a correction's answer -------------------------------------------------------------------

export interface FeedbackOutcome {
  /** 'stored': kept now; 'known': that image was kept before; 'refused': not kept, say why. */
  kind: 'stored' | 'known' | 'refused';
  text: string;
  /**
   * Whether the buttons may be used again for the same prediction: only after an answer that
   * says nothing about the correction itself (a rate limit, a busy or unreachable service).
   */
  retry: boolean;
}

export function outcomeOfAnswer(answer: Pick<FeedbackCreated, 'created' | 'class'>): FeedbackOutcome {
  return answer.created
    ? { kind: 'stored', text: `Thanks: stored as \u201c${answer.class}\u201d.`, retry: false }
    : {
        kind: 'known',
        text: `Already stored: this image was sent before, as \u201c${answer.class}\u201d.`,
        retry: false,
      };
}

/** An answer other than 2xx (status 0: no answer at all), with the API's message when it sent one. */
export function outcomeOfError(status: number, message: string): FeedbackOutcome {
  const retry = status === 0 || status === 401 || status === 429 || status >= 500;
  if (status === 404)
    return { kind: 'refused', text: 'Not stored: this service does not collect corrections.', retry: false };
  return { kind: 'refused', text: `Not stored: ${message}`, retry };
}

// ---- accuracy on the feedback ----------------------------------------------------------------

export interface AccuracyRow {
  version: number;
  /** "93.3 %", "measuring…", "no examples". */
  accuracy: string;
  /** "14 / 15", or a dash when not measured. */
  counts: string;
  trainedOnFeedback: string;
  /** The figure is missing or older than the feedback (re-evaluation under way). */
  measuring: boolean;
}

const MEASURING = 'measuring\u2026';

/**
 * One row per version, newest first: those the API lists and those it has figures for. A version
 * with no figure, or one older than the feedback's revision, is being measured in the background.
 */
export function accuracyRows(versions: readonly number[], summary: FeedbackSummary): AccuracyRow[] {
  const figures = new Map(summary.versions.map((v) => [v.version, v]));
  const all = [...new Set([...versions, ...figures.keys()])].sort((a, b) => b - a);
  return all.map((version) => accuracyRow(version, figures.get(version), summary));
}

function accuracyRow(
  version: number,
  figure: VersionFeedbackAccuracy | undefined,
  summary: Pick<FeedbackSummary, 'revision' | 'total'>,
): AccuracyRow {
  if (!figure) {
    const none = summary.total === 0;
    return {
      version,
      accuracy: none ? 'no examples yet' : MEASURING,
      counts: '\u2014',
      trainedOnFeedback: '\u2014',
      measuring: !none,
    };
  }
  const measured = figure.accuracy === null ? 'no examples' : formatPercent(figure.accuracy);
  const stale = figure.revision < summary.revision;
  return {
    version,
    accuracy: stale ? `${MEASURING} (was ${measured})` : measured,
    counts: `${figure.correct} / ${figure.examples}`,
    trainedOnFeedback: figure.trainedOnFeedback ? 'yes' : 'no',
    measuring: stale,
  };
}

/**
 * A version's figure as its detail page shows it (GET /models/:v `feedback`): null when it has
 * none (not measured yet, or feedback off), so the row is left out.
 */
export function feedbackFigureText(
  figure:
    | Pick<VersionFeedbackAccuracy, 'accuracy' | 'correct' | 'examples' | 'trainedOnFeedback'>
    | null
    | undefined,
): string | null {
  if (!figure) return null;
  if (figure.accuracy === null) return 'no corrections of its classes to measure on';
  const which = figure.trainedOnFeedback ? ' (the test fifth: it trained on the rest)' : '';
  return `${formatPercent(figure.accuracy)}: ${figure.correct} of ${figure.examples} corrections${which}`;
}

/** Whether the view should ask again soon: some figure is missing or behind the feedback. */
export function stillMeasuring(
  rows: readonly AccuracyRow[],
  summary: Pick<FeedbackSummary, 'pending'>,
): boolean {
  return summary.pending || rows.some((row) => row.measuring);
}

/** The last `days` days that had examples, oldest first (the API leaves days with none out). */
export function recentDays(daily: FeedbackSummary['daily'], days: number): FeedbackSummary['daily'] {
  return daily.slice(-days);
}

/** A gallery caption: the right class, then what the version said when the client told. */
export function exampleCaption(example: {
  class: string;
  predicted: string | null;
  modelVersion: number | null;
}): { label: string; detail: string } {
  const seen =
    example.predicted === null
      ? 'no prediction sent'
      : `read as ${example.predicted}${example.modelVersion === null ? '' : ` by v${example.modelVersion}`}`;
  return { label: example.class, detail: seen };
}

// ---- the fine-tune job -----------------------------------------------------------------------

export interface FineTuneBase {
  version: number;
  /** The data set the version was trained on: the fine-tune trains on it and the feedback. */
  dataset: string;
  /** Why this version: it is production, or there is no production and it is the newest. */
  reason: 'production' | 'latest';
}

/**
 * The version to fine-tune: production when the alias names a listed version, else the newest.
 * The page sends the number rather than the alias, so the job starts from the version the button
 * named even if production moves between the view and the click.
 */
export function chooseFineTuneBase(
  models: ModelList['models'],
  aliases: Readonly<Record<string, number>>,
): FineTuneBase | null {
  const production = models.find((m) => m.version === aliases[PRODUCTION]);
  if (production)
    return { version: production.version, dataset: production.params.dataset, reason: 'production' };
  const latest = models.reduce<ModelList['models'][number] | undefined>(
    (newest, m) => (newest === undefined || m.version > newest.version ? m : newest),
    undefined,
  );
  return latest ? { version: latest.version, dataset: latest.params.dataset, reason: 'latest' } : null;
}

/** POST /jobs for a fine-tune of `base` on its own data set and the feedback. */
export function fineTuneBody(base: Pick<FineTuneBase, 'version' | 'dataset'>) {
  return {
    baseVersion: base.version,
    dataset: base.dataset,
    datasets: [base.dataset, FEEDBACK_DATASET],
    feedbackWeight: FINE_TUNE.feedbackWeight,
    epochs: FINE_TUNE.epochs,
    learningRate: FINE_TUNE.learningRate,
  };
}
