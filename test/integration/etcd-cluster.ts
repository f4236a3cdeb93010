// A real three-member etcd cluster (Debian's etcd-server) for the integration tests, each member in its own network
// namespace, with extra hosts for contenders, agents and observers (a, b and w unless the test names others), all on
// one bridge of their own with TEST-NET-1 addresses;
// and the faults: a host cut from the members, a member killed or partitioned (the leader found first), a process
// frozen and thawed. Teardown kills every process it started by PID and removes every namespace, even on failure.
// The members are started as `baton lab run --coordination etcd` starts its own (cli/lab/etcd-members.ts).
//
//   ${prefix}-m1 192.0.2.31 ┐                      ┌ ${prefix}-a 192.0.2.11 (contender)
//   ${prefix}-m2 192.0.2.32 ┼── br-etcd (${prefix}-sw) ┼ ${prefix}-b 192.0.2.12 (contender)
//   ${prefix}-m3 192.0.2.33 ┘                      └ ${prefix}-w 192.0.2.20 (observer)

import {spawnSync} from 'node:child_process';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {cutFrom, etcdClientUrl, ETCD_HEALTHY_WITHIN_MS, etcdLeader, healCut, isolateFrom, startEtcdMembers, waitEtcdHealthy} from '../../cli/lab/etcd-members.js';
import {createTopology, destroyTopology, spawnInNamespace} from '../../cli/lab/namespaces.js';
import type {Topology, TopologySpec} from '../../cli/lab/topology-plan.js';

export const ETCD_LAN = {name: 'etcd', network: '192.0.2.0', prefixLength: 24, ipv6: {network: '2001:db8:0:17::', prefixLength: 64}} as const;
export const SERVICE_CIDR = '192.0.2.100/24';
export const SERVICE_ADDRESS = '192.0.2.100';
const MEMBERS = [{name: 'm1', address: '192.0.2.31'}, {name: 'm2', address: '192.0.2.32'}, {name: 'm3', address: '192.0.2.33'}] as const;
const OTHERS: readonly EtcdClusterHost[] = [{name: 'a', address: '192.0.2.11'}, {name: 'b', address: '192.0.2.12'}, {name: 'w', address: '192.0.2.20'}];
const HEALTHY_WITHIN_MS = ETCD_HEALTHY_WITHIN_MS;

const runner = createExecaRunner();

/** A host beside the members on the cluster's bridge: a contender, an agent, a client. */
export interface EtcdClusterHost {
  /** 1–16 of a-z0-9, not m1..m3 or sw. */
  readonly name: string;
  /** In 192.0.2.0/24, not .31–.33 (the members) or .100 (the service address). */
  readonly address: string;
}

export interface EtcdMember {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly clientUrl: string;
  /** undefined once killed. */
  pid: number | undefined;
}

export interface EtcdCluster {
  readonly prefix: string;
  readonly topology: Topology;
  readonly members: readonly EtcdMember[];
  readonly endpoints: readonly string[];
  /** Namespace of a host: a member's or one of the others (a, b and w by default). */
  namespace(host: string): string;
  /** Starts a long-running program in a host's namespace with its output in `logFile`; killed by PID in teardown. */
  spawn(host: string, file: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<number>;
  /** Drops every packet between a host and the members, both ways (nftables in the host's namespace). */
  cut(host: string, from?: readonly EtcdMember[]): Promise<void>;
  /** Drops every packet between a member and every other host (members and clients): a partitioned member. */
  isolate(member: EtcdMember): Promise<void>;
  /** Takes back cut() or isolate(). */
  heal(host: string): Promise<void>;
  /** SIGKILLs a member. */
  kill(member: EtcdMember): void;
  /** The member the others follow, as the members say (`etcdctl endpoint status`). */
  leader(): Promise<EtcdMember>;
  /** Makes `member` the leader (`etcdctl move-leader`, sent to the current leader); resolves once it is. */
  moveLeader(member: EtcdMember): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) a process this cluster started. */
  freeze(pid: number): void;
  thaw(pid: number): void;
  /** Kills everything started, removes every namespace. Idempotent. */
  teardown(): Promise<void>;
}

/**
 * For a test file's before hook, after skipUnlessIntegration: true when etcd and etcdctl are installed. Otherwise logs
 * why and returns false, or, under CI=true, throws it so that every test of the file fails.
 */
export function etcdAvailable(log: (line: string) => void): boolean {
  const missing = ['etcd', 'etcdctl'].filter((program) => spawnSync(program, ['--version'], {stdio: 'ignore'}).error !== undefined);
  if (missing.length === 0) return true;
  const reason = `missing ${missing.join(' and ')} (Debian packages etcd-server, etcd-client): run \`npm run system-deps -- --test\``;
  if (process.env['CI'] === 'true') throw new Error(`CI=true but the etcd tests cannot run: ${reason}`);
  log(`etcd tests skipped: ${reason}`);
  return false;
}

/** Builds the namespaces and starts the three members; resolves once the cluster answers with a leader. `hosts` are
 *  the others on the bridge (default a, b and w). */
export async function startEtcdCluster(prefix: string, baseDir: string, hosts: readonly EtcdClusterHost[] = OTHERS): Promise<EtcdCluster> {
  const spec: TopologySpec = {
    prefix,
    lans: [ETCD_LAN],
    hosts: [...MEMBERS, ...hosts].map((host, index) => ({name: host.name,
      interfaces: [{lan: ETCD_LAN.name, name: 'eth0', address: host.address, address6: `2001:db8:0:17::${index + 1}`}]})),
  };
  const pids = new Set<number>();
  const topology = await createTopology(runner, spec);
  const members: EtcdMember[] = MEMBERS.map((m) => ({name: m.name, namespace: topology.namespace(m.name), address: m.address,
    clientUrl: etcdClientUrl(m.address), pid: undefined}));
  const endpoints = members.map((m) => m.clientUrl);
  let tornDown = false;
  const cluster: EtcdCluster = {
    prefix, topology, members, endpoints,
    namespace: (host) => topology.namespace(host),
    async spawn(host, file, args, logFile, env) {
      const pid = await spawnInNamespace(topology.namespace(host), file, args, logFile, {env});
      pids.add(pid);
      return pid;
    },
    async cut(host, from = members) {
      await cutFrom(topology.namespace(host), from.map((m) => m.address));
    },
    async isolate(member) {
      await isolateFrom(member.namespace, `${ETCD_LAN.network}/${ETCD_LAN.prefixLength}`);
    },
    async heal(host) {
      await healCut(topology.namespace(host));
    },
    kill(member) {
      if (member.pid === undefined) return;
      signal(member.pid, 'SIGKILL');
      member.pid = undefined;
    },
    leader: () => etcdLeader(members.filter((m) => m.pid !== undefined)),
    async moveLeader(member) {
      const current = await cluster.leader();
      if (current === member) return;
      const etcdctl = async (...args: string[]): Promise<string> => (await execa('ip', ['netns', 'exec', current.namespace, 'etcdctl',
        `--endpoints=${current.clientUrl}`, '--command-timeout=5s', ...args], {env: {ETCDCTL_API: '3'}})).stdout;
      // The table gives the ids in hex, as move-leader takes them (JSON would give 64-bit ids as rounded numbers).
      const id = (await etcdctl('member', 'list')).split('\n').map((line) => line.split(', '))
        .find((fields) => fields[2] === member.name)?.[0];
      if (id === undefined) throw new Error(`etcdctl member list does not list ${member.name}`);
      await etcdctl('move-leader', id);
      const deadline = Date.now() + HEALTHY_WITHIN_MS;
      while ((await cluster.leader()) !== member) {
        if (Date.now() > deadline) throw new Error(`${member.name} did not become the leader within ${HEALTHY_WITHIN_MS} ms`);
        await sleep(100);
      }
    },
    freeze: (pid) => signal(pid, 'SIGSTOP'),
    thaw: (pid) => signal(pid, 'SIGCONT'),
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      for (const pid of pids) {
        signal(pid, 'SIGCONT');
        signal(pid, 'SIGKILL');
      }
      await destroyTopology(runner, prefix);
    },
  };
  try {
    const started = await startEtcdMembers(members, baseDir, prefix, (member, file, args, logFile) => cluster.spawn(member.name, file, args, logFile));
    members.forEach((member, index) => {
      member.pid = started[index];
    });
    // From a member's namespace: every member is on the bridge, whatever other hosts the test asked for.
    await waitEtcdHealthy(cluster.members[0]?.namespace ?? '', endpoints, prefix);
    return cluster;
  } catch (error) {
    await cluster.teardown();
    throw error;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}
