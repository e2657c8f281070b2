import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../../src/ml/data/idx.js';
import { useTestApi } from '../helpers/api.js';
import { idxHeader } from '../helpers/idx-files.js';

describe('JOB_MAX_IMAGES against the real size of a data set named by path', () => {
  const api = useTestApi('work-bound', ({ dir }) => ({ datasetDirs: [dir], maxJobImages: 1_000_000 }));
  const { dir } = api;

  /**
   * A data set directory whose training file's header says `count` images. Only headers are
   * written: the API reads no more, and no worker trains here.
   */
  async function dataset(name: string, count: number, options: { gzip?: boolean; magic?: number } = {}) {
    const path = join(dir, name);
    await mkdir(path);
    const header = idxHeader(options.magic ?? IDX_IMAGES_MAGIC, [count, 28, 28]);
    const suffix = options.gzip ? '.gz' : '';
    await writeFile(join(path, `train-images-idx3-ubyte${suffix}`), options.gzip ? gzipSync(header) : header);
    await writeFile(join(path, 'train-labels-idx1-ubyte'), idxHeader(IDX_LABELS_MAGIC, [count]));
    await writeFile(join(path, 't10k-images-idx3-ubyte'), idxHeader(IDX_IMAGES_MAGIC, [10, 28, 28]));
    await writeFile(join(path, 't10k-labels-idx1-ubyte'), idxHeader(IDX_LABELS_MAGIC, [10]));
    return path;
  }

  const post = (body: object) => request(api.app.server).post('/jobs').send(body);

  it.each([
    ['raw', false],
    ['gzip', true],
  ])(
    'when a %s data set holds 200,000 training images, then its whole training split counts: 400 beyond the limit',
    async (name, gzip) => {
      const path = await dataset(`big-${name}`, 200_000, { gzip });
      const res = await post({ dataset: path, epochs: 10, validationSize: 10_000 }).expect(400);
      expect(res.body.error.message).toContain('epochs x training images is 1,900,000');
      expect(res.body.error.message).toContain('at most 1,000,000 per job (JOB_MAX_IMAGES)');
      // Within the limit when the job asks for less of it.
      await post({ dataset: path, epochs: 5, validationSize: 10_000 }).expect(202);
    },
  );

  it('when a data set is smaller than trainSize, then only the images it holds count', async () => {
    const path = await dataset('small', 1_000);
    await post({ dataset: path, epochs: 100, trainSize: 60_000, validationSize: 0 }).expect(202);
  });

  it('when the size of a data set cannot be read, then 400 naming body.dataset and why', async () => {
    const path = await dataset('not-idx', 1_000, { magic: 0x1234 });
    const res = await post({ dataset: path, epochs: 1, validationSize: 0 }).expect(400);
    expect(res.body.error.message).toMatch(
      /^dataset: cannot read its size to check it against JOB_MAX_IMAGES: /,
    );
    expect(res.body.error.message).toContain('found 0x00001234');
    expect(res.body.error.details[0].field).toBe('body.dataset');
  });
});
