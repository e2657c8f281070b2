import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { CLIENT_DIR } from '../../scripts/client/client-files.js';
import { useTempDir } from '../helpers/temp-dir.js';

/** The README's TypeScript blocks, in order, as one module. */
async function readmeCode(): Promise<string> {
  const readme = await readFile(join(CLIENT_DIR, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]).join('\n');
}

describe('clients/typescript/README.md', () => {
  const dir = useTempDir('client-readme');

  it('when the client or the API changes, then the README examples still compile against the package', async () => {
    const code = await readmeCode();
    expect(code).toContain("from '@digit-service/client'");
    const file = join(dir, 'readme-examples.mts');
    await writeFile(file, code);
    // .mts: an ES module wherever it is, as the examples' top-level await needs.
    // The package's own compiler settings, with '@digit-service/client' at its source and Node's
    // types for the examples' process.env and node:fs.
    const { config } = ts.readConfigFile(join(CLIENT_DIR, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, CLIENT_DIR);
    const program = ts.createProgram([file], {
      ...options,
      noEmit: true,
      declaration: false,
      rootDir: undefined,
      types: ['node'],
      typeRoots: [join(process.cwd(), 'node_modules/@types')],
      paths: { '@digit-service/client': [join(CLIENT_DIR, 'src/index.ts')] },
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  });
});
