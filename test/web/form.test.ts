import { describe, expect, it } from 'vitest';
import { formErrors } from '../../web/src/logic/form-errors.js';
import { parseRoute, routeHash } from '../../web/src/logic/route.js';
import { PRESETS, presetValues } from '../../web/src/logic/presets.js';
import {
  bodyFromValues,
  fieldsFromSchema,
  labelFor,
  withDataChoices,
} from '../../web/src/logic/train-form.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';

const FIELDS = ['epochs', 'learningRate', 'dataset'];

describe('validation messages from the API next to the fields', () => {
  it('when the API names body fields, then each message goes to its field', () => {
    const body = {
      error: {
        code: 'invalid_request',
        message: 'body.epochs: Too small; body.learningRate: Too big',
        details: [
          { field: 'body.epochs', message: 'Too small: expected number to be >=1' },
          { field: 'body.learningRate', message: 'Too big: expected number to be <=1' },
        ],
      },
    };
    expect(formErrors(body, FIELDS)).toEqual({
      fields: {
        epochs: 'Too small: expected number to be >=1',
        learningRate: 'Too big: expected number to be <=1',
      },
      general: [],
    });
  });

  it('when two messages name one field, then both are shown', () => {
    const body = {
      error: {
        code: 'invalid_request',
        message: '',
        details: [
          { field: 'body.epochs', message: 'a' },
          { field: 'body.epochs', message: 'b' },
        ],
      },
    };
    expect(formErrors(body, FIELDS).fields).toEqual({ epochs: 'a; b' });
  });

  it('when a message is about the body or a field the form lacks, then it goes above the form', () => {
    const body = {
      error: {
        code: 'invalid_request',
        message: '…',
        details: [
          { field: 'body.', message: 'Unrecognized key: "foo"' },
          { field: 'body.colour', message: 'unknown' },
          { field: 'querystring.limit', message: 'too big' },
        ],
      },
    };
    expect(formErrors(body, FIELDS)).toEqual({
      fields: {},
      general: ['Unrecognized key: "foo"', 'body.colour: unknown', 'querystring.limit: too big'],
    });
  });

  it('when the error has no details or no body at all, then its message (or a plain one) is shown', () => {
    expect(formErrors({ error: { code: 'conflict', message: 'job exists' } }, FIELDS)).toEqual({
      fields: {},
      general: ['job exists'],
    });
    expect(formErrors(null, FIELDS).general).toHaveLength(1);
    expect(formErrors('<html>', FIELDS).general).toHaveLength(1);
  });
});

describe('the training form from the API schema', () => {
  // The shapes the API's OpenAPI 3.0 document uses (see test/web/static.test.ts for the real one).
  const schema = {
    type: 'object',
    properties: {
      architecture: { type: 'string', enum: ['seed', 'wide'], default: 'seed', description: 'net' },
      epochs: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
      learningRate: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1, default: 0.001 },
      trainSize: { type: 'integer', minimum: 1, maximum: 60000 },
      augment: { type: 'boolean', default: false },
      dataset: { type: 'string', default: 'mnist' },
    },
  };

  it('when the schema is read, then each property becomes a field with its kind, default and limits', () => {
    const fields = fieldsFromSchema(schema);
    expect(fields.map((f) => [f.name, f.kind])).toEqual([
      ['architecture', 'select'],
      ['epochs', 'integer'],
      ['learningRate', 'number'],
      ['trainSize', 'integer'],
      ['augment', 'checkbox'],
      ['dataset', 'text'],
    ]);
    expect(fields[0]).toMatchObject({ options: ['seed', 'wide'], defaultValue: 'seed', description: 'net' });
    expect(fields[1]).toMatchObject({ label: 'Epochs', min: 1, max: 100, defaultValue: 10 });
    expect(fields[2]).toMatchObject({ label: 'Learning rate', min: 0, minExclusive: true, max: 1 });
    expect(fields[3]!.defaultValue).toBeUndefined();
  });

  it('when a JSON Schema 2020-12 exclusive minimum comes, then it is read too', () => {
    const [field] = fieldsFromSchema({ properties: { rate: { type: 'number', exclusiveMinimum: 0 } } });
    expect(field).toMatchObject({ min: 0, minExclusive: true });
  });

  it('when the form is sent, then numbers are numbers, empty fields are left to the API and typos reach it as typed', () => {
    const fields = fieldsFromSchema(schema);
    expect(
      bodyFromValues(fields, {
        architecture: 'wide',
        epochs: '3',
        learningRate: ' 0.01 ',
        trainSize: '',
        augment: true,
        dataset: 'mnist',
      }),
    ).toEqual({ architecture: 'wide', epochs: 3, learningRate: 0.01, augment: true, dataset: 'mnist' });
    expect(bodyFromValues(fields, { epochs: 'ten', augment: false })).toEqual({
      epochs: 'ten',
      augment: false,
    });
  });

  it('when a name is camel case, then its label is words', () => {
    expect(labelFor('validationSize')).toBe('Validation size');
    expect(labelFor('seed')).toBe('Seed');
  });
});

describe('what the form trains on: a data set and a version to fine-tune from (issue 15)', () => {
  const schema = {
    properties: {
      architecture: { type: 'string', enum: ['seed', 'wide'], default: 'seed' },
      dataset: { type: 'string', default: 'mnist', description: 'paths too' },
      epochs: { type: 'integer', default: 10 },
    },
  };
  const datasets = [
    { value: 'mnist', label: 'MNIST (built-in)' },
    { value: 'fashion-mnist', label: 'Fashion-MNIST (built-in)' },
    { value: 'letters-3kq9x2ab', label: 'Letters: 26 classes, 3,000 training images' },
  ];
  const versions = [
    { version: 3, dataset: 'Letters', testAccuracy: 0.9123 },
    { version: 1, dataset: 'MNIST' },
    { version: 2 },
  ];

  it('when the lists are in, then the data set and the base version are selects, first, with none as the base', () => {
    const fields = withDataChoices(fieldsFromSchema(schema), datasets, versions);
    expect(fields.map((f) => f.name)).toEqual(['dataset', 'baseVersion', 'architecture', 'epochs']);
    expect(fields[0]).toMatchObject({ kind: 'text', defaultValue: 'mnist', choices: datasets });
    expect(fields[1]).toMatchObject({ label: 'Fine-tune from version', kind: 'integer', required: false });
    expect(fields[1]!.defaultValue).toBeUndefined();
    expect(fields[1]!.choices).toEqual([
      { value: '', label: 'none: start from new weights' },
      { value: '3', label: 'Version 3: Letters, 91.2 % test' },
      { value: '1', label: 'Version 1: MNIST' },
      { value: '2', label: 'Version 2' },
    ]);
  });

  it('when the API schema has baseVersion already, then it is the same select, once', () => {
    const withBase = {
      properties: {
        ...schema.properties,
        baseVersion: { type: 'integer', minimum: 1, description: 'its help' },
      },
    };
    const fields = withDataChoices(fieldsFromSchema(withBase), datasets, []);
    expect(fields.filter((f) => f.name === 'baseVersion')).toHaveLength(1);
    expect(fields[1]).toMatchObject({ description: 'its help', choices: [{ value: '' }] });
  });

  it("when the schema's default data set is not listed, then the first listed one is chosen", () => {
    const fields = withDataChoices(fieldsFromSchema(schema), datasets.slice(1), []);
    expect(fields[0]!.defaultValue).toBe('fashion-mnist');
  });

  it('when the form is sent, then dataset and baseVersion go only when set, the version as a number', () => {
    const fields = withDataChoices(fieldsFromSchema(schema), datasets, versions);
    expect(bodyFromValues(fields, { dataset: '', baseVersion: '', epochs: '2' })).toEqual({ epochs: 2 });
    expect(bodyFromValues(fields, { dataset: 'mnist', baseVersion: '', epochs: '2' })).toEqual({
      dataset: 'mnist',
      epochs: 2,
    });
    expect(bodyFromValues(fields, { dataset: 'letters-3kq9x2ab', baseVersion: '3', epochs: '2' })).toEqual({
      dataset: 'letters-3kq9x2ab',
      baseVersion: 3,
      epochs: 2,
    });
  });
});

describe('page addresses', () => {
  it.each([
    ['', { page: 'try' }],
    ['#/try', { page: 'try' }],
    ['#/train', { page: 'train' }],
    ['#/train/42', { page: 'train', jobId: '42' }],
    ['#/train/../../x', { page: 'train' }],
    ['#/models', { page: 'models' }],
    ['#/models/7', { page: 'models', version: 7 }],
    ['#/models/0', { page: 'models' }],
    ['#/models/abc', { page: 'models' }],
    ['#/feedback', { page: 'feedback' }],
    ['#/feedback/3', { page: 'feedback' }],
    ['#/nowhere', { page: 'try' }],
  ])('when the hash is %j, then the route is %j and it round-trips', (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
    expect(parseRoute(routeHash(parseRoute(hash)))).toEqual(route);
  });
});

describe("the form's recipes", () => {
  it("when a recipe is posted, then the API's own schema takes it as it is", () => {
    for (const preset of PRESETS) {
      const parsed = trainParamsSchema.safeParse(preset.body);
      expect(parsed.success, `${preset.id}: ${parsed.error?.message}`).toBe(true);
      expect(parsed.data).toMatchObject(preset.body);
    }
  });

  it('when the schema has several datasets and a feedback weight, then the form leaves them to the API', () => {
    const fields = fieldsFromSchema({
      properties: {
        datasets: { type: 'array' },
        feedbackWeight: { type: 'number', minimum: 1 },
        epochs: { type: 'integer', default: 10 },
      },
    });
    expect(fields.map((f) => f.name)).toEqual(['epochs']);
  });

  it('when a recipe fills the form, then its fields take its values and the others their defaults', () => {
    const fields = fieldsFromSchema({
      properties: {
        architecture: { enum: ['seed', 'wide'], default: 'seed' },
        epochs: { type: 'integer', default: 10 },
        augment: { type: 'boolean', default: false },
        trainSize: { type: 'integer' },
      },
    });
    const accurate = PRESETS.find((p) => p.id === 'accurate')!;
    expect(presetValues(fields, accurate)).toEqual({
      architecture: 'wide',
      epochs: String(accurate.body.epochs),
      augment: true,
      trainSize: '',
    });
    expect(
      presetValues(
        fields,
        PRESETS.find((p) => p.id === 'seed')!,
      ),
    ).toEqual({
      architecture: 'seed',
      epochs: '10',
      augment: false,
      trainSize: '',
    });
    // What the form then posts is the recipe itself.
    expect(bodyFromValues(fields, presetValues(fields, accurate))).toEqual({
      architecture: 'wide',
      epochs: accurate.body.epochs,
      augment: true,
    });
  });
});
