import type { z } from 'zod';
import type { errorBodySchema } from '../../../src/api/error-handler.js';

export type ErrorBody = z.infer<typeof errorBodySchema>;

export interface FormErrors {
  /** Messages for the form's own fields, by field name. */
  fields: Record<string, string>;
  /** Messages that belong to no field (or to a field the form does not have). */
  general: string[];
}

/**
 * Spreads the API's 400 answer over a form's fields. The error handler names each problem's
 * place as `body.<field>` (`body.images.1` for nested ones); anything else goes to the top.
 */
export function formErrors(body: unknown, fieldNames: readonly string[]): FormErrors {
  const result: FormErrors = { fields: {}, general: [] };
  const error = (body as Partial<ErrorBody> | null)?.error;
  if (!error || typeof error.message !== 'string') {
    result.general.push('The service answered with an error it did not describe.');
    return result;
  }
  const details = Array.isArray(error.details) ? (error.details as unknown[]) : [];
  const known = new Set(fieldNames);
  for (const detail of details) {
    const { field, message } = (detail ?? {}) as { field?: unknown; message?: unknown };
    if (typeof message !== 'string') continue;
    const name = typeof field === 'string' ? /^body\.([^.]+)/.exec(field)?.[1] : undefined;
    if (name && known.has(name)) {
      result.fields[name] = result.fields[name] ? `${result.fields[name]}; ${message}` : message;
    } else {
      // `body.` is the body itself (an unknown key, say): the message says it all.
      const placed = typeof field === 'string' && !/^body\.?$/.test(field);
      result.general.push(placed ? `${field}: ${message}` : message);
    }
  }
  if (details.length === 0) result.general.push(error.message);
  return result;
}
