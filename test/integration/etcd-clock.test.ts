// Clock steps with real agents in etcd mode (issue 17's faults): two baton-agents against a real three-member etcd in
// namespaces, each agent under libfaketime with a wall clock of its own (the machine's is shared and never stepped).
// The holder's wall clock and then the standing-by host's are stepped an hour forward and an hour back. The hold rests
// on the boot clock and etcd's lease, never on the wall clock, so the holder neither drops nor doubles: judged from the
// kernels' address events in both host namespaces, merged on one timeline; then the stepped standby still takes over
// when the holder stops. That each step took hold is read from the agent's own log (its lines carry its wall clock).
// Durations are logged, never asserted.

import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {ExecutionContext} from 'ava';
import test from 'ava';
import {findLibfaketime, libfaketimeEnv} from '../../campaign/faults-host.js';
import type {EtcdServiceStatus, EtcdStatusReport} from '../../agent/control-protocol.js';
import {judgeHolders, watchAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {startAgent, type AgentProcess} from '../../cli/lab/lab.js';
import {isProcessAlive} from '../../cli/lab/web.js';
import {etcdAvailable, type EtcdCluster, SERVICE_ADDRESS, SERVICE_CIDR, startEtcdCluster} from './etcd-cluster.js';
import {integrationPrefix, integrationTest, skipUnlessIntegration} from './helpers.js';
import {baton, until} from './lab-helpers.js';

// A 3 s lease (renewals every second, the default margin of 600 ms), as etcd-agents.test.ts.
const TTL_S = 3;
const HOSTS = ['a', 'b'] as const;
type HostName = typeof HOSTS[number];
const HOST_ADDRESSES: Record<HostName, string> = {a: '192.0.2.11', b: '192.0.2.12'};
const SERVICE = 'web';
const HOUR_S = 3600;
// Each step is held this long: three TTLs, so that a hold the step broke would have been dropped and the key taken.
const HOLD_STEP_MS = 3 * TTL_S * 1000;
// A step is seen in the agent's log when its lines are this far off the machine's clock (an hour, less slack).
const STEPPED_BY_AT_LEAST_MS = 50 * 60 * 1000;
// Bounds on waiting for what must happen: far above what it takes, so a busy machine passes.
const WAIT_MS = 30_000;
const STOP_WAIT_MS = 10_000;

interface ClockedHost extends AgentProcess {
  readonly name: HostName;
  readonly dir: string;
  readonly socket: string;
  /** libfaketime's timestamp file for this agent: its wall clock's offset ("+3600", "-3600", "+0"). */
  readonly clockFile: string;
}

let baseDir = '';
let cluster: EtcdCluster | undefined;
let hosts: Record<HostName, ClockedHost> | undefined;
let library = '';
/** A script node runs first (NODE_OPTIONS): see UNPRELOAD. */
let unpreload = '';
// libfaketime stays in the agent's process once loaded, but its children must not load it: the duplicate-address
// probe's Perl helper reads the time left from select(), which Linux updates and libfaketime's select() wrapper does
// not (it passes the kernel a copy), so under libfaketime a probe on a segment with other ARP traffic never ends.
// FAKETIME_ONLY_CMDS leaves the wrappers in place; taking LD_PRELOAD out of the agent's environment keeps them out
// of its children, which then see true time, as FAKETIME_ONLY_CMDS means them to.
const UNPRELOAD = 'delete process.env.LD_PRELOAD;\ndelete process.env.NODE_OPTIONS;\n';
const agentPids = new Set<number>();

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t)) || !etcdAvailable((line) => t.log(line))) return;
  library = await findLibfaketime();
  baseDir = await mkdtemp(join(tmpdir(), 'baton-etcd-clock-'));
  unpreload = join(baseDir, 'unpreload.cjs');
  await writeFile(unpreload, UNPRELOAD);
  cluster = await startEtcdCluster(integrationPrefix(), baseDir, HOSTS.map((name) => ({name, address: HOST_ADDRESSES[name]})));
  const c = cluster;
  const made = {} as Record<HostName, ClockedHost>;
  for (const name of HOSTS) {
    const dir = join(baseDir, name);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const host: ClockedHost = {name, dir, namespace: c.namespace(name), configFile: join(dir, 'baton.yaml'), socket: join(dir, 'control.sock'),
      logFile: join(dir, 'agent.log'), pid: 0, clockFile: join(dir, 'clock-offset')};
    await writeFile(host.configFile, agentConfig(host, c.endpoints), {mode: 0o600});
    await writeFile(host.clockFile, '+0\n');
    made[name] = host;
  }
  hosts = made;
});

test.after.always(async () => {
  try {
    for (const pid of agentPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await cluster?.teardown();
  } finally {
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  }
});

function agentConfig(host: ClockedHost, endpoints: readonly string[]): string {
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
    '',
  ].join('\n');
}

function requireHosts(): Record<HostName, ClockedHost> {
  if (hosts === undefined) throw new Error('no etcd lab: the before hook failed or the tests are skipped');
  return hosts;
}

/** Starts a host's agent under libfaketime, its wall clock at the offset its clock file says. */
async function start(host: ClockedHost): Promise<void> {
  // Its log lines carry its wall clock only when they go to a file, not to systemd's journal.
  const {JOURNAL_STREAM: _journal, ...env} = libfaketimeEnv(library, host.clockFile);
  await startAgent(host, undefined, undefined, {env: {...env, NODE_OPTIONS: `--require=${unpreload}`}});
  agentPids.add(host.pid);
}

async function stop(host: ClockedHost): Promise<void> {
  process.kill(host.pid, 'SIGTERM');
  await until(`${host.name}'s agent (pid ${host.pid}) exits`, STOP_WAIT_MS, async () => (isProcessAlive(host.pid) ? undefined : true));
  agentPids.delete(host.pid);
}

/** An etcd-mode agent's report with its one service's part at the top. */
type EtcdStatus = Partial<EtcdStatusReport> & Partial<EtcdServiceStatus>;

async function statusOf(host: ClockedHost): Promise<{exitCode: number; status: EtcdStatus}> {
  const result = await baton(host, 'status', '--json');
  try {
    const json = JSON.parse(String(result.stdout)) as Partial<EtcdStatusReport>;
    return {exitCode: result.exitCode ?? -1, status: {...json, ...json.services?.[0]}};
  } catch {
    throw new Error(`baton status on ${host.name} printed no JSON (exit ${result.exitCode}): ${String(result.stdout)} ${String(result.stderr)}`);
  }
}

/** Waits until exactly one host holds the key and the address and the other stands by naming it; returns who, at what epoch. */
async function settled(all: Record<HostName, ClockedHost>, what: string, running: readonly HostName[] = HOSTS): Promise<{holder: HostName; epoch: number}> {
  let last = 'no status yet';
  return until(`${what}: one holder, the other standing by`, WAIT_MS, async () => {
    const statuses = await Promise.all(running.map(async (name) => ({name, ...await statusOf(all[name])})));
    last = statuses.map((s) => `${s.name}: exit ${s.exitCode} ${s.status.claim?.phase ?? 'no claim'} holder ${s.status.claim?.holder ?? '-'} ` +
      `error ${s.status.claim?.error ?? '-'} holdsIp ${String(s.status.holdsIp)}`).join('; ');
    const holding = statuses.filter((s) => s.status.claim?.phase === 'holding' && s.status.holdsIp === true);
    const [holder] = holding;
    if (holder === undefined || holding.length !== 1 || holder.status.claim?.epoch === undefined) return undefined;
    const others = statuses.filter((s) => s !== holder);
    const agree = others.every((s) => s.exitCode === 0 && s.status.claim?.phase === 'standing-by' && s.status.claim.holder === holder.name &&
      s.status.holdsIp === false);
    // Alone, a holder's status warns (exit 1) that nobody could take over: only the claim counts then.
    const consistent = holder.exitCode === 0 || running.length < HOSTS.length;
    return agree && consistent ? {holder: holder.name, epoch: holder.status.claim.epoch} : undefined;
  }).catch(async (error: unknown) => {
    const logs = await Promise.all(running.map(async (name) => `${name}: ${(await readFile(all[name].logFile, 'utf8').catch(() => '')).trim().split('\n').filter((l) => / (error|warning) /.test(l)).slice(-3).join(' | ')}`));
    throw new Error(`${String(error)}; last seen: ${last}; logs: ${logs.join(' || ')}`);
  });
}

/**
 * Steps a host's wall clock to `offsetS` from true time and waits until its agent's own log shows it: SIGUSR1 makes the
 * agent log a status line stamped with its wall clock. Returns how far that stamp was off the machine's clock.
 */
async function stepClock(host: ClockedHost, offsetS: number): Promise<number> {
  await writeFile(host.clockFile, `${offsetS >= 0 ? '+' : ''}${offsetS}\n`);
  return until(`${host.name}'s agent logs with its wall clock at ${offsetS} s`, WAIT_MS, async () => {
    const before = (await logLines(host)).length;
    const askedAt = Date.now();
    process.kill(host.pid, 'SIGUSR1');
    const line = await until(`${host.name}'s status line`, WAIT_MS, async () =>
      (await logLines(host)).slice(before).find((l) => l.message.startsWith('(status) ')));
    const offMs = line.atMs - askedAt;
    const wanted = offsetS === 0 ? Math.abs(offMs) < STEPPED_BY_AT_LEAST_MS : Math.sign(offMs) === Math.sign(offsetS) && Math.abs(offMs) >= STEPPED_BY_AT_LEAST_MS;
    return wanted ? offMs : undefined;
  });
}

async function logLines(host: ClockedHost): Promise<Array<{atMs: number; message: string}>> {
  const text = await readFile(host.logFile, 'utf8').catch(() => '');
  return text.split('\n').map((line) => /^(\d{4}-\d\d-\d\dT\S+Z) \S+\s+(.*)$/.exec(line)).filter((m) => m !== null)
    .map((m) => ({atMs: Date.parse(m[1] ?? ''), message: m[2] ?? ''}));
}

function watchHosts(all: Record<HostName, ClockedHost>) {
  return watchAddress(HOSTS.map((name) => ({name, namespace: all[name].namespace})), 'eth0', [SERVICE_ADDRESS]);
}

function noTwoHolders(t: ExecutionContext, history: AddressHistory): void {
  t.deepEqual(judgeHolders(history).overlaps, [], `address events: ${JSON.stringify(history.events)}`);
}

function removals(history: AddressHistory, host: HostName): number {
  return history.events.filter((e) => e.host === host && e.change === 'address-removed').length;
}

/** Steps `host`'s wall clock +1 h, −1 h and back, holding each for HOLD_STEP_MS; returns what each step put in its log. */
async function stepAround(t: ExecutionContext, host: ClockedHost): Promise<void> {
  for (const offsetS of [HOUR_S, -HOUR_S, 0]) {
    const offMs = await stepClock(host, offsetS);
    t.log(`${host.name}'s wall clock at ${offsetS >= 0 ? '+' : ''}${offsetS} s: its log is ${Math.round(offMs / 1000)} s off the machine's`);
    await sleep(HOLD_STEP_MS);
  }
}

function other(name: HostName): HostName {
  return name === 'a' ? 'b' : 'a';
}

integrationTest('the holder\'s wall clock stepped an hour forward and back: it keeps the service at the same epoch, the other takes nothing', async (t) => {
  const all = requireHosts();
  await Promise.all(HOSTS.map((name) => start(all[name])));
  const before = await settled(all, 'after the start');
  const holder = all[before.holder];
  const watch = await watchHosts(all);
  await stepAround(t, holder);
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.is(removals(history, before.holder), 0, 'the holder never dropped the address');
  t.deepEqual(judgeHolders(history).final, [before.holder]);
  const after = await settled(all, 'after the steps');
  t.deepEqual(after, before, 'the same holder at the same epoch: the key was never given up nor taken');
});

integrationTest('a standing-by host\'s wall clock stepped an hour forward and back: it takes nothing, and still takes over when the holder stops', async (t) => {
  const all = requireHosts();
  for (const name of HOSTS) if (!isProcessAlive(all[name].pid)) await start(all[name]);
  const before = await settled(all, 'before the steps');
  const standby = all[other(before.holder)];
  const watch = await watchHosts(all);
  await stepAround(t, standby);
  // The stepped host still does its part: the holder stops, and it takes over.
  await stepClock(standby, HOUR_S);
  const stoppedAt = Date.now();
  await stop(all[before.holder]);
  const after = await settled(all, 'after the holder stopped', [standby.name]);
  t.log(`the holder stopped → ${after.holder} holds at epoch ${after.epoch}, ${Date.now() - stoppedAt} ms (seen by polling status)`);
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.is(after.holder, standby.name);
  t.true(after.epoch > before.epoch);
  t.deepEqual(history.events.filter((e) => e.host === standby.name && e.change === 'address-added' && e.atMs < stoppedAt), [],
    'the stepped standby added no address while the holder held');
  t.deepEqual(judgeHolders(history).final, [standby.name]);
  await stepClock(standby, 0);
});
