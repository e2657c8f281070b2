import { DomainError } from '../errors.js';

/** The classes a feedback label is checked against, and what to call them in a message. */
export interface CheckedClasses {
  classes: readonly string[];
  /** "model version 3", "model version 3 (the latest)", "the digits (no model version yet)" */
  source: string;
}

/** Classes listed in a message before the rest are only counted. */
const LISTED = 40;

function listed(classes: readonly string[]): string {
  const shown = classes.slice(0, LISTED).map((c) => JSON.stringify(c));
  return classes.length > LISTED ? `${shown.join(', ')}, ... (${classes.length} in all)` : shown.join(', ');
}

/**
 * A label as a client sends it, the class's index or its name, as the index and name of one of
 * `checked`'s classes; a 400 naming `field` and listing the classes otherwise. A querystring has
 * only text: there a name that is not a class is tried as an index (?label=7).
 */
export function resolveClass(
  value: number | string,
  checked: CheckedClasses,
  field: string,
  fromQuery = false,
): { label: number; class: string } {
  const { classes } = checked;
  if (typeof value === 'string') {
    const index = classes.indexOf(value);
    if (index >= 0) return { label: index, class: value };
    if (fromQuery && /^\d{1,3}$/.test(value)) return resolveClass(Number(value), checked, field);
  } else if (Number.isInteger(value) && value >= 0 && value < classes.length) {
    return { label: value, class: classes[value]! };
  }
  const what = `${field.split('.').at(-1)} ${JSON.stringify(value)}`;
  const message =
    `${what} is not a class of ${checked.source}: send the index (0 to ${classes.length - 1}) ` +
    `or the name of one of ${listed(classes)}`;
  throw new DomainError(message, { status: 400, code: 'unknown_class', details: [{ field, message }] });
}
