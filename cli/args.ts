// Command-line parsing for `baton` (node:util parseArgs) and the usage text.

import {parseArgs} from 'node:util';
import {DEFAULT_CONFIG_FILE} from '../agent/config.js';
import type {SwitchoverOptions} from '../agent/control-protocol.js';
import {SWITCH_STEP_NAMES} from '../agent/switch-plan.js';

export const USAGE = `Usage: baton <command> [options]

Moves a web service's IP address between a primary and a backup host, and lets
you watch and rehearse it. Talks to the local baton-agent on its control socket.

Commands:
  status [--json]            both hosts: state, who holds the service IP (as
                             observed), beacon RTT and loss, rejected datagrams
  switchover [--dry-run] [--strict] [--min-requests N] [--confirm-timeout S]
                             move the service IP to the other host: preflight,
                             backup-net-down, assign-ip, primary-net-down,
                             backup-net-up, then wait for N real requests in the
                             new host's access log; anything wrong rolls back.
                             Run it again to switch back. Exit 0 done, 2 rolled
                             back, 1 refused or error
      --dry-run              print each host's exact commands, change nothing
      --strict               refuse when the two hosts' software differs
      --pause-after STEP[:S] hold S seconds (default 10) after STEP: a rehearsal
                             aid to look at the pair mid-switch
  resume                     a released host (after a switchover) becomes
                             standby again, ready to take over
  rehearse [--with-failure] [--report FILE] [--url URL] [--interval-ms N] [--json]
                             the drill on the configured pair (spare machines):
                             preflight, status, switchover, switchback, resume;
                             with --with-failure the active host drops its
                             service link for a while and the other takes over.
                             This machine probes the service IP throughout (run
                             it on the standby, or on a client with the socket)
  check-config [FILE]        validate a configuration file and its secret file;
                             prints every problem at once; exit 0 valid, 1 invalid
  lab up|status|down|run     a two-host pair plus a client in network namespaces
                             on this machine (needs root, iproute2, arping):
                               up      build it: namespaces, a web server and a
                                       baton-agent on each host
                               status  print baton status from both hosts
                               down    remove every lab namespace, process and
                                       temp file, also those of a crashed run
                               run     up, the drill (preflight, switchover,
                                       switchback, link cut and takeover, the
                                       old primary's return), the report, down
      --web builtin|nginx    the lab's web servers (default builtin)
      --report FILE          where lab run writes its HTML timeline (default
                             ./baton-drill-report.html; the JSON goes beside it)

Options:
  --config FILE    configuration file (default ${DEFAULT_CONFIG_FILE}); the
                   control socket is found from it
  --socket PATH    control socket, overriding the one in the config
  --json           machine-readable output (status, lab status)
  -h, --help       show this help
  --version        print the version

Exit status: 0 done, 1 error, 2 rolled back (switchover).`;

export type Command =
  | {readonly name: 'help'}
  | {readonly name: 'version'}
  | {readonly name: 'status'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'switchover'; readonly config: string; readonly socket: string | undefined; readonly json: boolean; readonly options: SwitchoverOptions}
  | {readonly name: 'resume'; readonly config: string; readonly socket: string | undefined; readonly json: boolean}
  | {readonly name: 'rehearse'; readonly config: string; readonly socket: string | undefined; readonly json: boolean;
      readonly withFailure: boolean; readonly report: string; readonly url: string | undefined; readonly intervalMs: number}
  | {readonly name: 'check-config'; readonly file: string}
  | {readonly name: 'lab'; readonly action: LabAction; readonly json: boolean; readonly web: 'builtin' | 'nginx'; readonly report: string};

export type LabAction = 'up' | 'status' | 'down' | 'run';
const LAB_ACTIONS: readonly LabAction[] = ['up', 'status', 'down', 'run'];
export const COMMAND_NAMES = ['status', 'switchover', 'resume', 'rehearse', 'check-config', 'lab'] as const;
const DEFAULT_PAUSE_S = 10;
// On real hosts the client probes every 50 ms: the interval the DESIGN targets are stated for.
const DEFAULT_REHEARSE_INTERVAL_MS = 50;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses argv (without node and script). Throws UsageError with a message that says what is wrong. */
export function parseCommandLine(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
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
        help: {type: 'boolean', short: 'h', default: false},
        version: {type: 'boolean', default: false},
      },
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
  switch (name) {
    case undefined:
      throw new UsageError('no command given');
    case 'status':
      noMore(name, rest);
      return {name, config, socket: values.socket, json: values.json};
    case 'switchover':
      noMore(name, rest);
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
    case 'resume':
      noMore(name, rest);
      return {name, config, socket: values.socket, json: values.json};
    case 'rehearse': {
      noMore(name, rest);
      if (values.url !== undefined && !/^https?:\/\/\S+$/.test(values.url)) throw new UsageError(`--url: expected an http:// or https:// URL, got '${values.url}'`);
      return {
        name, config, socket: values.socket, json: values.json, withFailure: values['with-failure'], url: values.url,
        report: values.report ?? 'baton-rehearsal-report.html',
        intervalMs: optionalInt('--interval-ms', values['interval-ms'], 5, 1000) ?? DEFAULT_REHEARSE_INTERVAL_MS,
      };
    }
    case 'check-config': {
      if (rest.length > 1) throw new UsageError(`check-config takes at most one file, got ${rest.length}`);
      return {name, file: rest[0] ?? config};
    }
    case 'lab': {
      const [action, ...extra] = rest;
      if (action === undefined) throw new UsageError(`lab needs an action: ${LAB_ACTIONS.join(', ')}`);
      if (!(LAB_ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown lab action '${action}': expected ${LAB_ACTIONS.join(', ')}`);
      noMore(`lab ${action}`, extra);
      const web = values.web ?? 'builtin';
      if (web !== 'builtin' && web !== 'nginx') throw new UsageError(`--web: expected builtin or nginx, got '${web}'`);
      return {name, action: action as LabAction, json: values.json, web, report: values.report ?? 'baton-drill-report.html'};
    }
    default:
      throw new UsageError(`unknown command '${name}'${suggest(name)}`);
  }
}

function optionalInt(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got '${value}'`);
  }
  return Number(value);
}

function parsePause(value: string | undefined): SwitchoverOptions['pauseAfter'] {
  if (value === undefined) return undefined;
  const [step = '', seconds] = value.split(':');
  if (!(SWITCH_STEP_NAMES as readonly string[]).includes(step)) {
    throw new UsageError(`--pause-after: expected one of ${SWITCH_STEP_NAMES.join(', ')} (optionally :SECONDS), got '${value}'`);
  }
  return {step, seconds: optionalInt('--pause-after seconds', seconds, 1, 3600) ?? DEFAULT_PAUSE_S};
}

function noMore(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`${command} takes no argument, got '${rest.join(' ')}'`);
}

function suggest(name: string): string {
  const near = COMMAND_NAMES.find((candidate) => candidate.startsWith(name.slice(0, 3)));
  return near === undefined ? '' : `; did you mean '${near}'?`;
}
