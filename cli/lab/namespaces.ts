// Network-namespace topologies for the lab and the integration tests: hosts on bridged LANs, all inside namespaces
// named with a per-run prefix, so nothing is created in the root namespace and one prefix removes everything.
//
//   ${prefix}-primary      ${prefix}-sw (the switch)             ${prefix}-client
//   eth0 192.0.2.11/25 ─── primary-svc ┐
//   eth0 192.0.2.12/25 ─── backup-svc ─┼─ br-svc ─ client-svc ─── eth0 192.0.2.20/25
//   (${prefix}-backup)                 │
//   eth1 (mgmt LAN, link mode only) ── primary-mgmt / backup-mgmt ── br-mgmt
//
// No sysctl is changed: bridges have STP off (ports forward at once), each LAN is its own bridge so ARP stays on it,
// and hosts reach each other on-link without routes.

import {spawn} from 'node:child_process';
import {open} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {customAlphabet} from 'nanoid';
import {describeMissingProgram} from '../../agent/adapters/execa-runner.js';
import {BatonError, describeError, isBatonError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';

export interface LanSpec {
  /** Short name: the bridge is br-<name>, switch ports <host>-<name>. */
  readonly name: string;
  /** Network address, e.g. 192.0.2.0. */
  readonly network: string;
  readonly prefixLength: number;
}

export interface HostInterfaceSpec {
  readonly lan: string;
  /** The interface name inside the host namespace, e.g. eth0. */
  readonly name: string;
  /** IPv4 address inside the LAN (the LAN's prefix length applies). */
  readonly address: string;
}

export interface HostSpec {
  /** Short name: the namespace is ${prefix}-${name}. */
  readonly name: string;
  readonly interfaces: readonly HostInterfaceSpec[];
}

export interface TopologySpec {
  readonly prefix: string;
  readonly lans: readonly LanSpec[];
  readonly hosts: readonly HostSpec[];
}

export interface TopologyInterface {
  readonly lan: string;
  readonly name: string;
  readonly address: string;
  readonly prefixLength: number;
  /** address/prefixLength. */
  readonly cidr: string;
  /** The veth peer in the switch namespace. */
  readonly switchPort: string;
  readonly bridge: string;
}

export interface TopologyHost {
  readonly name: string;
  readonly namespace: string;
  readonly interfaces: readonly TopologyInterface[];
}

export interface Topology {
  readonly prefix: string;
  readonly switchNamespace: string;
  readonly hosts: readonly TopologyHost[];
  /** The namespace of a host. Throws LAB_FAILED for an unknown host. */
  namespace(host: string): string;
  /** A host's address on a LAN (no prefix). Throws LAB_FAILED when the host has no interface there. */
  address(host: string, lan: string): string;
  /** A host's interface name on a LAN, e.g. eth0. Throws LAB_FAILED when the host has no interface there. */
  interfaceName(host: string, lan: string): string;
}

// All lab addresses come from TEST-NET-1 (RFC 5737): they can never leak to or collide with a real network.
export const SERVICE_LAN = {name: 'svc', network: '192.0.2.0', prefixLength: 25, serviceAddress: '192.0.2.100'} as const;
/** The separate heartbeat network of `link` mode. */
export const MANAGEMENT_LAN = {name: 'mgmt', network: '192.0.2.128', prefixLength: 25} as const;

export const LAB_ADDRESSES = {
  primary: {svc: '192.0.2.11', mgmt: '192.0.2.141'},
  backup: {svc: '192.0.2.12', mgmt: '192.0.2.142'},
  client: {svc: '192.0.2.20'},
} as const;

/** Primary, backup and client on the service LAN, each on eth0. The service IP is left to the agents. */
export const DEFAULT_LAB_TOPOLOGY: Omit<TopologySpec, 'prefix'> = {
  lans: [SERVICE_LAN],
  hosts: [
    {name: 'primary', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.primary.svc}]},
    {name: 'backup', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.backup.svc}]},
    {name: 'client', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.client.svc}]},
  ],
};

/** The default topology plus the management LAN on eth1 of primary and backup, for `link` mode. */
export const LINK_MODE_LAB_TOPOLOGY: Omit<TopologySpec, 'prefix'> = {
  lans: [SERVICE_LAN, MANAGEMENT_LAN],
  hosts: [
    {name: 'primary', interfaces: [
      {lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.primary.svc},
      {lan: 'mgmt', name: 'eth1', address: LAB_ADDRESSES.primary.mgmt},
    ]},
    {name: 'backup', interfaces: [
      {lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.backup.svc},
      {lan: 'mgmt', name: 'eth1', address: LAB_ADDRESSES.backup.mgmt},
    ]},
    {name: 'client', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.client.svc}]},
  ],
};

/** "bl" + 6 lowercase alphanumerics, e.g. blk3f9x2: short enough for namespace and log names, easy to grep. */
export const LAB_PREFIX_PATTERN = /^bl[0-9a-z]{6}$/;
const SWITCH_HOST = 'sw';
// Linux interface names hold at most 15 characters (IFNAMSIZ 16 with the NUL).
const MAX_IFNAME_LENGTH = 15;
// Processes left in a namespace get this long after SIGTERM before SIGKILL (agents release and exit well within).
const STOP_GRACE_MS = 2000;
// How often we look whether they are gone: short against the grace time, cheap (`ip netns pids` reads /proc).
const STOP_POLL_MS = 50;

const newLabId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 6);

export function newLabPrefix(): string {
  return `bl${newLabId()}`;
}

export function namespaceName(prefix: string, host: string): string {
  return `${prefix}-${host}`;
}

/**
 * Builds the namespaces, the switch with one bridge per LAN, and a veth per host interface, with addresses set and
 * every link (and lo) up. Refuses a prefix that is already in use. On failure removes everything it made and throws
 * LAB_FAILED with the failed command as cause.
 */
export async function createTopology(runner: CommandRunner, spec: TopologySpec): Promise<Topology> {
  const topology = planTopology(spec);
  const existing = (await listNamespaces(runner)).filter((ns) => ns.startsWith(`${spec.prefix}-`));
  if (existing.length > 0) {
    throw new BatonError('LAB_FAILED',
      `namespaces with prefix ${spec.prefix} already exist (${existing.join(', ')}): remove them with \`baton lab down\``);
  }
  const sw = topology.switchNamespace;
  try {
    await runner.run('ip', ['netns', 'add', sw]);
    await runner.run('ip', ['-n', sw, 'link', 'set', 'lo', 'up']);
    for (const lan of spec.lans) {
      const bridge = bridgeName(lan.name);
      await runner.run('ip', ['-n', sw, 'link', 'add', bridge, 'type', 'bridge']);
      await runner.run('ip', ['-n', sw, 'link', 'set', bridge, 'up']);
    }
    for (const host of topology.hosts) {
      await runner.run('ip', ['netns', 'add', host.namespace]);
      await runner.run('ip', ['-n', host.namespace, 'link', 'set', 'lo', 'up']);
      for (const iface of host.interfaces) {
        // Both ends are born in their namespaces: nothing ever appears in the root namespace, even briefly.
        await runner.run('ip', ['-n', sw, 'link', 'add', iface.switchPort, 'type', 'veth', 'peer', 'name', iface.name, 'netns', host.namespace]);
        await runner.run('ip', ['-n', sw, 'link', 'set', iface.switchPort, 'master', iface.bridge]);
        await runner.run('ip', ['-n', sw, 'link', 'set', iface.switchPort, 'up']);
        await runner.run('ip', ['-n', host.namespace, 'addr', 'add', iface.cidr, 'dev', iface.name]);
        await runner.run('ip', ['-n', host.namespace, 'link', 'set', iface.name, 'up']);
      }
    }
  } catch (error) {
    await destroyTopology(runner, spec.prefix).catch(() => undefined);
    throw new BatonError('LAB_FAILED', `cannot build the lab topology ${spec.prefix}: ${describeError(error)}`, {cause: error});
  }
  return topology;
}

/**
 * Deletes every namespace named ${prefix}-*, after ending the processes still inside them (SIGTERM, up to 2 s, then
 * SIGKILL: only processes the lab started live there). Veths and bridges die with their namespaces. Idempotent.
 * Throws LAB_FAILED if a namespace survives.
 */
export async function destroyTopology(runner: CommandRunner, prefix: string): Promise<void> {
  checkPrefix(prefix);
  const ours = async (): Promise<string[]> => (await listNamespaces(runner)).filter((ns) => ns.startsWith(`${prefix}-`));
  const namespaces = await ours();
  if (namespaces.length === 0) return;
  await stopNamespaceProcesses(runner, namespaces);
  const failures: string[] = [];
  for (const ns of namespaces) {
    try {
      await runner.run('ip', ['netns', 'del', ns]);
    } catch (error) {
      failures.push(describeError(error));
    }
  }
  const left = await ours();
  if (left.length > 0) {
    throw new BatonError('LAB_FAILED', `namespaces ${left.join(', ')} could not be removed: ${failures.join('; ')}`);
  }
}

/** Prefixes of lab namespaces that exist on this machine (e.g. left by a crashed run), sorted. */
export async function findLeftovers(runner: CommandRunner): Promise<string[]> {
  const prefixes = new Set<string>();
  for (const ns of await listNamespaces(runner)) {
    const prefix = ns.slice(0, ns.indexOf('-'));
    if (LAB_PREFIX_PATTERN.test(prefix)) prefixes.add(prefix);
  }
  return [...prefixes].sort();
}

/** Names of all network namespaces (`ip -j netns list`). */
export async function listNamespaces(runner: CommandRunner): Promise<string[]> {
  const stdout = await runner.run('ip', ['-j', 'netns', 'list']);
  // With no namespace at all, iproute2 prints nothing rather than [].
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as Array<{name?: unknown}>;
  return parsed.map((entry) => entry.name).filter((name): name is string => typeof name === 'string');
}

/** A CommandRunner whose commands run inside `namespace` (`ip netns exec NS file …args`). */
export function createNamespacedRunner(runner: CommandRunner, namespace: string): CommandRunner {
  return {
    run: (file, args, options) => runInNamespace(runner, namespace, file, args, options),
  };
}

/** Runs one command inside a namespace and resolves with its stdout; fails like CommandRunner.run. */
export async function runInNamespace(
  runner: CommandRunner, namespace: string, file: string, args: readonly string[], options?: {timeoutMs?: number},
): Promise<string> {
  try {
    return await runner.run('ip', ['netns', 'exec', namespace, file, ...args], options);
  } catch (error) {
    // `ip netns exec` reports a missing program itself (exit 1): say which package provides it.
    if (isBatonError(error, 'COMMAND_FAILED') && /exec of "[^"]*" failed: No such file or directory/.test(error.details?.stderr ?? '')) {
      throw new BatonError('COMMAND_FAILED', `cannot run \`${file}\` in ${namespace}: ${describeMissingProgram(file)}`,
        {cause: error, details: error.details});
    }
    throw error;
  }
}

/**
 * Whether `address` answers one ping from inside `namespace` within `timeoutS` (ping -c 1 -W). No reply is false;
 * anything else that fails (ping missing, bad address) throws.
 */
export async function isReachable(runner: CommandRunner, namespace: string, address: string, timeoutS = 1): Promise<boolean> {
  try {
    await runInNamespace(runner, namespace, 'ping', ['-n', '-c', '1', '-W', String(timeoutS), address]);
    return true;
  } catch (error) {
    // ping exits 1 with its summary when no reply came; `ip netns exec` also exits 1 when ping is missing.
    if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === 1 &&
      /packets transmitted/.test(error.details.stdout)) return false;
    throw error;
  }
}

/**
 * Starts a long-running program inside a namespace, detached (its own process group, not waited for), with stdout
 * and stderr appended to `logFile`. Resolves with its PID once it has started; destroyTopology ends it if nobody
 * else does.
 */
export async function spawnInNamespace(
  namespace: string | undefined, file: string, args: readonly string[], logFile: string,
  options: {env?: NodeJS.ProcessEnv; cwd?: string} = {},
): Promise<number> {
  const log = await open(logFile, 'a', 0o600);
  try {
    // `ip netns exec` execs the program in place, so the PID is the program's own.
    // No namespace: right here, in this process's own (baton rehearse on a real host).
    const [command, argv] = namespace === undefined ? [file, [...args]] : ['ip', ['netns', 'exec', namespace, file, ...args]];
    const child = spawn(command, argv, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    if (child.pid === undefined) throw new BatonError('LAB_FAILED', `\`${file}\` in ${namespace ?? 'this namespace'} started without a PID`);
    return child.pid;
  } catch (error) {
    if (isBatonError(error)) throw error;
    throw new BatonError('LAB_FAILED', `cannot start \`${file}\` in ${namespace ?? 'this namespace'}: ${describeError(error)}`, {cause: error});
  } finally {
    await log.close();
  }
}

async function stopNamespaceProcesses(runner: CommandRunner, namespaces: readonly string[]): Promise<void> {
  const pidsIn = async (): Promise<number[]> => {
    const lists = await Promise.all(namespaces.map(async (ns) => {
      try {
        return await runner.run('ip', ['netns', 'pids', ns]);
      } catch {
        return ''; // the namespace vanished meanwhile: nothing left in it
      }
    }));
    return lists.flatMap((list) => list.split(/\s+/)).filter((word) => /^\d+$/.test(word)).map(Number)
      .filter((pid) => pid !== process.pid);
  };
  let pids = await pidsIn();
  if (pids.length === 0) return;
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(STOP_POLL_MS);
    pids = await pidsIn();
  }
  signal(pids, 'SIGKILL');
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch (error) {
      // ESRCH: it exited between the listing and the signal, which is what we wanted.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}

function planTopology(spec: TopologySpec): Topology {
  checkPrefix(spec.prefix);
  const problems: string[] = [];
  const lans = new Map<string, LanSpec>();
  for (const lan of spec.lans) {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(lan.name)) problems.push(`LAN name ${JSON.stringify(lan.name)}: expected 1–12 of a-z0-9`);
    if (lans.has(lan.name)) problems.push(`LAN ${lan.name} is declared twice`);
    if (!isDocumentationNetwork(lan)) {
      problems.push(`LAN ${lan.name} ${lan.network}/${lan.prefixLength}: expected a subnet of a TEST-NET range ` +
        '(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), so the lab can never touch a real network');
    }
    lans.set(lan.name, lan);
  }
  const sw = namespaceName(spec.prefix, SWITCH_HOST);
  const ports = new Set<string>();
  const hosts: TopologyHost[] = [];
  for (const host of spec.hosts) {
    if (!/^[a-z][a-z0-9]{0,15}$/.test(host.name) || host.name === SWITCH_HOST) {
      problems.push(`host name ${JSON.stringify(host.name)}: expected 1–16 of a-z0-9, not "${SWITCH_HOST}"`);
    }
    const interfaces: TopologyInterface[] = [];
    for (const iface of host.interfaces) {
      const lan = lans.get(iface.lan);
      if (lan === undefined) {
        problems.push(`host ${host.name} ${iface.name}: no LAN named ${iface.lan}`);
        continue;
      }
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface.name) || iface.name === 'lo') {
        problems.push(`host ${host.name} interface ${JSON.stringify(iface.name)}: expected a Linux interface name`);
      }
      if (!isInNetwork(iface.address, lan)) {
        problems.push(`host ${host.name} ${iface.name} ${iface.address}: not in LAN ${lan.name} ${lan.network}/${lan.prefixLength}`);
      }
      const switchPort = `${host.name}-${lan.name}`.slice(0, MAX_IFNAME_LENGTH);
      if (ports.has(switchPort)) problems.push(`switch port ${switchPort} (host ${host.name}, LAN ${lan.name}) is not unique`);
      ports.add(switchPort);
      interfaces.push({
        lan: lan.name, name: iface.name, address: iface.address, prefixLength: lan.prefixLength,
        cidr: `${iface.address}/${lan.prefixLength}`, switchPort, bridge: bridgeName(lan.name),
      });
    }
    hosts.push({name: host.name, namespace: namespaceName(spec.prefix, host.name), interfaces});
  }
  if (new Set(spec.hosts.map((h) => h.name)).size !== spec.hosts.length) problems.push('host names are not unique');
  if (problems.length > 0) throw new BatonError('LAB_FAILED', `invalid lab topology:\n  - ${problems.join('\n  - ')}`);

  const hostNamed = (name: string): TopologyHost => {
    const host = hosts.find((h) => h.name === name);
    if (host === undefined) throw new BatonError('LAB_FAILED', `the lab has no host ${name} (hosts: ${hosts.map((h) => h.name).join(', ')})`);
    return host;
  };
  const interfaceOn = (name: string, lan: string): TopologyInterface => {
    const iface = hostNamed(name).interfaces.find((i) => i.lan === lan);
    if (iface === undefined) throw new BatonError('LAB_FAILED', `lab host ${name} has no interface on LAN ${lan}`);
    return iface;
  };
  return {
    prefix: spec.prefix,
    switchNamespace: sw,
    hosts,
    namespace: (name) => hostNamed(name).namespace,
    address: (name, lan) => interfaceOn(name, lan).address,
    interfaceName: (name, lan) => interfaceOn(name, lan).name,
  };
}

function checkPrefix(prefix: string): void {
  // A loose prefix ("", "b") would match other people's namespaces in destroyTopology.
  if (!/^[a-z][a-z0-9]{3,15}$/.test(prefix)) {
    throw new BatonError('LAB_FAILED', `lab prefix ${JSON.stringify(prefix)}: expected 4–16 of a-z0-9 starting with a letter, e.g. ${newLabPrefix()}`);
  }
}

function bridgeName(lan: string): string {
  return `br-${lan}`;
}

const DOCUMENTATION_NETWORKS: readonly LanSpec[] = [
  {name: 'TEST-NET-1', network: '192.0.2.0', prefixLength: 24},
  {name: 'TEST-NET-2', network: '198.51.100.0', prefixLength: 24},
  {name: 'TEST-NET-3', network: '203.0.113.0', prefixLength: 24},
];

function isDocumentationNetwork(lan: LanSpec): boolean {
  return parseIpv4(lan.network) !== undefined && Number.isInteger(lan.prefixLength) && lan.prefixLength <= 30 &&
    DOCUMENTATION_NETWORKS.some((doc) => lan.prefixLength >= doc.prefixLength && offsetIn(lan.network, doc) !== undefined);
}

/** A usable host address of the network: inside it, not its network or broadcast address. */
function isInNetwork(address: string, lan: LanSpec): boolean {
  const offset = offsetIn(address, lan);
  const size = 2 ** (32 - lan.prefixLength);
  return offset !== undefined && (lan.prefixLength >= 31 || (offset !== 0 && offset !== size - 1));
}

/** The address's offset inside the network, undefined when outside (or either is not IPv4, or the network is unaligned). */
function offsetIn(address: string, lan: LanSpec): number | undefined {
  const value = parseIpv4(address);
  const network = parseIpv4(lan.network);
  if (value === undefined || network === undefined) return undefined;
  const size = 2 ** (32 - lan.prefixLength);
  const offset = value - network;
  return network % size === 0 && offset >= 0 && offset < size ? offset : undefined;
}

function parseIpv4(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((sum, p) => sum * 256 + Number(p), 0);
}
