import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { configDocFile, renderConfigDoc } from '../../scripts/config-docs.js';

describe('docs/configuration.md', () => {
  it('when the config schema changes, then the committed page is what npm run docs:config writes', async () => {
    const committed = await readFile(configDocFile, 'utf8');
    expect(committed, 'docs/configuration.md is out of date: run npm run docs:config').toBe(
      await renderConfigDoc(),
    );
  });
});
