import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { ENFORCE_BARS, type Figure } from './helpers/figures.js';
import { MODE } from './helpers/mode.js';

const OUT_DIR = join(import.meta.dirname, '../../test-artifacts');

interface ScenarioRun {
  file: string;
  scenario: string;
  test: string;
  state: string;
  seconds: number;
  errors: string[];
  figures: Figure[];
}

/**
 * Prints the figures every scenario recorded as one table, and writes them with the machine and
 * the run's duration to test-artifacts/reliability.json (what docs/RELIABILITY.md quotes).
 */
export default class ReliabilityReporter implements Reporter {
  private started = Date.now();

  onTestRunStart(): void {
    this.started = Date.now();
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const runs: ScenarioRun[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        runs.push({
          file: basename(module.moduleId),
          scenario: test.fullName.split(' > ')[0]!,
          test: test.name,
          state: result.state,
          seconds: Math.round((test.diagnostic()?.duration ?? 0) / 100) / 10,
          errors: (result.errors ?? []).map((e) => e.message.split('\n')[0]!.slice(0, 300)),
          figures: test.meta().figures ?? [],
        });
      }
    }
    runs.sort((a, b) => a.file.localeCompare(b.file));
    const rows: Figure[] = runs.flatMap((run) => [
      ...run.figures,
      ...(run.state === 'failed'
        ? [
            {
              scenario: scenarioOf(run),
              measured: `test failed: ${run.test}`,
              figure: run.errors[0] ?? '',
              pass: false,
            },
          ]
        : []),
      ...(run.state === 'skipped'
        ? [{ scenario: scenarioOf(run), measured: `skipped: ${run.test}`, figure: '-', pass: null }]
        : []),
    ]);
    const seconds = Math.round((Date.now() - this.started) / 1000);
    const failed = runs.filter((r) => r.state === 'failed').length;
    const report = {
      date: new Date().toISOString(),
      mode: MODE,
      /** Timing bars: 'enforced' fail their test, 'reported' only mark the table ('over'). */
      bars: ENFORCE_BARS ? 'enforced' : 'reported',
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      seconds,
      passed: failed === 0 && runs.length > 0,
      scenarios: runs,
    };
    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(join(OUT_DIR, 'reliability.json'), `${JSON.stringify(report, null, 2)}\n`);
    const bars = ENFORCE_BARS
      ? 'timing bars enforced'
      : 'timing bars reported, not enforced: RELIABILITY_BARS=enforce enforces them';
    const header = `Reliability figures (${MODE} mode, ${seconds} s, ${report.machine.cpus} cores, ${report.date}; ${bars})`;
    process.stdout.write(`\n${header}\n${table(rows)}\n`);
    const over = rows.filter((r) => r.bar && r.pass === false).length;
    process.stdout.write(
      `${runs.length - failed} of ${runs.length} scenario tests passed; ${over} timing bar(s) missed${ENFORCE_BARS || over === 0 ? '' : ' (reported only)'}; test-artifacts/reliability.json\n`,
    );
  }
}

function scenarioOf(run: ScenarioRun): string {
  return run.figures[0]?.scenario ?? run.scenario;
}

/** A timing bar missed while reported only reads 'over': a figure to look at, not a failure. */
function result(r: Figure): string {
  if (r.pass === null) return '';
  if (r.pass) return 'pass';
  return r.bar && !r.bar.enforced ? 'over' : 'FAIL';
}

function table(rows: Figure[]): string {
  const cells = rows.map((r) => [r.scenario, r.measured, r.figure, result(r)]);
  const head = ['scenario', 'measured', 'figure', 'result'];
  // Wide enough for a terminal; reliability.json has every figure in full.
  const limits = [20, 64, 110, 6];
  const widths = head.map((h, i) =>
    Math.min(limits[i]!, Math.max(h.length, ...cells.map((c) => c[i]!.length))),
  );
  const fit = (v: string, w: number) => (v.length > w ? `${v.slice(0, w - 1)}…` : v.padEnd(w));
  const line = (c: string[]) => `| ${c.map((v, i) => fit(v, widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
