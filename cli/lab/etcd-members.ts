// A real etcd cluster (Debian's etcd-server, `etcd` and `etcdctl` on the PATH) for the namespace labs: its members,
// each started in a namespace of its own on TEST-NET addresses, and the wait until the cluster answers with a leader.
// Used by `baton lab run --coordination etcd` (etcd-lab.ts) and by the integration tests (test/integration/etcd-cluster.ts).

import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
// etcd's defaults (100 ms heartbeats, 1 s election timeout): the cluster has elections as a user's cluster has them.
const HEARTBEAT_MS = 100;
const ELECTION_MS = 1000;
// A cluster of three on a busy machine is up within seconds; this bounds a start that hangs.
export const ETCD_HEALTHY_WITHIN_MS = 30_000;

export interface EtcdMemberSpec {
  readonly name: string;
  readonly namespace: string;
  /** The member's IPv4 address in its namespace; it listens there on ETCD_CLIENT_PORT and ETCD_PEER_PORT. */
  readonly address: string;
}

/** A member's client URL, as agents and etcdctl give it in their endpoints. */
export function etcdClientUrl(address: string): string {
  return `http://${address}:${ETCD_CLIENT_PORT}`;
}

/**
 * Starts every member as one new cluster (`--initial-cluster-state new`, `token` its token), each with its data in
 * `baseDir/<name>` and its output in `baseDir/<name>.log`, through `spawn` (which starts a long-running program in a
 * namespace and returns its PID, so the caller can end it by PID). Resolves with the PIDs in the members' order,
 * without waiting for the cluster: waitEtcdHealthy does.
 */
export async function startEtcdMembers(members: readonly EtcdMemberSpec[], baseDir: string, token: string,
  spawn: (member: EtcdMemberSpec, file: string, args: readonly string[], logFile: string) => Promise<number>): Promise<number[]> {
  const initialCluster = members.map((m) => `${m.name}=http://${m.address}:${ETCD_PEER_PORT}`).join(',');
  const pids: number[] = [];
  for (const member of members) {
    const dataDir = join(baseDir, member.name);
    await mkdir(dataDir, {recursive: true, mode: 0o700});
    const clientUrl = etcdClientUrl(member.address);
    pids.push(await spawn(member, 'etcd', [
      '--name', member.name, '--data-dir', dataDir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', `http://${member.address}:${ETCD_PEER_PORT}`, '--initial-advertise-peer-urls', `http://${member.address}:${ETCD_PEER_PORT}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      '--heartbeat-interval', String(HEARTBEAT_MS), '--election-timeout', String(ELECTION_MS),
    ], join(baseDir, `${member.name}.log`)));
  }
  return pids;
}

/** Waits until `etcdctl endpoint health`, run in `namespace`, says every endpoint is healthy; throws after `withinMs`. */
export async function waitEtcdHealthy(namespace: string, endpoints: readonly string[], label: string, withinMs = ETCD_HEALTHY_WITHIN_MS): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last = '';
  while (Date.now() < deadline) {
    const result = await execa('ip', ['netns', 'exec', namespace, 'etcdctl', `--endpoints=${endpoints.join(',')}`,
      '--command-timeout=2s', 'endpoint', 'health'], {reject: false, env: {ETCDCTL_API: '3'}, all: true});
    if (result.exitCode === 0) return;
    last = String(result.all);
    await sleep(200);
  }
  throw new Error(`the etcd cluster ${label} was not healthy within ${withinMs} ms: ${last}`);
}

// The faults of issue 17 on such a cluster, for the tests and the campaign: a host cut from the members, a member
// partitioned from everyone, and the leader found first. nftables in the namespace concerned, in a table of its own.
const CUT_TABLE = 'blqcut';

/** Drops every packet between the host in `namespace` and `addresses` (the members'), both ways. */
export async function cutFrom(namespace: string, addresses: readonly string[]): Promise<void> {
  const set = addresses.join(', ');
  await nft(namespace, `table inet ${CUT_TABLE} {\n` +
    `  chain input { type filter hook input priority -10; ip saddr { ${set} } drop; }\n` +
    `  chain output { type filter hook output priority -10; ip daddr { ${set} } drop; }\n}\n`);
}

/** Drops every packet between the member in `namespace` and everything on `lan` (a CIDR): a partitioned member. */
export async function isolateFrom(namespace: string, lan: string): Promise<void> {
  await nft(namespace, `table inet ${CUT_TABLE} {\n` +
    `  chain input { type filter hook input priority -10; ip saddr ${lan} drop; }\n` +
    `  chain output { type filter hook output priority -10; ip daddr ${lan} drop; }\n}\n`);
}

/** Takes back cutFrom() or isolateFrom() in `namespace`; nothing to take back is no error. */
export async function healCut(namespace: string): Promise<void> {
  await execa('ip', ['netns', 'exec', namespace, '/usr/sbin/nft', 'delete', 'table', 'inet', CUT_TABLE], {reject: false});
}

async function nft(namespace: string, rules: string): Promise<void> {
  await execa('ip', ['netns', 'exec', namespace, '/usr/sbin/nft', '-f', '-'], {input: rules});
}

/** The member the others follow, as each says (`etcdctl endpoint status`, asked in its own namespace). */
export async function etcdLeader<M extends EtcdMemberSpec>(members: readonly M[]): Promise<M> {
  for (const member of members) {
    const result = await execa('ip', ['netns', 'exec', member.namespace, 'etcdctl', `--endpoints=${etcdClientUrl(member.address)}`,
      '--command-timeout=2s', 'endpoint', 'status', '-w', 'json'], {reject: false, env: {ETCDCTL_API: '3'}});
    if (result.exitCode !== 0) continue;
    const [status] = JSON.parse(result.stdout) as Array<{Status: {header: {member_id: number}; leader: number}}>;
    if (status === undefined) continue;
    // JSON numbers lose the low bits of a 64-bit id, equally on both sides: compare as they come.
    if (status.Status.leader === status.Status.header.member_id) return member;
  }
  throw new Error('no member says it is the leader');
}
