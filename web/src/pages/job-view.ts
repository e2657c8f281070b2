import { apiCall } from '../api/client.js';
import type { EpochRecord, JobProgress, JobView } from '../api/types.js';
import { trainingChart } from '../charts.js';
import { errorText, fill, h } from '../dom.js';
import { formatNumber, formatPercent } from '../logic/format.js';
import { batchPoint, describeProgress } from '../logic/progress.js';

const ACTIVE = new Set(['queued', 'active']);

/**
 * One job, live: its state, progress, images/s, time left and loss and accuracy curves, from the
 * job's Server-Sent Events stream (GET /jobs/:id/events), with a cancel button while it runs.
 */
export function jobView(root: HTMLElement, id: string, onEnd: (view: JobView) => void): { close(): void } {
  const state = h('span', { class: 'state', id: 'job-state' }, '…');
  const bar = h('progress', { max: 100, value: 0, 'aria-label': 'Training progress' });
  const epoch = h('dd', { id: 'job-epoch' }, '—');
  const rate = h('dd', { id: 'job-rate' }, '—');
  const eta = h('dd', { id: 'job-eta' }, '—');
  const loss = h('dd', { id: 'job-loss' }, '—');
  const accuracy = h('dd', { id: 'job-accuracy' }, '—');
  const cancel = h('button', { type: 'button', class: 'danger', hidden: true }, 'Cancel job');
  const outcome = h('p', { id: 'job-outcome', role: 'status' });
  const lossCanvas = h('canvas', { 'aria-label': 'Line chart: loss per batch and per epoch' });
  const accuracyCanvas = h('canvas', { 'aria-label': 'Line chart: accuracy per batch and per epoch' });
  const lossFigure = h('figure', { class: 'chart-box', id: 'loss-chart' }, lossCanvas);
  const accuracyFigure = h('figure', { class: 'chart-box', id: 'accuracy-chart' }, accuracyCanvas);

  fill(
    root,
    h('h2', {}, 'Job ', h('code', {}, id), ' ', state),
    bar,
    h(
      'dl',
      { class: 'stats' },
      // Each figure with its name in a group of its own, so wide screens put them side by side.
      h('div', {}, h('dt', {}, 'Progress'), epoch),
      h('div', {}, h('dt', {}, 'Speed'), rate),
      h('div', {}, h('dt', {}, 'Time left'), eta),
      h('div', {}, h('dt', {}, 'Loss (epoch so far)'), loss),
      h('div', {}, h('dt', {}, 'Accuracy (epoch so far)'), accuracy),
    ),
    cancel,
    outcome,
    h('div', { class: 'chart-pair' }, lossFigure, accuracyFigure),
  );

  let charts: ReturnType<typeof trainingChart>[] = [];
  let history: EpochRecord[] = [];
  let lastProgress: JobProgress | null = null;

  const ensureCharts = (epochs: number) => {
    if (charts.length === 0)
      charts = [trainingChart(lossCanvas, 'loss', epochs), trainingChart(accuracyCanvas, 'accuracy', epochs)];
  };

  function showProgress(progress: JobProgress | null): void {
    lastProgress = progress;
    const text = describeProgress(progress, history);
    epoch.textContent = text.epoch;
    rate.textContent = text.rate;
    eta.textContent = text.eta;
    bar.value = text.percent;
    loss.textContent = progress ? formatNumber(progress.loss) : '—';
    accuracy.textContent = progress ? formatPercent(progress.accuracy) : '—';
  }

  function showView(view: JobView): void {
    state.textContent = view.state;
    state.dataset.state = view.state;
    cancel.hidden = !ACTIVE.has(view.state);
    ensureCharts(view.params.epochs);
    history = view.history;
    for (const chart of charts) {
      chart.setHistory(history);
      // The batches before this page opened (or reconnected) come from the job's own curve.
      chart.setBatchHistory(view.batchHistory);
    }
    if (view.progress) {
      const progress = { ...view.progress, history, batchHistory: view.batchHistory };
      showProgress(progress);
      for (const chart of charts) chart.addBatch(batchPoint(progress));
    }
    if (view.state === 'completed' && view.result) {
      const { modelVersion, metrics } = view.result;
      bar.value = 100;
      eta.textContent = '—';
      fill(
        outcome,
        'Done: ',
        h('a', { href: `#/models/${modelVersion}` }, `model version ${modelVersion}`),
        `, ${formatPercent(metrics.accuracy.test, 2)} right on the test set.`,
      );
    } else if (view.state === 'failed') outcome.textContent = `Failed: ${view.error ?? 'no reason given'}`;
    else if (view.state === 'cancelled') outcome.textContent = 'Cancelled.';
  }

  const events = new EventSource(`/jobs/${encodeURIComponent(id)}/events`);
  events.addEventListener('state', (event) => showView(JSON.parse(event.data) as JobView));
  events.addEventListener('progress', (event) => {
    const progress = JSON.parse(event.data) as JobProgress;
    state.textContent = 'active';
    state.dataset.state = 'active';
    ensureCharts(progress.epochs);
    if (progress.history.length !== history.length) {
      history = progress.history;
      for (const chart of charts) chart.setHistory(history);
    }
    showProgress(progress);
    for (const chart of charts) chart.addBatch(batchPoint(progress));
  });
  let ended = false;
  function finish(view: JobView): void {
    // Closed here: an EventSource would otherwise reconnect and replay the end forever.
    events.close();
    if (ended) return;
    ended = true;
    showView(view);
    if (view.state !== 'completed') showProgress(lastProgress);
    onEnd(view);
  }
  events.addEventListener('end', (event) => finish(JSON.parse(event.data) as JobView));
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CONNECTING) outcome.textContent = 'Connection lost; reconnecting…';
    // An answer other than the stream (404 for an unknown job) ends it for good.
    else if (!ended)
      outcome.textContent = `Cannot follow job ${id}: it does not exist or the service refused.`;
  });
  events.addEventListener('open', () => {
    if (outcome.textContent?.startsWith('Connection lost')) outcome.textContent = '';
  });

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      const view = await apiCall((api) => api.DELETE('/jobs/{id}', { params: { path: { id } } }));
      // A queued job is cancelled at once; a running one stops within a batch and the stream says so.
      if (ACTIVE.has(view.state)) outcome.textContent = 'Cancelling…';
      else finish(view);
    } catch (error) {
      outcome.textContent = `Could not cancel: ${errorText(error)}`;
    } finally {
      cancel.disabled = false;
    }
  });

  return {
    close() {
      events.close();
      for (const chart of charts) chart.destroy();
    },
  };
}
