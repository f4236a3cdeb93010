// The namespace lab: a primary, a backup and a client on this machine, with generated configs and secret and a
// real baton-agent in each host namespace. Used by `baton lab` and by the integration tests.

import {randomBytes} from 'node:crypto';
import {chmod, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import type {StatusReport} from '../../agent/control-protocol.js';
import {BatonError, describeError} from '../../agent/errors.js';
import type {ServiceMode} from '../../agent/config/schema.js';
import type {IpFamily} from '../../agent/net/ip-address.js';
import type {CommandRunner} from '../../agent/ports.js';
import type {Role} from '../../agent/state-machine.js';
import {callAgent} from '../control-client.js';
import {claimLab, liveOwner, releaseLab, type LabOwner} from './lab-owner.js';
import {createTopology, destroyTopology, findLeftovers, spawnInNamespace} from './namespaces.js';
import {DEFAULT_LAB_TOPOLOGY, httpUrl, labServiceAddress, labServiceCidr, LINK_MODE_LAB_TOPOLOGY, newLabPrefix} from './topology-plan.js';
import {isProcessAlive, startApache, startBuiltinWeb, startNginx, stopProcessByPid, type WebServerKind} from './web.js';

/** The IPv4 lab's service address, as its configs give it. */
export const LAB_SERVICE_IP = labServiceCidr(4);
export const LAB_BASE_DIR = join(tmpdir(), 'baton-lab');

export interface LabHost {
  readonly role: Role;
  readonly namespace: string;
  /** The beacon address (service LAN in address mode, management LAN in link mode), of the lab's heartbeat family. */
  readonly address: string;
  /** The host's own addresses as the lab set them, per interface: what its network configuration restores (setHostLink). */
  readonly interfaces: ReadonlyArray<{readonly name: string; readonly cidr: string; readonly cidr6: string}>;
  readonly dir: string;
  readonly configFile: string;
  readonly socket: string;
  readonly logFile: string;
  /** The agent's PID; changes when the agent is restarted. */
  pid: number;
  readonly web: {
    readonly kind: WebServerKind; readonly pid: number; readonly accessLog: string;
    readonly graceful: {readonly path: string; readonly args: readonly string[]};
  } | undefined;
}

export interface Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly mode: ServiceMode;
  /** The service address with its prefix length, as the configs give it: 192.0.2.100/25 or 2001:db8:0:1::100/64.
   *  A dual-stack lab's first (IPv4) address. */
  readonly serviceIp: string;
  /** The service's family; of a dual-stack lab 4, its first address's (serviceFamilies has both). */
  readonly serviceFamily: IpFamily;
  /** The service address alone, and the URL the client requests it by (an IPv6 address in brackets). */
  readonly serviceAddress: string;
  readonly serviceUrl: string;
  /** Every service address's family, in the configs' order: [4], [6], or [4, 6] for a dual-stack service. */
  readonly serviceFamilies: readonly IpFamily[];
  /** Every service address with its prefix length, alone, and its URL, in the same order. */
  readonly serviceIps: readonly string[];
  readonly serviceAddresses: readonly string[];
  readonly serviceUrls: readonly string[];
  /** The family of the beacons' listen and peer addresses. */
  readonly heartbeatFamily: IpFamily;
  readonly hosts: {readonly primary: LabHost; readonly backup: LabHost};
  /** The client's address of the service's family: the one the web servers' access logs show. */
  readonly client: {readonly namespace: string; readonly address: string};
}

export interface LabOptions {
  readonly runner: CommandRunner;
  /** Per-run name prefix of every namespace; a fresh one when omitted. */
  readonly prefix?: string;
  readonly baseDir?: string;
  /** Extra YAML appended to both agents' configs (e.g. heartbeat timers). */
  readonly extraConfig?: string;
  /** Extra YAML appended to one host's config (e.g. its health checks). */
  readonly hostConfig?: Partial<Record<Role, string>>;
  /** address (default) or link: in link mode the service interface is eth0 and beacons use eth1 on its own LAN. */
  readonly mode?: ServiceMode;
  /** The service address's family: 4 (default) 192.0.2.100/25, or 6 2001:db8:0:1::100/64; or 'dual', both as one
   *  dual-stack service. Every LAN is dual-stack. */
  readonly serviceFamily?: IpFamily | 'dual';
  /** The beacons' family (listen and peer addresses): 4 (default) or 6. */
  readonly heartbeatFamily?: IpFamily;
  /** A web server on each host writing a combined-format access log; none when omitted. */
  readonly web?: WebServerKind;
  /** false: drain.enabled false in both configs (a switch as the runbook has it); default on. */
  readonly drain?: boolean;
  /** Per-host service interface, e.g. a wrong one to make a step fail. */
  readonly serviceInterface?: Partial<Record<Role, string>>;
  readonly progress?: (line: string) => void;
}

// The agent is started with the Node that runs this code (the project's Node 24), from the built tree.
const AGENT_SCRIPT = fileURLToPath(new URL('../../agent/main.js', import.meta.url));
/**
 * V8 flags the agent runs with, here and in systemd/baton-agent.service. Without a JIT and with a 1 MB young
 * generation the agent at rest measured 61 MB RSS and 0.7 % CPU (with them: 79 MB, 0.8 %); its work is a few
 * small datagrams a second, and a switch's time goes to ip, arping and fsync, not to JavaScript.
 */
export const AGENT_NODE_FLAGS = ['--jitless', '--max-semi-space-size=1'] as const;
/**
 * The agent runs with what its systemd unit grants (CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SETUID
 * CAP_SETGID, NoNewPrivileges=yes): ip, arping, the ARP sender, nft, ss and the drain's graceful command are exercised in the
 * lab with the privileges they have in production. setpriv (util-linux) execs the agent in place: same PID.
 */
export const UNIT_PRIVILEGES = ['--bounding-set=-all,+net_admin,+net_raw,+setuid,+setgid', '--no-new-privs'] as const;
const LAB_FILE = 'lab.json';
const NETNS_ETC = '/etc/netns';

/** Builds the namespaces, writes configs and secret, starts both agents. On failure removes what it made. */
export async function labUp(options: LabOptions): Promise<Lab> {
  const prefix = options.prefix ?? newLabPrefix();
  const dir = join(options.baseDir ?? LAB_BASE_DIR, prefix);
  const say = options.progress ?? (() => undefined);
  // Until the namespaces exist the prefix may be another lab's (createTopology refuses one in use and removes
  // what it made itself): nothing of the other lab is touched on that failure.
  let built = false;
  try {
    say(`lab ${prefix}: building namespaces ${prefix}-primary, ${prefix}-backup, ${prefix}-client and the switch ${prefix}-sw`);
    const mode = options.mode ?? 'address';
    const topology = await createTopology(options.runner, {...(mode === 'link' ? LINK_MODE_LAB_TOPOLOGY : DEFAULT_LAB_TOPOLOGY), prefix});
    built = true;
    await claimLab(prefix);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const beaconLan = mode === 'link' ? 'mgmt' : 'svc';
    const serviceFamilies: IpFamily[] = options.serviceFamily === 'dual' ? [4, 6] : [options.serviceFamily ?? 4];
    const serviceFamily = serviceFamilies[0] ?? 4;
    const heartbeatFamily = options.heartbeatFamily ?? 4;
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, randomBytes(32).toString('base64'), {mode: 0o600});
    const hosts = {} as Record<Role, LabHost>;
    for (const role of ['primary', 'backup'] as const) {
      const peerRole: Role = role === 'primary' ? 'backup' : 'primary';
      const hostDir = join(dir, role);
      await mkdir(hostDir, {recursive: true, mode: 0o700});
      const configFile = join(hostDir, 'baton.yaml');
      const socket = join(hostDir, 'control.sock');
      let web: LabHost['web'];
      if (options.web !== undefined) {
        const webOptions = {namespace: topology.namespace(role), dir: join(hostDir, 'web'), hostName: role};
        if (options.web === 'apache') {
          // Apache's workers run as www-data: they may pass through (not list) the lab's directories to their files.
          for (const path of [options.baseDir ?? LAB_BASE_DIR, dir, hostDir]) await chmod(path, 0o711);
        }
        const start = {nginx: startNginx, apache: startApache, builtin: startBuiltinWeb}[options.web];
        const server = await start(webOptions);
        web = {kind: options.web, pid: server.pid, accessLog: server.accessLog, graceful: server.graceful};
        say(`lab ${prefix}: ${options.web} serves on the ${role} (pid ${server.pid}), access log ${server.accessLog}`);
      }
      await writeFile(configFile, labConfig({
        role, address: topology.address(role, beaconLan, heartbeatFamily), peer: topology.address(peerRole, beaconLan, heartbeatFamily),
        serviceIps: serviceFamilies.map(labServiceCidr), secretFile,
        stateDir: join(hostDir, 'state'), socket, extra: `${options.extraConfig ?? ''}\n${options.hostConfig?.[role] ?? ''}`, mode,
        serviceInterface: options.serviceInterface?.[role] ?? topology.interfaceName(role, 'svc'), accessLog: web?.accessLog,
        graceful: web?.graceful, drain: options.drain ?? true,
      }), {mode: 0o600});
      const host: LabHost = {
        role, namespace: topology.namespace(role), address: topology.address(role, beaconLan, heartbeatFamily),
        interfaces: topology.hosts.find((h) => h.name === role)?.interfaces.map(({name, cidr, cidr6}) => ({name, cidr, cidr6})) ?? [],
        dir: hostDir, configFile, socket, logFile: join(hostDir, 'agent.log'), pid: 0, web,
      };
      await startAgent(host);
      say(`lab ${prefix}: started baton-agent for the ${role} in ${host.namespace} (pid ${host.pid}), log ${host.logFile}`);
      hosts[role] = host;
    }
    const lab: Lab = {
      prefix, dir, mode, serviceIp: labServiceCidr(serviceFamily), serviceFamily, serviceAddress: labServiceAddress(serviceFamily),
      serviceUrl: httpUrl(labServiceAddress(serviceFamily)), serviceFamilies, serviceIps: serviceFamilies.map(labServiceCidr),
      serviceAddresses: serviceFamilies.map(labServiceAddress), serviceUrls: serviceFamilies.map((f) => httpUrl(labServiceAddress(f))),
      heartbeatFamily, hosts,
      client: {namespace: topology.namespace('client'), address: topology.address('client', 'svc', serviceFamily)},
    };
    await writeFile(join(dir, LAB_FILE), `${JSON.stringify(lab, null, 2)}\n`);
    return lab;
  } catch (error) {
    if (built) await labDown(options.runner, prefix, options.baseDir).catch(() => undefined);
    throw new BatonError('LAB_FAILED', `lab ${prefix} could not be built: ${describeError(error)}`, {cause: error});
  }
}

/** Stops the lab's agents (by PID) and removes its namespaces and files. Idempotent. */
export async function labDown(runner: CommandRunner, prefix: string, baseDir = LAB_BASE_DIR): Promise<void> {
  const dir = join(baseDir, prefix);
  const lab = await readLab(dir).catch(() => undefined);
  if (lab !== undefined) {
    for (const host of Object.values(lab.hosts)) {
      await stopProcessByPid(host.pid);
      if (host.web !== undefined) await stopProcessByPid(host.web.pid);
    }
  }
  await destroyTopology(runner, prefix);
  // Files a rehearsal or the campaign put under /etc/netns/ for the lab's namespaces (`ip netns exec` mounts them
  // over /etc): they would outlive the namespaces.
  for (const name of await readdir(NETNS_ETC).catch(() => [] as string[])) {
    if (name.startsWith(`${prefix}-`)) await rm(join(NETNS_ETC, name), {recursive: true, force: true});
  }
  await rm(dir, {recursive: true, force: true});
  await releaseLab(prefix);
}

/** Prefixes of labs that exist on this machine: namespaces, or directories left by a crashed run. */
export async function listLabs(runner: CommandRunner, baseDir = LAB_BASE_DIR): Promise<string[]> {
  const fromNamespaces = await findLeftovers(runner);
  const fromDirs = await readdir(baseDir).catch(() => [] as string[]);
  return [...new Set([...fromNamespaces, ...fromDirs])].sort();
}

/** Labs on this machine split by whether the process that built them still runs (then they are in use). */
export async function labsByOwner(runner: CommandRunner, baseDir = LAB_BASE_DIR): Promise<{
  readonly unowned: string[]; readonly inUse: {readonly prefix: string; readonly owner: LabOwner}[];
}> {
  const unowned: string[] = [];
  const inUse: {prefix: string; owner: LabOwner}[] = [];
  for (const prefix of await listLabs(runner, baseDir)) {
    const owner = await liveOwner(prefix);
    if (owner === undefined) unowned.push(prefix);
    else inUse.push({prefix, owner});
  }
  return {unowned, inUse};
}

export async function readLab(dir: string): Promise<Lab> {
  return JSON.parse(await readFile(join(dir, LAB_FILE), 'utf8')) as Lab;
}

export async function labStatus(lab: Lab): Promise<{primary: StatusReport; backup: StatusReport}> {
  const ask = async (host: LabHost): Promise<StatusReport> => {
    return await callAgent(host.socket, {id: 'lab-status', type: 'status'}) as StatusReport;
  };
  return {primary: await ask(lab.hosts.primary), backup: await ask(lab.hosts.backup)};
}

/**
 * Polls both agents until the pair has settled: both see each other alive, exactly one holds the IP (and the other
 * none of it).
 * Throws LAB_FAILED with the last observation when it does not happen within `timeoutMs`.
 */
export async function waitForSettledPair(lab: Lab, timeoutMs: number): Promise<{primary: StatusReport; backup: StatusReport}> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer from the agents yet';
  for (;;) {
    try {
      const status = await labStatus(lab);
      const holders = [status.primary, status.backup].filter((s) => s.self.holdsIp === true).length;
      // A host with part of a dual-stack service IP (one address of two) is not settled, whoever holds the rest.
      const partly = [status.primary, status.backup].filter((s) => s.self.holdsIp !== true && (s.self.held?.length ?? 0) > 0).length;
      if (status.primary.peer.alive && status.backup.peer.alive && holders === 1 && partly === 0 &&
        status.primary.self.state !== 'starting' && status.backup.self.state !== 'starting') return status;
      last = `primary ${status.primary.self.state} (peer ${status.primary.peer.alive ? 'alive' : 'not seen'}), ` +
        `backup ${status.backup.self.state} (peer ${status.backup.peer.alive ? 'alive' : 'not seen'}), ${holders} holder(s) of the IP` +
        (partly === 0 ? '' : `, ${partly} holding part of it`);
    } catch (error) {
      last = describeError(error);
    }
    if (Date.now() > deadline) throw new BatonError('LAB_FAILED', `the lab pair did not settle within ${timeoutMs} ms: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What starting an agent needs of a host: a lab's, or another test's (the etcd tests run three). */
export type AgentProcess = Pick<LabHost, 'namespace' | 'configFile' | 'logFile' | 'pid'>;

/**
 * Starts (or restarts) a host's baton-agent and records its PID in the lab file. `program` runs another copy of
 * baton (e.g. one put in place by `baton install`), as an upgrade does. `env` replaces the agent's environment
 * (e.g. this process's plus libfaketime's LD_PRELOAD, to step one agent's wall clock).
 */
export async function startAgent(
  host: AgentProcess, lab?: Lab, program: {node: string; script: string} = {node: process.execPath, script: AGENT_SCRIPT},
  options: {env?: NodeJS.ProcessEnv} = {},
): Promise<void> {
  host.pid = await spawnInNamespace(host.namespace, 'setpriv',
    [...UNIT_PRIVILEGES, program.node, ...AGENT_NODE_FLAGS, program.script, '--config', host.configFile], host.logFile,
    options.env === undefined ? {} : {env: options.env});
  if (lab !== undefined) await writeFile(join(lab.dir, LAB_FILE), `${JSON.stringify(lab, null, 2)}\n`);
}

/** Sends a signal to a host's agent and waits until it is gone (SIGKILL: at once; SIGTERM: after its clean stop). */
export async function signalAgent(host: LabHost, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  process.kill(host.pid, signal);
  const deadline = Date.now() + STOP_GRACE_MS;
  while (isProcessAlive(host.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  if (isProcessAlive(host.pid)) throw new BatonError('LAB_FAILED', `the ${host.role}'s agent (pid ${host.pid}) did not end after ${signal}`);
}

/**
 * Takes a host's interface down, or up again as a cut cable's return looks to the host: with its own addresses, as
 * its network configuration sets them. A link down flushes the interface's IPv6 addresses
 * (net.ipv6.conf.*.keep_addr_on_down is 0 by default; IPv4 addresses stay), so on the way up they are put back
 * (`replace`: idempotent; nodad as the lab set them). The service address is the agent's: never restored here.
 */
export async function setHostLink(host: LabHost, iface: string, up: boolean): Promise<void> {
  await execa('ip', ['-n', host.namespace, 'link', 'set', 'dev', iface, up ? 'up' : 'down']);
  if (!up) return;
  for (const own of host.interfaces.filter((i) => i.name === iface)) {
    await execa('ip', ['-n', host.namespace, 'addr', 'replace', own.cidr6, 'dev', iface, 'nodad']);
  }
}

export interface LabConfigInput {
  /** One service address (CIDR), or two (a dual-stack service: written as a list). */
  role: Role; address: string; peer: string; serviceIps: readonly string[]; secretFile: string; stateDir: string; socket: string; extra: string;
  mode: ServiceMode; serviceInterface: string; accessLog: string | undefined;
  graceful: {readonly path: string; readonly args: readonly string[]} | undefined;
  /** Whether the drain is on (the default); off writes drain.enabled false and no graceful command. */
  drain?: boolean;
}

/** A host's baton.yaml as labUp writes it. Pure. */
export function labConfig(host: LabConfigInput): string {
  return [
    '# Generated by `baton lab`: a throw-away pair in network namespaces.',
    'pair: lab',
    `node: ${host.role}`,
    `listen: { address: ${yamlAddress(host.address)}, port: 7411 }`,
    `peer: { address: ${yamlAddress(host.peer)}, port: 7411 }`,
    `secret_file: ${host.secretFile}`,
    'service:',
    `  address: ${host.serviceIps.length === 1 ? yamlAddress(host.serviceIps[0] ?? '') : `[${host.serviceIps.map(yamlAddress).join(', ')}]`}`,
    `  interface: ${host.serviceInterface}`,
    `  mode: ${host.mode}`,
    ...(host.accessLog === undefined ? [] : ['confirm:', `  access_log: ${host.accessLog}`, '  min_requests: 3', '  timeout_s: 10']),
    // The lab's web server finishes gracefully when its host gives the IP away; a lab download lasts 4 s.
    ...(host.drain === false ? ['drain: { enabled: false }'] : host.graceful === undefined ? [] : ['drain:', '  graceful_command:',
      `    path: ${host.graceful.path}`, `    args: ${JSON.stringify(host.graceful.args)}`, '  timeout_s: 20']),
    // The drill cuts the active host's link (fail-active) and the lab is for holding switches half-way.
    'rehearsal: { enabled: true }',
    `state_dir: ${host.stateDir}`,
    `control_socket: ${host.socket}`,
    host.extra,
    '',
  ].join('\n');
}

/** An address as a YAML value: an IPv6 one quoted, so its colons can never be read as YAML's. */
function yamlAddress(address: string): string {
  return address.includes(':') ? `'${address}'` : address;
}

// A stopping agent gets this long to leave cleanly.
const STOP_GRACE_MS = 3000;

