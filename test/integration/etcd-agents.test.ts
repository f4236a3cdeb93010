// Three real baton-agents in etcd mode (issue 17) against a real three-member etcd in namespaces, each host with its
// service interface and a web server on one bridge with a client: the start, the holder's agent killed (its address
// left behind) and stopped, the holder frozen past its lease, cut from etcd, and etcd losing a member and then its
// leader. "Never two holders" is judged from the kernels' address events in the three host namespaces, merged on one
// timeline; a client probes the service address every 10 ms, and each case logs its longest gap; the key's changes
// come from a watch on etcd (the contender script's observer mode). Durations are logged, never asserted.

import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import type {EtcdServiceStatus, EtcdStatusReport} from '../../agent/control-protocol.js';
import type {StatusJson} from '../../cli/commands/status.js';
import {judgeHolders, watchAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {startAgent, type AgentProcess} from '../../cli/lab/lab.js';
import {startProber, type Prober} from '../../cli/lab/probe-control.js';
import {summarizeProbes, type ProbeRecord} from '../../cli/lab/probe-report.js';
import {isProcessAlive, startWebServer, type WebServer} from '../../cli/lab/web.js';
import {etcdAvailable, type EtcdCluster, type EtcdMember, SERVICE_ADDRESS, SERVICE_CIDR, startEtcdCluster} from './etcd-cluster.js';
import type {ContenderLine, ContenderOptions} from './etcd-contender.js';
import {integrationPrefix, integrationTest, skipUnlessIntegration} from './helpers.js';
import {baton, until} from './lab-helpers.js';

// A 3 s lease (renewals every 1 s, the default margin of 600 ms): the faults play out in seconds, well above etcd's
// minimum TTL (1.5 s with its default election timeout).
const TTL_S = 3;
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = typeof HOSTS[number];
const HOST_ADDRESSES: Record<HostName, string> = {a: '192.0.2.11', b: '192.0.2.12', c: '192.0.2.13'};
/** The client: probes the service and watches the key. */
const CLIENT = {name: 'client', address: '192.0.2.20'} as const;
const SERVICE = 'web';
const KEY = `/baton/services/${SERVICE}/holder`;
const PROBE_INTERVAL_MS = 10;
// A probe unanswered after 200 ms failed; the prober's bounds are far beyond the file's run, so it never floods.
const PROBE_TIMEOUT_MS = 200;
const PROBE_DURATION_S = 300;
const PROBE_MAX = PROBE_DURATION_S * 1000 / PROBE_INTERVAL_MS;
// Bounds on waiting for what must happen: far above what it takes (a TTL or two, a backoff), so a busy machine passes.
const WAIT_MS = 30_000;
// How long a stopping agent may take to release and exit.
const STOP_WAIT_MS = 10_000;
const CONTENDER = fileURLToPath(new URL('./etcd-contender.js', import.meta.url));

interface AgentHost extends AgentProcess {
  readonly name: HostName;
  readonly dir: string;
  readonly socket: string;
}

interface Fixture {
  readonly cluster: EtcdCluster;
  readonly hosts: Record<HostName, AgentHost>;
  readonly prober: Prober;
  /** The key's puts and deletes, as etcd-contender.ts's observer logs them. */
  readonly keyLog: string;
}

let fixture: Fixture | undefined;
let baseDir = '';
let cluster: EtcdCluster | undefined;
let prober: Prober | undefined;
const webServers: WebServer[] = [];
/** Every agent PID this file started: ended by PID in the teardown, frozen ones thawed first. */
const agentPids = new Set<number>();

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t)) || !etcdAvailable((line) => t.log(line))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-etcd-agents-'));
  cluster = await startEtcdCluster(integrationPrefix(), baseDir, [...HOSTS.map((name) => ({name, address: HOST_ADDRESSES[name]})), CLIENT]);
  const c = cluster;
  const hosts = {} as Record<HostName, AgentHost>;
  for (const name of HOSTS) {
    const dir = join(baseDir, name);
    await mkdir(dir, {recursive: true, mode: 0o700});
    webServers.push(await startWebServer({namespace: c.namespace(name), dir: join(dir, 'web'), hostName: name}));
    const host: AgentHost = {name, dir, namespace: c.namespace(name), configFile: join(dir, 'baton.yaml'), socket: join(dir, 'control.sock'),
      logFile: join(dir, 'agent.log'), pid: 0};
    await writeFile(host.configFile, agentConfig(host, c.endpoints), {mode: 0o600});
    hosts[name] = host;
  }
  const keyLog = join(baseDir, 'key.jsonl');
  const watcher: ContenderOptions = {name: 'watch', endpoints: c.endpoints, key: KEY, ttlS: TTL_S, marginMs: 600, iface: 'eth0',
    cidr: SERVICE_CIDR, watch: KEY};
  await c.spawn(CLIENT.name, process.execPath, [CONTENDER, JSON.stringify(watcher)], keyLog);
  await until('the key watch is listening', WAIT_MS, async () => ((await keyLines(keyLog)).some((l) => l.event === 'watching') ? true : undefined));
  prober = await startProber({namespace: c.namespace(CLIENT.name), url: `http://${SERVICE_ADDRESS}/`, intervalMs: PROBE_INTERVAL_MS,
    timeoutMs: PROBE_TIMEOUT_MS, durationS: PROBE_DURATION_S, maxProbes: PROBE_MAX, out: join(baseDir, 'probes.jsonl')});
  fixture = {cluster: c, hosts, prober, keyLog};
});

test.after.always(async () => {
  try {
    await prober?.stop().catch(() => undefined);
    for (const pid of agentPids) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // Already gone.
        }
      }
    }
    for (const web of webServers) await web.stop().catch(() => undefined);
    await cluster?.teardown();
  } finally {
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  }
});

/** A host's baton.yaml in etcd mode: the service, its place in the hosts' order, a short lease. */
function agentConfig(host: AgentHost, endpoints: readonly string[]): string {
  return [`pair: ${SERVICE}`, `service: {address: ${SERVICE_CIDR}, interface: eth0}`, ...hostLines(host, endpoints), ''].join('\n');
}

/** What every host's file has whatever its services: its state, its socket, and its place among the hosts in etcd. */
function hostLines(host: AgentHost, endpoints: readonly string[]): string[] {
  return [
    `state_dir: ${join(host.dir, 'state')}`,
    `control_socket: ${host.socket}`,
    'on_stop: release',
    'coordination:',
    '  mode: etcd',
    `  endpoints: [${endpoints.join(', ')}]`,
    `  host: ${host.name}`,
    `  hosts: [${HOSTS.join(', ')}]`,
    `  lease_ttl_s: ${TTL_S}`,
  ];
}

function requireFixture(): Fixture {
  if (fixture === undefined) throw new Error('no etcd lab: the before hook failed or the tests are skipped');
  return fixture;
}

// ---- the agents

async function start(host: AgentHost): Promise<void> {
  await startAgent(host);
  agentPids.add(host.pid);
}

/** Sends `signal` to a host's agent and waits until it has exited (SIGKILL: at once; SIGTERM: after its release). */
async function stop(host: AgentHost, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  process.kill(host.pid, signal);
  await until(`${host.name}'s agent (pid ${host.pid}) exits after ${signal}`, STOP_WAIT_MS, async () => (isProcessAlive(host.pid) ? undefined : true));
  agentPids.delete(host.pid);
}

/** `baton status --json` of an etcd-mode agent: its report with its one service's part at the top, or why there is none. */
type EtcdStatus = Partial<EtcdStatusReport> & Partial<EtcdServiceStatus> & Pick<StatusJson, 'error'>;

interface HostStatus {
  readonly host: HostName;
  readonly exitCode: number;
  readonly status: EtcdStatus;
}

async function statusOf(host: AgentHost): Promise<HostStatus> {
  const result = await baton(host, 'status', '--json');
  let status: EtcdStatus;
  try {
    const json = JSON.parse(String(result.stdout)) as Partial<EtcdStatusReport> & Pick<StatusJson, 'error'>;
    status = {...json, ...json.services?.[0]};
  } catch {
    throw new Error(`baton status on ${host.name} printed no JSON (exit ${result.exitCode}): ${String(result.stdout)} ${String(result.stderr)}`);
  }
  return {host: host.name, exitCode: result.exitCode ?? -1, status};
}

function describeStatus(s: HostStatus): string {
  const claim = s.status.claim;
  return `${s.host}: exit ${s.exitCode}, ${claim === undefined ? `no claim (${s.status.error?.message ?? 'no error'})` :
    `${claim.phase}${claim.holder === undefined ? '' : ` holder ${claim.holder}`}${claim.epoch === undefined ? '' : ` epoch ${claim.epoch}`}` +
    `${claim.error === undefined ? '' : ` error ${claim.error}`}`}, holdsIp ${String(s.status.holdsIp)}`;
}

interface Settled {
  readonly holder: HostName;
  readonly epoch: number;
  readonly statuses: readonly HostStatus[];
  /** Date.now() when it was seen. */
  readonly atMs: number;
}

/**
 * Waits until the running agents agree: exactly one holds the key and the address, every other stands by naming it
 * as the holder and holds none of the address, and each one's `baton status` exits 0 (a consistent view).
 */
async function settledClaim(f: Fixture, what: string, running: readonly HostName[] = HOSTS): Promise<Settled> {
  const deadline = Date.now() + WAIT_MS;
  let last = 'no status yet';
  for (;;) {
    // An agent that exited will not settle: say so now, with what it wrote, rather than at the deadline.
    for (const name of running) {
      const host = f.hosts[name];
      if (!isProcessAlive(host.pid)) throw new Error(`${what}: ${name}'s agent (pid ${host.pid}) is not running; its log ends: ${await logTail(host)}`);
    }
    try {
      const statuses = await Promise.all(running.map((name) => statusOf(f.hosts[name])));
      const holding = statuses.filter((s) => s.status.claim?.phase === 'holding' && s.status.holdsIp === true);
      const [holder] = holding;
      const consistent = holder !== undefined && holding.length === 1 && statuses.every((s) => s.exitCode === 0) &&
        statuses.filter((s) => s !== holder).every((s) => s.status.claim?.phase === 'standing-by' && s.status.claim.holder === holder.host &&
          s.status.holdsIp === false && (s.status.held ?? []).length === 0);
      if (consistent && holder.status.claim?.epoch !== undefined) {
        return {holder: holder.host, epoch: holder.status.claim.epoch, statuses, atMs: Date.now()};
      }
      last = statuses.map(describeStatus).join('; ');
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`${what}: no single holder with the others standing by within ${WAIT_MS} ms: ${last}`);
    await sleep(100);
  }
}

/** Every agent running, none frozen, no host cut from etcd: what each case starts from, whatever the one before left. */
async function allRunning(f: Fixture): Promise<void> {
  for (const name of HOSTS) {
    const host = f.hosts[name];
    await f.cluster.heal(name);
    if (isProcessAlive(host.pid)) process.kill(host.pid, 'SIGCONT');
    else await start(host);
  }
}

async function logTail(host: AgentHost): Promise<string> {
  return (await readFile(host.logFile, 'utf8').catch(() => '(no log)')).trim().split('\n').slice(-5).join(' | ');
}

function others(host: HostName): HostName[] {
  return HOSTS.filter((name) => name !== host);
}

// ---- what the kernels, etcd and the client saw

function watchHosts(f: Fixture) {
  return watchAddress(HOSTS.map((name) => ({name, namespace: f.hosts[name].namespace})), 'eth0', [SERVICE_ADDRESS]);
}

function noTwoHolders(t: ExecutionContext, history: AddressHistory): void {
  t.deepEqual(judgeHolders(history).overlaps, [], `address events: ${JSON.stringify(history.events)}`);
}

/** Who held the address at `atMs`, replaying the history up to then. */
function holdersAt(history: AddressHistory, atMs: number): readonly string[] {
  return judgeHolders({...history, events: history.events.filter((e) => e.atMs <= atMs)}).final;
}

function changes(history: AddressHistory, host: HostName, change: 'address-added' | 'address-removed', fromMs = 0, toMs = Infinity) {
  return history.events.filter((e) => e.host === host && e.change === change && e.atMs >= fromMs && e.atMs <= toMs);
}

async function keyLines(file: string): Promise<ContenderLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as ContenderLine);
}

/** The key's changes since `fromMs`: each put with the holder it names and its revision, each delete. */
async function keyChanges(f: Fixture, fromMs: number): Promise<Array<{atMs: number; put: boolean; value?: string; revision: number}>> {
  return (await keyLines(f.keyLog)).filter((l) => l.wallMs >= fromMs && (l.event === 'watch-put' || l.event === 'watch-delete'))
    .map((l) => ({atMs: l.wallMs, put: l.event === 'watch-put', value: l['value'] as string | undefined, revision: Number(l['revision'])}));
}

type KeyChange = Awaited<ReturnType<typeof keyChanges>>[number];

/** The first change since `fromMs` that `match`es, once the watch has logged it (it may log a moment after the fact). */
function keyChange(f: Fixture, what: string, fromMs: number, match: (change: KeyChange) => boolean): Promise<KeyChange> {
  return until(`the key watch logs ${what}`, WAIT_MS, async () => (await keyChanges(f, fromMs)).find(match));
}

/** After the holder's agent died leaving its address: its lease expires after the TTL, another host takes the key,
 *  finds the address answering, and gives the key up. Returns that put. */
function refusedCampaign(f: Fixture, victim: AgentHost, killedAt: number): Promise<KeyChange> {
  return until('another host takes the key and gives it up', WAIT_MS, async () => {
    const seen = await keyChanges(f, killedAt);
    const put = seen.find((c) => c.put && c.value !== victim.name);
    return put !== undefined && seen.some((c) => !c.put && c.atMs > put.atMs) ? put : undefined;
  });
}

/** Waits until the client's prober has an answer from `host` to a probe sent after `afterMs`; returns that probe. */
function servedBy(f: Fixture, host: HostName, afterMs: number): Promise<ProbeRecord> {
  return until(`the client is served by ${host}`, WAIT_MS, async () =>
    (await f.prober.read()).find((r) => r.ok && r.host === host && r.sentAt > afterMs));
}

/** The longest time without an answer in [fromMs, toMs], as the client saw it. */
async function gapMs(f: Fixture, fromMs: number, toMs: number): Promise<number> {
  return Math.round(summarizeProbes(await f.prober.read(), fromMs, toMs).longestGapMs);
}

/** An agent's log lines (`<ISO time> <level> <message>`) with their wall-clock ms. */
async function agentLog(host: AgentHost): Promise<Array<{atMs: number; message: string}>> {
  const text = await readFile(host.logFile, 'utf8').catch(() => '');
  return text.split('\n').map((line) => /^(\d{4}-\d\d-\d\dT\S+Z) \S+\s+(.*)$/.exec(line)).filter((m) => m !== null)
    .map((m) => ({atMs: Date.parse(m[1] ?? ''), message: m[2] ?? ''}));
}

function round(ms: number): number {
  return Math.round(ms);
}

// ---- the cases

integrationTest('at start exactly one host takes the service and the others stand by, naming it', async (t) => {
  const f = requireFixture();
  const watch = await watchHosts(f);
  const startedAt = Date.now();
  await Promise.all(HOSTS.map((name) => start(f.hosts[name])));
  const settled = await settledClaim(f, 'after the start');
  const served = await servedBy(f, settled.holder, startedAt);
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.deepEqual(judgeHolders(history).final, [settled.holder]);
  for (const s of settled.statuses) {
    t.is(s.status.coordination, 'etcd');
    t.deepEqual(s.status.hosts, [...HOSTS]);
  }
  // The holder's epoch is the key's revision, and the key names it.
  const won = await keyChange(f, `a put at revision ${settled.epoch}`, startedAt, (c) => c.put && c.revision === settled.epoch);
  t.is(won.value, settled.holder);
  const puts = (await keyChanges(f, startedAt)).filter((c) => c.put);
  t.log(`started → ${settled.holder} holds (${settled.holder === HOSTS[0] ? 'the first in hosts' : `not the first in hosts: ${HOSTS[0]} is`}) ` +
    `at epoch ${settled.epoch}, ${puts.length} campaign(s) won; started → the client served ${round(served.sentAt + served.rttMs - startedAt)} ms`);
});

integrationTest('the holder\'s agent killed: its address stays, the others\' duplicate-address probe refuses it; its agent restarted removes it and a host serves again', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  const before = await settledClaim(f, 'before the kill');
  const victim = f.hosts[before.holder];
  const watch = await watchHosts(f);
  const killedAt = Date.now();
  await stop(victim, 'SIGKILL');
  const refused = await refusedCampaign(f, victim, killedAt);
  // The host still serves its clients without its agent: its kernel and web server are untouched.
  await servedBy(f, victim.name, refused.atMs);
  const restartAt = Date.now();
  await start(victim);
  const after = await settledClaim(f, 'after the restart');
  const history = await watch.stop();
  // The client is served from the moment the leftover address went: by the next holder, once it took it.
  const removed = changes(history, victim.name, 'address-removed', restartAt)[0];
  const served = await servedBy(f, after.holder, removed?.atMs ?? restartAt);
  noTwoHolders(t, history);
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.deepEqual(changes(history, victim.name, 'address-removed', 0, restartAt), [], 'nobody removed the address while its agent was dead');
  for (const other of others(victim.name)) {
    t.deepEqual(changes(history, other, 'address-added', 0, restartAt), [], `${other} never added the address while ${victim.name} had it`);
  }
  t.not(removed, undefined, 'the restarted agent removed the address it found');
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const campaigns = (await keyChanges(f, killedAt)).filter((c) => c.put && c.atMs < restartAt);
  const servedAt = served.sentAt + served.rttMs;
  t.log(`${victim.name} killed: ${String(refused.value)} had the key ${round(refused.atMs - killedAt)} ms later and gave it up (its probe found the address); ` +
    `${campaigns.length} refused campaign(s) by ${[...new Set(campaigns.map((c) => c.value))].join(', ')} in ${round(restartAt - killedAt)} ms ` +
    `while ${victim.name} kept serving (client gap ${await gapMs(f, killedAt, restartAt)} ms); restarted: the leftover removed ` +
    `${round((removed?.atMs ?? NaN) - restartAt)} ms after the restart, ${after.holder} holds at epoch ${after.epoch} and served ` +
    `${round(servedAt - (removed?.atMs ?? NaN))} ms after the removal (client gap ${await gapMs(f, restartAt, servedAt + 100)} ms)`);
});

integrationTest('the holder\'s agent killed and its leftover address removed by an operator: another host takes over, and the restarted agent stands by', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  const before = await settledClaim(f, 'before the kill');
  const victim = f.hosts[before.holder];
  const watch = await watchHosts(f);
  const killedAt = Date.now();
  await stop(victim, 'SIGKILL');
  await refusedCampaign(f, victim, killedAt);
  const removedAt = Date.now();
  await execa('ip', ['-n', victim.namespace, 'addr', 'del', SERVICE_CIDR, 'dev', 'eth0']);
  // The refused host campaigns again after its backoff, and this time nothing answers its probe.
  const after = await settledClaim(f, 'after the address was removed', others(victim.name));
  const served = await servedBy(f, after.holder, removedAt);
  await start(victim);
  const back = await settledClaim(f, 'after its agent restarted');
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.not(after.holder, victim.name);
  t.is(back.holder, after.holder, 'the restarted agent does not take the service back');
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const servedAt = served.sentAt + served.rttMs;
  t.log(`${victim.name} killed, its address removed by hand ${round(removedAt - killedAt)} ms later: ${after.holder} holds at epoch ${after.epoch} ` +
    `and served ${round(servedAt - removedAt)} ms after the removal (client gap ${await gapMs(f, removedAt, servedAt + 100)} ms)`);
});

integrationTest('the holder\'s agent stopped releases at once; the next host takes over, and the stopped one comes back standing by', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  const before = await settledClaim(f, 'before the stop');
  const leaving = f.hosts[before.holder];
  const watch = await watchHosts(f);
  const stoppedAt = Date.now();
  await stop(leaving, 'SIGTERM');
  const after = await settledClaim(f, 'after the stop', others(leaving.name));
  const served = await servedBy(f, after.holder, stoppedAt);
  const restartAt = Date.now();
  await start(leaving);
  const back = await settledClaim(f, 'after its restart');
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.not(after.holder, leaving.name);
  t.is(back.holder, after.holder, 'the returning host does not take the service back');
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const removed = changes(history, leaving.name, 'address-removed', stoppedAt)[0];
  const deleted = await keyChange(f, 'the key deleted', stoppedAt, (c) => !c.put);
  t.not(removed, undefined, `${leaving.name} removed the address`);
  t.true(removed !== undefined && removed.atMs <= deleted.atMs, 'the address went before the key');
  t.log(`${leaving.name} stopped: address removed ${round((removed?.atMs ?? NaN) - stoppedAt)} ms, key deleted ${round(deleted.atMs - stoppedAt)} ms ` +
    `(revoked, not expired: TTL ${TTL_S} s), ${after.holder} served ${round(served.sentAt + served.rttMs - stoppedAt)} ms after the stop; ` +
    `client gap ${await gapMs(f, stoppedAt, restartAt)} ms; epoch ${before.epoch} → ${after.epoch}`);
});

integrationTest('the holder frozen past its lease drops the address on waking before anything else; never two holders, and a host serves again', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  const before = await settledClaim(f, 'before the freeze');
  const frozen = f.hosts[before.holder];
  const watch = await watchHosts(f);
  const frozenAt = Date.now();
  process.kill(frozen.pid, 'SIGSTOP');
  let thawedAt = 0;
  try {
    // Its lease expires; another host takes the key, but the frozen host's kernel still answers for the address.
    await until('another host takes the key while the holder is frozen', WAIT_MS, async () =>
      (await keyChanges(f, frozenAt)).find((c) => c.put && c.value !== frozen.name));
    await sleep(500);
  } finally {
    thawedAt = Date.now();
    process.kill(frozen.pid, 'SIGCONT');
  }
  const after = await settledClaim(f, 'after the thaw');
  const served = await servedBy(f, after.holder, thawedAt);
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const removed = changes(history, frozen.name, 'address-removed', thawedAt)[0];
  t.not(removed, undefined, `${frozen.name} removed the address after it woke`);
  // Its first act on the lease after waking is the drop: no act as a holder before it. (A renewal sent before the
  // freeze may report its failure first: that is news of the past, not an act.)
  const woken = (await agentLog(frozen)).filter((l) => l.atMs >= thawedAt && /\((?:lease|claim)\b/.test(l.message) &&
    !/renewal sent .* failed/.test(l.message));
  t.regex(woken[0]?.message ?? '', /dropping the address/, `${frozen.name}'s lines after waking: ${JSON.stringify(woken.slice(0, 3))}`);
  const late = /(\d+) ms past the deadline/.exec(woken.map((l) => l.message).join('\n'))?.[1];
  const expired = (await keyChanges(f, frozenAt)).find((c) => !c.put);
  t.log(`${frozen.name} frozen ${thawedAt - frozenAt} ms: key expired ${round((expired?.atMs ?? NaN) - frozenAt)} ms after the freeze; ` +
    `on waking it dropped ${round((removed?.atMs ?? NaN) - thawedAt)} ms after SIGCONT (${late ?? '?'} ms past its deadline; ` +
    `drop − expiry ${round((removed?.atMs ?? NaN) - (expired?.atMs ?? NaN))} ms: the others' probe covered that); ${after.holder} holds at epoch ${after.epoch}, ` +
    `served ${round(served.sentAt + served.rttMs - (removed?.atMs ?? NaN))} ms after the drop; client gap ${await gapMs(f, frozenAt, served.sentAt + served.rttMs + 100)} ms`);
});

integrationTest('the holder cut from etcd but not from its clients drops the address before etcd frees the key; another host takes it', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  const before = await settledClaim(f, 'before the cut');
  const cut = f.hosts[before.holder];
  const watch = await watchHosts(f);
  const cutAt = Date.now();
  let healedAt = 0;
  let blind: HostStatus;
  let after: Settled;
  try {
    await f.cluster.cut(cut.name);
    // Dropped, and saying that it cannot read etcd: a warning, not a consistent view.
    blind = await until(`${cut.name} drops and reports etcd out of reach`, WAIT_MS, async () => {
      const s = await statusOf(cut);
      return s.status.holdsIp === false && s.status.claim?.error !== undefined ? s : undefined;
    });
    after = await settledClaim(f, 'while the old holder is cut off', others(cut.name));
  } finally {
    healedAt = Date.now();
    await f.cluster.heal(cut.name);
  }
  const served = await servedBy(f, after.holder, cutAt);
  const back = await settledClaim(f, 'after the heal');
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.is(blind.exitCode, 1, `status of the cut host: ${describeStatus(blind)}`);
  t.is(blind.status.claim?.phase, 'standing-by');
  t.not(after.holder, cut.name);
  t.is(back.holder, after.holder);
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const removed = changes(history, cut.name, 'address-removed', cutAt)[0];
  const expired = await keyChange(f, 'the key expired', cutAt, (c) => !c.put);
  t.true(removed !== undefined && removed.atMs < expired.atMs,
    `${cut.name} removed the address at ${String(removed?.atMs)}, etcd deleted the key at ${expired.atMs}`);
  t.log(`${cut.name} cut: dropped ${round((removed?.atMs ?? NaN) - cutAt)} ms after the cut, ${round(expired.atMs - (removed?.atMs ?? NaN))} ms ` +
    `before etcd expired the key (margin ${TTL_S * 200} ms configured); ${after.holder} served ${round(served.sentAt + served.rttMs - cutAt)} ms after the cut ` +
    `(client gap ${await gapMs(f, cutAt, healedAt)} ms); epoch ${before.epoch} → ${after.epoch}`);
});

integrationTest('etcd loses a member, then its leader: the holder serves on while a quorum is there, drops when none is, and never two hold', async (t) => {
  const f = requireFixture();
  const c = f.cluster;
  await allRunning(f);
  const before = await settledClaim(f, 'before the faults');
  const watch = await watchHosts(f);
  const leader = await c.leader();
  const victim = c.members.find((m) => m !== leader) as EtcdMember;
  const killedAt = Date.now();
  c.kill(victim);
  // Two renewals' worth and more on the two members left: a quorum, so the holder keeps the key.
  await sleep(2 * TTL_S * 1000);
  const withTwo = await settledClaim(f, 'with one member killed');
  const partitionedAt = Date.now();
  const leaderNow = await c.leader();
  let healedAt = 0;
  try {
    await c.isolate(leaderNow);
    // The member left alone has no quorum: no renewal succeeds, the holder drops by its deadline, nobody may take.
    await until(`${withTwo.holder} drops without a quorum`, WAIT_MS, async () => ((await statusOf(f.hosts[withTwo.holder])).status.holdsIp === false ? true : undefined));
    await sleep(TTL_S * 1000);
  } finally {
    healedAt = Date.now();
    await c.heal(leaderNow.name);
  }
  const after = await settledClaim(f, 'after the partition healed');
  const served = await servedBy(f, after.holder, healedAt);
  const history = await watch.stop();
  noTwoHolders(t, history);
  t.deepEqual(holdersAt(history, healedAt), [], 'nobody held the address when no quorum was left');
  t.deepEqual(judgeHolders(history).final, [after.holder]);
  t.true(after.epoch > before.epoch, `epoch ${before.epoch} → ${after.epoch}`);
  const dropped = changes(history, withTwo.holder, 'address-removed', partitionedAt)[0];
  const deleted = (await keyChanges(f, partitionedAt)).find((k) => !k.put);
  t.log(`${victim.name} killed: ${withTwo.holder === before.holder && withTwo.epoch === before.epoch ? `${before.holder} kept the key` : `the key went ${before.holder} → ${withTwo.holder}`} ` +
    `(client gap ${await gapMs(f, killedAt, partitionedAt)} ms); leader ${leaderNow.name} partitioned: ${withTwo.holder} dropped ` +
    `${round((dropped?.atMs ?? NaN) - partitionedAt)} ms later, the key deleted ${round((deleted?.atMs ?? NaN) - partitionedAt)} ms after the partition ` +
    `(healed at ${healedAt - partitionedAt} ms); ${after.holder} served ${round(served.sentAt + served.rttMs - healedAt)} ms after the heal; ` +
    `epoch ${before.epoch} → ${after.epoch}`);
});

// ---- several services on the same hosts

const BLOG = {name: 'blog', cidr: '192.0.2.101/24', address: '192.0.2.101'} as const;

/** The same host's baton.yaml with two services: web (a, b, c) and blog (b, a, c), both confirmed in the host's nginx log. */
function twoServicesConfig(host: AgentHost, endpoints: readonly string[]): string {
  const accessLog = join(host.dir, 'web', 'access.log');
  return [
    ...hostLines(host, endpoints),
    'services:',
    `  - {name: ${SERVICE}, address: ${SERVICE_CIDR}, interface: eth0, confirm: {access_log: ${accessLog}, min_requests: 3}}`,
    `  - {name: ${BLOG.name}, address: ${BLOG.cidr}, interface: eth0, hosts: [b, a, c], confirm: {access_log: ${accessLog}, min_requests: 3}}`,
    '',
  ].join('\n');
}

/** Who holds each service, as every host's `baton status --json` says, once they agree and each service has one holder. */
async function placement(f: Fixture, what: string): Promise<Record<string, string>> {
  return until(`${what}: every service held once, every host agreeing`, WAIT_MS, async () => {
    const reports = await Promise.all(HOSTS.map(async (name) => {
      const result = await baton(f.hosts[name], 'status', '--json');
      return {name, exitCode: result.exitCode, json: JSON.parse(String(result.stdout)) as Partial<EtcdStatusReport>};
    }));
    const held: Record<string, string> = {};
    for (const service of [SERVICE, BLOG.name]) {
      const views = reports.map((r) => ({host: r.name, view: r.json.services?.find((s) => s.name === service)}));
      const holders = views.filter((v) => v.view?.claim.phase === 'holding' && v.view.holdsIp === true);
      const [holder] = holders;
      if (holder === undefined || holders.length !== 1 || views.some((v) => v.view?.claim.switching !== undefined)) return undefined;
      if (!views.filter((v) => v !== holder).every((v) => v.view?.claim.holder === holder.host && v.view.held.length === 0)) return undefined;
      held[service] = holder.host;
    }
    return reports.every((r) => r.exitCode === 0) ? held : undefined;
  });
}

integrationTest('two services on the same hosts: each held once by its own key, one moved by --service, both moved off a drained host; never two holders of either', async (t) => {
  const f = requireFixture();
  await allRunning(f);
  await Promise.all(HOSTS.map((name) => stop(f.hosts[name], 'SIGTERM')));
  for (const name of HOSTS) await writeFile(f.hosts[name].configFile, twoServicesConfig(f.hosts[name], f.cluster.endpoints), {mode: 0o600});
  const blogProber = await startProber({namespace: f.cluster.namespace(CLIENT.name), url: `http://${BLOG.address}/`, intervalMs: 50,
    timeoutMs: PROBE_TIMEOUT_MS, durationS: 120, maxProbes: 2400, out: join(baseDir, 'blog-probes.jsonl')});
  const watch = await watchAddress(HOSTS.map((name) => ({name, namespace: f.hosts[name].namespace})), 'eth0', [SERVICE_ADDRESS, BLOG.address]);
  try {
    await Promise.all(HOSTS.map((name) => start(f.hosts[name])));
    const first = await placement(f, 'after the start');
    t.log(`started: ${JSON.stringify(first)} (web prefers a, blog b; agents that start seconds apart on a busy machine may place them otherwise)`);
    // blog to a host that does not hold it, asked on another: only blog moves. Where the services start depends on
    // which agent looked first, so the target is chosen from what the start gave.
    const target: HostName = first[BLOG.name] === 'a' ? 'c' : 'a';
    const asker: HostName = others(target).find((name) => name !== first[BLOG.name]) ?? others(target)[0] ?? 'b';
    const asked = await baton(f.hosts[asker], 'switchover', '--to', target, '--service', BLOG.name);
    t.is(asked.exitCode, 0, `${String(asked.stdout)} ${String(asked.stderr)}`);
    const moved = await placement(f, `after blog moved to ${target}`);
    t.is(moved[BLOG.name], target);
    t.is(moved[SERVICE], first[SERVICE], 'web did not move');
    // Without --service a host of two services refuses, naming them.
    const vague = await baton(f.hosts[asker], 'switchover', '--to', target);
    t.not(vague.exitCode, 0);
    t.regex(String(vague.stdout) + String(vague.stderr), /this host serves web, blog: say which to move with --service NAME/);
    // The target drained: every service it holds moves off it.
    const drained = await baton(f.hosts[asker], 'drain', target);
    t.is(drained.exitCode, 0, `${String(drained.stdout)} ${String(drained.stderr)}`);
    const after = await placement(f, `after ${target} was drained`);
    t.not(after[SERVICE], target);
    t.not(after[BLOG.name], target);
    t.log(`blog → ${target} by --service (asked on ${asker}); ${target} drained: ${JSON.stringify(after)}; drain said: ` +
      `${String(drained.stdout).trim().split('\n').at(-1) ?? ''}`);
    const resumed = await baton(f.hosts[target], 'resume');
    t.is(resumed.exitCode, 0, String(resumed.stderr));
  } finally {
    const history = await watch.stop();
    await blogProber.stop().catch(() => undefined);
    for (const address of [SERVICE_ADDRESS, BLOG.address]) {
      t.deepEqual(judgeHolders({...history, addresses: [address]}).overlaps, [], `${address}: ${JSON.stringify(history.events)}`);
    }
    // The next file's cases, if any, start from one service again.
    await Promise.all(HOSTS.map((name) => (isProcessAlive(f.hosts[name].pid) ? stop(f.hosts[name], 'SIGTERM') : Promise.resolve())));
    for (const name of HOSTS) await writeFile(f.hosts[name].configFile, agentConfig(f.hosts[name], f.cluster.endpoints), {mode: 0o600});
  }
});
