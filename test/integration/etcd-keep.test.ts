// on_etcd_loss: keep-while-peers-agree with three real agents against a real three-member etcd in namespaces, the
// hosts' beacons over the bridge: every host cut from etcd → the holder keeps serving (and, with drop, gives the address
// up); etcd back for the others but not the holder → they see the key gone and do not campaign while they hear it;
// then the holder's beacons cut too → it drops before another host takes the service; etcd back → one holder. "Never
// two holders" is judged from the kernels' address events in the three host namespaces; figures are logged, never
// asserted.

import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {randomBytes} from 'node:crypto';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {ExecutionContext} from 'ava';
import test from 'ava';
import {execa} from 'execa';
import type {EtcdServiceStatus, EtcdStatusReport} from '../../agent/control-protocol.js';
import {judgeHolders, watchAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {startAgent, type AgentProcess} from '../../cli/lab/lab.js';
import {isProcessAlive} from '../../cli/lab/web.js';
import {etcdAvailable, type EtcdCluster, SERVICE_ADDRESS, SERVICE_CIDR, startEtcdCluster} from './etcd-cluster.js';
import {integrationPrefix, integrationTest, skipUnlessIntegration} from './helpers.js';
import {baton, until} from './lab-helpers.js';

const TTL_S = 3;
const MARGIN_MS = 600;
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = typeof HOSTS[number];
const HOST_ADDRESSES: Record<HostName, string> = {a: '192.0.2.11', b: '192.0.2.12', c: '192.0.2.13'};
const SERVICE = 'web';
const BEACON_PORT = 7411;
// D = 5 × 200 ms; a host waits 2·D + M = 2.6 s after a holder's last beacon before it campaigns.
const HEARD_WITHIN_MS = 1000;
const WAIT_MS = 30_000;
const STOP_WAIT_MS = 10_000;
// How long the holder is left without etcd: three TTLs, long past its lease's deadline and expiry.
const WITHOUT_ETCD_MS = 3 * TTL_S * 1000;
const BEACON_CUT_TABLE = 'blwbeacons';

interface AgentHost extends AgentProcess {
  readonly name: HostName;
  readonly dir: string;
  readonly socket: string;
}

let baseDir = '';
let cluster: EtcdCluster | undefined;
let hosts: Record<HostName, AgentHost> | undefined;
const agentPids = new Set<number>();

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t)) || !etcdAvailable((line) => t.log(line))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-etcd-keep-'));
  cluster = await startEtcdCluster(integrationPrefix(), baseDir, HOSTS.map((name) => ({name, address: HOST_ADDRESSES[name]})));
  const secret = randomBytes(32);
  const made = {} as Record<HostName, AgentHost>;
  for (const name of HOSTS) {
    const dir = join(baseDir, name);
    await mkdir(dir, {recursive: true, mode: 0o700});
    await writeFile(join(dir, 'secret'), secret, {mode: 0o600});
    made[name] = {name, dir, namespace: cluster.namespace(name), configFile: join(dir, 'baton.yaml'), socket: join(dir, 'control.sock'),
      logFile: join(dir, 'agent.log'), pid: 0};
  }
  hosts = made;
});

test.after.always(async () => {
  try {
    for (const pid of agentPids) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // Already gone.
        }
      }
    }
    await cluster?.teardown();
  } finally {
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  }
});

function agentConfig(host: AgentHost, endpoints: readonly string[], onEtcdLoss: 'drop' | 'keep-while-peers-agree'): string {
  return [
    `pair: ${SERVICE}`,
    `service: {address: ${SERVICE_CIDR}, interface: eth0}`,
    `state_dir: ${join(host.dir, 'state')}`,
    `control_socket: ${host.socket}`,
    'on_stop: release',
    'coordination:',
    '  mode: etcd',
    `  endpoints: [${endpoints.join(', ')}]`,
    `  host: ${host.name}`,
    `  hosts: [${HOSTS.join(', ')}]`,
    `  lease_ttl_s: ${TTL_S}`,
    `  renew_margin_ms: ${MARGIN_MS}`,
    `  on_etcd_loss: ${onEtcdLoss}`,
    ...onEtcdLoss === 'drop' ? [] : [
      '  beacons:',
      `    port: ${BEACON_PORT}`,
      `    secret_file: ${join(host.dir, 'secret')}`,
      `    heard_within_ms: ${HEARD_WITHIN_MS}`,
      `    addresses: {${HOSTS.map((name) => `${name}: ${HOST_ADDRESSES[name]}`).join(', ')}}`,
    ],
    '',
  ].join('\n');
}

function fixture(): {cluster: EtcdCluster; hosts: Record<HostName, AgentHost>} {
  if (cluster === undefined || hosts === undefined) throw new Error('no etcd lab: the before hook failed or the tests are skipped');
  return {cluster, hosts};
}

/** Stops whatever runs, writes every host's config with `onEtcdLoss`, heals every cut, and starts the three agents. */
async function startAll(onEtcdLoss: 'drop' | 'keep-while-peers-agree'): Promise<void> {
  const f = fixture();
  for (const name of HOSTS) {
    const host = f.hosts[name];
    await f.cluster.heal(name);
    await healBeacons(name);
    if (host.pid !== 0 && isProcessAlive(host.pid)) {
      process.kill(host.pid, 'SIGTERM');
      await until(`${name}'s agent exits`, STOP_WAIT_MS, async () => (isProcessAlive(host.pid) ? undefined : true));
      agentPids.delete(host.pid);
    }
    await writeFile(host.configFile, agentConfig(host, f.cluster.endpoints, onEtcdLoss), {mode: 0o600});
  }
  for (const name of HOSTS) {
    await startAgent(f.hosts[name]);
    agentPids.add(f.hosts[name].pid);
  }
}

/** Drops the beacons (UDP to and from the beacon port) in a host's namespace, both ways. */
async function cutBeacons(name: HostName): Promise<void> {
  const ns = fixture().hosts[name].namespace;
  const rules = [`add table inet ${BEACON_CUT_TABLE}`,
    `add chain inet ${BEACON_CUT_TABLE} in { type filter hook input priority 0 ; }`,
    `add chain inet ${BEACON_CUT_TABLE} out { type filter hook output priority 0 ; }`,
    `add rule inet ${BEACON_CUT_TABLE} in udp dport ${BEACON_PORT} counter drop`,
    `add rule inet ${BEACON_CUT_TABLE} out udp dport ${BEACON_PORT} counter drop`].join('\n');
  await execa('ip', ['netns', 'exec', ns, '/usr/sbin/nft', '-f', '-'], {input: rules});
}

async function healBeacons(name: HostName): Promise<void> {
  const ns = fixture().hosts[name].namespace;
  await execa('ip', ['netns', 'exec', ns, '/usr/sbin/nft', 'delete', 'table', 'inet', BEACON_CUT_TABLE], {reject: false});
}

/** The service's part of `baton status --json` on a host (undefined: no answer). */
async function statusOf(host: AgentHost): Promise<EtcdServiceStatus | undefined> {
  const result = await baton(host, 'status', '--json');
  try {
    return (JSON.parse(String(result.stdout)) as Partial<EtcdStatusReport>).services?.find((s) => s.name === SERVICE);
  } catch {
    return undefined;
  }
}

/** Waits until exactly one host holds the key and the address and the others stand by naming it. */
async function oneHolder(what: string): Promise<{holder: HostName; epoch: number}> {
  const f = fixture();
  return until(`${what}: one holder, the others standing by naming it`, WAIT_MS, async () => {
    const statuses = await Promise.all(HOSTS.map(async (name) => ({name, status: await statusOf(f.hosts[name])})));
    const holding = statuses.filter((s) => s.status?.claim?.phase === 'holding' && s.status.holdsIp === true);
    const [holder] = holding;
    if (holder === undefined || holding.length !== 1) return undefined;
    const rest = statuses.filter((s) => s !== holder);
    if (!rest.every((s) => s.status?.claim?.phase === 'standing-by' && s.status.claim.holder === holder.name && s.status.holdsIp === false)) return undefined;
    return {holder: holder.name, epoch: holder.status?.claim?.epoch ?? 0};
  });
}

function watchHosts() {
  const f = fixture();
  return watchAddress(HOSTS.map((name) => ({name, namespace: f.hosts[name].namespace})), 'eth0', [SERVICE_ADDRESS]);
}

function noTwoHolders(t: ExecutionContext, history: AddressHistory): void {
  t.deepEqual(judgeHolders(history).overlaps, [], `address events: ${JSON.stringify(history.events)}`);
}

function changes(history: AddressHistory, host: HostName, change: 'address-added' | 'address-removed', fromMs = 0) {
  return history.events.filter((e) => e.host === host && e.change === change && e.atMs >= fromMs);
}

async function logSays(host: AgentHost, pattern: RegExp): Promise<boolean> {
  return pattern.test(await readFile(host.logFile, 'utf8').catch(() => ''));
}

function others(name: HostName): HostName[] {
  return HOSTS.filter((h) => h !== name);
}

integrationTest('every host cut from etcd: with keep-while-peers-agree the holder keeps serving; etcd back for the others, they do not campaign while they hear it; its beacons cut, it drops before another takes the service; etcd back, one holder', async (t) => {
  const f = fixture();
  await startAll('keep-while-peers-agree');
  const first = await oneHolder('after the start');
  const holder = f.hosts[first.holder];
  const watch = await watchHosts();

  // 1. etcd out of every host's reach.
  const cutAt = Date.now();
  for (const name of HOSTS) await f.cluster.cut(name);
  await sleep(WITHOUT_ETCD_MS);
  const keptStatus = await statusOf(holder);
  t.true(await logSays(holder, /keeping the address/), 'the holder says it keeps the address');
  t.is(keptStatus?.claim?.phase, 'holding');
  t.true(keptStatus?.holdsIp === true, 'the address is still on the holder');

  // 2. etcd back for the other hosts only: the key is gone there (the lease expired), and they hear the holder.
  for (const name of others(first.holder)) await f.cluster.heal(name);
  const othersBackAt = Date.now();
  await sleep(WITHOUT_ETCD_MS);
  const whileHeard = await Promise.all(others(first.holder).map((name) => statusOf(f.hosts[name])));
  t.true(whileHeard.every((s) => s?.claim?.phase === 'standing-by' && s.claim.holder === undefined),
    `the others stand by with the key gone: ${JSON.stringify(whileHeard.map((s) => s?.claim))}`);
  t.true((await statusOf(holder))?.holdsIp === true, 'the holder still serves');

  // 3. The holder's beacons cut too: it drops, then another host takes the service.
  const beaconsCutAt = Date.now();
  await cutBeacons(first.holder);
  const taken = await until('another host takes the service', WAIT_MS, async () => {
    for (const name of others(first.holder)) {
      const s = await statusOf(f.hosts[name]);
      if (s?.claim?.phase === 'holding' && s.holdsIp === true) return name;
    }
    return undefined;
  }).catch(async (error: unknown) => {
    for (const name of HOSTS) {
      const lines = (await readFile(f.hosts[name].logFile, 'utf8').catch(() => '')).split('\n').filter((l) => !/renewal sent/.test(l));
      t.log(`${name}'s log:\n${lines.slice(-30).join('\n')}\nstatus: ${JSON.stringify((await statusOf(f.hosts[name]))?.claim)}`);
    }
    throw error;
  });

  // 4. etcd and the beacons back for the holder: one holder.
  await healBeacons(first.holder);
  await f.cluster.heal(first.holder);
  const last = await oneHolder('after etcd came back');
  const history = await watch.stop();
  noTwoHolders(t, history);
  const dropped = changes(history, first.holder, 'address-removed', cutAt)[0];
  const added = changes(history, taken, 'address-added', cutAt)[0];
  t.truthy(dropped, 'the holder dropped the address');
  t.truthy(added, `${taken} added it`);
  t.true((dropped?.atMs ?? Infinity) >= beaconsCutAt, 'the holder kept the address until its beacons were cut');
  t.true((dropped?.atMs ?? Infinity) < (added?.atMs ?? 0), 'dropped before another host added it');
  t.true(await logSays(holder, /peers-disagree/), 'the holder says why it dropped');
  t.log(`kept ${Math.round((dropped?.atMs ?? 0) - cutAt)} ms without etcd (the others back after ${othersBackAt - cutAt} ms); ` +
    `beacons cut → ${first.holder} dropped ${Math.round((dropped?.atMs ?? 0) - beaconsCutAt)} ms, ${taken} added it ` +
    `${Math.round((added?.atMs ?? 0) - beaconsCutAt)} ms (${Math.round((added?.atMs ?? 0) - (dropped?.atMs ?? 0))} ms after the drop); ` +
    `then ${last.holder} holds at epoch ${last.epoch}`);
});

integrationTest('etcd back for every host while the holder keeps: it takes the key again (create-if-absent) and stays the one holder', async (t) => {
  const f = fixture();
  await startAll('keep-while-peers-agree');
  const first = await oneHolder('after the start');
  const watch = await watchHosts();
  for (const name of HOSTS) await f.cluster.cut(name);
  await sleep(WITHOUT_ETCD_MS);
  for (const name of HOSTS) await f.cluster.heal(name);
  const healedAt = Date.now();
  const last = await until('the holder holds the key again at a new epoch', WAIT_MS, async () => {
    const settled = await oneHolder('after etcd came back');
    return settled.epoch > first.epoch ? settled : undefined;
  });
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.is(last.holder, first.holder, 'the holder that kept the service holds it again');
  t.deepEqual(changes(history, first.holder, 'address-removed'), [], 'it never gave the address up');
  t.true(await logSays(f.hosts[first.holder], /written again at epoch|renewed again/));
  t.log(`epoch ${first.epoch} → ${last.epoch}, one holder again ${Date.now() - healedAt} ms after etcd came back (upper bound: status polling)`);
});

integrationTest('every host cut from etcd: with drop the holder gives the address up, and nobody holds it until etcd is back', async (t) => {
  const f = fixture();
  await startAll('drop');
  const first = await oneHolder('after the start');
  const watch = await watchHosts();
  const cutAt = Date.now();
  for (const name of HOSTS) await f.cluster.cut(name);
  await sleep(WITHOUT_ETCD_MS);
  for (const name of HOSTS) await f.cluster.heal(name);
  await oneHolder('after etcd came back');
  const history = await watch.stop();
  noTwoHolders(t, history);
  const dropped = changes(history, first.holder, 'address-removed', cutAt)[0];
  t.truthy(dropped, 'the holder dropped the address');
  t.true((dropped?.atMs ?? Infinity) < cutAt + WITHOUT_ETCD_MS, 'while etcd was out of reach');
  t.log(`with drop: ${first.holder} dropped ${Math.round((dropped?.atMs ?? 0) - cutAt)} ms after etcd went out of reach`);
});
