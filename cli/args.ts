// Command-line parsing for `baton` (node:util parseArgs): a Command, or a UsageError of one line that says what is
// wrong and, for a misspelt command or option, what was meant. The help texts are in help.ts.

import {isAbsolute} from 'node:path';
import {parseArgs, type ParseArgsOptionsConfig} from 'node:util';
import {DEFAULT_CONFIG_FILE} from '../agent/config/schema.js';
import type {SwitchoverOptions} from '../agent/control-protocol.js';
import {parseHostCidr, parseIpAddress} from '../agent/net/ip-address.js';
import {SWITCH_STEP_NAMES} from '../agent/plans/plans.js';
import {LAB_PREFIX_PATTERN, LAB_PREFIX_STEM} from './lab/topology-plan.js';
import type {CheckConfigOptions} from './commands/check-config.js';
import type {InstallOptions} from './commands/install.js';
import type {UninstallOptions} from './commands/uninstall.js';

export type Command =
  /** `baton --help`, `baton help`: every command; `baton help NAME`, `baton NAME --help`: that one alone. */
  | {readonly name: 'help'; readonly command?: CommandName}
  | {readonly name: 'version'}
  | {readonly name: 'status'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'switchover'; readonly config: string; readonly socket: string | undefined; readonly json: boolean; readonly options: SwitchoverOptions}
  | {readonly name: 'resume'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'drain'; readonly config: string; readonly socket: string | undefined; readonly json: boolean; readonly host: string}
  | {readonly name: 'rehearse'; readonly config: string; readonly socket: string | undefined; readonly json: boolean;
      readonly withFailure: boolean; readonly report: string; readonly url: string | undefined; readonly intervalMs: number;
      readonly client: string | undefined; readonly sshConfig: string | undefined; readonly clientBaton: string}
  | ({readonly name: 'check-config'} & CheckConfigOptions)
  | {readonly name: 'lab'; readonly action: LabAction; readonly json: boolean; readonly web: 'builtin' | 'nginx'; readonly report: string;
      /** lab up, lab run: an IPv6 service address, beacons and client instead of IPv4 ones. */
      readonly ipv6: boolean;
      /** lab up, lab run: a dual-stack service (an IPv4 and an IPv6 address moving together), beacons in IPv4. */
      readonly dualStack: boolean; readonly lab?: string;
      /** lab up, lab run: three hosts in etcd mode with three etcd members, instead of a pair (--hosts 3 --coordination etcd). */
      readonly coordination: 'pair' | 'etcd';
      /** lab up, lab run: the start of the lab's name ("bl" and up to 5 more), the rest random. */
      readonly prefixStem?: string}
  | ({readonly name: 'install'} & InstallOptions)
  | ({readonly name: 'uninstall'} & UninstallOptions);

export type LabAction = 'up' | 'status' | 'down' | 'run';
const LAB_ACTIONS: readonly LabAction[] = ['up', 'status', 'down', 'run'];
export const COMMAND_NAMES = ['status', 'switchover', 'resume', 'drain', 'rehearse', 'check-config', 'lab', 'install', 'uninstall'] as const;
export type CommandName = typeof COMMAND_NAMES[number];
// Both hosts of a pair get the same id when nobody names one.
const DEFAULT_PAIR = 'web';
/**
 * The commands that use each option; anywhere else it is refused, never ignored: `baton status --purge`,
 * `baton install --config X` (which writes /etc/baton/baton.yaml all the same) are mistakes worth naming.
 */
const OPTIONS_OF: Readonly<Record<string, readonly string[]>> = {
  'config': ['status', 'switchover', 'resume', 'drain', 'rehearse', 'check-config'],
  'socket': ['status', 'switchover', 'resume', 'drain', 'rehearse'],
  'json': ['status', 'switchover', 'resume', 'drain', 'rehearse', 'check-config', 'lab'], 'file-only': ['check-config'],
  'role': ['install'], 'listen': ['install'], 'peer': ['install'], 'service-ip': ['install'], 'interface': ['install'],
  'pair': ['install'], 'access-log': ['install'], 'secret-from': ['install'], 'force': ['install', 'uninstall'],
  'keep-config': ['install'], 'skip-host-check': ['install'], 'root': ['install', 'uninstall'], 'purge': ['uninstall'],
  'dry-run': ['switchover', 'install'], 'strict': ['switchover'], 'min-requests': ['switchover'], 'confirm-timeout': ['switchover'],
  'pause-after': ['switchover'], 'to': ['switchover'], 'service': ['switchover'], 'web': ['lab'], 'ipv6': ['lab'], 'dual-stack': ['lab'], 'hosts': ['lab'], 'coordination': ['lab'], 'prefix': ['lab'], 'report': ['lab', 'rehearse'], 'with-failure': ['rehearse'], 'url': ['rehearse'],
  'interval-ms': ['rehearse'], 'client': ['rehearse'], 'ssh-config': ['rehearse'], 'client-baton': ['rehearse'],
};
/** What an option would have been taken to do where it is refused, when that is not plain. */
const WHY_NOT: Readonly<Record<string, string>> = {
  'config install': ': install always writes /etc/baton/baton.yaml (the unit runs that file); --root DIR installs into another tree',
  'config uninstall': ': uninstall removes what install put in its fixed places',
  'config lab': ': the lab writes a config for each of its hosts',
};
/** lab's options, by the actions that use them. */
const LAB_OPTIONS: ReadonlyArray<[string, readonly LabAction[]]> = [
  ['json', ['status', 'run']], ['web', ['up', 'run']], ['ipv6', ['up', 'run']], ['dual-stack', ['up', 'run']], ['report', ['run']],
  ['hosts', ['up', 'run']], ['coordination', ['up', 'run']], ['prefix', ['up', 'run']],
];
/** The options that answer the config's questions: --keep-config keeps the installed answers instead. */
const ANSWER_OPTIONS = ['role', 'listen', 'peer', 'service-ip', 'interface', 'pair', 'access-log'] as const;
const DEFAULT_PAUSE_S = 10;
// On real hosts the client probes every 50 ms: the interval the DESIGN targets are stated for.
const DEFAULT_REHEARSE_INTERVAL_MS = 50;

export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** Whether the whole usage helps: no command or an unknown one. A bad option gets its error and a pointer only,
   *  so the one line that says what is wrong is not scrolled away by sixty lines of help. */
  readonly showUsage: boolean;

  constructor(message: string, options: {showUsage?: boolean} = {}) {
    super(message);
    this.showUsage = options.showUsage ?? false;
  }
}

/** The options `command` accepts: those of no particular command (--help, --version) and its own. */
export function optionsOf(command: string | undefined): string[] {
  return Object.keys(OPTIONS).filter((option) => {
    const owners = OPTIONS_OF[option];
    return owners === undefined || (command !== undefined && owners.includes(command));
  });
}

const OPTIONS = {
  config: {type: 'string'},
  socket: {type: 'string'},
  json: {type: 'boolean', default: false},
  'dry-run': {type: 'boolean', default: false},
  strict: {type: 'boolean', default: false},
  'min-requests': {type: 'string'},
  'confirm-timeout': {type: 'string'},
  'pause-after': {type: 'string'},
  to: {type: 'string'},
  service: {type: 'string'},
  web: {type: 'string'},
  ipv6: {type: 'boolean', default: false},
  'dual-stack': {type: 'boolean', default: false},
  hosts: {type: 'string'},
  coordination: {type: 'string'},
  prefix: {type: 'string'},
  report: {type: 'string'},
  'with-failure': {type: 'boolean', default: false},
  url: {type: 'string'},
  'interval-ms': {type: 'string'},
  client: {type: 'string'},
  'ssh-config': {type: 'string'},
  'client-baton': {type: 'string'},
  role: {type: 'string'},
  root: {type: 'string'},
  listen: {type: 'string'},
  peer: {type: 'string'},
  // Twice for a dual-stack service: one IPv4 and one IPv6 address (service.address as a list).
  'service-ip': {type: 'string', multiple: true},
  interface: {type: 'string'},
  pair: {type: 'string'},
  'access-log': {type: 'string'},
  'secret-from': {type: 'string'},
  force: {type: 'boolean', default: false},
  'keep-config': {type: 'boolean', default: false},
  'file-only': {type: 'boolean', default: false},
  'skip-host-check': {type: 'boolean', default: false},
  purge: {type: 'boolean', default: false},
  help: {type: 'boolean', short: 'h', default: false},
  version: {type: 'boolean', default: false},
} as const satisfies ParseArgsOptionsConfig;

/** Parses argv (without node and script). Throws UsageError with a message that says what is wrong. */
export function parseCommandLine(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw parserError(error as Error & {code?: string}, commandAsked(argv).name);
  }
  const {values, positionals} = parsed;
  const [name, ...rest] = positionals;
  if (name === 'help') return helpCommand(rest, values, true);
  if (values.help) return helpCommand(positionals, values, false);
  if (values.version) return {name: 'version'};
  const config = values.config ?? DEFAULT_CONFIG_FILE;
  for (const [option, commands] of Object.entries(OPTIONS_OF)) {
    const value = (values as Record<string, unknown>)[option];
    if (value !== undefined && value !== false && !commands.includes(name ?? '')) {
      throw new UsageError(`--${option} is an option of ${listWords(commands)}, not of ${name ?? 'baton alone'}` +
        (WHY_NOT[`${option} ${name ?? ''}`] ?? ''));
    }
  }
  switch (name) {
    case undefined:
      throw new UsageError('no command given', {showUsage: true});
    case 'status':
      noMore(name, rest);
      return {name, config, socket: values.socket, json: values.json};
    case 'switchover': {
      noMore(name, rest);
      // A dry run prints the plan after the preflight (so --strict applies) and moves nothing: nothing to confirm or hold.
      const unused = (['min-requests', 'confirm-timeout', 'pause-after'] as const).filter((option) => values[option] !== undefined);
      if (values['dry-run'] && unused.length > 0) {
        throw new UsageError(`${listOptions(unused)} ${unused.length === 1 ? 'does' : 'do'} nothing with --dry-run, which moves ` +
          'nothing: leave it out, or drop --dry-run');
      }
      return {
        name, config, socket: values.socket, json: values.json,
        options: {
          dryRun: values['dry-run'],
          strict: values.strict,
          minRequests: optionalInt('--min-requests', values['min-requests'], 1, 1_000_000),
          confirmTimeoutS: optionalInt('--confirm-timeout', values['confirm-timeout'], 1, 3600),
          pauseAfter: parsePause(values['pause-after']),
          ...values.to === undefined ? {} : {to: parseHostName(values.to, '--to')},
          ...values.service === undefined ? {} : {service: parseServiceName(values.service)},
        },
      };
    }
    case 'resume':
      noMore(name, rest);
      return {name, config, socket: values.socket, json: values.json};
    case 'drain': {
      if (rest.length !== 1) throw new UsageError(`drain takes one host (coordination.hosts), got ${rest.length === 0 ? 'none' : `'${rest.join(' ')}'`}`);
      return {name, config, socket: values.socket, json: values.json, host: parseHostName(rest[0] as string, 'drain')};
    }
    case 'rehearse': {
      noMore(name, rest);
      if (values.url !== undefined && !/^https?:\/\/\S+$/.test(values.url)) throw new UsageError(`--url: expected an http:// or https:// URL, got '${values.url}'`);
      const clientOnly = (['ssh-config', 'client-baton'] as const).filter((option) => values[option] !== undefined);
      if (values.client === undefined && clientOnly.length > 0) {
        throw new UsageError(`${listOptions(clientOnly)} ${clientOnly.length === 1 ? 'is' : 'are'} for --client HOST: without it this machine probes, and no ssh runs`);
      }
      return {
        name, config, socket: values.socket, json: values.json, withFailure: values['with-failure'], url: values.url,
        report: values.report ?? 'baton-rehearsal-report.html',
        intervalMs: optionalInt('--interval-ms', values['interval-ms'], 5, 1000) ?? DEFAULT_REHEARSE_INTERVAL_MS,
        client: sshHost(values.client), sshConfig: values['ssh-config'], clientBaton: values['client-baton'] ?? '/opt/baton',
      };
    }
    case 'check-config': {
      if (rest.length > 1) throw new UsageError(`check-config takes at most one file, got ${rest.length}`);
      if (rest[0] !== undefined && values.config !== undefined) {
        throw new UsageError(`check-config: give the file once, as --config ${values.config} or as ${rest[0]}, not both`);
      }
      return {name, file: rest[0] ?? config, json: values.json, fileOnly: values['file-only']};
    }
    case 'lab': {
      const [action, ...extra] = rest;
      if (action === undefined) throw new UsageError(`lab needs an action: ${LAB_ACTIONS.join(', ')}`);
      if (!(LAB_ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown lab action '${action}': expected ${LAB_ACTIONS.join(', ')}`);
      const lab = action === 'down' ? extra[0] : undefined;
      const more = action === 'down' ? extra.slice(1) : extra;
      if (action === 'down' && more.length > 0) throw new UsageError(`lab down takes at most one lab name, got '${extra.join(' ')}'`);
      noMore(`lab ${action}`, more);
      for (const [option, actions] of LAB_OPTIONS) {
        const value = (values as Record<string, unknown>)[option];
        if (value !== undefined && value !== false && !actions.includes(action as LabAction)) {
          throw new UsageError(`--${option} is an option of ${listWords(actions.map((used) => `lab ${used}`))}, not of lab ${action}`);
        }
      }
      if (lab !== undefined && !LAB_PREFIX_PATTERN.test(lab)) throw new UsageError(`lab down: expected a lab name such as bl3k9x0q, got '${lab}'`);
      if (values.ipv6 && values['dual-stack']) {
        throw new UsageError('--ipv6 and --dual-stack: expected one of them (--dual-stack moves an IPv4 and an IPv6 service address, with IPv4 beacons)');
      }
      const web = values.web ?? 'builtin';
      if (web !== 'builtin' && web !== 'nginx') throw new UsageError(`--web: expected builtin or nginx, got '${web}'`);
      const coordination = labCoordination(values.hosts, values.coordination);
      if (coordination === 'etcd' && (values.ipv6 || values['dual-stack'])) {
        throw new UsageError(`--coordination etcd: the etcd lab's service is IPv4 (192.0.2.100/25); leave out ${values.ipv6 ? '--ipv6' : '--dual-stack'}`);
      }
      const prefixStem = values.prefix;
      if (prefixStem !== undefined && !LAB_PREFIX_STEM.test(prefixStem)) {
        throw new UsageError(`--prefix: expected "bl" and at most 5 more lowercase letters or digits, got '${prefixStem}'`);
      }
      return {
        name, action: action as LabAction, json: values.json, web, report: values.report ?? 'baton-drill-report.html', ipv6: values.ipv6,
        dualStack: values['dual-stack'], coordination,
        ...(lab === undefined ? {} : {lab}), ...(prefixStem === undefined ? {} : {prefixStem}),
      };
    }
    case 'install': {
      noMore(name, rest);
      const root = parseRoot(values.root);
      const secretFrom = values['secret-from'];
      if (secretFrom === '') throw new UsageError('--secret-from: expected the path of a copy of the other host\'s secret file, got \'\'');
      if (values['keep-config']) {
        const given = ANSWER_OPTIONS.filter((option) => values[option] !== undefined);
        if (values.force) throw new UsageError('--force writes the config anew and --keep-config keeps it: give one of them');
        if (given.length > 0) {
          throw new UsageError(`--keep-config keeps the installed config, so ${listOptions(given)} would be ignored: ` +
            'leave them out, or use --force instead of --keep-config to write the config from them');
        }
        return {name, root, answers: undefined, secretFrom, force: false, dryRun: values['dry-run'], skipHostCheck: values['skip-host-check']};
      }
      const missing = (['role', 'listen', 'peer', 'service-ip', 'interface'] as const).filter((option) => values[option] === undefined);
      if (missing.length > 0) {
        throw new UsageError(`install needs ${listOptions(missing)} to write the config ` +
          '(or --keep-config to keep an installed one)');
      }
      const role = values.role;
      if (role !== 'primary' && role !== 'backup') throw new UsageError(`--role: expected primary or backup, got '${role}'`);
      const accessLog = values['access-log'];
      if (accessLog !== undefined && !isAbsolute(accessLog)) {
        throw new UsageError(`--access-log: expected an absolute path like /var/log/nginx/access.log, got '${accessLog}'`);
      }
      return {
        name, root, secretFrom, force: values.force, dryRun: values['dry-run'], skipHostCheck: values['skip-host-check'],
        answers: {
          node: role, pair: values.pair ?? DEFAULT_PAIR, listen: ipAddress('--listen', values.listen),
          peer: ipAddress('--peer', values.peer), serviceIps: serviceIps(values['service-ip'] ?? []), interface: values.interface ?? '', accessLog,
        },
      };
    }
    case 'uninstall':
      noMore(name, rest);
      return {name, root: parseRoot(values.root), purge: values.purge, force: values.force};
    default:
      throw unknownCommand(name);
  }
}

/**
 * --service-ip, once or twice: one address, or one IPv4 and one IPv6 address moving together (a dual-stack service),
 * as service.address takes them. Only the form and the families are checked here; a network or broadcast address is
 * left to the config check, which names the config key and the reason.
 */
function serviceIps(given: readonly string[]): string[] {
  if (given.length > 2) {
    throw new UsageError(`--service-ip: given ${given.length} times (${given.join(', ')}); a service has one address, or two ` +
      'moving together: give it once, or twice with one IPv4 and one IPv6 address');
  }
  const families = given.map((text) => {
    const cidr = parseHostCidr(text);
    if ('problem' in cidr && cidr.problem !== 'network-address' && cidr.problem !== 'broadcast-address') {
      throw new UsageError(`--service-ip: expected an address with its prefix length like 192.0.2.100/24, got '${text}'`);
    }
    return 'family' in cidr ? cidr.family : parseIpAddress(cidr.address)?.family;
  });
  if (given.length === 2 && families[0] === families[1]) {
    throw new UsageError(`--service-ip: ${given.join(' and ')} are both IPv${families[0] ?? '?'} addresses; a service moves one ` +
      'address of each family: give one IPv4 and one IPv6 address for a dual-stack service');
  }
  return [...given];
}

/**
 * `help [NAME]`: strict, as a command is. `[NAME …] --help`: NAME's help whatever follows it (`baton lab run --help`,
 * `baton switchover --strict --help`), since nothing runs; an unknown NAME is still named.
 */
function helpCommand(words: readonly string[], values: Readonly<Record<string, unknown>>, asWord: boolean): Command {
  const [topic, ...extra] = words;
  if (asWord) {
    const other = Object.keys(values).filter((option) => option !== 'help' && values[option] !== undefined && values[option] !== false);
    if (other.length > 0) throw new UsageError(`help takes a command's name and no option, got ${listOptions(other)}`);
    if (extra.length > 0) throw new UsageError(`help takes one command's name, got '${words.join(' ')}'`);
  }
  if (topic === undefined) return {name: 'help'};
  if (!isCommandName(topic)) throw unknownCommand(topic);
  return {name: 'help', command: topic};
}

export function isCommandName(name: string | undefined): name is CommandName {
  return (COMMAND_NAMES as readonly (string | undefined)[]).includes(name);
}

function unknownCommand(name: string): UsageError {
  const near = nearest(name, [...COMMAND_NAMES, 'help']);
  return new UsageError(`unknown command '${name}'${near === undefined ? '' : `; did you mean '${near}'?`}`, {showUsage: true});
}

/**
 * node:util's parse errors in baton's words: "unknown option --jsn for status; did you mean --json?" instead of
 * its advice about positionals after '--' (with an unclosed quote), and which option lacks its value.
 */
function parserError(error: Error & {code?: string}, command: string | undefined): UsageError {
  const quoted = /'(-[^' ]*)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted !== undefined) {
    const typed = quoted.replace(/^-+/, '');
    const known = isCommandName(command) ? command : undefined;
    const own = nearest(typed, optionsOf(known));
    const elsewhere = own === undefined ? nearest(typed, Object.keys(OPTIONS)) : undefined;
    const where = known === undefined ? '' : ` for ${known}`;
    const hint = own !== undefined ? `; did you mean --${own}?`
      : elsewhere !== undefined ? `; did you mean --${elsewhere} (an option of ${listWords(OPTIONS_OF[elsewhere] ?? ['baton'])})?`
        : known !== undefined ? `: \`baton help ${known}\` lists its options` : '';
    return new UsageError(`unknown option ${quoted}${where}${hint}`);
  }
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted !== undefined) {
    return new UsageError(/argument missing/.test(error.message) ? `${quoted} needs a value` : `${quoted} takes no value`);
  }
  return new UsageError(error.message);
}

/**
 * The candidate `typed` most likely meant: one it begins (3 letters or more), else the nearest within two edits
 * (a letter missing, extra, wrong, or two swapped), or undefined.
 */
export function nearest(typed: string, candidates: readonly string[]): string | undefined {
  if (typed.length >= 3) {
    const begun = candidates.find((candidate) => candidate.startsWith(typed));
    if (begun !== undefined) return begun;
  }
  let best: {candidate: string; distance: number} | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(typed, candidate);
    if (distance <= Math.min(2, Math.floor(candidate.length / 3)) && (best === undefined || distance < best.distance)) {
      best = {candidate, distance};
    }
  }
  return best?.candidate;
}

/** Damerau–Levenshtein distance, optimal string alignment: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * For a command line that parseCommandLine refused: the command it named, if any, and whether it asked for --json.
 * Status's usage errors are UNKNOWN to a monitoring system (exit 3), and JSON when JSON was asked for.
 */
export function commandAsked(argv: readonly string[]): {readonly name: string | undefined; readonly json: boolean} {
  const {values, positionals} = parseArgs({args: [...argv], options: OPTIONS, strict: false, allowPositionals: true});
  return {name: positionals[0], json: values.json === true};
}

function optionalInt(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got '${value}'`);
  }
  return Number(value);
}

function parseRoot(value: string | undefined): string {
  if (value === undefined) return '/';
  if (!isAbsolute(value)) throw new UsageError(`--root: expected an absolute directory like /mnt/target, got '${value}'`);
  // One spelling per directory: /mnt/target/ and /mnt/target are the same root, / is this system.
  return value.replace(/\/+$/, '') || '/';
}

/** `a`, `a and b`, `a, b and c`. */
function listWords(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/** `--a, --b and --c`. */
function listOptions(names: readonly string[]): string {
  const options = names.map((name) => `--${name}`);
  return options.length < 2 ? options.join('') : `${options.slice(0, -1).join(', ')} and ${options.at(-1)}`;
}

function ipAddress(flag: string, value: string | undefined): string {
  if (value === undefined || parseIpAddress(value) === undefined) {
    throw new UsageError(`${flag}: expected an IPv4 or IPv6 address like 192.0.2.11, got '${value ?? ''}'`);
  }
  return value;
}

function parsePause(value: string | undefined): SwitchoverOptions['pauseAfter'] {
  if (value === undefined) return undefined;
  const [step = '', seconds] = value.split(':');
  if (!(SWITCH_STEP_NAMES as readonly string[]).includes(step)) {
    throw new UsageError(`--pause-after: expected one of ${SWITCH_STEP_NAMES.join(', ')} (optionally :SECONDS), got '${value}'`);
  }
  return {step, seconds: optionalInt('--pause-after seconds', seconds, 1, 3600) ?? DEFAULT_PAUSE_S};
}

/** [USER@]HOST for ssh: no spaces or option-looking values, so it can never turn into an ssh option. */
function sshHost(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.:_-]+$/.test(value) || value.startsWith('-')) {
    throw new UsageError(`--client: expected [USER@]HOST, got '${value}'`);
  }
  return value;
}

/** --to HOST: a host name as coordination.host spells it. */
function parseHostName(value: string, what: string): string {
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(value)) throw new UsageError(`${what}: expected a host name of 1..63 characters from A-Z a-z 0-9 . _ - (coordination.hosts), got '${value}'`);
  return value;
}

/** --service NAME: a service of an etcd host's `services` list (its key's name). */
function parseServiceName(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(value)) throw new UsageError(`--service: expected a service name of 1..32 characters from A-Z a-z 0-9 . _ -, got '${value}'`);
  return value;
}

function noMore(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`${command} takes no argument, got '${rest.join(' ')}'`);
}


// The tables the Debian package's bash completion is generated from (packaging/completion.ts).
export {LAB_ACTIONS, OPTIONS, OPTIONS_OF};

/** lab up and lab run's --hosts and --coordination: a pair (2 hosts, the default) or three hosts in etcd mode; nothing else yet. */
function labCoordination(hosts: string | undefined, coordination: string | undefined): 'pair' | 'etcd' {
  if (coordination !== undefined && coordination !== 'pair' && coordination !== 'etcd') {
    throw new UsageError(`--coordination: expected pair or etcd, got '${coordination}'`);
  }
  if (hosts !== undefined && !/^\d+$/.test(hosts)) throw new UsageError(`--hosts: expected a number of hosts, got '${hosts}'`);
  const count = hosts === undefined ? undefined : Number(hosts);
  const mode = coordination ?? (count !== undefined && count > 2 ? 'etcd' : 'pair');
  if (mode === 'pair' && count !== undefined && count !== 2) {
    throw new UsageError(`--hosts ${count}: a pair has 2 hosts; more than two coordinate through etcd (--hosts 3 --coordination etcd)`);
  }
  if (mode === 'etcd' && count !== undefined && count !== 3) {
    throw new UsageError(`--hosts ${count}: the etcd lab has 3 hosts (a, b, c) for now; use --hosts 3`);
  }
  return mode;
}
