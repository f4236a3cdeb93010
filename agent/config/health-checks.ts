// The health.checks section: kinds of check (interface, http, command), their defaults and bounds.

import {isMap} from 'yaml';
import {assertNever} from '../errors.js';
import {checkProgram, type ProgramInspector} from './program-files.js';
import {ABSOLUTE_PATH, HTTP_URL, integer, INTERFACE_NAME, TEXT} from './value-specs.js';
import type {Field, Reader} from './yaml-reader.js';

/** One health check, as the `health.checks` list of the config file gives it. */
export type HealthCheckSpec =
  /** The link is up and has carrier. */
  | {readonly kind: 'interface'; readonly interface: string}
  /** A GET of `url` answers `expectStatus` within `timeoutMs` (redirects are not followed). */
  | {readonly kind: 'http'; readonly url: string; readonly expectStatus: number; readonly timeoutMs: number}
  /** The program exits 0 within `timeoutMs`; run with an argument array, never a shell. */
  | {readonly kind: 'command'; readonly path: string; readonly args: readonly string[]; readonly timeoutMs: number};

// Health checks: one round a second finds a dead service within fall × interval = 3 s, close to the 1 s failover
// target for a dead host, while costing one HTTP request or process a second per check.
const DEFAULT_HEALTH_INTERVAL_MS = 1_000;
const MIN_HEALTH_INTERVAL_MS = 100;
const MAX_HEALTH_INTERVAL_MS = 60_000;
// fall 3: one lost or slow answer (a GC pause, a busy backend) must not fail the host; three in a row do.
const DEFAULT_FALL = 3;
// rise 2: one lucky answer from a flapping service must not declare it well again.
const DEFAULT_RISE = 2;
const MAX_FALL_RISE = 100;
// A local health endpoint answers in milliseconds; 1 s allows a busy one, and equals the default interval so the
// round ends by the time the next one is due.
const DEFAULT_CHECK_TIMEOUT_MS = 1_000;
const MIN_CHECK_TIMEOUT_MS = 10;
const MAX_CHECK_TIMEOUT_MS = 60_000;
const DEFAULT_EXPECT_STATUS = 200;

const HEALTH_KEYS = ['interval_ms', 'fall', 'rise', 'checks'] as const;
const CHECK_KINDS = ['interface', 'http', 'command'] as const;
const HTTP_CHECK_KEYS = ['url', 'expect_status', 'timeout_ms'] as const;
const COMMAND_CHECK_KEYS = ['path', 'args', 'timeout_ms'] as const;

export function readHealth(reader: Reader, field: Field, inspectProgram: ProgramInspector) {
  const health = reader.section(field, HEALTH_KEYS, 'a mapping like {interval_ms: 1000, checks: [...]}', false);
  const intervalMs = reader.optional(health.field('interval_ms'),
    integer(MIN_HEALTH_INTERVAL_MS, MAX_HEALTH_INTERVAL_MS), DEFAULT_HEALTH_INTERVAL_MS);
  const fall = reader.optional(health.field('fall'), integer(1, MAX_FALL_RISE), DEFAULT_FALL);
  const rise = reader.optional(health.field('rise'), integer(1, MAX_FALL_RISE), DEFAULT_RISE);
  const items = reader.items(health.field('checks'), 'a list of checks, each like `- interface: eth0`');
  const checks = items?.map((item) => readCheck(reader, item, intervalMs, inspectProgram));
  return {intervalMs, fall, rise, checks};
}

/** One item of health.checks: a mapping with exactly one of interface, http or command. */
function readCheck(reader: Reader, item: Field, intervalMs: number | undefined,
  inspectProgram: ProgramInspector): HealthCheckSpec | undefined {
  const check = reader.section(item, CHECK_KINDS, 'a mapping with one of interface, http or command, like ' +
    '`- interface: eth0`');
  const fields = CHECK_KINDS.map((kind) => ({kind, field: check.field(kind)}));
  if (fields.some(({field}) => field.unusable)) return undefined;
  const present = fields.filter(({field}) => field.value !== undefined);
  if (present.length !== 1) {
    // A mapping of unknown keys only has had them reported already, each with a suggestion.
    if (present.length === 0 && isMap(item.value) && item.value.items.length > 0) return undefined;
    const found = present.length === 0 ? 'none' : present.map(({kind}) => kind).join(' and ');
    reader.problem(item.line, `${item.path}: expected exactly one of interface, http or command, got ${found}`);
    return undefined;
  }
  const [{kind, field}] = present as [(typeof present)[number]];
  switch (kind) {
    case 'interface': {
      const name = reader.required(field, INTERFACE_NAME);
      return name === undefined ? undefined : {kind, interface: name};
    }
    case 'http': {
      const http = reader.section(field, HTTP_CHECK_KEYS, 'a mapping like {url: http://127.0.0.1/health}');
      const url = reader.required(http.field('url'), HTTP_URL);
      const expectStatus = reader.optional(http.field('expect_status'), integer(100, 599), DEFAULT_EXPECT_STATUS);
      const timeoutMs = readCheckTimeout(reader, http.field('timeout_ms'), intervalMs);
      if (url === undefined || expectStatus === undefined || timeoutMs === undefined) return undefined;
      return {kind, url, expectStatus, timeoutMs};
    }
    case 'command': {
      const command = reader.section(field, COMMAND_CHECK_KEYS, 'a mapping like {path: /usr/local/bin/check-db}');
      const pathField = command.field('path');
      const path = reader.required(pathField, ABSOLUTE_PATH);
      if (path !== undefined) checkProgram(reader, pathField, path, inspectProgram);
      const args = reader.list(command.field('args'), TEXT, 'a list of arguments, like [--quick]');
      const timeoutMs = readCheckTimeout(reader, command.field('timeout_ms'), intervalMs);
      if (path === undefined || args === undefined || timeoutMs === undefined) return undefined;
      return {kind, path, args: args.map(({value}) => value as string), timeoutMs};
    }
    default:
      return assertNever(kind);
  }
}

// timeout_ms <= interval_ms: every check of a round has answered or timed out by the time the next round is due,
// so rounds never overlap and a hung check costs one round, not a pile of them. (Not <: the defaults are equal.)
function readCheckTimeout(reader: Reader, field: Field, intervalMs: number | undefined): number | undefined {
  const timeoutMs = reader.optional(field, integer(MIN_CHECK_TIMEOUT_MS, MAX_CHECK_TIMEOUT_MS),
    DEFAULT_CHECK_TIMEOUT_MS);
  if (timeoutMs === undefined || intervalMs === undefined || timeoutMs <= intervalMs) return timeoutMs;
  // Unset here means the default exceeds a short interval: name the key as it would have to be written.
  reader.expected(field, `an integer <= ${intervalMs}`, `health.interval_ms ${intervalMs}: a check must end ` +
    'before the next round is due' + (field.value === undefined ? `; the default is ${DEFAULT_CHECK_TIMEOUT_MS}` : ''));
  return undefined;
}
