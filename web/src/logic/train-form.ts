/**
 * The training form, described by the API itself: the fields, their defaults, limits and help
 * come from the JSON schema of POST /jobs in /openapi.json, which the API makes from the same zod
 * schema it validates with. A new parameter shows up on the page without a change here.
 */

export type FieldKind = 'select' | 'integer' | 'number' | 'checkbox' | 'text';

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

export function fieldsFromSchema(schema: JsonSchema): FieldSpec[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => {
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

/** A small quick job for a first model: one epoch on 10,000 images takes seconds on a laptop. */
export const QUICK_JOB = { epochs: 1, trainSize: 10_000, validationSize: 1_000, augment: true } as const;
