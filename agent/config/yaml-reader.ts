// The YAML tree as config keys with their lines: sections with known keys, required/optional values, problems.

import {
  type Alias, type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Scalar,
  type YAMLMap, type YAMLSeq,
} from 'yaml';
import {BatonError} from '../errors.js';
import {nearest, quote} from './messages.js';
import {Rejection, type Spec} from './value-specs.js';

/** Parses YAML text; its syntax errors (with line and column) become the reader's first problems. */
export function readYaml(text: string): Reader {
  const lineCounter = new LineCounter();
  // Duplicate keys are found by Reader.section, where the message can name the key path and the first occurrence.
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: false});
  const reader = new Reader(doc, lineCounter);
  for (const error of [...doc.errors, ...doc.warnings]) {
    const {line, col} = lineCounter.linePos(error.pos[0]);
    reader.problem(line, `YAML syntax error: ${error.message}`, col);
  }
  return reader;
}

type Value = Scalar | YAMLMap | YAMLSeq | Alias;

/** One key of the file, found or absent. */
export interface Field {
  /** Key path for messages: heartbeat.interval_ms, accept_secret_files[1]. */
  readonly path: string;
  /** Line of the key; of the enclosing mapping when the key is absent. */
  readonly line: number;
  /** undefined: key absent; null: key without a value (`key:` or `key: ~`). Aliases are resolved. */
  readonly value: Value | null | undefined;
  /** The enclosing mapping is missing or not a mapping, already reported: nothing more is said of this key. */
  readonly unusable?: true;
}

/** A mapping whose keys were checked; a broken one (absent when required, or not a mapping) yields no fields. */
export class Section {
  readonly #fields: ReadonlyMap<string, Field> | undefined;
  readonly #prefix: string;
  readonly #line: number;

  constructor(fields: ReadonlyMap<string, Field> | undefined, prefix: string, line: number) {
    this.#fields = fields;
    this.#prefix = prefix;
    this.#line = line;
  }

  field(key: string): Field {
    const path = this.#prefix === '' ? key : `${this.#prefix}.${key}`;
    if (this.#fields === undefined) return {path, line: this.#line, value: undefined, unusable: true};
    return this.#fields.get(key) ?? {path, line: this.#line, value: undefined};
  }
}

interface Problem {
  readonly line: number;
  readonly col: number | undefined;
  readonly text: string;
}

/** Walks the document and collects every problem, so that all are reported at once. */
export class Reader {
  readonly problems: Problem[] = [];
  readonly #doc: Document;
  readonly #lineCounter: LineCounter;

  constructor(doc: Document, lineCounter: LineCounter) {
    this.#doc = doc;
    this.#lineCounter = lineCounter;
  }

  problem(line: number, text: string, col?: number): void {
    this.problems.push({line, col, text});
  }

  expected(field: Field, what: string, note?: string): void {
    const found = describe(field.value);
    this.problem(field.line, `${field.path}: expected ${what}, got ${found}${note === undefined ? '' : ` (${note})`}`);
  }

  failure(file: string): BatonError {
    const count = this.problems.length;
    const lines = this.problems
      .toSorted((a, b) => a.line - b.line || (a.col ?? 0) - (b.col ?? 0))
      .map(({line, col, text}) => `  - ${file}:${line}${col === undefined ? '' : `:${col}`} ${text}`);
    const heading = `${file}: ${count} problem${count === 1 ? '' : 's'}`;
    return new BatonError('CONFIG_INVALID', [heading, ...lines].join('\n'));
  }

  root(keys: readonly string[]): Section {
    const contents = this.#doc.contents;
    const field: Field = {path: '(document)', line: this.#lineOf(contents, 1), value: this.#resolve(contents)};
    if (field.value === null || field.value === undefined) {
      this.problem(field.line, `${field.path}: expected a mapping of settings, got nothing (empty file)`);
      return new Section(undefined, '', field.line);
    }
    return this.#section(field, keys, 'a mapping of settings', '');
  }

  /** A nested mapping; when absent, an empty section (all defaults) unless `required`. */
  section(field: Field, keys: readonly string[], what: string, required = true): Section {
    if (field.unusable) return new Section(undefined, field.path, field.line);
    if ((field.value === undefined || field.value === null) && !required) {
      return new Section(new Map(), field.path, field.line);
    }
    return this.#section(field, keys, what, field.path);
  }

  required<T>(field: Field, spec: Spec<T>): T | undefined {
    if (field.unusable) return undefined;
    if (field.value === undefined || field.value === null) {
      this.expected(field, spec.what);
      return undefined;
    }
    return this.#parse(field, spec);
  }

  /** `fallback` when the key is absent or empty. */
  optional<T, D>(field: Field, spec: Spec<T>, fallback: D): T | D | undefined {
    if (field.unusable) return undefined;
    if (field.value === undefined || field.value === null) return fallback;
    return this.#parse(field, spec);
  }

  /** A list, empty when absent; each item with its own field for messages (value undefined: reported). */
  list<T>(field: Field, spec: Spec<T>, what: string): {field: Field; value: T | undefined}[] | undefined {
    return this.items(field, what)?.map((item) => ({field: item, value: this.required(item, spec)}));
  }

  /** The items of a list, each as a field for messages (path `key[i]`, its own line); empty when absent. */
  items(field: Field, what: string): Field[] | undefined {
    if (field.unusable) return undefined;
    const list = field.value;
    if (list === undefined || list === null) return [];
    if (!isSeq(list)) {
      this.expected(field, what);
      return undefined;
    }
    return list.items.map((node, index) => ({path: `${field.path}[${index}]`, line: this.#lineOf(node, field.line),
      value: this.#resolve(node)}));
  }

  #parse<T>(field: Field, spec: Spec<T>): T | undefined {
    const value = field.value;
    const parsed = spec.parse(isScalar(value) ? value.value : value);
    if (parsed instanceof Rejection) {
      this.expected(field, spec.what, parsed.note);
      return undefined;
    }
    return parsed;
  }

  #section(field: Field, keys: readonly string[], what: string, prefix: string): Section {
    const map = field.value;
    if (!isMap(map)) {
      this.expected(field, what);
      return new Section(undefined, prefix, field.line);
    }
    const fields = new Map<string, Field>();
    for (const pair of map.items) {
      const name = keyName(pair.key);
      const line = this.#lineOf(pair.key, field.line);
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const first = fields.get(name);
      if (!keys.includes(name)) {
        const suggestion = nearest(name, keys);
        this.problem(line, `${path}: unknown key ${quote(name)}${suggestion === undefined
          ? `; expected one of ${keys.join(', ')}`
          : `, did you mean '${suggestion}'?`}`);
      } else if (first !== undefined) {
        this.problem(line, `${path}: expected each key once, got ${quote(name)} again (first at line ${first.line})`);
      } else {
        fields.set(name, {path, line, value: this.#resolve(pair.value)});
      }
    }
    return new Section(fields, prefix, field.line);
  }

  #resolve(node: unknown): Value | null {
    const resolved = isAlias(node) ? node.resolve(this.#doc) ?? node : node;
    if (isScalar(resolved)) return resolved.value === null ? null : resolved;
    return isMap(resolved) || isSeq(resolved) || isAlias(resolved) ? resolved : null;
  }

  #lineOf(node: unknown, fallback: number): number {
    const range = (node as {range?: readonly number[] | null} | null | undefined)?.range;
    return range?.[0] === undefined ? fallback : this.#lineCounter.linePos(range[0]).line;
  }
}

function keyName(key: unknown): string {
  if (isScalar(key)) return typeof key.value === 'string' ? key.value : key.source ?? String(key.value);
  if (isAlias(key)) return `*${key.source}`;
  return String(key);
}

function describe(value: Value | null | undefined): string {
  if (value === undefined) return 'nothing (key missing)';
  if (value === null) return 'nothing (empty value)';
  if (isMap(value)) return 'a mapping';
  if (isSeq(value)) return 'a list';
  if (isAlias(value)) return `*${value.source} (an alias to no anchor)`;
  return typeof value.value === 'string' ? quote(value.value) : value.source ?? String(value.value);
}
