import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { z } from 'zod';
import { configSchema } from '../src/config.js';

/**
 * `npm run docs:config`: writes docs/configuration.md from the config schema, so the reference
 * cannot drift from the code. test/docs/configuration-doc.test.ts fails when the committed file
 * is not what this renders.
 */
export const configDocFile = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

/** The part of a JSON Schema property that zod writes for our settings. */
interface Property {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  default?: unknown;
  description?: string;
  shownDefault?: string;
}

const INTRO = `# Configuration

Every setting comes from the environment and is validated at start-up by one zod schema
(\`configSchema\` in \`src/config.ts\`), the same for the API, the workers and \`npm start\`. A bad
value stops the process with a message naming the variable and what it must be. An empty variable
counts as unset.

This page is generated from that schema by \`npm run docs:config\`: change a description or a
default in \`src/config.ts\`, then run it. \`npm test\` fails while this page is out of date.
`;

const code = (value: unknown) => `\`${String(value)}\``;

function orList(values: string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

const BOOLEAN_SPELLINGS = ['0', '1', 'false', 'true'];

function accepted(p: Property): string {
  if (p.enum) {
    const values = p.enum.map(String);
    if ([...values].sort().join() === BOOLEAN_SPELLINGS.join()) return '`true` or `false` (`1`, `0`)';
    return orList(values.map(code));
  }
  if (p.type === 'integer') return `integer, ${p.minimum} to ${p.maximum}`;
  if (p.pattern) return `text matching ${code(p.pattern)}`;
  if (p.minLength !== undefined && p.minLength > 1) return `text, ${p.minLength} or more characters`;
  return 'text';
}

function shownDefault(p: Property): string {
  if (p.shownDefault) return p.shownDefault;
  if (p.default === undefined) return 'unset';
  if (p.default === '') return 'none';
  return code(p.default);
}

/** The page as `npm run docs:config` writes it, formatted as `npm run lint` expects. */
export async function renderConfigDoc(): Promise<string> {
  // The input side: what an operator writes in the environment, before parsing.
  const schema = z.toJSONSchema(configSchema, { io: 'input' }) as { properties: Record<string, Property> };
  const rows = Object.entries(schema.properties).map(([name, p]) => {
    if (!p.description) throw new Error(`${name} has no description in src/config.ts`);
    return `| ${code(name)} | ${shownDefault(p)} | ${accepted(p)} | ${p.description} |`;
  });
  const table = ['| variable | default | accepts | meaning |', '| --- | --- | --- | --- |', ...rows].join(
    '\n',
  );
  const markdown = `${INTRO}\n${table}\n`;
  const options = await resolveConfig(configDocFile);
  return format(markdown, { ...options, parser: 'markdown' });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(configDocFile, await renderConfigDoc());
  process.stdout.write(`wrote ${configDocFile}\n`);
}
