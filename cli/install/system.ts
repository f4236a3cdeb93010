// What install and uninstall need from the machine they run on (commands, uid, systemd, randomness, their own
// files), as one injectable set, and the systemctl command lines they run or print.

import {randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {networkInterfaces} from 'node:os';
import {fileURLToPath} from 'node:url';
import {createExecaRunner, formatCommandLine} from '../../agent/adapters/execa-runner.js';
import {createSystemHostProbe, unitFileAccess} from '../../agent/adapters/host-probe.js';
import {type AnyConfig, isEtcdConfig, loadAnyConfig} from '../../agent/config/schema.js';
import type {FileAccess} from '../../agent/config/unit-file-access.js';
import {BatonError, describeError} from '../../agent/errors.js';
import type {CommandRunner, HostProbe} from '../../agent/ports.js';
import {SYSTEMD_RUNNING_MARKER, UNIT_NAME} from './layout.js';

export interface SystemDeps {
  /** Runs systemctl and the installed Node (argument arrays, no shell). */
  readonly runner: CommandRunner;
  /** Effective uid; undefined where the platform has none. */
  readonly uid: number | undefined;
  /** Whether `root` is the running system under systemd: then systemctl is run, else its commands are printed. */
  readonly isLiveSystem: (root: string) => boolean;
  /** Reads the config file and looks for its service IP on its interface (uninstall asks before stopping the agent). */
  readonly serviceIpHere: (configFile: string) => Promise<ServiceIpHere>;
}

/** Whether this host holds the service IP of the installed config, as far as the host can tell. */
export type ServiceIpHere =
  | {readonly holds: boolean; readonly cidr: string; readonly interface: string; readonly onStop: 'keep' | 'release'}
  | {readonly unknown: string};

export interface InstallDeps extends SystemDeps {
  /** The built baton to install: the checkout (or install) this CLI runs from. */
  readonly sourceDir: string;
  readonly randomBytes: (size: number) => Uint8Array;
  /** This host, for the host check of an install into / (host-check.ts). */
  readonly hostProbe: HostProbe;
  /** Who the agent will read files as, under this unit text and these drop-ins (and the operator's own). */
  readonly fileAccess: (unitText: string, dropIns: readonly string[]) => Promise<FileAccess>;
}

// systemd's own DefaultTimeoutStartSec is 90 s: `enable --now` of a unit that is slow to start waits that long.
const SYSTEMCTL_TIMEOUT_MS = 100_000;

export function createSystemDeps(): InstallDeps {
  return {
    runner: createExecaRunner(),
    uid: process.getuid?.(),
    isLiveSystem: (root) => root === '/' && existsSync(SYSTEMD_RUNNING_MARKER),
    serviceIpHere,
    // This file is dist/cli/install/system.js: three levels below the package root.
    sourceDir: fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, ''),
    randomBytes: (size) => randomBytes(size),
    hostProbe: createSystemHostProbe({path: process.env['PATH'] ?? ''}),
    fileAccess: (unitText, dropIns) => unitFileAccess({unitText, dropIns}),
  };
}

/** The systemctl calls, as argument arrays. */
export const DAEMON_RELOAD = ['daemon-reload'] as const;
export const ENABLE_NOW = ['enable', '--now', UNIT_NAME] as const;
export const IS_ACTIVE = ['is-active', UNIT_NAME] as const;
/** Which systemd runs the host and what it was built with: whether it enforces SocketBindAllow=. */
export const VERSION = ['--version'] as const;
export const DISABLE_NOW = ['disable', '--now', UNIT_NAME] as const;
export const STOP = ['stop', UNIT_NAME] as const;

export function systemctlLine(args: readonly string[]): string {
  return formatCommandLine('systemctl', args);
}

export async function runSystemctl(runner: CommandRunner, args: readonly string[]): Promise<string> {
  return runner.run('systemctl', args, {timeoutMs: SYSTEMCTL_TIMEOUT_MS});
}

/** Writing into the running system's / takes root; a tree elsewhere (--root) may be prepared by anyone. */
export function requireRootUser(root: string, uid: number | undefined, command: 'install' | 'uninstall'): void {
  if (root !== '/' || uid === 0) return;
  throw new BatonError('BAD_REQUEST', `baton ${command} changes /opt, /etc and /usr/local/bin of this system and ` +
    `needs root, but runs as uid ${uid ?? 'unknown'}: run it with sudo` +
    (command === 'install' ? ', or pass --root DIR to prepare a tree for another system' : ''));
}

/** Why systemctl is not run, for the line that prints the commands instead. */
export function whyNotLive(root: string): string {
  return root === '/'
    ? `systemd is not running here (${SYSTEMD_RUNNING_MARKER} is missing)`
    : `${root} is not the running system`;
}

async function serviceIpHere(configFile: string): Promise<ServiceIpHere> {
  let config: AnyConfig;
  try {
    config = await loadAnyConfig(configFile);
  } catch (error) {
    return {unknown: `${configFile} cannot be read as a config (${describeError(error).split('\n')[0] ?? ''})`};
  }
  // Any of a dual-stack service's addresses: one left behind still answers for the service. In etcd mode, any service's.
  const services = isEtcdConfig(config) ? config.services.map((s) => s.service) : [config.service];
  const addresses = services.flatMap(({ips, interface: name}) => ips.map((ip) => ({ip, name})));
  const here = addresses.filter(({ip, name}) => networkInterfaces()[name]?.some((entry) => entry.address === ip.address) ?? false);
  const named = here.length > 0 ? here : addresses;
  return {holds: here.length > 0, cidr: named.map(({ip}) => ip.cidr).join(' and '), interface: [...new Set(named.map(({name}) => name))].join(' and '),
    onStop: config.onStop};
}
