// Checks JSON read from another program (the agent's replies, read by the CLI) against the shape the reader
// needs, and names the first place it departs: "self.holdsIp: expected a boolean, got "yes"". Pure.
//
// Fields the shape does not name are allowed: a newer writer may add some. A field that is absent reads as
// undefined, so optional() accepts absence only: JSON has no undefined, and a null where the reader tests
// `=== undefined` would pass for a value.

/** A problem with `value` at `path` ("" for the whole value), or undefined when it fits. */
export type Check = (value: unknown, path: string) => string | undefined;

export const text: Check = (value, path) => (typeof value === 'string' ? undefined : expected(path, 'a string', value));
export const count: Check = (value, path) =>
  (typeof value === 'number' && Number.isFinite(value) ? undefined : expected(path, 'a number', value));
export const flag: Check = (value, path) => (typeof value === 'boolean' ? undefined : expected(path, 'a boolean', value));

export function optional(check: Check): Check {
  return (value, path) => (value === undefined ? undefined : check(value, path));
}

export function oneOf(values: readonly string[]): Check {
  return (value, path) => (typeof value === 'string' && values.includes(value) ? undefined
    : expected(path, `one of ${values.join(', ')}`, value));
}

export function listOf(item: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return expected(path, 'a list', value);
    for (const [index, entry] of value.entries()) {
      const problem = item(entry, `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

/** An object whose every value fits `item` (a table by name, such as the rejected datagrams by reason). */
export function tableOf(item: Check): Check {
  return (value, path) => {
    if (!isObject(value)) return expected(path, 'an object', value);
    for (const [key, entry] of Object.entries(value)) {
      const problem = item(entry, join(path, key));
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

export function object(fields: Readonly<Record<string, Check>>): Check {
  return (value, path) => {
    if (!isObject(value)) return expected(path, 'an object', value);
    for (const [key, check] of Object.entries(fields)) {
      const problem = check(value[key], join(path, key));
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function expected(path: string, what: string, value: unknown): string {
  return `${path === '' ? 'the value' : path}: expected ${what}, got ${describe(value)}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  const shown = JSON.stringify(value);
  return shown.length > 40 ? `${shown.slice(0, 37)}...` : shown;
}
