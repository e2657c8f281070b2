import { cpus, hostname, totalmem } from 'node:os';

/** Prints a benchmark's result as one JSON object, stamped with when and where it ran. */
export function printReport(benchmark: string, result: Record<string, unknown>): void {
  const machine = {
    host: hostname(),
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  console.log(JSON.stringify({ benchmark, date: new Date().toISOString(), machine, ...result }, null, 2));
}
