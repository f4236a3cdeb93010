// YAML file → validated, frozen Config (snake_case keys → camelCase fields). All defaults live here.

import {createHash} from 'node:crypto';
import {closeSync, constants, fstatSync, openSync, readFileSync, statSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {isIP} from 'node:net';
import {isAbsolute} from 'node:path/posix';
import {
  type Alias, type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Scalar,
  type YAMLMap, type YAMLSeq,
} from 'yaml';
import {assertNever, BatonError} from './errors.js';
import type {ServiceIp} from './ports.js';
import type {Role} from './state-machine.js';

export type ServiceMode = 'address' | 'link';
export type OnStop = 'keep' | 'release';

/** A shared secret and its key id (first 4 bytes of SHA-256 over the secret, as 8 hex digits). */
export interface Key {
  readonly id: string;
  readonly secret: Uint8Array;
  readonly file: string;
}

export interface Keyring {
  /** Signs everything we send. */
  readonly signing: Key;
  /** Accepted on receipt: the signing key first, then the `accept_secret_files` (key rotation). */
  readonly accepted: readonly Key[];
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface Config {
  /** The file this came from, for messages. */
  readonly file: string;
  readonly pair: string;
  readonly node: Role;
  readonly listen: Endpoint;
  readonly peer: Endpoint;
  readonly secretFile: string;
  readonly acceptSecretFiles: readonly string[];
  readonly keyring: Keyring;
  readonly service: {
    readonly ip: ServiceIp;
    readonly interface: string;
    readonly mode: ServiceMode;
  };
  readonly heartbeat: {
    readonly intervalMs: number;
    readonly deadAfterMs: number;
    /** Beacons whose sent-at differs from our wall clock by more are rejected as stale or future. */
    readonly maxClockSkewMs: number;
  };
  readonly confirm: {
    readonly accessLog: string | undefined;
    readonly minRequests: number;
    readonly timeoutS: number;
  };
  readonly onStop: OnStop;
  readonly stateDir: string;
  readonly controlSocket: string;
  /** No checks (the default): the host is always healthy. */
  readonly health: {
    readonly intervalMs: number;
    readonly fall: number;
    readonly rise: number;
    readonly checks: readonly HealthCheckSpec[];
  };
  readonly hooks: {
    /** Absolute path of the program run as `path oldState newState reason` on each state change. */
    readonly onStateChange: string | undefined;
    readonly timeoutMs: number;
  };
}

/** One health check, as the `health.checks` list of the config file gives it. */
export type HealthCheckSpec =
  /** The link is up and has carrier. */
  | {readonly kind: 'interface'; readonly interface: string}
  /** A GET of `url` answers `expectStatus` within `timeoutMs` (redirects are not followed). */
  | {readonly kind: 'http'; readonly url: string; readonly expectStatus: number; readonly timeoutMs: number}
  /** The program exits 0 within `timeoutMs`; run with an argument array, never a shell. */
  | {readonly kind: 'command'; readonly path: string; readonly args: readonly string[]; readonly timeoutMs: number};

export const DEFAULT_CONFIG_FILE = '/etc/baton/baton.yaml';

/** What parseConfig needs to know about a secret file. */
export interface SecretFileInfo {
  /** st_mode of the file; only the permission bits are looked at. */
  readonly mode: number;
  readonly content: Uint8Array;
}

/** Reads a secret file; returns the Error that prevented it instead of throwing. */
export type SecretReader = (path: string) => SecretFileInfo | Error;

/** What parseConfig needs to know about a program it will run (hooks, command checks). */
export interface ProgramFileInfo {
  /** st_mode of the file (symbolic links followed); only the execute bits are looked at. */
  readonly mode: number;
}

/** Looks at a program file; returns the Error that prevented it (missing, not a regular file) instead of throwing. */
export type ProgramInspector = (path: string) => ProgramFileInfo | Error;

const DEFAULT_PORT = 7411;
const DEFAULT_SECRET_FILE = '/etc/baton/secret';
const MIN_INTERVAL_MS = 10;
const MAX_INTERVAL_MS = 10_000;
const DEFAULT_INTERVAL_MS = 200;
// dead_after_ms default = 5 × interval_ms: 4 lost beacons tolerated, the 5th declares the peer dead.
const DEFAULT_DEAD_AFTER_INTERVALS = 5;
// dead_after_ms >= 2 × interval_ms: one lost or late beacon alone must never declare the peer dead.
const MIN_DEAD_AFTER_INTERVALS = 2;
const MAX_DEAD_AFTER_MS = 600_000;
const DEFAULT_MAX_CLOCK_SKEW_MS = 5_000;
const DEFAULT_MIN_REQUESTS = 3;
const DEFAULT_CONFIRM_TIMEOUT_S = 30;
const DEFAULT_STATE_DIR = '/var/lib/baton';
const DEFAULT_CONTROL_SOCKET = '/run/baton/control.sock';
// HMAC-SHA256 key: no shorter than the hash output, 32 bytes (RFC 2104 §3).
const MIN_SECRET_BYTES = 32;
// sockaddr_un.sun_path is 108 bytes on Linux, one of them the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;
// IFNAMSIZ is 16 bytes, one of them the terminating NUL.
const MAX_INTERFACE_NAME_BYTES = 15;
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
// A notify script sends a mail or a chat message: 5 s covers a slow SMTP or HTTP round trip.
const DEFAULT_HOOK_TIMEOUT_MS = 5_000;
const MIN_HOOK_TIMEOUT_MS = 100;
const MAX_HOOK_TIMEOUT_MS = 600_000;

const TOP_KEYS = [
  'pair', 'node', 'listen', 'peer', 'secret_file', 'accept_secret_files', 'service', 'heartbeat', 'confirm',
  'on_stop', 'state_dir', 'control_socket', 'health', 'hooks',
] as const;
const ENDPOINT_KEYS = ['address', 'port'] as const;
const SERVICE_KEYS = ['address', 'interface', 'mode'] as const;
const HEARTBEAT_KEYS = ['interval_ms', 'dead_after_ms', 'max_clock_skew_ms'] as const;
const CONFIRM_KEYS = ['access_log', 'min_requests', 'timeout_s'] as const;
const HEALTH_KEYS = ['interval_ms', 'fall', 'rise', 'checks'] as const;
const CHECK_KINDS = ['interface', 'http', 'command'] as const;
const HTTP_CHECK_KEYS = ['url', 'expect_status', 'timeout_ms'] as const;
const COMMAND_CHECK_KEYS = ['path', 'args', 'timeout_ms'] as const;
const HOOKS_KEYS = ['on_state_change', 'timeout_ms'] as const;

/**
 * Reads, validates and freezes the config file. Throws BatonError CONFIG_INVALID, listing every problem at once
 * (file, line, key, the value found and what is expected), when the file or a secret file is missing, unreadable
 * or wrong.
 */
export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const hint = errorCode(error) === 'ENOENT' ? '; create it (`baton install` writes one) or pass --config FILE' : '';
    throw new BatonError('CONFIG_INVALID', `${file}: cannot read the config file: ${describeFsError(error)}${hint}`, {
      cause: error,
    });
  }
  return parseConfig(text, file, readSecretFile, inspectProgramFile);
}

/**
 * The pure core of loadConfig: YAML text → frozen Config. `file` only names the source in messages and in
 * Config.file; secret files are read through `readSecret`, and the programs it names (hooks, command checks) are
 * looked at through `inspectProgram`. Throws BatonError CONFIG_INVALID listing every problem.
 */
export function parseConfig(text: string, file: string, readSecret: SecretReader,
  inspectProgram: ProgramInspector): Config {
  const lineCounter = new LineCounter();
  // Duplicate keys are found below, where the message can name the key path and the first occurrence.
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: false});
  const reader = new Reader(doc, lineCounter);
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    for (const error of syntax) {
      const {line, col} = lineCounter.linePos(error.pos[0]);
      reader.problem(line, `YAML syntax error: ${error.message}`, col);
    }
    throw reader.failure(file);
  }
  const config = readConfig(reader, file, readSecret, inspectProgram);
  if (reader.problems.length > 0) throw reader.failure(file);
  // Every read that yields undefined has recorded a problem (except the optional access_log and on_state_change),
  // so with no problems the draft is complete.
  return deepFreeze(config as Config);
}

/** Key id of a secret: the first 4 bytes of its SHA-256, as 8 lowercase hex digits. */
export function keyIdOf(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest().subarray(0, 4).toString('hex');
}

function readConfig(reader: Reader, file: string, readSecret: SecretReader, inspectProgram: ProgramInspector) {
  const top = reader.root(TOP_KEYS);
  // Absent keys are all reported at their mapping's line; reading pair and node first lists them first there.
  const pair = reader.required(top.field('pair'), PAIR_ID);
  const node = reader.required(top.field('node'), oneOf(['primary', 'backup'] as const));

  const listen = reader.section(top.field('listen'), ENDPOINT_KEYS, 'a mapping like {address: 192.0.2.11, port: 7411}');
  const listenAddressField = listen.field('address');
  const listenAddress = reader.required(listenAddressField, IP_ADDRESS);
  const peer = reader.section(top.field('peer'), ENDPOINT_KEYS, 'a mapping like {address: 192.0.2.12, port: 7411}');
  const peerAddressField = peer.field('address');
  const peerAddress = reader.required(peerAddressField, IP_ADDRESS);
  if (listenAddress !== undefined && peerAddress !== undefined) {
    if (listenAddress.address === peerAddress.address) {
      reader.expected(peerAddressField, 'an address other than listen.address', 'a host cannot be its own peer');
    } else if (listenAddress.family !== peerAddress.family) {
      reader.expected(peerAddressField, `an IPv${listenAddress.family} address like listen.address`,
        'heartbeats go from listen.address to peer.address');
    }
  }

  const service = reader.section(top.field('service'), SERVICE_KEYS,
    'a mapping like {address: 192.0.2.100/24, interface: eth0}');
  const serviceAddressField = service.field('address');
  const serviceIp = reader.required(serviceAddressField, SERVICE_CIDR);
  if (serviceIp !== undefined) {
    for (const [key, other] of [['listen.address', listenAddress], ['peer.address', peerAddress]] as const) {
      if (other?.address === serviceIp.address) {
        reader.expected(serviceAddressField, `an address other than ${key}`,
          'the service address moves between the hosts, their own addresses stay');
      }
    }
  }

  const heartbeat = reader.section(top.field('heartbeat'), HEARTBEAT_KEYS, 'a mapping like {interval_ms: 200}',
    false);
  const intervalMs = reader.optional(heartbeat.field('interval_ms'), integer(MIN_INTERVAL_MS, MAX_INTERVAL_MS),
    DEFAULT_INTERVAL_MS);
  const deadAfterField = heartbeat.field('dead_after_ms');
  const deadAfterMs = reader.optional(deadAfterField, DEAD_AFTER_MS,
    intervalMs === undefined ? undefined : DEFAULT_DEAD_AFTER_INTERVALS * intervalMs);
  if (intervalMs !== undefined && deadAfterMs !== undefined && deadAfterMs < MIN_DEAD_AFTER_INTERVALS * intervalMs) {
    reader.expected(deadAfterField, `an integer >= ${MIN_DEAD_AFTER_INTERVALS * intervalMs}`,
      `${MIN_DEAD_AFTER_INTERVALS} × heartbeat.interval_ms ${intervalMs}: ` +
      'one lost beacon must not declare the peer dead');
  }

  const confirm = reader.section(top.field('confirm'), CONFIRM_KEYS, 'a mapping like {min_requests: 3, timeout_s: 30}',
    false);

  const secretFileField = top.field('secret_file');
  const secretFile = reader.optional(secretFileField, ABSOLUTE_PATH, DEFAULT_SECRET_FILE);
  const acceptSecretFiles = reader.list(top.field('accept_secret_files'), ABSOLUTE_PATH, 'a list of absolute paths');
  const signing = secretFile === undefined ? undefined : readKey(reader, secretFileField, secretFile, readSecret);
  const accepted = (acceptSecretFiles ?? []).map(({field, value}, index, all) => {
    if (value === undefined) return undefined;
    if (value === secretFile || all.slice(0, index).some((earlier) => earlier.value === value)) {
      reader.expected(field, 'a file not already listed in secret_file or accept_secret_files');
      return undefined;
    }
    return readKey(reader, field, value, readSecret);
  });

  return {
    file,
    pair,
    node,
    listen: {address: listenAddress?.address, port: reader.optional(listen.field('port'), PORT, DEFAULT_PORT)},
    peer: {address: peerAddress?.address, port: reader.optional(peer.field('port'), PORT, DEFAULT_PORT)},
    secretFile,
    acceptSecretFiles: acceptSecretFiles?.map(({value}) => value),
    keyring: {signing, accepted: [signing, ...accepted]},
    service: {
      ip: serviceIp,
      interface: reader.required(service.field('interface'), INTERFACE_NAME),
      mode: reader.optional(service.field('mode'), oneOf(['address', 'link'] as const), 'address'),
    },
    heartbeat: {
      intervalMs,
      deadAfterMs,
      maxClockSkewMs: reader.optional(heartbeat.field('max_clock_skew_ms'), integer(100, 3_600_000),
        DEFAULT_MAX_CLOCK_SKEW_MS),
    },
    confirm: {
      accessLog: reader.optional(confirm.field('access_log'), ABSOLUTE_PATH, undefined),
      minRequests: reader.optional(confirm.field('min_requests'), integer(1, 1_000_000), DEFAULT_MIN_REQUESTS),
      timeoutS: reader.optional(confirm.field('timeout_s'), integer(1, 3600), DEFAULT_CONFIRM_TIMEOUT_S),
    },
    onStop: reader.optional(top.field('on_stop'), oneOf(['keep', 'release'] as const), 'keep'),
    stateDir: reader.optional(top.field('state_dir'), ABSOLUTE_PATH, DEFAULT_STATE_DIR),
    controlSocket: reader.optional(top.field('control_socket'), SOCKET_PATH, DEFAULT_CONTROL_SOCKET),
    health: readHealth(reader, top.field('health'), inspectProgram),
    hooks: readHooks(reader, top.field('hooks'), inspectProgram),
  };
}

function readHealth(reader: Reader, field: Field, inspectProgram: ProgramInspector) {
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

function readHooks(reader: Reader, field: Field, inspectProgram: ProgramInspector) {
  const hooks = reader.section(field, HOOKS_KEYS, 'a mapping like {on_state_change: /usr/local/bin/baton-notify}',
    false);
  const pathField = hooks.field('on_state_change');
  // Any absolute path, spaces and quotes included: it becomes one argv element, never a shell word.
  const onStateChange = reader.optional(pathField, ABSOLUTE_PATH, undefined);
  if (onStateChange !== undefined) checkProgram(reader, pathField, onStateChange, inspectProgram);
  return {
    onStateChange,
    timeoutMs: reader.optional(hooks.field('timeout_ms'), integer(MIN_HOOK_TIMEOUT_MS, MAX_HOOK_TIMEOUT_MS),
      DEFAULT_HOOK_TIMEOUT_MS),
  };
}

// Checked at load, like the secret files: a missing or non-executable program would otherwise show up only at the
// first state change or health round, when nobody is watching the config.
function checkProgram(reader: Reader, field: Field, path: string, inspectProgram: ProgramInspector): void {
  const info = inspectProgram(path);
  if (info instanceof Error) {
    reader.problem(field.line, `${field.path}: expected an executable file, got ${quote(path)}: ` +
      `${describeFsError(info)}; install it there or correct the path`);
    return;
  }
  if ((info.mode & 0o111) === 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    reader.problem(field.line, `${field.path}: expected an executable file, got mode ${mode} on ${quote(path)}; ` +
      `run \`chmod +x ${shellQuote(path)}\``);
  }
}

// The secret is the file's bytes exactly as they are, a trailing newline included and counted in the length: both
// hosts must sign with identical bytes, and a binary secret (head -c 32 /dev/urandom) may end in 0x0a by chance.
function readKey(reader: Reader, field: Field, file: string, readSecret: SecretReader): Key | undefined {
  const shown = field.value === undefined ? `${quote(file)} (the default)` : quote(file);
  const create = `head -c ${MIN_SECRET_BYTES} /dev/urandom > ${shellQuote(file)} && chmod 600 ${shellQuote(file)}`;
  const info = readSecret(file);
  if (info instanceof Error) {
    reader.problem(field.line, `${field.path}: expected a readable secret file, got ${shown}: ` +
      `${describeFsError(info)}; create it on one host with \`${create}\` and copy it to the peer`);
    return undefined;
  }
  let ok = true;
  if (info.content.length < MIN_SECRET_BYTES) {
    ok = false;
    reader.problem(field.line, `${field.path}: expected a secret of at least ${MIN_SECRET_BYTES} bytes, ` +
      `got ${info.content.length} bytes in ${quote(file)}; replace it with \`${create}\` and copy it to the peer`);
  }
  if ((info.mode & 0o077) !== 0) {
    ok = false;
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    reader.problem(field.line, `${field.path}: expected a file only its owner can read (mode 0600), ` +
      `got mode ${mode} on ${quote(file)}; run \`chmod 600 ${shellQuote(file)}\``);
  }
  // A private copy: a Uint8Array cannot be frozen, so nobody else may hold a reference to it.
  return ok ? {id: keyIdOf(info.content), secret: new Uint8Array(info.content), file} : undefined;
}

function inspectProgramFile(path: string): ProgramFileInfo | Error {
  try {
    const stat = statSync(path);
    return stat.isFile() ? {mode: stat.mode} : new Error('not a regular file');
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** Reads a secret file without ever hanging; the Error (with its `code`) when it cannot. Shared with `baton install`. */
export function readSecretFile(path: string): SecretFileInfo | Error {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the agent; fstat then refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) return new Error('not a regular file');
    return {mode: stat.mode, content: readFileSync(fd)};
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// ---- value specs ----

/** Why a value was refused, beyond "expected …, got …". */
class Rejection {
  readonly note: string | undefined;

  constructor(note?: string) {
    this.note = note;
  }
}

/** What a key holds: `what` completes "expected …"; `parse` gets a scalar's value, or the node of anything else. */
interface Spec<T> {
  readonly what: string;
  parse(value: unknown): T | Rejection;
}

function text(value: unknown): string | Rejection {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') {
    return new Rejection('not text; put it in quotes if you mean text');
  }
  return new Rejection();
}

function textSpec(what: string, check: (value: string) => string | Rejection): Spec<string> {
  return {what, parse: (value) => {
    const string = text(value);
    return string instanceof Rejection ? string : check(string);
  }};
}

function integer(min: number, max: number): Spec<number> {
  return {what: `an integer ${min}..${max}`, parse: (value) => {
    if (typeof value === 'number' && Number.isInteger(value)) {
      return value >= min && value <= max ? value : new Rejection();
    }
    if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) {
      return new Rejection('text; write the number without quotes');
    }
    return new Rejection();
  }};
}

function oneOf<T extends string>(values: readonly T[]): Spec<T> {
  const quoted = values.map((value) => `'${value}'`);
  return {
    what: `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`,
    parse: (value) => values.find((allowed) => allowed === value) ?? new Rejection(),
  };
}

const PORT = integer(1, 65_535);

const TEXT = textSpec('text', (value) => value);

const HTTP_URL = textSpec('an absolute http:// or https:// URL', (value) => {
  const url = URL.parse(value);
  if (url === null) return new Rejection('not a URL');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return new Rejection(`the scheme ${quote(url.protocol.slice(0, -1))} is neither http nor https`);
  }
  return url.href;
});
// The lower bound is the least dead_after_ms that any interval_ms allows; the real bound depends on interval_ms.
const DEAD_AFTER_MS = integer(MIN_DEAD_AFTER_INTERVALS * MIN_INTERVAL_MS, MAX_DEAD_AFTER_MS);

const PAIR_ID = textSpec('a pair id of 1..32 characters from A-Z a-z 0-9 . _ -',
  (value) => /^[A-Za-z0-9._-]{1,32}$/.test(value) ? value : new Rejection());

const ABSOLUTE_PATH = textSpec('an absolute path', (value) => {
  if (value.includes('\0')) return new Rejection('it contains a NUL character');
  return isAbsolute(value) ? value : new Rejection();
});

const SOCKET_PATH = textSpec(`an absolute path of at most ${MAX_SOCKET_PATH_BYTES} bytes (a unix socket address)`,
  (value) => {
    const path = ABSOLUTE_PATH.parse(value);
    if (path instanceof Rejection) return path;
    const bytes = Buffer.byteLength(path);
    return bytes <= MAX_SOCKET_PATH_BYTES ? path : new Rejection(`${bytes} bytes`);
  });

// The kernel refuses '/', ':', whitespace and NUL; baton also refuses the rest of the control characters and the
// shell's metacharacters: such a name is far likelier an injection attempt or a typo than a real interface.
const FORBIDDEN_IN_INTERFACE = /[/:\s\p{Cc};&|$`'"\\<>(){}[\]*?!#~]/u;

const INTERFACE_NAME = textSpec(`a Linux interface name (1..${MAX_INTERFACE_NAME_BYTES} bytes, ` +
  'no \'/\', \':\', whitespace, control or shell characters)', (value) => {
  const bytes = Buffer.byteLength(value);
  if (bytes === 0 || bytes > MAX_INTERFACE_NAME_BYTES) return new Rejection(`${bytes} bytes`);
  if (value === '.' || value === '..') return new Rejection(`'${value}' is reserved`);
  const forbidden = FORBIDDEN_IN_INTERFACE.exec(value)?.[0];
  return forbidden === undefined ? value : new Rejection(`${describeChar(forbidden)} is not allowed`);
});

interface IpAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

const IP_ADDRESS: Spec<IpAddress> = {
  what: 'an IPv4 or IPv6 address',
  parse: (value) => {
    const string = text(value);
    return string instanceof Rejection ? string : parseIp(string) ?? new Rejection();
  },
};

const SERVICE_CIDR: Spec<ServiceIp> = {
  what: 'an address with its prefix length, like 192.0.2.100/24',
  parse: parseServiceIp,
};

function parseServiceIp(value: unknown): ServiceIp | Rejection {
  const string = text(value);
  if (string instanceof Rejection) return string;
  const slash = string.lastIndexOf('/');
  if (slash === -1) return new Rejection('no prefix length');
  const ip = parseIp(string.slice(0, slash));
  if (ip === undefined || ip.address.includes('%')) {
    return new Rejection(`${quote(string.slice(0, slash))} is not an IP address`);
  }
  const bits = ip.family === 4 ? 32 : 128;
  const prefixText = string.slice(slash + 1);
  const prefixLength = /^[1-9]\d{0,2}$/.test(prefixText) ? Number(prefixText) : 0;
  if (prefixLength < 1 || prefixLength > bits) {
    return new Rejection(`the prefix length of an IPv${ip.family} address is 1..${bits}`);
  }
  // With 2 or more host bits, host part all zeros is the network address (in IPv6 the subnet-router anycast
  // address) and all ones the IPv4 broadcast; /31 and /32 (/127 and /128) have neither (RFC 3021, RFC 6164).
  const hostBits = BigInt(bits - prefixLength);
  const hostMask = (1n << hostBits) - 1n;
  const host = addressBits(ip) & hostMask;
  if (hostBits >= 2n && host === 0n) {
    return new Rejection(`${ip.address} is the network address of its /${prefixLength}; use a host address`);
  }
  if (ip.family === 4 && hostBits >= 2n && host === hostMask) {
    return new Rejection(`${ip.address} is the broadcast address of its /${prefixLength}; use a host address`);
  }
  return {address: ip.address, prefixLength, family: ip.family, cidr: `${ip.address}/${prefixLength}`};
}

function parseIp(value: string): IpAddress | undefined {
  const family = isIP(value);
  if (family === 4) return {address: value, family};
  if (family !== 6) return undefined;
  // Canonical form (lowercase, longest zero run compressed), so that one address written two ways compares equal
  // and matches the sender addresses the kernel reports. A zone (fe80::1%eth0) is kept as written.
  const zoneAt = value.indexOf('%');
  const bare = zoneAt === -1 ? value : value.slice(0, zoneAt);
  const zone = zoneAt === -1 ? '' : value.slice(zoneAt);
  return {address: new URL(`http://[${bare}]/`).hostname.slice(1, -1) + zone, family};
}

/** The address as an integer; IPv6 in the canonical form of parseIp, which has no dotted IPv4 tail. */
function addressBits(ip: IpAddress): bigint {
  if (ip.family === 4) return ip.address.split('.').reduce((bits, octet) => (bits << 8n) | BigInt(octet), 0n);
  const [head = '', tail] = ip.address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined
    ? headGroups
    : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(`0x${group}`), 0n);
}

// ---- reading the YAML tree ----

type Value = Scalar | YAMLMap | YAMLSeq | Alias;

/** One key of the file, found or absent. */
interface Field {
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
class Section {
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
class Reader {
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

/** A value for a message: single-quoted, control characters escaped, long text cut. */
function quote(value: string): string {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  const escaped = shown.replace(/[\\'\p{Cc}]/gu,
    (char) => char === '\\' || char === '\'' ? `\\${char}` : escapeChar(char));
  return `'${escaped}'`;
}

function describeChar(char: string): string {
  return /\p{Cc}|\s/u.test(char) ? `the character ${escapeChar(char)}` : `'${char}'`;
}

function escapeChar(char: string): string {
  return `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll('\'', '\'\\\'\'')}'`;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as {code?: unknown} | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'a directory, not a file',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

function describeFsError(error: unknown): string {
  const code = errorCode(error);
  const reason = code === undefined ? undefined : FS_REASONS[code];
  if (reason !== undefined) return `${reason}, ${code}`;
  return error instanceof Error ? error.message : String(error);
}

/** The candidate nearest to `name` by edit distance, if near enough to be a likely typo. */
function nearest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function editDistance(a: string, b: string): number {
  // d[i][j]: distance between the first i characters of a and the first j of b.
  const d = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => Math.max(i, j)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const above = d[i - 1]!;
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** Object.freeze all the way down; typed arrays (the secrets) cannot be frozen and are left as they are. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
