import { describe, expect, it } from 'vitest';
import { ProgressPrinter } from '../../src/cli/progress-printer.js';
import { progressBar } from '../../src/cli/progress-text.js';
import type { TrainProgress } from '../../src/ml/train.js';

function batch(epoch: number, batch: number, batches = 16): TrainProgress {
  return {
    ...{ kind: 'batch', epoch, epochs: 2, batch, batches, percent: 0 },
    ...{ loss: 0.5, accuracy: 0.8, imagesPerSecond: 1000, elapsedSeconds: 1, etaSeconds: 10 },
  };
}
const epochEnd = (epoch: number): TrainProgress => ({
  ...batch(epoch, 16),
  kind: 'epoch',
  lastBatchLoss: 0.4,
});

/** A printer on an output that keeps its writes, with a clock the test moves. */
function printer(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  const clock = { ms: 1000 };
  const out = { isTTY, columns, write: (text: string) => writes.push(text) };
  return { writes, clock, out, printer: new ProgressPrinter(out, { now: () => clock.ms }) };
}

describe('ProgressPrinter on a terminal', () => {
  it('when batches come faster than ten a second, then the bar is redrawn in place at most every 100 ms', () => {
    const { writes, clock, printer: p } = printer(true);
    p.update(batch(1, 1));
    clock.ms += 50;
    p.update(batch(1, 2));
    clock.ms += 49;
    p.update(batch(1, 3));
    clock.ms += 1;
    p.update(batch(1, 4));
    expect(writes).toEqual([`\r${progressBar(batch(1, 1), 80)}`, `\r${progressBar(batch(1, 4), 80)}`]);
    expect(writes.join('')).not.toContain('\n');
  });

  it('when an epoch ends, then the bar is blanked and the epoch line follows, and the next epoch shows its first batch at once', () => {
    const { writes, printer: p } = printer(true);
    p.update(batch(1, 1));
    const drawn = progressBar(batch(1, 1), 80).length;
    p.update(epochEnd(1));
    expect(writes[1]).toBe(`\r${' '.repeat(drawn)}\r`);
    expect(writes[2]).toMatch(/^epoch 1\/2 {2}loss 0\.5000 \(last batch 0\.4000\).*\n$/);
    p.update(batch(2, 1));
    expect(writes[3]).toBe(`\r${progressBar(batch(2, 1), 80)}`);
  });

  it('when the terminal gets narrower, then the new bar fits it and the old one is blanked within it', () => {
    const { writes, clock, out, printer: p } = printer(true, 120);
    p.update(batch(1, 1));
    out.columns = 50;
    clock.ms += 100;
    p.update(batch(1, 2));
    expect(writes[1]!.length - 1).toBe(49);
    p.end();
    expect(writes[2]).toBe(`\r${' '.repeat(49)}\r`);
  });

  it('when the terminal does not say its width, then 80 columns are assumed', () => {
    const { writes, printer: p } = printer(true, 0);
    p.update(batch(1, 1));
    expect(writes[0]).toBe(`\r${progressBar(batch(1, 1), 80)}`);
  });

  it('when nothing is drawn, then end() writes nothing', () => {
    const { writes, printer: p } = printer(true);
    p.end();
    p.update(batch(1, 1));
    p.end();
    p.end();
    expect(writes).toHaveLength(2);
  });
});

describe('ProgressPrinter on a pipe or file', () => {
  it('when every batch is told, then a line comes at each quarter of each epoch and one per epoch, with no \\r', () => {
    const { writes, printer: p } = printer(false);
    for (const epoch of [1, 2]) {
      for (let b = 1; b < 16; b++) p.update(batch(epoch, b));
      p.update(epochEnd(epoch));
    }
    p.end();
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).toBe(true);
    expect(writes.map((w) => /^epoch (\d)\/2 {2}(batch +(\d+)\/16|loss)/.exec(w)?.slice(1, 4))).toEqual([
      ['1', 'batch  4/16', '4'],
      ['1', 'batch  8/16', '8'],
      ['1', 'batch 12/16', '12'],
      ['1', 'loss', undefined],
      ['2', 'batch  4/16', '4'],
      ['2', 'batch  8/16', '8'],
      ['2', 'batch 12/16', '12'],
      ['2', 'loss', undefined],
    ]);
  });

  it('when only some batches are told, then a line comes for each quarter they cross, at most one per event', () => {
    const { writes, printer: p } = printer(false);
    for (const b of [3, 9, 15]) p.update(batch(1, b));
    expect(writes.map((w) => /batch +(\d+)/.exec(w)?.[1])).toEqual(['9', '15']);
  });

  it('when quarters are crossed within the same millisecond, then each gets its line: no clock here', () => {
    const { writes, printer: p } = printer(false);
    p.update(batch(1, 4));
    p.update(batch(1, 8));
    expect(writes).toHaveLength(2);
  });
});
