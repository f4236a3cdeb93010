// The namespace lab: a primary, a backup and a client on this machine, with generated configs and secret and a
// real baton-agent in each host namespace. Used by `baton lab` and by the integration tests.

import {randomBytes} from 'node:crypto';
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import type {StatusReport} from '../../agent/control-protocol.js';
import {BatonError, describeError} from '../../agent/errors.js';
import type {CommandRunner, Role} from '../../agent/ports.js';
import {callAgent} from '../control-client.js';
import {
  createNamespacedRunner, createTopology, DEFAULT_LAB_TOPOLOGY, destroyTopology, findLeftovers, newLabPrefix,
  spawnInNamespace, SERVICE_LAN,
} from './namespaces.js';

export const LAB_SERVICE_IP = `${SERVICE_LAN.serviceAddress}/${SERVICE_LAN.prefixLength}`;
export const LAB_BASE_DIR = join(tmpdir(), 'baton-lab');

export interface LabHost {
  readonly role: Role;
  readonly namespace: string;
  readonly address: string;
  readonly dir: string;
  readonly configFile: string;
  readonly socket: string;
  readonly logFile: string;
  readonly pid: number;
}

export interface Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly serviceIp: string;
  readonly hosts: {readonly primary: LabHost; readonly backup: LabHost};
  readonly client: {readonly namespace: string; readonly address: string};
}

export interface LabOptions {
  readonly runner: CommandRunner;
  /** Per-run name prefix of every namespace; a fresh one when omitted. */
  readonly prefix?: string;
  readonly baseDir?: string;
  /** Extra YAML appended to both agents' configs (e.g. heartbeat timers). */
  readonly extraConfig?: string;
  readonly progress?: (line: string) => void;
}

// The agent is started with the Node that runs this code (the project's Node 24), from the built tree.
const AGENT_SCRIPT = fileURLToPath(new URL('../../agent/main.js', import.meta.url));
const LAB_FILE = 'lab.json';

/** Builds the namespaces, writes configs and secret, starts both agents. On failure removes what it made. */
export async function labUp(options: LabOptions): Promise<Lab> {
  const prefix = options.prefix ?? newLabPrefix();
  const dir = join(options.baseDir ?? LAB_BASE_DIR, prefix);
  const say = options.progress ?? (() => undefined);
  try {
    say(`lab ${prefix}: building namespaces ${prefix}-primary, ${prefix}-backup, ${prefix}-client and the switch ${prefix}-sw`);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const topology = await createTopology(options.runner, {...DEFAULT_LAB_TOPOLOGY, prefix});
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, randomBytes(32).toString('base64'), {mode: 0o600});
    const hosts = {} as Record<Role, LabHost>;
    for (const role of ['primary', 'backup'] as const) {
      const peerRole: Role = role === 'primary' ? 'backup' : 'primary';
      const hostDir = join(dir, role);
      await mkdir(hostDir, {recursive: true, mode: 0o700});
      const configFile = join(hostDir, 'baton.yaml');
      const socket = join(hostDir, 'control.sock');
      await writeFile(configFile, labConfig({
        role, address: topology.address(role, 'svc'), peer: topology.address(peerRole, 'svc'), secretFile,
        stateDir: join(hostDir, 'state'), socket, extra: options.extraConfig ?? '',
      }), {mode: 0o600});
      const logFile = join(hostDir, 'agent.log');
      const pid = await spawnInNamespace(topology.namespace(role), process.execPath, [AGENT_SCRIPT, '--config', configFile], logFile);
      say(`lab ${prefix}: started baton-agent for the ${role} in ${topology.namespace(role)} (pid ${pid}), log ${logFile}`);
      hosts[role] = {role, namespace: topology.namespace(role), address: topology.address(role, 'svc'), dir: hostDir, configFile, socket, logFile, pid};
    }
    const lab: Lab = {
      prefix, dir, serviceIp: LAB_SERVICE_IP, hosts,
      client: {namespace: topology.namespace('client'), address: topology.address('client', 'svc')},
    };
    await writeFile(join(dir, LAB_FILE), `${JSON.stringify(lab, null, 2)}\n`);
    return lab;
  } catch (error) {
    await labDown(options.runner, prefix, options.baseDir).catch(() => undefined);
    throw new BatonError('LAB_FAILED', `lab ${prefix} could not be built: ${describeError(error)}`, {cause: error});
  }
}

/** Stops the lab's agents (by PID) and removes its namespaces and files. Idempotent. */
export async function labDown(runner: CommandRunner, prefix: string, baseDir = LAB_BASE_DIR): Promise<void> {
  const dir = join(baseDir, prefix);
  const lab = await readLab(dir).catch(() => undefined);
  if (lab !== undefined) {
    for (const host of Object.values(lab.hosts)) await stopProcess(host.pid);
  }
  await destroyTopology(runner, prefix);
  await rm(dir, {recursive: true, force: true});
}

/** Prefixes of labs that exist on this machine: namespaces, or directories left by a crashed run. */
export async function listLabs(runner: CommandRunner, baseDir = LAB_BASE_DIR): Promise<string[]> {
  const fromNamespaces = await findLeftovers(runner);
  const fromDirs = await readdir(baseDir).catch(() => [] as string[]);
  return [...new Set([...fromNamespaces, ...fromDirs])].sort();
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
 * Polls both agents until the pair has settled: both see each other alive, exactly one holds the IP.
 * Throws LAB_FAILED with the last observation when it does not happen within `timeoutMs`.
 */
export async function waitForSettledPair(lab: Lab, timeoutMs: number): Promise<{primary: StatusReport; backup: StatusReport}> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer from the agents yet';
  for (;;) {
    try {
      const status = await labStatus(lab);
      const holders = [status.primary, status.backup].filter((s) => s.self.holdsIp === true).length;
      if (status.primary.peer.alive && status.backup.peer.alive && holders === 1 &&
        status.primary.self.state !== 'starting' && status.backup.self.state !== 'starting') return status;
      last = `primary ${status.primary.self.state} (peer ${status.primary.peer.alive ? 'alive' : 'not seen'}), ` +
        `backup ${status.backup.self.state} (peer ${status.backup.peer.alive ? 'alive' : 'not seen'}), ${holders} holder(s) of the IP`;
    } catch (error) {
      last = describeError(error);
    }
    if (Date.now() > deadline) throw new BatonError('LAB_FAILED', `the lab pair did not settle within ${timeoutMs} ms: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs a command in the lab's client namespace; resolves with its stdout. */
export function inClient(runner: CommandRunner, lab: Lab, file: string, args: readonly string[]): Promise<string> {
  return createNamespacedRunner(runner, lab.client.namespace).run(file, args);
}

function labConfig(host: {role: Role; address: string; peer: string; secretFile: string; stateDir: string; socket: string; extra: string}): string {
  return [
    '# Generated by `baton lab`: a throw-away pair in network namespaces.',
    'pair: lab',
    `node: ${host.role}`,
    `listen: { address: ${host.address}, port: 7411 }`,
    `peer: { address: ${host.peer}, port: 7411 }`,
    `secret_file: ${host.secretFile}`,
    'service:',
    `  address: ${LAB_SERVICE_IP}`,
    '  interface: eth0',
    '  mode: address',
    `state_dir: ${host.stateDir}`,
    `control_socket: ${host.socket}`,
    host.extra,
    '',
  ].join('\n');
}

// A stopping agent gets this long to leave cleanly before SIGKILL.
const STOP_GRACE_MS = 3000;

async function stopProcess(pid: number): Promise<void> {
  if (!isRunning(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (isRunning(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (isRunning(pid)) process.kill(pid, 'SIGKILL');
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
