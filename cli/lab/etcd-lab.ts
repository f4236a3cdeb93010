// The namespace lab in etcd mode (`baton lab run|up --hosts 3 --coordination etcd`): three baton hosts a, b and c, each
// with a real baton-agent in etcd mode and a web server writing the access log its confirmation reads; three etcd
// members started by the lab (Debian's etcd-server); and a client. All on one LAN of TEST-NET-1:
//
//   ${prefix}-a 192.0.2.11 ┐                        ┌ ${prefix}-m1 192.0.2.31 (etcd)
//   ${prefix}-b 192.0.2.12 ┼── br-svc (${prefix}-sw) ┼ ${prefix}-m2 192.0.2.32 (etcd)
//   ${prefix}-c 192.0.2.13 ┤                        ├ ${prefix}-m3 192.0.2.33 (etcd)
//                          └ ${prefix}-client 192.0.2.20
//
// The service address is the pair lab's, 192.0.2.100/25 on eth0. The lease's TTL is short (LAB_LEASE_TTL_S), so that
// a failover is seen within seconds; a production host keeps the default of 10 s. labDown removes it as any lab.

import {mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import type {EtcdStatusReport} from '../../agent/control-protocol.js';
import {BatonError, describeError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import {callAgent} from '../control-client.js';
import {etcdClientUrl, startEtcdMembers, waitEtcdHealthy} from './etcd-members.js';
import {labDown, LAB_BASE_DIR, startAgent} from './lab.js';
import {claimLab} from './lab-owner.js';
import {createTopology, spawnInNamespace} from './namespaces.js';
import {httpUrl, labServiceAddress, labServiceCidr, newLabPrefix, SERVICE_LAN, type TopologySpec} from './topology-plan.js';
import {startBuiltinWeb, startNginx} from './web.js';

/** The hosts' names, in the order of preference their configs give (coordination.hosts). */
export const ETCD_LAB_HOSTS = ['a', 'b', 'c'] as const;
export type EtcdLabHostName = typeof ETCD_LAB_HOSTS[number];
const HOST_ADDRESSES: Record<EtcdLabHostName, {v4: string; v6: string}> = {
  a: {v4: '192.0.2.11', v6: '2001:db8:0:1::11'},
  b: {v4: '192.0.2.12', v6: '2001:db8:0:1::12'},
  c: {v4: '192.0.2.13', v6: '2001:db8:0:1::13'},
};
const MEMBERS = [
  {name: 'm1', v4: '192.0.2.31', v6: '2001:db8:0:1::31'},
  {name: 'm2', v4: '192.0.2.32', v6: '2001:db8:0:1::32'},
  {name: 'm3', v4: '192.0.2.33', v6: '2001:db8:0:1::33'},
] as const;
const CLIENT = {v4: '192.0.2.20', v6: '2001:db8:0:1::20'};
/** The lab's lease TTL: a dead holder's key is free 3 s after its last renewal (production default: 10 s). */
export const LAB_LEASE_TTL_S = 3;
const ETCD_LAB_FILE = 'etcd-lab.json';
// Agents stand by or hold within a second of etcd answering; generous for a busy machine.
const SETTLE_TIMEOUT_MS = 20_000;

export interface EtcdLabHost {
  readonly name: EtcdLabHostName;
  readonly namespace: string;
  readonly address: string;
  readonly dir: string;
  readonly configFile: string;
  readonly socket: string;
  readonly logFile: string;
  /** The agent's PID; changes when the agent is restarted. */
  pid: number;
  readonly web: {readonly kind: 'builtin' | 'nginx'; readonly pid: number; readonly accessLog: string};
}

export interface EtcdLab {
  readonly prefix: string;
  readonly dir: string;
  readonly serviceIp: string;
  readonly serviceAddress: string;
  readonly serviceUrl: string;
  readonly leaseTtlS: number;
  readonly endpoints: readonly string[];
  readonly members: ReadonlyArray<{readonly name: string; readonly namespace: string; readonly address: string; readonly pid: number}>;
  readonly hosts: readonly EtcdLabHost[];
  readonly client: {readonly namespace: string; readonly address: string};
}

export interface EtcdLabOptions {
  readonly runner: CommandRunner;
  /** Per-run name prefix of every namespace (LAB_PREFIX_PATTERN); a fresh one when omitted. */
  readonly prefix?: string;
  readonly baseDir?: string;
  readonly web: 'builtin' | 'nginx';
  readonly progress?: (line: string) => void;
}

/** The lab's topology: one LAN, the three hosts, the three members and the client. Pure. */
export function etcdLabTopology(prefix: string): TopologySpec {
  const one = (name: string, v4: string, v6: string) => ({name, interfaces: [{lan: SERVICE_LAN.name, name: 'eth0', address: v4, address6: v6}]});
  return {
    prefix,
    lans: [SERVICE_LAN],
    hosts: [
      ...ETCD_LAB_HOSTS.map((name) => one(name, HOST_ADDRESSES[name].v4, HOST_ADDRESSES[name].v6)),
      ...MEMBERS.map((m) => one(m.name, m.v4, m.v6)),
      one('client', CLIENT.v4, CLIENT.v6),
    ],
  };
}

export interface EtcdLabConfigInput {
  readonly host: EtcdLabHostName;
  readonly endpoints: readonly string[];
  readonly leaseTtlS: number;
  readonly accessLog: string;
  readonly stateDir: string;
  readonly socket: string;
  /** The web server's graceful command, for the drain of a planned switch (as the pair lab writes it). */
  readonly graceful?: {readonly path: string; readonly args: readonly string[]};
}

/** A host's baton.yaml in the etcd lab. Pure. */
export function etcdLabConfig(input: EtcdLabConfigInput): string {
  return [
    '# Generated by `baton lab --coordination etcd`: a throw-away host of three in network namespaces.',
    'pair: lab',
    `service: { address: ${labServiceCidr(4)}, interface: eth0 }`,
    'confirm:',
    `  access_log: ${input.accessLog}`,
    '  min_requests: 3',
    '  timeout_s: 10',
    // The lab's web server finishes gracefully when its host gives the service away; a lab download lasts 4 s.
    ...input.graceful === undefined ? [] : ['drain:', '  graceful_command:', `    path: ${input.graceful.path}`,
      `    args: ${JSON.stringify(input.graceful.args)}`, '  timeout_s: 20'],
    'coordination:',
    '  mode: etcd',
    `  endpoints: [${input.endpoints.join(', ')}]`,
    `  lease_ttl_s: ${input.leaseTtlS}`,
    `  host: ${input.host}`,
    `  hosts: [${ETCD_LAB_HOSTS.join(', ')}]`,
    `state_dir: ${input.stateDir}`,
    `control_socket: ${input.socket}`,
    '',
  ].join('\n');
}

/** Builds the namespaces, starts etcd, the web servers and the agents; waits until one host holds the service and
 *  the others stand by. On failure removes what it made. */
export async function etcdLabUp(options: EtcdLabOptions): Promise<EtcdLab> {
  const prefix = options.prefix ?? newLabPrefix();
  const dir = join(options.baseDir ?? LAB_BASE_DIR, prefix);
  const say = options.progress ?? (() => undefined);
  let built = false;
  try {
    say(`lab ${prefix}: building namespaces ${prefix}-a, -b, -c (baton), -m1, -m2, -m3 (etcd), -client and the switch ${prefix}-sw`);
    const topology = await createTopology(options.runner, etcdLabTopology(prefix));
    built = true;
    await claimLab(prefix);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const memberSpecs = MEMBERS.map((m) => ({name: m.name, namespace: topology.namespace(m.name), address: m.v4}));
    const pids = await startEtcdMembers(memberSpecs, join(dir, 'etcd'), prefix,
      (member, file, args, logFile) => spawnInNamespace(member.namespace, file, args, logFile));
    const endpoints = memberSpecs.map((m) => etcdClientUrl(m.address));
    await waitEtcdHealthy(topology.namespace('client'), endpoints, prefix);
    say(`lab ${prefix}: etcd ${endpoints.join(', ')} is healthy (pids ${pids.join(', ')})`);
    const hosts: EtcdLabHost[] = [];
    for (const name of ETCD_LAB_HOSTS) {
      const hostDir = join(dir, name);
      await mkdir(hostDir, {recursive: true, mode: 0o700});
      const start = options.web === 'nginx' ? startNginx : startBuiltinWeb;
      const server = await start({namespace: topology.namespace(name), dir: join(hostDir, 'web'), hostName: name});
      const configFile = join(hostDir, 'baton.yaml');
      const socket = join(hostDir, 'control.sock');
      await writeFile(configFile, etcdLabConfig({host: name, endpoints, leaseTtlS: LAB_LEASE_TTL_S, accessLog: server.accessLog,
        stateDir: join(hostDir, 'state'), socket, graceful: server.graceful}), {mode: 0o600});
      const host: EtcdLabHost = {name, namespace: topology.namespace(name), address: HOST_ADDRESSES[name].v4, dir: hostDir, configFile, socket,
        logFile: join(hostDir, 'agent.log'), pid: 0, web: {kind: options.web, pid: server.pid, accessLog: server.accessLog}};
      await startAgent(host);
      say(`lab ${prefix}: host ${name}: ${options.web} (pid ${server.pid}) and baton-agent in etcd mode (pid ${host.pid}), log ${host.logFile}`);
      hosts.push(host);
    }
    const lab: EtcdLab = {
      prefix, dir, serviceIp: labServiceCidr(4), serviceAddress: labServiceAddress(4), serviceUrl: httpUrl(labServiceAddress(4)),
      leaseTtlS: LAB_LEASE_TTL_S, endpoints,
      members: memberSpecs.map((m, i) => ({...m, pid: pids[i] ?? 0})), hosts,
      client: {namespace: topology.namespace('client'), address: CLIENT.v4},
    };
    await writeEtcdLab(lab);
    await waitForOneHolder(lab, SETTLE_TIMEOUT_MS);
    return lab;
  } catch (error) {
    if (built) await labDown(options.runner, prefix, options.baseDir).catch(() => undefined);
    throw new BatonError('LAB_FAILED', `lab ${prefix} could not be built: ${describeError(error)}`, {cause: error});
  }
}

export async function writeEtcdLab(lab: EtcdLab): Promise<void> {
  await writeFile(join(lab.dir, ETCD_LAB_FILE), `${JSON.stringify(lab, null, 2)}\n`);
}

/** The etcd lab recorded in `dir` by etcdLabUp; throws when there is none (a pair's lab, or nothing). */
export async function readEtcdLab(dir: string): Promise<EtcdLab> {
  return JSON.parse(await readFile(join(dir, ETCD_LAB_FILE), 'utf8')) as EtcdLab;
}

export function etcdLabHost(lab: EtcdLab, name: string): EtcdLabHost {
  const host = lab.hosts.find((h) => h.name === name);
  if (host === undefined) throw new BatonError('LAB_FAILED', `the lab has no host ${name} (hosts: ${lab.hosts.map((h) => h.name).join(', ')})`);
  return host;
}

/** Every host's status, in the lab's order; a host whose agent does not answer is the error it gave. */
export async function etcdLabStatus(lab: EtcdLab): Promise<Array<EtcdStatusReport | Error>> {
  return await Promise.all(lab.hosts.map(async (host) => {
    try {
      return await callAgent(host.socket, {id: 'lab-status', type: 'status'}) as EtcdStatusReport;
    } catch (error) {
      return error instanceof Error ? error : new Error(describeError(error));
    }
  }));
}

/** The settled lab as its agents say it: one holder, with its epoch, and every other host standing by for it. */
export interface Settled {
  readonly holder: string;
  readonly epoch: number;
  readonly standing: readonly string[];
}

/** Whether `statuses` (of `names`) show one holder holding the lab's service (each host's first: the lab runs one) and
 *  the rest standing by for it, none switching. */
export function settledOf(names: readonly string[], statuses: ReadonlyArray<EtcdStatusReport | Error>): Settled | string {
  const views = statuses.map((s, i) => {
    if (s instanceof Error) return `${names[i] ?? '?'}: ${s.message}`;
    const service = s.services[0];
    return service === undefined ? `${s.self.host}: no service` : {host: s.self.host, ...service};
  });
  const says = views.map((v) => typeof v === 'string' ? v
    : `${v.host} ${v.claim.phase}${v.claim.holder === undefined ? '' : ` (holder ${v.claim.holder})`}${v.holdsIp === true ? ', has the address' : ''}`);
  const ok = views.filter((v) => typeof v !== 'string');
  const holders = ok.filter((v) => v.claim.phase === 'holding');
  const [holder] = holders;
  if (ok.length !== statuses.length || holders.length !== 1 || holder === undefined || holder.holdsIp !== true ||
    holder.claim.epoch === undefined || holder.claim.switching !== undefined) return says.join('; ');
  const others = ok.filter((v) => v !== holder);
  if (!others.every((v) => v.claim.phase === 'standing-by' && v.claim.holder === holder.host && v.held.length === 0 &&
    v.claim.switching === undefined)) return says.join('; ');
  return {holder: holder.host, epoch: holder.claim.epoch, standing: others.map((v) => v.host)};
}

/** Polls the agents until settledOf says one holder; throws LAB_FAILED with the last look after `timeoutMs`. */
export async function waitForOneHolder(lab: EtcdLab, timeoutMs: number, hosts: readonly EtcdLabHost[] = lab.hosts): Promise<Settled> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const statuses = await etcdLabStatus({...lab, hosts});
    const settled = settledOf(hosts.map((h) => h.name), statuses);
    if (typeof settled !== 'string') return settled;
    last = settled;
    if (Date.now() > deadline) throw new BatonError('LAB_FAILED', `the etcd lab did not settle with one holder within ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

/** Takes a host's service interface down or up (no address is restored: the lab gives its hosts IPv4 for etcd). */
export async function setEtcdHostLink(host: EtcdLabHost, up: boolean): Promise<void> {
  await execa('ip', ['-n', host.namespace, 'link', 'set', 'dev', 'eth0', up ? 'up' : 'down']);
}
