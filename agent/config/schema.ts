// YAML file → validated, frozen Config (snake_case keys → camelCase fields). All defaults live here.

import {readFile} from 'node:fs/promises';
import {isSeq} from 'yaml';
import {COMBINED, type LogFormat} from '../access-log.js';
import {BatonError} from '../errors.js';
import {DEFAULT_STATUSES, type StatusRange} from '../request-evidence.js';
import {isInSubnet, parseIpAddress, parseSubnet, type Subnet, zoneOf} from '../net/ip-address.js';
import type {Role, ServiceIp} from '../state-machine.js';
import {type EtcdCoordination, readCoordination, readServiceHosts} from './coordination.js';
import {readHealth, type HealthCheckSpec} from './health-checks.js';
import {describeFsError, errorCode} from './messages.js';
import {checkProgram, inspectProgramFile, type ProgramInspector} from './program-files.js';
import {readScriptUser, lookupLocalUser, type ScriptUser, type UserLookup} from './script-user.js';
import {readAcceptedKeys, readKey, readSecretFile, type Keyring, type SecretReader} from './secret-files.js';
import {
  ABSOLUTE_PATH, ADDRESS_OR_SUBNET, BEACON_ADDRESS, BOOLEAN, integer, INTERFACE_NAME, LISTEN_ENDPOINT, LOG_PATTERN, oneOf, PAIR_ID, PORT,
  SERVICE_CIDR, SERVICE_NAME, SOCKET_PATH, STATUS_RANGE, TEXT,
} from './value-specs.js';
import {type Field, type Reader, readYaml, type Section} from './yaml-reader.js';

export type ServiceMode = 'address' | 'link';
export type OnStop = 'keep' | 'release';
/**
 * What tells a datagram of the peer from a recording of one (docs/security.md, "Replay protection"). `clock`: its
 * sent-at is within max_clock_skew_ms of our wall clock. `acknowledged`: it acknowledges one of our own recent
 * datagrams, by our monotonic clock; the two hosts' clocks do not matter.
 */
export type ReplayProtection = 'clock' | 'acknowledged';
export const REPLAY_PROTECTIONS: readonly ReplayProtection[] = ['clock', 'acknowledged'];

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** What both modes read: where the agent keeps its state and socket, its checks, hooks and metrics. */
export interface CommonConfig {
  /** The file this came from, for messages. */
  readonly file: string;
  readonly onStop: OnStop;
  readonly stateDir: string;
  readonly controlSocket: string;
  readonly health: Config['health'];
  readonly metrics: Config['metrics'];
  readonly scriptUser: ScriptUser | undefined;
  readonly hooks: Config['hooks'];
}

/** A host in etcd mode (coordination.mode: etcd): no peer, no beacons; etcd's lease decides who holds each service. */
export interface EtcdConfig extends CommonConfig {
  /** The services this host may hold, each under its own key: one (the file's `pair` and `service`) or several
   *  (its `services` list), in the file's order. */
  readonly services: readonly EtcdService[];
  /** The drain of a planned switch, as a pair's, for every service of the file (the giver's own addresses go into its
   *  presence value). */
  readonly drain: Config['drain'];
  readonly coordination: EtcdCoordination;
}

/** One service of an etcd host: its address, its confirmation, and the hosts that may hold it. */
export interface EtcdService {
  /** Names its key in etcd: `<prefix>services/<name>/holder`. */
  readonly name: string;
  readonly service: Config['service'];
  /** The confirmation of a planned switch of this service to this host. */
  readonly confirm: Config['confirm'];
  /** The hosts that may hold it, in order of preference: its own `hosts`, or coordination.hosts. This host is one. */
  readonly hosts: readonly string[];
  /** Where its keys are in the file, for messages: `services[1]`; undefined for the file's own `pair` and `service`. */
  readonly place: string | undefined;
}

/** Either mode's config, told apart by coordination.mode. */
export type AnyConfig = Config | EtcdConfig;

/** A host of a pair (coordination.mode: pair, the default). */
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
    /** The first of `ips`: the address messages name first, and the only one of a single-stack service. */
    readonly ip: ServiceIp;
    /** Every address of the service, in the config's order: one, or an IPv4 and an IPv6 address (dual stack) that
     *  move together, in the same steps. */
    readonly ips: readonly ServiceIp[];
    readonly interface: string;
    readonly mode: ServiceMode;
  };
  readonly heartbeat: {
    readonly intervalMs: number;
    readonly deadAfterMs: number;
    readonly replayProtection: ReplayProtection;
    /** With replay_protection clock: datagrams whose sent-at differs from our wall clock by more are rejected as
     *  stale or future. Not read with acknowledged. */
    readonly maxClockSkewMs: number;
  };
  readonly confirm: {
    readonly accessLog: string | undefined;
    readonly minRequests: number;
    readonly timeoutS: number;
    /** The statuses a request must have to count (default 2xx and 3xx). */
    readonly statuses: readonly StatusRange[];
    readonly logFormat: LogFormat;
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
  /** The drain of a planned switch (address mode): connections open at the move finish on the giver. */
  readonly drain: {
    readonly enabled: boolean;
    /** Run on the giver when connections are still open graceful_after_s into the drain: tells its web server to
     *  finish gracefully. */
    readonly graceful: {readonly path: string; readonly args: readonly string[]} | undefined;
    /** How long the giver's connections get to end by themselves before the graceful command runs. */
    readonly gracefulAfterS: number;
    /** How long the giver's connections may take to finish before the rest are cut (and counted). */
    readonly timeoutS: number;
  };
  /** The rehearsal aids (fail-active, drop-link, switchover --pause-after): off unless this pair is for rehearsing. */
  readonly rehearsal: {
    readonly enabled: boolean;
  };
  /** The Prometheus endpoint (HTTP GET /metrics): off unless enabled. */
  readonly metrics: {
    readonly enabled: boolean;
    readonly listen: Endpoint;
    /** Who may scrape besides loopback; also what `baton install` adds to the unit's IPAddressAllow=. */
    readonly allowFrom: readonly Subnet[];
  };
  /** Who the hook and command checks run as; undefined when the config names no such program. */
  readonly scriptUser: ScriptUser | undefined;
  /** Who decides which host holds the service: here the pair's beacons (an etcd config is an EtcdConfig). */
  readonly coordination: {readonly mode: 'pair'};
  readonly hooks: {
    /** Absolute path of the program run as `path oldState newState reason` on each state change. */
    readonly onStateChange: string | undefined;
    readonly timeoutMs: number;
  };
}


export const DEFAULT_CONFIG_FILE = '/etc/baton/baton.yaml';

// The beacon port; systemd/baton-agent.service allows binding this one only (SocketBindAllow=).
export const DEFAULT_PORT = 7411;
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
// clock stays the default: an agent upgraded with its old file keeps the liveness rules it had (a one-way path or a
// peer that acknowledges nothing still counts as alive by its clock). acknowledged is the choice to make once both
// hosts run this version and their path carries beacons both ways (docs/security.md, "Replay protection").
export const DEFAULT_REPLAY_PROTECTION: ReplayProtection = 'clock';
export const DEFAULT_MIN_REQUESTS = 3;
export const DEFAULT_CONFIRM_TIMEOUT_S = 30;
const DEFAULT_STATE_DIR = '/var/lib/baton';
export const DEFAULT_CONTROL_SOCKET = '/run/baton/control.sock';
// A notify script sends a mail or a chat message: 5 s covers a slow SMTP or HTTP round trip.
export const DEFAULT_HOOK_TIMEOUT_MS = 5_000;
const MIN_HOOK_TIMEOUT_MS = 100;
const MAX_HOOK_TIMEOUT_MS = 600_000;

// A download of a few MB over a slow mobile link takes tens of seconds; a minute lets most finish, and the
// operator waits for "free to upgrade" no longer than that.
export const DEFAULT_DRAIN_TIMEOUT_S = 60;
// A web server closing an idle keep-alive connection races with the client's next request on it (a reset); one that
// ends a connection by answering "Connection: close" does not. Apache's defaults end busy connections within 100
// requests and idle ones within 5 s, so most connections are gone by themselves before the graceful command runs.
export const DEFAULT_GRACEFUL_AFTER_S = 5;
// Off by default: on a production pair, whoever reaches the control socket (or holds the key) must not be able to
// cut the service link or hold a switch half-way; a pair set up for rehearsing says so.
export const DEFAULT_REHEARSAL_ENABLED = false;

// Off by default: an open port is the operator's choice. On, it listens on loopback (a Prometheus or an agent on the
// host itself scrapes it), next to the beacon port: 7412 is TCP, the beacons' 7411 UDP.
export const DEFAULT_METRICS_ENABLED = false;
export const DEFAULT_METRICS_LISTEN: Endpoint = {address: '127.0.0.1', port: 7412};

const TOP_KEYS = [
  'pair', 'node', 'listen', 'peer', 'secret_file', 'accept_secret_files', 'service', 'heartbeat', 'confirm',
  'drain', 'on_stop', 'state_dir', 'control_socket', 'health', 'hooks', 'rehearsal', 'metrics', 'script_user',
  'coordination', 'services',
] as const;
// An item of an etcd host's `services` list: a service section's keys, and its name, hosts and confirmation.
const SERVICE_ITEM_KEYS = ['name', 'address', 'interface', 'mode', 'hosts', 'confirm'] as const;
const DRAIN_KEYS = ['enabled', 'graceful_command', 'graceful_after_s', 'timeout_s'] as const;
const GRACEFUL_KEYS = ['path', 'args'] as const;
const ENDPOINT_KEYS = ['address', 'port'] as const;
const SERVICE_KEYS = ['address', 'interface', 'mode'] as const;
const HEARTBEAT_KEYS = ['interval_ms', 'dead_after_ms', 'replay_protection', 'max_clock_skew_ms'] as const;
const CONFIRM_KEYS = ['access_log', 'min_requests', 'timeout_s', 'statuses', 'log_format', 'log_pattern'] as const;
const HOOKS_KEYS = ['on_state_change', 'timeout_ms'] as const;
const REHEARSAL_KEYS = ['enabled'] as const;
const METRICS_KEYS = ['enabled', 'listen', 'allow_from'] as const;

/**
 * Reads, validates and freezes the config file. Throws BatonError CONFIG_INVALID, listing every problem at once
 * (file, line, key, the value found and what is expected), when the file or a secret file is missing, unreadable
 * or wrong.
 */
export async function loadConfig(file: string): Promise<Config> {
  return pairOnly(await loadAnyConfig(file));
}

/** loadConfig for either mode: what the agent and check-config read. */
export async function loadAnyConfig(file: string): Promise<AnyConfig> {
  return parseAnyConfig(await readConfigText(file), file, readSecretFile, inspectProgramFile);
}

/** Whether a config is etcd mode's (the discriminant is nested, which TypeScript does not narrow on by itself). */
export function isEtcdConfig(config: AnyConfig): config is EtcdConfig {
  return config.coordination.mode === 'etcd';
}

/** A pair's config; an etcd one is refused (CONFIG_INVALID) by what needs a pair: the lab, install's drop-in. */
export function pairOnly(config: AnyConfig): Config {
  if (!isEtcdConfig(config)) return config;
  throw new BatonError('CONFIG_INVALID', `${config.file}: coordination.mode is etcd, and this works with a pair's config ` +
    '(coordination.mode: pair) only');
}

/** The text of a config file. Throws BatonError CONFIG_INVALID naming the file, why it cannot be read and the fix. */
export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const hint = errorCode(error) === 'ENOENT' ? '; create it (`baton install` writes one) or pass --config FILE' : '';
    throw new BatonError('CONFIG_INVALID', `${file}: cannot read the config file: ${describeFsError(error)}${hint}`, {
      cause: error,
    });
  }
}

/**
 * The pure core of loadConfig: YAML text → frozen Config. `file` only names the source in messages and in
 * Config.file; secret files are read through `readSecret`, and the programs it names (hooks, command checks) are
 * looked at through `inspectProgram`, and script_user through `lookupUser` (default: /etc/passwd). Throws BatonError CONFIG_INVALID listing every problem.
 */
export function parseConfig(text: string, file: string, readSecret: SecretReader,
  inspectProgram: ProgramInspector, lookupUser: UserLookup = lookupLocalUser): Config {
  return pairOnly(parseAnyConfig(text, file, readSecret, inspectProgram, lookupUser));
}

/** parseConfig for either mode. */
export function parseAnyConfig(text: string, file: string, readSecret: SecretReader,
  inspectProgram: ProgramInspector, lookupUser: UserLookup = lookupLocalUser): AnyConfig {
  const inspected = inspectConfig(text, file, readSecret, inspectProgram, lookupUser);
  if (inspected.config === undefined) throw inspected.failure;
  return inspected.config;
}

/** One problem of the file, for a machine: its line, the key it is about (when it names one), the whole message. */
export interface FileProblem {
  readonly line: number;
  readonly key: string | undefined;
  /** `key: expected …, got …` as in the CONFIG_INVALID message, without the file and line. */
  readonly message: string;
}

/** What is known of a file with problems: every value that could be read (the rest undefined). */
export type ConfigDraft = ReturnType<typeof readConfig>;

/**
 * parseConfig without the throw: the frozen Config when the file is valid, else its problems one by one, the
 * CONFIG_INVALID error parseConfig would throw, and the draft of what could be read, so that checks of the host can
 * still look at the keys that are right (`baton check-config` reports every problem at once).
 */
export function inspectConfig(text: string, file: string, readSecret: SecretReader, inspectProgram: ProgramInspector,
  lookupUser: UserLookup = lookupLocalUser): {
  readonly config: AnyConfig | undefined; readonly draft: ConfigDraft | undefined; readonly problems: readonly FileProblem[];
  readonly failure: BatonError | undefined;
} {
  const reader = readYaml(text);
  // A syntax error leaves no tree worth reading.
  const draft = reader.problems.length > 0 ? undefined : readConfig(reader, file, readSecret, inspectProgram, lookupUser);
  if (reader.problems.length === 0) {
    // Every read that yields undefined has recorded a problem (except the optional access_log and on_state_change),
    // so with no problems the draft is complete.
    return {config: deepFreeze(draft as AnyConfig), draft, problems: [], failure: undefined};
  }
  const problems = reader.problems.toSorted((a, b) => a.line - b.line || (a.col ?? 0) - (b.col ?? 0))
    .map(({line, text: message}) => ({line, key: /^([A-Za-z_][\w.[\]]*): /.exec(message)?.[1], message}));
  return {config: undefined, draft, problems, failure: reader.failure(file)};
}

/**
 * service.address: one CIDR, or a list of two, an IPv4 and an IPv6 one (a dual-stack service). Each is checked as
 * one alone would be. Empty when the value as a whole has a problem; with a bad item, the good ones.
 */
function readServiceAddresses(reader: Reader, field: Field): {ip: ServiceIp; field: Field}[] {
  if (field.unusable || !isSeq(field.value)) {
    const ip = reader.required(field, SERVICE_CIDR);
    return ip === undefined ? [] : [{ip, field}];
  }
  const items = reader.list(field, SERVICE_CIDR, DUAL_STACK_WHAT) ?? [];
  if (items.length !== 2) {
    reader.expected(field, DUAL_STACK_WHAT, `${items.length} address${items.length === 1 ? '' : 'es'}: a single one is written without the list`);
    return [];
  }
  const read = items.flatMap((item) => item.value === undefined ? [] : [{ip: item.value, field: item.field}]);
  // The good ones still get the checks across keys, so that every problem is reported at once.
  if (read.length !== items.length) return read;
  const [first, second] = read as [{ip: ServiceIp; field: Field}, {ip: ServiceIp; field: Field}];
  if (first.ip.family === second.ip.family) {
    reader.expected(field, DUAL_STACK_WHAT, `both are IPv${first.ip.family} addresses; a service moves one address of each family`);
    return [];
  }
  return read;
}

const DUAL_STACK_WHAT = 'one address like 192.0.2.100/24, or a list of two, one IPv4 and one IPv6, like [192.0.2.100/24, 2001:db8::100/64]';

function readConfig(reader: Reader, file: string, readSecret: SecretReader, inspectProgram: ProgramInspector,
  lookupUser: UserLookup) {
  const top = reader.root(TOP_KEYS);
  const coordination = readCoordination(reader, top.field('coordination'), readSecret);
  if (coordination?.mode === 'etcd') return readEtcdConfig(reader, top, file, coordination, inspectProgram, lookupUser);
  const servicesField = top.field('services');
  if (servicesField.value !== undefined && servicesField.value !== null) {
    reader.expected(servicesField, 'nothing', 'a pair moves one service (its `service` section); several services on one set of ' +
      'hosts are for coordination.mode: etcd');
  }
  // Absent keys are all reported at their mapping's line; reading pair and node first lists them first there.
  const pair = reader.required(top.field('pair'), PAIR_ID);
  const node = reader.required(top.field('node'), oneOf(['primary', 'backup'] as const));

  const listen = reader.section(top.field('listen'), ENDPOINT_KEYS, 'a mapping like {address: 192.0.2.11, port: 7411}');
  const listenAddressField = listen.field('address');
  const listenAddress = reader.required(listenAddressField, BEACON_ADDRESS);
  const peer = reader.section(top.field('peer'), ENDPOINT_KEYS, 'a mapping like {address: 192.0.2.12, port: 7411}');
  const peerAddressField = peer.field('address');
  const peerAddress = reader.required(peerAddressField, BEACON_ADDRESS);
  if (listenAddress !== undefined && peerAddress !== undefined) {
    if (listenAddress.address === peerAddress.address) {
      reader.expected(peerAddressField, 'an address other than listen.address', 'a host cannot be its own peer');
    } else if (listenAddress.family !== peerAddress.family) {
      reader.expected(peerAddressField, `an IPv${listenAddress.family} address like listen.address`,
        'heartbeats go from listen.address to peer.address');
    } else if (zoneOf(listenAddress) !== zoneOf(peerAddress)) {
      // The kernel sends from a link-local address only on its own link, and to one only on the link its zone names.
      const zone = zoneOf(listenAddress);
      reader.expected(peerAddressField, zone === undefined ? 'a global address like listen.address'
        : `a link-local address on listen.address's link, like fe80::12%${zone}`,
      'heartbeats go from listen.address to peer.address over one link');
    }
  }

  const service = readService(reader, top.field('service'));
  const serviceAddresses = service.addresses;
  for (const {ip: serviceIp, field} of serviceAddresses) {
    for (const [key, other] of [['listen.address', listenAddress], ['peer.address', peerAddress]] as const) {
      if (other?.address === serviceIp.address) {
        reader.expected(field, `an address other than ${key}`,
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

  const replayProtection = reader.optional(heartbeat.field('replay_protection'), oneOf(REPLAY_PROTECTIONS),
    DEFAULT_REPLAY_PROTECTION);
  const skewField = heartbeat.field('max_clock_skew_ms');
  const maxClockSkewMs = reader.optional(skewField, integer(100, 3_600_000), DEFAULT_MAX_CLOCK_SKEW_MS);
  if (replayProtection === 'acknowledged' && skewField.value !== undefined && skewField.value !== null) {
    // Silently ignoring it would let an operator believe the window still applies.
    reader.expected(skewField, 'nothing', 'the clocks are not compared with heartbeat.replay_protection: acknowledged; remove it');
  }


  const secretFileField = top.field('secret_file');
  const secretFile = reader.optional(secretFileField, ABSOLUTE_PATH, DEFAULT_SECRET_FILE);
  const signing = secretFile === undefined ? undefined : readKey(reader, secretFileField, secretFile, readSecret);
  const accepted = readAcceptedKeys(reader, top.field('accept_secret_files'), secretFile, readSecret);

  const health = readHealth(reader, top.field('health'), inspectProgram);
  const hooks = readHooks(reader, top.field('hooks'), inspectProgram);
  const runsPrograms = hooks.onStateChange !== undefined || (health.checks ?? []).some((c) => c?.kind === 'command');

  return {
    file,
    pair,
    node,
    listen: {address: listenAddress?.address, port: reader.optional(listen.field('port'), PORT, DEFAULT_PORT)},
    peer: {address: peerAddress?.address, port: reader.optional(peer.field('port'), PORT, DEFAULT_PORT)},
    secretFile,
    acceptSecretFiles: accepted.files,
    keyring: {signing, accepted: [signing, ...accepted.keys]},
    service: service.value,
    heartbeat: {
      intervalMs,
      deadAfterMs,
      replayProtection,
      maxClockSkewMs,
    },
    confirm: readConfirm(reader, top.field('confirm')),
    drain: readDrain(reader, top.field('drain'), inspectProgram),
    onStop: reader.optional(top.field('on_stop'), oneOf(['keep', 'release'] as const), 'keep'),
    stateDir: reader.optional(top.field('state_dir'), ABSOLUTE_PATH, DEFAULT_STATE_DIR),
    controlSocket: reader.optional(top.field('control_socket'), SOCKET_PATH, DEFAULT_CONTROL_SOCKET),
    health,
    hooks,
    rehearsal: readRehearsal(reader, top.field('rehearsal')),
    metrics: readMetrics(reader, top.field('metrics')),
    coordination: coordination === undefined ? undefined : {mode: 'pair' as const},
    scriptUser: readScriptUser(reader, top.field('script_user'), runsPrograms, lookupUser),
  };
}

/** The confirmation of a planned switch: requests in the taker's access log. */
function readConfirm(reader: Reader, field: Field) {
  const confirm = reader.section(field, CONFIRM_KEYS, 'a mapping like {min_requests: 3, timeout_s: 30}', false);
  return {
    accessLog: reader.optional(confirm.field('access_log'), ABSOLUTE_PATH, undefined),
    minRequests: reader.optional(confirm.field('min_requests'), integer(1, 1_000_000), DEFAULT_MIN_REQUESTS),
    timeoutS: reader.optional(confirm.field('timeout_s'), integer(1, 3600), DEFAULT_CONFIRM_TIMEOUT_S),
    statuses: readStatuses(reader, confirm.field('statuses')),
    logFormat: readLogFormat(reader, confirm.field('log_format'), confirm.field('log_pattern')),
  };
}

/** The service section, as both modes read it; its addresses with their fields, for checks across keys. */
function readService(reader: Reader, field: Field) {
  return readServiceKeys(reader, reader.section(field, SERVICE_KEYS, 'a mapping like {address: 192.0.2.100/24, interface: eth0}'));
}

/** A service's address, interface and mode, from a service section or an item of etcd mode's `services` list. */
function readServiceKeys(reader: Reader, service: Section) {
  const addresses = readServiceAddresses(reader, service.field('address'));
  const ips = addresses.map((a) => a.ip);
  return {
    addresses,
    value: {
      ip: ips[0],
      ips,
      interface: reader.required(service.field('interface'), INTERFACE_NAME),
      mode: reader.optional(service.field('mode'), oneOf(['address', 'link'] as const), 'address'),
    },
  };
}

// What only a pair reads: its peer, its beacons and their secret, and the rehearsal aids, which etcd mode does not run
// yet. Refused in etcd mode rather than ignored: an operator must not
// believe a key is in force when it is not.
export const PAIR_ONLY_KEYS = [
  'node', 'listen', 'peer', 'secret_file', 'accept_secret_files', 'heartbeat', 'rehearsal',
] as const;

/** A host in etcd mode: the keys both modes share, and the coordination section already read. */
function readEtcdConfig(reader: Reader, top: ReturnType<Reader['root']>, file: string,
  coordination: Extract<NonNullable<ReturnType<typeof readCoordination>>, {mode: 'etcd'}>, inspectProgram: ProgramInspector,
  lookupUser: UserLookup) {
  for (const key of PAIR_ONLY_KEYS) {
    const given = top.field(key);
    if (given.value !== undefined && given.value !== null) {
      reader.expected(given, 'nothing', 'read only with coordination.mode: pair; in etcd mode etcd decides who holds the service');
    }
  }
  const services = readEtcdServices(reader, top, coordination);
  const onStopField = top.field('on_stop');
  const onStop = reader.optional(onStopField, oneOf(['keep', 'release'] as const), 'release');
  if (onStop === 'keep') {
    reader.expected(onStopField, 'release', 'with coordination.mode: etcd an agent that stops renews its lease no more, and ' +
      'another host takes the service when it expires: a kept address would then be on two hosts');
  }
  const health = readHealth(reader, top.field('health'), inspectProgram);
  const hooks = readHooks(reader, top.field('hooks'), inspectProgram);
  const runsPrograms = hooks.onStateChange !== undefined || (health.checks ?? []).some((c) => c?.kind === 'command');
  const metrics = readMetrics(reader, top.field('metrics'));
  if (metrics.enabled === true) {
    reader.expected(top.field('metrics'), 'nothing, or {enabled: false}', 'an agent in etcd mode has no metrics yet');
  }
  return {
    file,
    services,
    drain: readDrain(reader, top.field('drain'), inspectProgram),
    onStop,
    stateDir: reader.optional(top.field('state_dir'), ABSOLUTE_PATH, DEFAULT_STATE_DIR),
    controlSocket: reader.optional(top.field('control_socket'), SOCKET_PATH, DEFAULT_CONTROL_SOCKET),
    health,
    hooks,
    metrics,
    coordination,
    scriptUser: readScriptUser(reader, top.field('script_user'), runsPrograms, lookupUser),
  };
}

const SERVICES_WHAT = 'a list of services like [{name: shop, address: 192.0.2.100/24, interface: eth0}, ' +
  '{name: blog, address: 192.0.2.101/24, interface: eth0, hosts: [web-b, web-a]}]';

/**
 * An etcd host's services: the file's `pair`, `service` and `confirm` (one service, held by coordination.hosts in
 * their order), or its `services` list, never both. Names and addresses are each the only one of their kind.
 */
function readEtcdServices(reader: Reader, top: ReturnType<Reader['root']>,
  coordination: Extract<NonNullable<ReturnType<typeof readCoordination>>, {mode: 'etcd'}>) {
  const listField = top.field('services');
  if (listField.value === undefined || listField.value === null) {
    return [{
      name: reader.required(top.field('pair'), PAIR_ID),
      service: readService(reader, top.field('service')).value,
      confirm: readConfirm(reader, top.field('confirm')),
      hosts: coordination.hosts,
      place: undefined,
    }];
  }
  for (const key of ['pair', 'service', 'confirm'] as const) {
    const given = top.field(key);
    if (given.value !== undefined && given.value !== null) {
      reader.expected(given, 'nothing', `with a \`services\` list each service has its own ${key === 'pair' ? 'name' : key}`);
    }
  }
  const items = reader.items(listField, SERVICES_WHAT) ?? [];
  if (items.length === 0 && !listField.unusable) reader.expected(listField, SERVICES_WHAT, 'an empty list');
  const names = new Map<string, Field>();
  const addresses = new Map<string, string>();
  return items.map((item) => {
    const section = reader.section(item, SERVICE_ITEM_KEYS, 'a mapping like {name: shop, address: 192.0.2.100/24, interface: eth0}');
    const nameField = section.field('name');
    const name = reader.required(nameField, SERVICE_NAME);
    if (name !== undefined) {
      if (names.has(name)) reader.expected(nameField, 'a name no other service has', `${name} is already the name of ${names.get(name)?.path}`);
      else names.set(name, item);
    }
    const service = readServiceKeys(reader, section);
    for (const {ip, field} of service.addresses) {
      const other = addresses.get(ip.address);
      if (other !== undefined) reader.expected(field, 'an address no other service has', `${ip.address} is already ${other}'s`);
      else addresses.set(ip.address, name ?? item.path);
    }
    return {
      name,
      service: service.value,
      confirm: readConfirm(reader, section.field('confirm')),
      hosts: readServiceHosts(reader, section.field('hosts'), coordination.host, coordination.hosts),
      place: item.path,
    };
  });
}

function readRehearsal(reader: Reader, field: Field) {
  const rehearsal = reader.section(field, REHEARSAL_KEYS, 'a mapping like {enabled: true}', false);
  return {enabled: reader.optional(rehearsal.field('enabled'), BOOLEAN, DEFAULT_REHEARSAL_ENABLED)};
}
function readMetrics(reader: Reader, field: Field) {
  const metrics = reader.section(field, METRICS_KEYS, 'a mapping like {enabled: true, listen: 127.0.0.1:7412}', false);
  const enabled = reader.optional(metrics.field('enabled'), BOOLEAN, DEFAULT_METRICS_ENABLED);
  const listenField = metrics.field('listen');
  const listen = reader.optional(listenField, LISTEN_ENDPOINT, DEFAULT_METRICS_LISTEN);
  const allowField = metrics.field('allow_from');
  const allowFrom = (reader.list(allowField, ADDRESS_OR_SUBNET, 'a list like [192.0.2.50, 198.51.100.0/24]') ?? [])
    .flatMap(({value}) => value === undefined ? [] : [value]);
  const allowGiven = allowField.value !== undefined && allowField.value !== null;
  if (enabled === false) {
    // Silently ignoring them would let an operator believe the endpoint is up.
    for (const given of [listenField, allowField]) {
      if (given.value !== undefined && given.value !== null) reader.expected(given, 'nothing', 'read only with metrics.enabled: true');
    }
  } else if (enabled === true && listen !== undefined) {
    const ip = parseIpAddress(listen.address);
    const loopback = ip !== undefined && LOOPBACK.some((subnet) => isInSubnet(ip, subnet));
    // 0.0.0.0 and :: listen on every address, loopback among them.
    const everywhere = listen.address === '0.0.0.0' || listen.address === '::';
    if (loopback && allowFrom.length > 0) {
      reader.expected(allowField, 'nothing', `metrics.listen ${listen.address} is loopback, which no other host can reach; ` +
        'listen on an address of this host to be scraped from elsewhere');
    } else if (!loopback && !everywhere && !allowGiven) {
      reader.expected(allowField, 'the addresses or subnets of the hosts that scrape', `metrics.listen ${listen.address} is not ` +
        'loopback, and only loopback and metrics.allow_from may scrape: nobody could');
    }
  }
  return {enabled, listen, allowFrom};
}

// What may always scrape: a Prometheus or an exporter on this host.
const LOOPBACK = [parseSubnet('127.0.0.0', 8), parseSubnet('::1', 128)].filter((subnet) => subnet !== undefined);

function readStatuses(reader: Reader, field: Field): readonly StatusRange[] {
  if (field.value === undefined || field.value === null) return DEFAULT_STATUSES;
  const items = reader.list(field, STATUS_RANGE, 'a list like [2xx, 3xx]') ?? [];
  if (items.length === 0 && !field.unusable) reader.expected(field, 'at least one status, like [2xx, 3xx]');
  return items.flatMap(({value}) => value === undefined ? [] : [value]);
}

function readLogFormat(reader: Reader, formatField: Field, patternField: Field): LogFormat {
  const kind = reader.optional(formatField, oneOf(['combined', 'vhost_combined', 'pattern'] as const), 'combined');
  const pattern = reader.optional(patternField, LOG_PATTERN, undefined);
  if (kind === 'pattern') {
    if (pattern === undefined && (patternField.value === undefined || patternField.value === null)) {
      reader.expected(patternField, LOG_PATTERN.what, 'confirm.log_format is pattern');
    }
    return pattern === undefined ? COMBINED : {kind: 'pattern', pattern};
  }
  if (pattern !== undefined) reader.expected(patternField, 'nothing', 'it is read only with log_format: pattern');
  return kind === 'vhost_combined' ? {kind: 'vhost_combined'} : COMBINED;
}

function readDrain(reader: Reader, field: Field, inspectProgram: ProgramInspector) {
  const drain = reader.section(field, DRAIN_KEYS, 'a mapping like {enabled: true, timeout_s: 60}', false);
  const gracefulField = drain.field('graceful_command');
  let graceful: {path: string; args: string[]} | undefined;
  if (gracefulField.value !== undefined && gracefulField.value !== null) {
    const command = reader.section(gracefulField, GRACEFUL_KEYS, 'a mapping like {path: /usr/sbin/nginx, args: [-s, reload]}');
    const pathField = command.field('path');
    const path = reader.required(pathField, ABSOLUTE_PATH);
    if (path !== undefined) checkProgram(reader, pathField, path, inspectProgram);
    const args = reader.list(command.field('args'), TEXT, 'a list of arguments, like [-s, reload]');
    if (path !== undefined && args !== undefined) graceful = {path, args: args.map(({value}) => value as string)};
  }
  const timeoutS = reader.optional(drain.field('timeout_s'), integer(1, 3600), DEFAULT_DRAIN_TIMEOUT_S);
  const gracefulAfterField = drain.field('graceful_after_s');
  const gracefulAfterS = reader.optional(gracefulAfterField, integer(0, 3600), DEFAULT_GRACEFUL_AFTER_S);
  if (timeoutS !== undefined && gracefulAfterS !== undefined && gracefulAfterField.value !== undefined && gracefulAfterS > timeoutS) {
    reader.expected(gracefulAfterField, `an integer 0..${timeoutS}`, `drain.timeout_s is ${timeoutS}: the graceful command would never run`);
  }
  return {enabled: reader.optional(drain.field('enabled'), BOOLEAN, true), graceful, gracefulAfterS, timeoutS};
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
// The lower bound is the least dead_after_ms that any interval_ms allows; the real bound depends on interval_ms.
const DEAD_AFTER_MS = integer(MIN_DEAD_AFTER_INTERVALS * MIN_INTERVAL_MS, MAX_DEAD_AFTER_MS);

/** Object.freeze all the way down; typed arrays (the secrets) cannot be frozen and are left as they are. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
