import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { ERROR_CODES } from '../src/error-codes.js';

/**
 * `npm run docs:errors`: writes the table of error codes in docs/api.md from src/error-codes.ts,
 * between the two markers below, so the docs list every code a client can get and no other.
 * test/docs/error-codes-doc.test.ts fails when the committed page is not what this renders.
 */
export const apiDocFile = fileURLToPath(new URL('../docs/api.md', import.meta.url));

export const TABLE_START =
  '<!-- error codes: npm run docs:errors writes this table from src/error-codes.ts -->';
export const TABLE_END = '<!-- end of error codes -->';

export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, { status, when }]) => `| ${status} | \`${code}\` | ${when} |`,
  );
  return ['| status | code | when |', '| --- | --- | --- |', ...rows].join('\n');
}

/** `page` (docs/api.md) with its table of error codes rendered anew, formatted as `npm run lint` expects. */
export async function renderApiDoc(page: string): Promise<string> {
  const start = page.indexOf(TABLE_START);
  const end = page.indexOf(TABLE_END);
  if (start < 0 || end < start)
    throw new Error(`${apiDocFile} has no ${TABLE_START} ... ${TABLE_END} section`);
  const markdown = `${page.slice(0, start + TABLE_START.length)}\n\n${renderErrorTable()}\n\n${page.slice(end)}`;
  const options = await resolveConfig(apiDocFile);
  return format(markdown, { ...options, parser: 'markdown' });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(apiDocFile, await renderApiDoc(await readFile(apiDocFile, 'utf8')));
  process.stdout.write(`wrote the error codes in ${apiDocFile}\n`);
}
