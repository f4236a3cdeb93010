// Part "etcd": the crash and partition cases of issue 17 in etcd mode, on `baton lab`'s etcd lab (three hosts a, b, c
// with real agents, three etcd members, lease_ttl_s 3, a client probing the service address every 10 ms):
//   crash   agents killed with SIGKILL, and restarted at once, at each phase of a planned switch (the switch record's
//           phases, agent/coordination/etcd-switch.ts): the taker after assign-ip (before giver-down-requested), the
//           giver or the taker once the giver is down (giver-down, the handover next), the taker, the giver or both
//           during confirm-traffic (handed-over); and the holder's agent at rest
//   faults  the holder cut from etcd but not from its clients; the holder frozen (SIGSTOP) past its lease; etcd's
//           leader partitioned; a member killed and then the leader partitioned (no quorum until it heals)
// Each case passes when the three kernels' address events show never two holders, and the hosts come to rest (one
// holds, the others stand by for it) with the client answered by the holder within SETTLE_TIMEOUT_MS, as the pair's
// crash part judges. How long the client went unanswered is a figure, with the documented bound beside it.

import {copyFile, mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import type {SwitchProgress, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {callAgent} from '../cli/control-client.js';
import {judgeHolders, watchAddress} from '../cli/lab/address-events.js';
import {etcdClientUrl, etcdLeader, cutFrom, healCut, isolateFrom} from '../cli/lab/etcd-members.js';
import {etcdLabHost, etcdLabUp, waitForOneHolder, writeEtcdLab, type EtcdLab, type EtcdLabHost, type Settled} from '../cli/lab/etcd-lab.js';
import {labDown, startAgent} from '../cli/lab/lab.js';
import {until} from '../cli/lab/observe.js';
import {startServiceProbers, type ServiceProbers} from '../cli/lab/probe-control.js';
import {summarizeProbes} from '../cli/lab/probe-report.js';
import {SERVICE_LAN} from '../cli/lab/topology-plan.js';
import {isNginxInstalled, isProcessAlive} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';

type Victim = 'taker' | 'giver' | 'both';
/** Where a switch is broken: once the taker has its address assigned, once the giver is down, while the taker confirms. */
type SwitchPoint = 'assign-ip' | 'primary-net-down' | 'confirm-traffic';

export interface EtcdCase {
  readonly name: string;
  /** In the fast subset (CI). */
  readonly fast: boolean;
  /** Leaves etcd short of a member: the lab is rebuilt before the next case. */
  readonly breaksLab?: boolean;
  /** Breaks the settled lab; resolves once what it broke is put back (agents restarted, cut healed), with what it saw. */
  readonly run: (lab: EtcdLab, settled: Settled, probers: ServiceProbers) => Promise<Fault>;
}

interface Fault {
  /** Date.now() of the fault: the client's gap and the time to serve again are counted from it. */
  readonly atMs: number;
  /** What the case saw, for the figures: "the record was at giver-down". */
  readonly notes: readonly string[];
  /** What went wrong before the hosts were left to settle (a switch that ended before its kill point). */
  readonly problem?: string;
}

// The lab's lease: a dead holder's key is free lease_ttl_s after its last renewal (etcd-lab.ts).
// Far beyond what any case takes (a TTL, a backoff of 2 s, a probe): a stuck host fails the case, a busy machine does not.
const SETTLE_TIMEOUT_MS = 25_000;
// The client: every 10 ms, as issue 17 samples; a probe unanswered after 200 ms failed. Bounded for the longest run.
const PROBE_INTERVAL_MS = 10;
const PROBE_TIMEOUT_MS = 200;
const PROBER_DURATION_S = 1800;
// During confirm-traffic: 250 requests at the client's 100 a second keep the taker counting for about 2.5 s.
const CONFIRM_REQUESTS = 250;
const CONFIRM_TIMEOUT_S = 10;
// From the request to the kill point: a preflight and a few steps, each well under a second in the lab.
const REACH_TIMEOUT_MS = 20_000;
const KILL_WAIT_MS = 5000;
// The switch's record and the service's key, under the lab's default prefix and its service ("pair: lab").
const SWITCH_KEY = '/baton/services/lab/switch';
/** The record's phases after which nobody acts (etcd-switch.ts), and no record at all. */
const ENDED_PHASES: readonly string[] = ['none', 'finished', 'rolled-back'];
// A giver whose taker went silent after the handover ends the record after the confirmation's timeout (the lab's:
// 10 s) and 15 s more (etcd-switch.ts); with the time to rest before it, and a margin.
const RECORD_END_MS = 45_000;
// etcd elects a leader within its election timeout (1 s) of a heal; a busy machine gets more.
const LEADER_WITHIN_MS = 15_000;

function switchCase(victim: Victim, at: SwitchPoint, fast: boolean): EtcdCase {
  const when = at === 'confirm-traffic' ? 'during confirm-traffic' : `after ${at}`;
  return {name: `switch, ${when}, kill ${victim}`, fast, run: (lab, settled) => killDuringSwitch(lab, settled, victim, at)};
}

/** Every case in running order; the one that kills a member last, since it leaves etcd with two. */
export const ETCD_CASES: readonly EtcdCase[] = [
  switchCase('taker', 'assign-ip', false),
  switchCase('giver', 'assign-ip', false),
  switchCase('taker', 'primary-net-down', true),
  switchCase('giver', 'primary-net-down', false),
  switchCase('both', 'primary-net-down', false),
  switchCase('taker', 'confirm-traffic', false),
  switchCase('giver', 'confirm-traffic', true),
  switchCase('both', 'confirm-traffic', false),
  {name: 'the holder\'s agent killed at rest', fast: false, run: killHolderAtRest},
  {name: 'the holder cut from etcd, not from its clients', fast: true, run: cutHolder},
  {name: 'the holder frozen (SIGSTOP) past its lease', fast: true, run: freezeHolder},
  {name: 'etcd\'s leader partitioned', fast: false, run: (lab) => partitionLeader(lab, false)},
  {name: 'an etcd member killed, then the leader partitioned', fast: false, breaksLab: true, run: (lab) => partitionLeader(lab, true)},
];

export function etcdCases(fast: boolean): EtcdCase[] {
  return ETCD_CASES.filter((c) => !fast || c.fast);
}

export const etcdPart: CampaignPart = {
  name: 'etcd',
  about: 'etcd mode (three hosts, three etcd members): agents killed at each phase of a switch, the holder cut from etcd, frozen past its lease, ' +
    'etcd\'s leader partitioned, a member killed: never two holders (kernel events), a host serves again',
  async run(context) {
    const cases = etcdCases(context.fast);
    const web = await isNginxInstalled() ? 'nginx' : 'builtin';
    const rows: CaseResult[] = [];
    let lab: EtcdLab | undefined;
    let probers: ServiceProbers | undefined;
    const down = async (): Promise<void> => {
      await probers?.stop().catch(() => undefined);
      if (lab !== undefined) await labDown(context.runner, lab.prefix, context.dir);
      lab = undefined;
      probers = undefined;
    };
    try {
      for (const c of cases) {
        context.say(`etcd: ${c.name}`);
        let settled: Settled | undefined;
        // A lab that does not come to rest between cases is rebuilt once; a fresh one that does not fails the case.
        for (let attempt = 0; settled === undefined && attempt < 2; attempt += 1) {
          if (lab === undefined) {
            lab = await etcdLabUp({runner: context.runner, prefix: context.newLabPrefix(), baseDir: context.dir, web, progress: (line) => context.say(line)});
            probers = await startServiceProbers({urls: [lab.serviceUrl], families: [4]}, {namespace: lab.client.namespace, intervalMs: PROBE_INTERVAL_MS,
              timeoutMs: PROBE_TIMEOUT_MS, durationS: PROBER_DURATION_S, maxProbes: PROBER_DURATION_S * 1000 / PROBE_INTERVAL_MS,
              out: () => join(context.dir, `etcd-probes-${lab?.prefix ?? ''}.jsonl`)});
          }
          settled = await waitForOneHolder(lab, SETTLE_TIMEOUT_MS).catch(async (error: unknown) => {
            context.say(`etcd: lab ${lab?.prefix ?? ''} not at rest (${describeError(error)}): rebuilding it`);
            await down();
            return undefined;
          });
        }
        if (lab === undefined || probers === undefined || settled === undefined) {
          rows.push({group: 'etcd', name: c.name, ok: false, figures: 'lab broken', detail: 'a fresh etcd lab did not come to rest'});
          continue;
        }
        const started = Date.now();
        const row = await runCase(lab, probers, settled, c).catch((error: unknown): CaseResult =>
          ({group: 'etcd', name: c.name, ok: false, figures: 'did not run to the end', detail: describeError(error)}));
        rows.push(row.ok ? row : {...row, detail: `${row.detail ?? row.figures} (agent logs: ${await keepLogs(context, lab, c.name)})`});
        context.say(`etcd: ${row.ok ? 'pass' : 'FAIL'} ${c.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        // A failed case may leave what the next one would trip on: each case starts from a lab it did not break.
        if (c.breaksLab === true || !row.ok) await down();
      }
    } finally {
      await down();
    }
    return rows;
  },
};

/** Runs one case under the kernels' address events; judges never two holders, the rest, and who the client reaches. */
async function runCase(lab: EtcdLab, probers: ServiceProbers, before: Settled, c: EtcdCase): Promise<CaseResult> {
  const watch = await watchAddress(lab.hosts.map((h) => ({name: h.name, namespace: h.namespace})), 'eth0', [lab.serviceAddress]);
  let fault: Fault;
  try {
    fault = await c.run(lab, before, probers);
  } catch (error) {
    await watch.stop().catch(() => undefined);
    throw error;
  }
  const problems: string[] = fault.problem === undefined ? [] : [fault.problem];
  const after = await waitForOneHolder(lab, SETTLE_TIMEOUT_MS).catch((error: unknown) => describeError(error));
  const restedAt = Date.now();
  let servedAt: number | undefined;
  if (typeof after === 'string') {
    problems.push(after);
  } else {
    servedAt = await servedBy(probers, after.holder, fault.atMs, SETTLE_TIMEOUT_MS);
    if (servedAt === undefined) problems.push(`the client was not answered by ${after.holder}, which holds the service`);
  }
  // A record left mid-switch refuses every later switch: it must end (finished, rolled-back) once the hosts rest.
  const phase = await until('the switch record ends', RECORD_END_MS, async () => {
    const now = await recordPhase(lab);
    return ENDED_PHASES.includes(now) ? now : undefined;
  }).catch(async () => `left at ${await recordPhase(lab)}`);
  if (phase.startsWith('left at')) problems.push(`the switch record was ${phase} ${fmtS(Date.now() - fault.atMs)} after the fault`);
  const history = await watch.stop();
  const {overlaps} = judgeHolders(history);
  if (overlaps.length > 0) {
    problems.unshift(`two hosts held the address: ${overlaps.map((o) => `${o.hosts.join(' and ')} ${((o.fromMs - fault.atMs) / 1000).toFixed(2)} s after the fault ` +
      `for ${o.toMs === undefined ? 'good' : `${Math.round(o.toMs - o.fromMs)} ms`}`).join('; ')}`);
  }
  const end = servedAt ?? restedAt;
  const gap = summarizeProbes(await probers.read(), fault.atMs, end + PROBE_INTERVAL_MS * 5);
  const holder = typeof after === 'string' ? 'nobody at rest' : `${after.holder} holds (epoch ${before.epoch} → ${after.epoch})`;
  const figures = [...fault.notes, holder, `client's longest gap ${fmtS(gap.longestGapMs)} (${gap.failed} of ${gap.probes} probes failed)`,
    `at rest ${fmtS(restedAt - fault.atMs)} after the fault`, `${history.events.length} kernel events, ${overlaps.length} overlaps`].join('; ');
  return {group: 'etcd', name: c.name, ok: problems.length === 0, figures, detail: problems.length === 0 ? undefined : problems.join('; ')};
}

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** When the client was first answered by `host` for a probe sent after `afterMs` (the answer's time), within `withinMs`. */
async function servedBy(probers: ServiceProbers, host: string, afterMs: number, withinMs: number): Promise<number | undefined> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const records = await probers.read();
    // The last answers, not the first: a case may pass the service around before it rests on `host`.
    const last = records.filter((r) => r.sentAt > afterMs).sort((a, b) => b.sentAt - a.sentAt).slice(0, 5);
    const mine = last.filter((r) => r.ok && r.host === host).sort((a, b) => a.sentAt - b.sentAt)[0];
    if (last.length === 5 && mine !== undefined) return mine.sentAt + mine.rttMs;
    if (Date.now() > deadline) return undefined;
    await sleep(50);
  }
}

// ---- the cases

/** SIGKILLs each host's agent and waits until it is gone. */
async function kill(hosts: readonly EtcdLabHost[]): Promise<void> {
  for (const host of hosts) process.kill(host.pid, 'SIGKILL');
  const deadline = Date.now() + KILL_WAIT_MS;
  while (hosts.some((h) => isProcessAlive(h.pid))) {
    if (Date.now() > deadline) throw new Error(`${hosts.filter((h) => isProcessAlive(h.pid)).map((h) => h.name).join(', ')}'s agent outlived SIGKILL`);
    await sleep(10);
  }
}

async function restart(lab: EtcdLab, hosts: readonly EtcdLabHost[]): Promise<void> {
  for (const host of hosts) await startAgent(host);
  await writeEtcdLab(lab);
}

/** The switch record's phase as etcd has it now ("none" without a record), read from the client's namespace. */
async function recordPhase(lab: EtcdLab): Promise<string> {
  const result = await execa('ip', ['netns', 'exec', lab.client.namespace, 'etcdctl', `--endpoints=${lab.endpoints.join(',')}`,
    '--command-timeout=2s', 'get', SWITCH_KEY, '--print-value-only'], {reject: false, env: {ETCDCTL_API: '3'}});
  if (result.exitCode !== 0) return `unreadable (${String(result.stderr).trim()})`;
  if (result.stdout.trim() === '') return 'none';
  try {
    return String((JSON.parse(result.stdout) as {phase?: unknown}).phase);
  } catch {
    return 'not JSON';
  }
}

function nextHost(lab: EtcdLab, holder: string): EtcdLabHost {
  const names: readonly string[] = lab.hosts.map((h) => h.name);
  return etcdLabHost(lab, names[(names.indexOf(holder) + 1) % names.length] ?? holder);
}

/**
 * `baton switchover --to TAKER` run on the taker (the host after the holder); at `at` (the taker's progress: its
 * assign-ip done, the giver's primary-net-down seen, its confirmation counting) the victims' agents are killed and
 * restarted at once. The record's phase is read right after the kill: etcd mode has no --pause-after, so the kill
 * lands where the switch was, which the figures say.
 */
async function killDuringSwitch(lab: EtcdLab, settled: Settled, victim: Victim, at: SwitchPoint): Promise<Fault> {
  const giver = etcdLabHost(lab, settled.holder);
  const taker = nextHost(lab, settled.holder);
  const victims = victim === 'both' ? [giver, taker] : [victim === 'giver' ? giver : taker];
  const reached = Promise.withResolvers<void>();
  const onProgress = (p: SwitchProgress): void => {
    const hit = at === 'confirm-traffic' ? p.kind === 'waiting' && p.step === 'confirm-traffic'
      : p.kind === 'step' && p.step === at && p.action === 'apply' && p.status === 'ok';
    if (hit) reached.resolve();
  };
  const running = callAgent(taker.socket, {id: 'campaign-etcd', type: 'switchover', options: {dryRun: false, strict: false,
    minRequests: at === 'confirm-traffic' ? CONFIRM_REQUESTS : undefined, confirmTimeoutS: CONFIRM_TIMEOUT_S, pauseAfter: undefined, to: taker.name}},
  60_000, onProgress).then((r) => r as SwitchResult, (error: unknown) => ({error: describeError(error)}));
  const ended = running.then((r) => `the switch ended before the kill point: ${'error' in r ? r.error : `${r.outcome} ${r.reason ?? ''}`}`);
  const timedOut = sleep(REACH_TIMEOUT_MS).then(() => `the switch did not reach ${at} within ${REACH_TIMEOUT_MS} ms`);
  const missed = await Promise.race([reached.promise.then(() => undefined), ended, timedOut]);
  const atMs = Date.now();
  if (missed !== undefined) return {atMs, notes: [`${giver.name} → ${taker.name}`], problem: missed};
  await kill(victims);
  const phase = await recordPhase(lab);
  await restart(lab, victims);
  const answer = await Promise.race([running, sleep(SETTLE_TIMEOUT_MS).then(() => ({error: 'no answer'}))]);
  const said = 'error' in answer ? `the taker's call: ${victims.includes(taker) ? 'cut by the kill' : answer.error}` : `the switch: ${answer.outcome}`;
  return {atMs, notes: [`${giver.name} → ${taker.name}, killed ${victims.map((v) => v.name).join(' and ')} with the record at ${phase}`, said]};
}

/** The holder's agent killed and restarted at once: the restarted agent removes the address it left, and a host campaigns. */
async function killHolderAtRest(lab: EtcdLab, settled: Settled): Promise<Fault> {
  const holder = etcdLabHost(lab, settled.holder);
  const atMs = Date.now();
  await kill([holder]);
  await restart(lab, [holder]);
  return {atMs, notes: [`${holder.name} killed and restarted`]};
}

/** The holder's namespace drops every packet to and from the members, not the client's: it must drop the address by
 *  its deadline, before etcd frees its key; the cut is healed once another host serves. */
async function cutHolder(lab: EtcdLab, settled: Settled, probers: ServiceProbers): Promise<Fault> {
  const holder = etcdLabHost(lab, settled.holder);
  const atMs = Date.now();
  await cutFrom(holder.namespace, lab.members.map((m) => m.address));
  let other: number | undefined;
  try {
    other = await servedByOther(probers, holder.name, atMs, SETTLE_TIMEOUT_MS);
  } finally {
    await healCut(holder.namespace);
  }
  return {atMs, notes: [`${holder.name} cut from etcd`, other === undefined ? 'no other host served while it was cut'
    : `another host served ${fmtS(other - atMs)} after the cut (bound: lease_ttl_s ${lab.leaseTtlS} s)`],
  problem: other === undefined ? `no other host served within ${SETTLE_TIMEOUT_MS} ms of cutting ${holder.name} from etcd` : undefined};
}

/** The holder's agent stopped (SIGSTOP) for two leases: its key expires while its kernel still answers; on SIGCONT it
 *  drops first, and a host takes over. */
async function freezeHolder(lab: EtcdLab, settled: Settled): Promise<Fault> {
  const holder = etcdLabHost(lab, settled.holder);
  const atMs = Date.now();
  process.kill(holder.pid, 'SIGSTOP');
  try {
    await sleep(2 * lab.leaseTtlS * 1000);
  } finally {
    process.kill(holder.pid, 'SIGCONT');
  }
  return {atMs, notes: [`${holder.name} frozen ${fmtS(Date.now() - atMs)}`]};
}

/**
 * etcd's leader cut from everything on the LAN for two leases, then healed. With `killFirst`, a member other than the
 * leader is killed first (and the holder must keep the key on the two left): the partition then leaves no quorum, the
 * holder drops by its deadline, and nobody may hold until the heal. Without it, the other two elect a leader.
 */
async function partitionLeader(lab: EtcdLab, killFirst: boolean): Promise<Fault> {
  const live = lab.members.filter((m) => isProcessAlive(m.pid));
  const leader = await until('a member says it leads', LEADER_WITHIN_MS, () => etcdLeader(live).catch(() => undefined));
  const notes: string[] = [];
  const atMs = Date.now();
  if (killFirst) {
    const victim = live.find((m) => m !== leader);
    if (victim === undefined) throw new Error('no member but the leader is running');
    process.kill(victim.pid, 'SIGKILL');
    await sleep(2 * lab.leaseTtlS * 1000);
    const kept = await waitForOneHolder(lab, SETTLE_TIMEOUT_MS);
    notes.push(`${victim.name} killed: ${kept.holder} holds at epoch ${kept.epoch}`);
  }
  const now = await until('a member says it leads', LEADER_WITHIN_MS, () => etcdLeader(lab.members.filter((m) => isProcessAlive(m.pid))).catch(() => undefined));
  await isolateFrom(now.namespace, `${SERVICE_LAN.network}/${SERVICE_LAN.prefixLength}`);
  try {
    await sleep(2 * lab.leaseTtlS * 1000);
  } finally {
    await healCut(now.namespace);
  }
  notes.push(`leader ${now.name} (${etcdClientUrl(now.address)}) partitioned ${2 * lab.leaseTtlS} s`);
  return {atMs, notes};
}

/** When the client was first answered by a host other than `host`, for a probe sent after `afterMs`. */
async function servedByOther(probers: ServiceProbers, host: string, afterMs: number, withinMs: number): Promise<number | undefined> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const other = (await probers.read()).filter((r) => r.ok && r.sentAt > afterMs && r.host !== null && r.host !== host).sort((a, b) => a.sentAt - b.sentAt)[0];
    if (other !== undefined) return other.sentAt + other.rttMs;
    await sleep(50);
  }
  return undefined;
}

/** Copies the three agents' logs to keptLogs/PREFIX/CASE and returns that directory. */
async function keepLogs(context: CampaignContext, lab: EtcdLab, name: string): Promise<string> {
  const dir = join(context.keptLogs, lab.prefix, name.replaceAll(/[^a-z0-9-]+/gi, '-'));
  await mkdir(dir, {recursive: true});
  for (const host of lab.hosts) await copyFile(host.logFile, join(dir, `${host.name}.log`)).catch(() => undefined);
  return dir;
}
