/**
 * The training form, described by the API itself: the fields, their defaults, limits and help
 * come from the JSON schema of POST /jobs in /openapi.json, which the API makes from the same zod
 * schema it validates with. A new parameter shows up on the page without a change here.
 */
import { formatPercent } from './format.js';

export type FieldKind = 'select' | 'integer' | 'number' | 'checkbox' | 'text';

/** One option of a field picked from a list the API gives (a data set, a model version). */
export interface Choice {
  value: string;
  label: string;
}

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  description?: string;
  defaultValue?: string | number | boolean;
  options?: string[];
  min?: number;
  max?: number;
  /** The bound is excluded (learningRate > 0). */
  minExclusive?: boolean;
  required: boolean;
  /** Shown as a select of these; the value is still read as `kind` says (an integer version). */
  choices?: Choice[];
}

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

/** "learningRate" -> "Learning rate". */
export function labelFor(name: string): string {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function jobBodySchema(spec: unknown): JsonSchema {
  const schema = (
    spec as {
      paths?: Record<
        string,
        { post?: { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } } }
      >;
    }
  )?.paths?.['/jobs']?.post?.requestBody?.content?.['application/json']?.schema;
  if (!schema?.properties) throw new Error('the API document has no schema for POST /jobs');
  return schema;
}

/**
 * Parameters the form leaves to the API: several datasets at once (a list, with a weight for the
 * corrections) are for clients and the feedback view's fine-tune button, not for one select.
 */
export const FORM_OMITTED: readonly string[] = ['datasets', 'feedbackWeight'];

export function fieldsFromSchema(schema: JsonSchema): FieldSpec[] {
  const required = new Set(schema.required ?? []);
  const shown = Object.entries(schema.properties ?? {}).filter(([name]) => !FORM_OMITTED.includes(name));
  return shown.map(([name, property]) => {
    const type = Array.isArray(property.type) ? property.type.find((t) => t !== 'null') : property.type;
    const kind: FieldKind = property.enum
      ? 'select'
      : type === 'integer'
        ? 'integer'
        : type === 'number'
          ? 'number'
          : type === 'boolean'
            ? 'checkbox'
            : 'text';
    const field: FieldSpec = { name, label: labelFor(name), kind, required: required.has(name) };
    if (property.description) field.description = property.description;
    if (property.enum) field.options = property.enum.map(String);
    const value = property.default;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      field.defaultValue = value;
    // OpenAPI 3.0 writes `minimum: 0, exclusiveMinimum: true`; JSON Schema 2020-12 `exclusiveMinimum: 0`.
    if (typeof property.exclusiveMinimum === 'number') {
      field.min = property.exclusiveMinimum;
      field.minExclusive = true;
    } else if (property.minimum !== undefined) {
      field.min = property.minimum;
      if (property.exclusiveMinimum === true) field.minExclusive = true;
    }
    if (property.maximum !== undefined) field.max = property.maximum;
    return field;
  });
}

/**
 * The request body from the form's raw values (strings from inputs, booleans from checkboxes).
 * Empty fields are left out, so the API applies its own default; numbers that do not parse are
 * sent as they are, so the API's message names the field.
 */
export function bodyFromValues(
  fields: FieldSpec[],
  values: Record<string, string | boolean | undefined>,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name];
    if (value === undefined) continue;
    if (field.kind === 'checkbox') {
      body[field.name] = value === true;
      continue;
    }
    const text = String(value).trim();
    if (text === '') continue;
    if (field.kind === 'integer' || field.kind === 'number') {
      const n = Number(text);
      body[field.name] = Number.isFinite(n) ? n : text;
    } else body[field.name] = text;
  }
  return body;
}

/** The fields that say what to train on, shown apart from the recipe's hyperparameters (issue 15). */
export const DATA_FIELDS: readonly string[] = ['dataset', 'baseVersion'];

/** A model version the fine-tune select offers. */
export interface VersionChoice {
  version: number;
  /** Its data set's name, when known. */
  dataset?: string;
  testAccuracy?: number;
}

/**
 * The form's fields with the data set and the base version as selects, first: the data sets the
 * API has (`datasets`, built-ins first) and "none" then every version in `versions`. Without
 * `baseVersion` in the API's schema the field is still offered: POST /jobs takes it (issue 15),
 * and it is only sent when a version is chosen.
 */
export function withDataChoices(
  fields: FieldSpec[],
  datasets: readonly Choice[],
  versions: readonly VersionChoice[],
): FieldSpec[] {
  const schemaDataset = fields.find((f) => f.name === 'dataset');
  const schemaBase = fields.find((f) => f.name === 'baseVersion');
  const datasetDefault = schemaDataset?.defaultValue;
  const dataset: FieldSpec = {
    ...(schemaDataset ?? { name: 'dataset', label: 'Dataset', kind: 'text', required: false }),
    // The schema's help names paths too, which only an operator's allow-list admits: not for a select.
    description: 'the built-in sets, then those uploaded with POST /datasets',
    choices: [...datasets],
    defaultValue: datasets.some((c) => c.value === datasetDefault) ? datasetDefault : datasets[0]?.value,
  };
  const baseVersion: FieldSpec = {
    name: 'baseVersion',
    label: 'Fine-tune from version',
    kind: 'integer',
    required: false,
    description:
      schemaBase?.description ??
      "start from that version's weights; with another number of classes its last layer is replaced and trained anew",
    choices: [{ value: '', label: 'none: start from new weights' }, ...versions.map(versionChoice)],
  };
  return [dataset, baseVersion, ...fields.filter((f) => !DATA_FIELDS.includes(f.name))];
}

function versionChoice({ version, dataset, testAccuracy }: VersionChoice): Choice {
  const details = [dataset, testAccuracy === undefined ? undefined : `${formatPercent(testAccuracy)} test`];
  const known = details.filter((detail) => detail !== undefined);
  return {
    value: String(version),
    label: known.length > 0 ? `Version ${version}: ${known.join(', ')}` : `Version ${version}`,
  };
}

/** A small quick job for a first model: one epoch on 10,000 images takes seconds on a laptop. */
export const QUICK_JOB = { epochs: 1, trainSize: 10_000, validationSize: 1_000, augment: true } as const;
