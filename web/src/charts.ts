import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartDataset,
} from 'chart.js';
import type { EpochRecord } from './api/types.js';
import { addLivePoint, batchLine } from './logic/batch-line.js';
import { accuracyAxisMin, percentTick, type ChartPoint } from './logic/chart-scale.js';
import { truncate } from './logic/format.js';
import type { BatchPoint } from './logic/progress.js';

// Only what the page draws, so the bundle carries no unused chart types.
Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Legend,
  Tooltip,
);

const ACCENT = '#1f5fa8';
const MUTED = '#9db4cf';
const SECOND = '#c2571a';

export interface ProbabilityChart {
  /** One bar per class, labelled by `classes` (names in label order; the index when a name is missing). */
  show(probabilities: number[], classes: readonly string[]): void;
  destroy(): void;
}

/** Axis labels this long are cut (the tooltip has the whole name), so 26 letters or long names still fit. */
const AXIS_LABEL_CHARS = 12;

/** The class probabilities as bars, the most likely one highlighted. */
export function probabilityChart(canvas: HTMLCanvasElement): ProbabilityChart {
  let best = -1;
  const chart = new Chart(canvas, {
    type: 'bar',
    data: {
      labels: [] as string[],
      datasets: [
        {
          label: 'probability',
          data: [] as number[],
          backgroundColor: (context) => (context.dataIndex === best ? ACCENT : MUTED),
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 150 },
      scales: {
        y: { min: 0, max: 1, ticks: { callback: (value) => percentTick(Number(value)), stepSize: 0.25 } },
        x: {
          title: { display: true, text: 'class' },
          ticks: {
            callback(value) {
              return truncate(this.getLabelForValue(Number(value)), AXIS_LABEL_CHARS);
            },
          },
        },
      },
      plugins: { legend: { display: false } },
    },
  });
  return {
    show(probabilities, classes) {
      best = probabilities.indexOf(Math.max(...probabilities));
      chart.data.labels = probabilities.map((_, i) => classes[i] ?? String(i));
      chart.data.datasets[0]!.data = probabilities;
      chart.update();
    },
    destroy: () => chart.destroy(),
  };
}

export interface TrainingChart {
  /** A point seen live, as the job reports it. */
  addBatch(point: BatchPoint): void;
  /** The job's own per-batch curve from its start (thinned), for what happened before the page saw it. */
  setBatchHistory(points: readonly BatchPoint[]): void;
  setHistory(history: EpochRecord[]): void;
  destroy(): void;
}

type Metric = 'loss' | 'accuracy';

/**
 * One metric of a run: per batch (the epoch's running mean, as the worker reports it) as a thin
 * line, per epoch on the training and the validation split as points. x is in epochs. The
 * per-batch line is the job's curve up to the first point seen live, then every point seen live.
 */
export function trainingChart(canvas: HTMLCanvasElement, metric: Metric, epochs: number): TrainingChart {
  let earlier: ChartPoint[] = [];
  const live: ChartPoint[] = [];
  const batches: ChartPoint[] = [];
  const perEpoch: ChartPoint[] = [];
  const validation: ChartPoint[] = [];
  const line = (label: string, data: ChartPoint[], colour: string, pointRadius: number) =>
    ({
      label,
      data,
      borderColor: colour,
      backgroundColor: colour,
      borderWidth: pointRadius ? 2 : 1.5,
      pointRadius,
    }) satisfies ChartDataset<'line', ChartPoint[]>;
  const chart = new Chart(canvas, {
    type: 'line',
    data: {
      datasets: [
        line(`${metric} per batch`, batches, MUTED, 0),
        line(`${metric} per epoch (train)`, perEpoch, ACCENT, 4),
        line(`${metric} per epoch (validation)`, validation, SECOND, 4),
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      scales: {
        x: { type: 'linear', min: 0, max: epochs, title: { display: true, text: 'epoch' } },
        y:
          metric === 'accuracy'
            ? { min: 0, max: 1, ticks: { callback: (value) => percentTick(Number(value)) } }
            : { min: 0, title: { display: true, text: 'cross-entropy' } },
      },
      plugins: { legend: { labels: { boxWidth: 12 } } },
    },
  });
  const figure = canvas.closest('figure');
  const redraw = () => {
    batches.splice(0, batches.length, ...batchLine(earlier, live));
    if (metric === 'accuracy')
      chart.options.scales!.y!.min = accuracyAxisMin(batches, [...perEpoch, ...validation]);
    chart.update('none');
    if (!figure) return;
    // For people reading the page's state (and its tests): how many points each series has, and
    // where the drawn axis starts.
    figure.dataset.points = `${batches.length}/${perEpoch.length}`;
    figure.dataset.yMin = String(chart.scales.y?.min ?? '');
  };
  return {
    addBatch(point) {
      if (addLivePoint(live, { x: point.x, y: point[metric] })) redraw();
    },
    setBatchHistory(points) {
      earlier = points.map((p) => ({ x: p.x, y: p[metric] }));
      redraw();
    },
    setHistory(history) {
      perEpoch.splice(0, perEpoch.length, ...history.map((h) => ({ x: h.epoch, y: h[metric] })));
      const key = metric === 'loss' ? 'valLoss' : 'valAccuracy';
      validation.splice(
        0,
        validation.length,
        ...history.flatMap((h) => (h[key] === null ? [] : [{ x: h.epoch, y: h[key] }])),
      );
      redraw();
    },
    destroy: () => chart.destroy(),
  };
}
