// Command-line parsing for `baton` (node:util parseArgs) and the usage text.

import {isAbsolute} from 'node:path';
import {parseArgs, type ParseArgsOptionsConfig} from 'node:util';
import {DEFAULT_CONFIG_FILE} from '../agent/config/schema.js';
import type {SwitchoverOptions} from '../agent/control-protocol.js';
import {parseHostCidr, parseIpAddress} from '../agent/net/ip-address.js';
import {SWITCH_STEP_NAMES} from '../agent/plans/plans.js';
import {LAB_PREFIX_PATTERN} from './lab/topology-plan.js';
import type {CheckConfigOptions} from './commands/check-config.js';
import type {InstallOptions} from './commands/install.js';
import type {UninstallOptions} from './commands/uninstall.js';

export const USAGE = `Usage: baton <command> [options]

Moves a web service's IP address between a primary and a backup host, and lets
you watch and rehearse it. Talks to the local baton-agent on its control socket.

Commands:
  status [--json]            both hosts: state, who holds the service IP (as
                             observed), beacon RTT and loss, rejected datagrams,
                             both agents' versions. The first line and the exit
                             status are a monitoring check: 0 OK, 1 WARNING (no
                             failover ready), 2 CRITICAL (the IP on both hosts or
                             neither, the agent not answering), 3 UNKNOWN
  switchover [--dry-run] [--strict] [--min-requests N] [--confirm-timeout S]
                             move the service IP to the other host: preflight,
                             backup-net-down, assign-ip, primary-net-down,
                             backup-net-up, then wait for N real requests in the
                             new host's access log; anything wrong rolls back.
                             In address mode the old host's open connections
                             finish there first (the drain). Run it again to
                             switch back. Exit 0 done, 2 rolled back, 1 refused
                             or error
      --dry-run              print each host's exact commands, change nothing
      --strict               refuse when the two hosts' software differs
      --pause-after STEP[:S] hold S seconds (default 10) after STEP: a rehearsal
                             aid to look at the pair mid-switch (needs
                             rehearsal.enabled in the agent's config)
  resume                     a released host (after a switchover) becomes
                             standby again, ready to take over
  rehearse [--with-failure] [--client HOST] [--report FILE] [--url URL] [--interval-ms N] [--json]
                             the drill on the configured pair (spare machines):
                             preflight, status, switchover, switchback, resume;
                             with --with-failure the active host drops its
                             service link for a while and the other takes over.
                             This machine probes the service IP throughout (run
                             it on the standby), or HOST with --client: over ssh
                             (key, no password; --ssh-config FILE), with baton
                             installed there (--client-baton DIR, /opt/baton)
  check-config [FILE] [--json] [--file-only]
                             validate a configuration file and its secret files,
                             and this host as the agent will see it: the
                             service interface, listen.address, the access log
                             (readable under the unit's sandbox, in its format),
                             the secrets' owner, ip, arping and perl, no IPv6
                             service address yet. Every problem at once, each an
                             error or a warning; exit 0 valid (warnings
                             allowed), 1 on any error. FILE is --config's
      --json                 the result for machines: {file, valid, errors,
                             warnings, problems: [{severity, check, kind, key,
                             line, message}], config}
      --file-only            the file and its secrets only: for a config
                             written for another machine
  lab up|status|down|run     a two-host pair plus a client in network namespaces
                             on this machine (needs root, iproute2, arping):
                               up      build it: namespaces, a web server and a
                                       baton-agent on each host
                               status  print baton status from both hosts
                               down    remove every lab whose builder has
                                       exited (lab up, an interrupted or a
                                       crashed run); labs of runs still going
                                       are named and left. down NAME: that
                                       lab only
                               run     up, the drill (preflight, switchover,
                                       switchback, link cut and takeover, the
                                       old primary's return), the report, down
      --web builtin|nginx    the lab's web servers (default builtin)
      --report FILE          where lab run writes its HTML timeline (default
                             ./baton-drill-report.html; the JSON goes beside it)
  install --role primary|backup --listen ADDR --peer ADDR --service-ip CIDR
          --interface IF [--pair NAME] [--access-log PATH] [--secret-from FILE]
          [--root DIR] [--force | --keep-config] [--skip-host-check] [--dry-run]
                             run baton on this host under systemd: the program
                             and its own Node 24 in /opt/baton, the config
                             /etc/baton/baton.yaml written from the options and
                             validated, the shared secret /etc/baton/secret,
                             baton-agent.service with a drop-in of the address
                             and port allow-lists for that config, and
                             /usr/local/bin/baton; then systemctl enable --now
                             (as root, under systemd; else it prints the
                             commands)
      --listen ADDR          this host's beacon address; --peer ADDR the other's
      --service-ip CIDR      the address that moves, e.g. 192.0.2.100/24, on
                             --interface IF; --pair NAME the pair id (default
                             web); --access-log PATH the web server's log that
                             confirms a switchover
      --secret-from FILE     install this copy of the other host's secret
                             instead of generating one; a secret already
                             installed is always kept
      --force                write the config anew (the old one is kept as
                             baton.yaml.bak); without it an existing config
                             makes install refuse and change nothing
      --keep-config          upgrade: replace the program, the unit and the
                             command, keep the installed config (no --role)
      --skip-host-check      install although the host check (see
                             check-config) finds errors: an interface or an
                             access log that comes later. Into / install
                             refuses on them, before writing anything; with
                             --root (not this host) it does not check
      --root DIR             install into DIR (an image, a chroot) instead of
                             /; systemctl is then only printed
      --dry-run              check the options, config and secret, and print
                             what would be written, the allow-list drop-in in
                             full; change nothing
  uninstall [--root DIR] [--purge] [--force]
                             stop and disable baton-agent, remove its unit and
                             its drop-in, /usr/local/bin/baton and /opt/baton;
                             keeps /etc/baton and /var/lib/baton unless --purge;
                             refuses while this host holds the service IP
                             unless --force (switch over first)

Options:
  --config FILE    configuration file (default ${DEFAULT_CONFIG_FILE}); the
                   control socket is found from it
  --socket PATH    control socket, overriding the one in the config
  --json           machine-readable output (status, switchover, resume,
                   rehearse, check-config, lab status, lab run)
  -h, --help       show this help
  --version        print the version

Exit status: 0 done, 1 error, 2 rolled back (switchover); status: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN.`;

export type Command =
  | {readonly name: 'help'}
  | {readonly name: 'version'}
  | {readonly name: 'status'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'switchover'; readonly config: string; readonly socket: string | undefined; readonly json: boolean; readonly options: SwitchoverOptions}
  | {readonly name: 'resume'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'rehearse'; readonly config: string; readonly socket: string | undefined; readonly json: boolean;
      readonly withFailure: boolean; readonly report: string; readonly url: string | undefined; readonly intervalMs: number;
      readonly client: string | undefined; readonly sshConfig: string | undefined; readonly clientBaton: string}
  | ({readonly name: 'check-config'} & CheckConfigOptions)
  | {readonly name: 'lab'; readonly action: LabAction; readonly json: boolean; readonly web: 'builtin' | 'nginx'; readonly report: string; readonly lab?: string}
  | ({readonly name: 'install'} & InstallOptions)
  | ({readonly name: 'uninstall'} & UninstallOptions);

export type LabAction = 'up' | 'status' | 'down' | 'run';
const LAB_ACTIONS: readonly LabAction[] = ['up', 'status', 'down', 'run'];
export const COMMAND_NAMES = ['status', 'switchover', 'resume', 'rehearse', 'check-config', 'lab', 'install', 'uninstall'] as const;
// Both hosts of a pair get the same id when nobody names one.
const DEFAULT_PAIR = 'web';
/**
 * The commands that use each option; anywhere else it is refused, never ignored: `baton status --purge`,
 * `baton install --config X` (which writes /etc/baton/baton.yaml all the same) are mistakes worth naming.
 */
const OPTIONS_OF: Readonly<Record<string, readonly string[]>> = {
  'config': ['status', 'switchover', 'resume', 'rehearse', 'check-config'],
  'socket': ['status', 'switchover', 'resume', 'rehearse'],
  'json': ['status', 'switchover', 'resume', 'rehearse', 'check-config', 'lab'], 'file-only': ['check-config'],
  'role': ['install'], 'listen': ['install'], 'peer': ['install'], 'service-ip': ['install'], 'interface': ['install'],
  'pair': ['install'], 'access-log': ['install'], 'secret-from': ['install'], 'force': ['install', 'uninstall'],
  'keep-config': ['install'], 'skip-host-check': ['install'], 'root': ['install', 'uninstall'], 'purge': ['uninstall'],
  'dry-run': ['switchover', 'install'], 'strict': ['switchover'], 'min-requests': ['switchover'], 'confirm-timeout': ['switchover'],
  'pause-after': ['switchover'], 'web': ['lab'], 'report': ['lab', 'rehearse'], 'with-failure': ['rehearse'], 'url': ['rehearse'],
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
  ['json', ['status', 'run']], ['web', ['up', 'run']], ['report', ['run']],
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

const OPTIONS = {
  config: {type: 'string'},
  socket: {type: 'string'},
  json: {type: 'boolean', default: false},
  'dry-run': {type: 'boolean', default: false},
  strict: {type: 'boolean', default: false},
  'min-requests': {type: 'string'},
  'confirm-timeout': {type: 'string'},
  'pause-after': {type: 'string'},
  web: {type: 'string'},
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
  'service-ip': {type: 'string'},
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
    throw new UsageError((error as Error).message);
  }
  const {values, positionals} = parsed;
  if (values.help) return {name: 'help'};
  if (values.version) return {name: 'version'};
  const [name, ...rest] = positionals;
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
        },
      };
    }
    case 'resume':
      noMore(name, rest);
      return {name, config, socket: values.socket, json: values.json};
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
      const web = values.web ?? 'builtin';
      if (web !== 'builtin' && web !== 'nginx') throw new UsageError(`--web: expected builtin or nginx, got '${web}'`);
      return {name, action: action as LabAction, json: values.json, web, report: values.report ?? 'baton-drill-report.html', ...(lab === undefined ? {} : {lab})};
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
      const serviceIp = values['service-ip'] ?? '';
      // Only the form is checked here; a network or broadcast address is left to the config check, which names the
      // config key and the reason.
      const cidr = parseHostCidr(serviceIp);
      if ('problem' in cidr && cidr.problem !== 'network-address' && cidr.problem !== 'broadcast-address') {
        throw new UsageError(`--service-ip: expected an address with its prefix length like 192.0.2.100/24, got '${serviceIp}'`);
      }
      return {
        name, root, secretFrom, force: values.force, dryRun: values['dry-run'], skipHostCheck: values['skip-host-check'],
        answers: {
          node: role, pair: values.pair ?? DEFAULT_PAIR, listen: ipAddress('--listen', values.listen),
          peer: ipAddress('--peer', values.peer), serviceIp, interface: values.interface ?? '', accessLog,
        },
      };
    }
    case 'uninstall':
      noMore(name, rest);
      return {name, root: parseRoot(values.root), purge: values.purge, force: values.force};
    default:
      throw new UsageError(`unknown command '${name}'${suggest(name)}`, {showUsage: true});
  }
}

/**
 * For a command line that parseCommandLine refused: whether it asked for `status`, and with --json. Status's usage
 * errors are then UNKNOWN to a monitoring system (exit 3, not the 1 of WARNING), and JSON when JSON was asked for.
 */
export function statusAsked(argv: readonly string[]): {readonly json: boolean} | undefined {
  const {values, positionals} = parseArgs({args: [...argv], options: OPTIONS, strict: false, allowPositionals: true});
  return positionals[0] === 'status' ? {json: values.json === true} : undefined;
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

function noMore(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`${command} takes no argument, got '${rest.join(' ')}'`);
}

function suggest(name: string): string {
  const near = COMMAND_NAMES.find((candidate) => candidate.startsWith(name.slice(0, 3)));
  return near === undefined ? '' : `; did you mean '${near}'?`;
}

// The tables the Debian package's bash completion is generated from (packaging/completion.ts).
export {LAB_ACTIONS, OPTIONS, OPTIONS_OF};
