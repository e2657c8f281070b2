import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { apiDocFile, renderApiDoc, TABLE_END, TABLE_START } from '../../scripts/error-docs.js';
import { ERROR_CODES } from '../../src/error-codes.js';
import { jobFailureCodeSchema } from '../../src/jobs/job-failure.js';

describe('the error codes in docs/api.md', () => {
  it('when a code is added, changed or removed in src/error-codes.ts, then the table lists exactly the codes there, each with its status', async () => {
    const page = await readFile(apiDocFile, 'utf8');
    const table = page.slice(page.indexOf(TABLE_START), page.indexOf(TABLE_END));
    const documented = [...table.matchAll(/^\| (\d{3}) +\| `([a-z_]+)` +\|/gm)].map(([, status, code]) => [
      code,
      Number(status),
    ]);
    expect(documented.length).toBeGreaterThan(0);
    expect(Object.fromEntries(documented)).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status])),
    );
  });

  it('when src/error-codes.ts changes, then the committed page is what npm run docs:errors writes', async () => {
    const committed = await readFile(apiDocFile, 'utf8');
    expect(committed, 'docs/api.md is out of date: run npm run docs:errors').toBe(
      await renderApiDoc(committed),
    );
  });

  it("when a job fails, then every errorCode its view can carry is named in the jobs' docs", async () => {
    const page = await readFile(apiDocFile, 'utf8');
    const jobs = page.slice(page.indexOf('## Training jobs'), page.indexOf('## Datasets'));
    const missing = jobFailureCodeSchema.options.filter((code) => !jobs.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
