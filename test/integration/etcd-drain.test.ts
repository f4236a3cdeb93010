// The drain in etcd mode with real parts: real baton-agents on hosts a and b against a real etcd in namespaces, each
// with a real web server (nginx where installed) whose graceful command the drain runs, and a client with the lab's
// classes: new connections at 50 a second, keep-alive connections, downloads and uploads in flight. `baton switchover
// --to b`, then `--to a`: every keep-alive request, download and upload must finish; who held the address is judged
// from the kernels' own address events; nothing of the drain is left on either host. The same moves without the drain
// (drain.enabled false: the runbook's five steps, as main switched before the drain) are measured beside it, logged and
// never asserted on their losses.

import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import type {EtcdStatusReport} from '../../agent/control-protocol.js';
import {judgeHolders, watchAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import type {ClientsSummary} from '../../cli/lab/clients.js';
import {startClients} from '../../cli/lab/clients-control.js';
import {startAgent, type AgentProcess} from '../../cli/lab/lab.js';
import {isProcessAlive, startWebServer, type WebServer} from '../../cli/lab/web.js';
import {etcdAvailable, type EtcdCluster, SERVICE_ADDRESS, SERVICE_CIDR, startEtcdCluster} from './etcd-cluster.js';
import {integrationPrefix, integrationTest, skipUnlessIntegration} from './helpers.js';
import {baton, until} from './lab-helpers.js';

const TTL_S = 3;
const HOSTS = ['a', 'b'] as const;
type HostName = typeof HOSTS[number];
const HOST_ADDRESSES: Record<HostName, string> = {a: '192.0.2.11', b: '192.0.2.12'};
const CLIENT = {name: 'w', address: '192.0.2.20'} as const;
const SERVICE = 'web';
// New connections every 20 ms (50 a second), four keep-alive clients every 20 ms, a 4 s download and upload started
// every 500 ms: some of each are open on the giver at each move.
const CLIENT_ARGS = ['--fresh-interval-ms', '20', '--keep-alive', '4', '--keep-alive-interval-ms', '20', '--download-every-ms', '500',
  '--upload-every-ms', '500'];
const CLIENTS_S = 60;
const WAIT_MS = 30_000;
const STOP_WAIT_MS = 15_000;

interface Host extends AgentProcess {
  readonly name: HostName;
  readonly dir: string;
  readonly socket: string;
  readonly web: WebServer;
}

let baseDir = '';
let cluster: EtcdCluster | undefined;
let hosts: Record<HostName, Host> | undefined;
const webServers: WebServer[] = [];
const agentPids = new Set<number>();

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t)) || !etcdAvailable((line) => t.log(line))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-etcd-drain-'));
  cluster = await startEtcdCluster(integrationPrefix(), baseDir, [...HOSTS.map((name) => ({name, address: HOST_ADDRESSES[name]})), CLIENT]);
  const made = {} as Record<HostName, Host>;
  for (const name of HOSTS) {
    const dir = join(baseDir, name);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const web = await startWebServer({namespace: cluster.namespace(name), dir: join(dir, 'web'), hostName: name});
    webServers.push(web);
    t.log(`${name}: ${web.kind} web server`);
    made[name] = {name, dir, web, namespace: cluster.namespace(name), configFile: join(dir, 'baton.yaml'), socket: join(dir, 'control.sock'),
      logFile: join(dir, 'agent.log'), pid: 0};
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
    for (const web of webServers) await web.stop().catch(() => undefined);
    await cluster?.teardown();
  } finally {
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  }
});

/** A host's baton.yaml in etcd mode, with the access log of its web server, and the drain on (its graceful command) or off. */
function agentConfig(host: Host, endpoints: readonly string[], drain: boolean): string {
  return [
    `pair: ${SERVICE}`,
    `service: {address: ${SERVICE_CIDR}, interface: eth0}`,
    `state_dir: ${join(host.dir, 'state')}`,
    `control_socket: ${host.socket}`,
    'on_stop: release',
    'confirm:',
    `  access_log: ${host.web.accessLog}`,
    '  min_requests: 3',
    '  timeout_s: 20',
    ...drain ? ['drain:', '  graceful_command:', `    path: ${host.web.graceful.path}`, `    args: ${JSON.stringify(host.web.graceful.args)}`,
      '  timeout_s: 20'] : ['drain: {enabled: false}'],
    'coordination:',
    '  mode: etcd',
    `  endpoints: [${endpoints.join(', ')}]`,
    `  host: ${host.name}`,
    `  hosts: [${HOSTS.join(', ')}]`,
    `  lease_ttl_s: ${TTL_S}`,
    '',
  ].join('\n');
}

/** What the cases read of `baton status --json`: the one service's claim and address, and the other host's presence. */
interface EtcdStatusJson {
  readonly claim?: {readonly phase: string; readonly holder?: string};
  readonly holdsIp?: boolean;
  readonly peers?: ReadonlyArray<{readonly host: string; readonly present?: boolean}>;
}

async function statusJson(host: Host): Promise<EtcdStatusJson> {
  const result = await baton(host, 'status', '--json');
  try {
    const report = JSON.parse(String(result.stdout)) as Partial<Pick<EtcdStatusReport, 'services' | 'peers'>>;
    const [service] = report.services ?? [];
    return {claim: service?.claim, holdsIp: service?.holdsIp, peers: report.peers};
  } catch {
    return {};
  }
}

/** Waits until `holder` holds and serves, and the other host stands by naming it and sees it present. */
async function settledOn(holder: HostName): Promise<void> {
  const h = requireHosts();
  await until(`${holder} holds the service and the other stands by`, WAIT_MS, async () => {
    const [sa, sb] = await Promise.all([statusJson(h.a), statusJson(h.b)]);
    const byName: Record<HostName, EtcdStatusJson> = {a: sa, b: sb};
    const other: HostName = holder === 'a' ? 'b' : 'a';
    const held = byName[holder].claim?.phase === 'holding' && byName[holder].holdsIp === true;
    const standing = byName[other].claim?.phase === 'standing-by' && byName[other].claim?.holder === holder && byName[other].holdsIp === false;
    const present = byName[other].peers?.some((p) => p.host === holder && p.present === true) === true;
    return held && standing && present ? true : undefined;
  });
}

function requireHosts(): Record<HostName, Host> {
  if (hosts === undefined) throw new Error('no etcd lab: the before hook failed or the tests are skipped');
  return hosts;
}

async function startAgents(drain: boolean): Promise<void> {
  const h = requireHosts();
  const endpoints = cluster?.endpoints ?? [];
  for (const name of HOSTS) {
    await writeFile(h[name].configFile, agentConfig(h[name], endpoints, drain), {mode: 0o600});
    // a first: it takes the service, b stands by.
    await startAgent(h[name]);
    agentPids.add(h[name].pid);
    if (name === 'a') await settledOnAlone();
  }
  await settledOn('a');
}

/** a alone holds the service (b's agent is not started yet). */
async function settledOnAlone(): Promise<void> {
  const a = requireHosts().a;
  await until('a holds the service', WAIT_MS, async () => {
    const s = await statusJson(a);
    return s.claim?.phase === 'holding' && s.holdsIp === true ? true : undefined;
  });
}

async function stopAgents(): Promise<void> {
  for (const host of Object.values(requireHosts())) {
    if (!isProcessAlive(host.pid)) continue;
    process.kill(host.pid, 'SIGTERM');
    await until(`${host.name}'s agent exits`, STOP_WAIT_MS, async () => (isProcessAlive(host.pid) ? undefined : true));
    agentPids.delete(host.pid);
  }
}

/** What a drain could leave on a host: its nftables tables, the service address on lo. */
async function drainLeftovers(host: Host): Promise<string[]> {
  const left: string[] = [];
  const tables = await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', 'list', 'tables']);
  if (/baton_drain/.test(tables.stdout)) left.push(`nft: ${tables.stdout.trim()}`);
  const lo = await execa('ip', ['-n', host.namespace, '-4', '-o', 'addr', 'show', 'dev', 'lo']);
  if (lo.stdout.includes(SERVICE_ADDRESS)) left.push(`${SERVICE_ADDRESS} on lo`);
  return left;
}

function describe(summary: ClientsSummary): string {
  return Object.entries(summary.classes).map(([name, c]) =>
    `${name}: ${c.ok}/${c.attempts} ok, ${c.failed} failed, longest gap ${c.longestGapMs} ms, served by ${JSON.stringify(c.servedBy)}` +
    (c.failures.length === 0 ? '' : `, failures ${JSON.stringify(c.failures.slice(0, 5))}`)).join('\n');
}

/** The unowned windows of the moves, from the kernels' events: the giver's address gone to the taker's added there. */
function unownedWindows(history: AddressHistory): number[] {
  return history.events.flatMap((event, i) => {
    if (event.change !== 'address-added') return [];
    const removed = history.events.slice(0, i).findLast((e) => e.change === 'address-removed' && e.host !== event.host);
    return removed === undefined ? [] : [Math.round((event.atMs - removed.atMs) * 10) / 10];
  });
}

/** Moves the service a → b → a under the clients; returns what they and the kernels saw. */
async function switchBothWays(t: ExecutionContext, drain: boolean): Promise<{summary: ClientsSummary; history: AddressHistory; outputs: string[]}> {
  const h = requireHosts();
  const c = cluster;
  if (c === undefined) throw new Error('no etcd cluster');
  await startAgents(drain);
  const watch = await watchAddress(HOSTS.map((name) => ({name, namespace: h[name].namespace})), 'eth0', [SERVICE_ADDRESS]);
  const tag = drain ? 'drain' : 'nodrain';
  const clients = await startClients({namespace: c.namespace(CLIENT.name), url: `http://${SERVICE_ADDRESS}/`, durationS: CLIENTS_S,
    out: join(baseDir, `clients-${tag}.json`), args: CLIENT_ARGS});
  const outputs: string[] = [];
  let failure: {error: unknown} | undefined;
  try {
    // Keep-alive connections and transfers build up on a before it gives the address away.
    await sleep(2000);
    for (const [to, on] of [['b', h.b], ['a', h.a]] as const) {
      const moved = await baton(on, 'switchover', '--to', to);
      outputs.push(String(moved.stdout));
      t.log(`${tag}: switchover --to ${to} (exit ${moved.exitCode}):\n${String(moved.stdout)}${String(moved.stderr)}`);
      t.is(moved.exitCode, 0, `${String(moved.stdout)}${String(moved.stderr)}`);
      await settledOn(to);
      await sleep(2000);
    }
  } catch (error) {
    failure = {error};
  }
  // The clients, the watch and the agents end whatever happened: the next case starts its own.
  const summary = await clients.stop();
  const history = await watch.stop();
  await stopAgents();
  t.log(`${tag}: ${describe(summary)}`);
  t.log(`${tag}: unowned windows (ms, kernel events): ${unownedWindows(history).join(', ')}`);
  if (failure !== undefined) throw failure.error;
  return {summary, history, outputs};
}

integrationTest('etcd mode, drain on: keep-alive requests, downloads and uploads in flight survive switchover --to b and back; never two holders', async (t) => {
  const {summary, history, outputs} = await switchBothWays(t, true);
  for (const [i, output] of outputs.entries()) {
    const giver = i === 0 ? 'a' : 'b';
    t.regex(output, new RegExp(`hold-connections +on (host )?${giver} +ok`), 'the giver held its connections');
    t.regex(output, new RegExp(`drain-connections +on (host )?${giver} +ok`), 'and drained them');
    t.regex(output, /is free to upgrade: (its connections finished in|\d+ connection\(s\) were still open)/, 'free to upgrade once its connections ended, or counted');
  }
  const {keepAlive, downloads, uploads, fresh} = summary.classes;
  t.true(keepAlive.ok > 100 && downloads.ok > 5 && uploads.ok > 5 && fresh.ok > 100, 'the clients really ran');
  t.is(keepAlive.failed, 0, 'every keep-alive request was answered');
  t.is(downloads.failed, 0, 'every download finished, those in flight at the moves too');
  t.is(uploads.failed, 0, 'every upload was received, those in flight at the moves too');
  t.true((downloads.servedBy['a'] ?? 0) > 0 && (downloads.servedBy['b'] ?? 0) > 0, 'downloads ran on both hosts');
  t.deepEqual(judgeHolders(history).overlaps, [], `never two holders, from the kernels' own events: ${JSON.stringify(history.events)}`);
  t.deepEqual(judgeHolders(history).final, ['a']);
  const h = requireHosts();
  for (const name of HOSTS) t.deepEqual(await drainLeftovers(h[name]), [], `nothing of the drain left on ${name}`);
  t.log(`drain: new connections ${fresh.failed} failed of ${fresh.attempts}, longest gap ${fresh.longestGapMs} ms; ` +
    `keep-alive ${keepAlive.failed} failed of ${keepAlive.attempts}, longest gap ${keepAlive.longestGapMs} ms`);
});

integrationTest('etcd mode, drain off (the runbook\'s five steps, as before the drain): the same moves, measured, never two holders', async (t) => {
  const {summary, history} = await switchBothWays(t, false);
  t.deepEqual(judgeHolders(history).overlaps, [], 'never two holders, from the kernels\' own events');
  const {keepAlive, downloads, uploads, fresh} = summary.classes;
  // Figures, not verdicts: what a switch without the drain costs the clients.
  t.log(`no drain: new connections ${fresh.failed} failed of ${fresh.attempts}, longest gap ${fresh.longestGapMs} ms; keep-alive ` +
    `${keepAlive.failed} failed of ${keepAlive.attempts}; downloads ${downloads.failed} failed of ${downloads.attempts}; uploads ` +
    `${uploads.failed} failed of ${uploads.attempts}`);
});
