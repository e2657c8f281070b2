import type { FieldSpec } from './train-form.js';

/** A named recipe the training form can fill in: a POST /jobs body, defaults for the rest. */
export interface Preset {
  id: string;
  label: string;
  description: string;
  body: Record<string, string | number | boolean>;
}

/**
 * The recipes the README names, with what each reached on a 2-core machine (bench/RESULTS.md).
 * test/web/form.test.ts checks each body against the API's own schema.
 */
export const PRESETS: Preset[] = [
  {
    id: 'seed',
    label: 'Seed recipe',
    description: 'the tutorial\u2019s CNN, 10 epochs: about 98.8 % on the test set in about a minute',
    body: {},
  },
  {
    id: 'accurate',
    label: 'Best accuracy',
    description:
      'a wider CNN, shifted images, a cosine learning rate: 99.5 % or more in about 6 minutes on 2 cores',
    body: {
      architecture: 'wide',
      augment: true,
      epochs: 10,
      learningRate: 0.002,
      learningRateSchedule: 'cosine',
    },
  },
];

/** The form's values for a preset: its own, and each other field's default (empty when it has none). */
export function presetValues(fields: FieldSpec[], preset: Preset): Record<string, string | boolean> {
  const values: Record<string, string | boolean> = {};
  for (const field of fields) {
    const value = field.name in preset.body ? preset.body[field.name] : field.defaultValue;
    values[field.name] =
      field.kind === 'checkbox' ? value === true : value === undefined ? '' : String(value);
  }
  return values;
}
