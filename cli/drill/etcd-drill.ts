// The drill of the etcd lab (`baton lab run --hosts 3 --coordination etcd`): three hosts, one service, a client
// probing it every 10 ms and the kernels' address events of all three hosts recorded throughout. Phases:
//   start       one host holds the service (which, at which epoch); the others stand by for it
//   switchover  `baton switchover --to B` run on B (the next host after the holder): outcome, requests confirmed,
//               the longest time the address was on no host (kernel events), the client's longest gap
//   switchback  the same back to the first holder, run on it
//   failure     the holder's agent killed with SIGKILL and its service link cut (a dead host): how long until
//               another host serves, bounded by the lease's TTL
//   return      the dead host's agent restarted (it removes the address it left) and its link back: it stands by
//   never two holders, judged from the merged kernel address events of the three hosts over the whole drill.
// A phase passes on what happened (outcome, who holds, no overlap); its timing is a figure, with the target beside it
// for information, never a pass or fail.

import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import type {SwitchResult} from '../../agent/control-protocol.js';
import {describeError} from '../../agent/errors.js';
import {callAgent} from '../control-client.js';
import {formatProgress} from '../format.js';
import {judgeHolders, longestUnheld, watchAddress, type AddressHistory, type AddressWatch} from '../lab/address-events.js';
import {startClients} from '../lab/clients-control.js';
import type {ClassSummary, ClientClass, ClientsSummary} from '../lab/clients.js';
import {etcdLabHost, setEtcdHostLink, waitForOneHolder, writeEtcdLab, type EtcdLab} from '../lab/etcd-lab.js';
import {startAgent} from '../lab/lab.js';
import {startServiceProbers, type ServiceProbers} from '../lab/probe-control.js';
import {summarizeProbes, type ProbeRecord} from '../lab/probe-report.js';
import {servesAddress} from '../lab/observe.js';
import {clientsLine} from './report.js';

export type EtcdPhaseName = 'start' | 'switchover' | 'switchback' | 'failure' | 'return' | 'never-two-holders';

export interface EtcdPhaseReport {
  readonly name: EtcdPhaseName;
  readonly title: string;
  /** Correctness only: the outcome, who holds, no overlap. Timings never decide it. */
  readonly ok: boolean;
  readonly startedAtWallMs: number;
  readonly endedAtWallMs: number;
  /** Facts of the phase in words, e.g. "a holds lab at epoch 12; b, c stand by". */
  readonly facts: readonly string[];
  /** The holder after the phase, and its epoch, as its agent says. */
  readonly holder?: string | undefined;
  readonly epoch?: number | undefined;
  /** A switch: its outcome and the requests its taker confirmed. */
  readonly outcome?: string | undefined;
  readonly confirmedRequests?: number | undefined;
  /** The longest time within the phase in which no host's kernel had the address up (ms). */
  readonly unheldMs?: number | undefined;
  /** The client's longest time without a successful response within the phase, its probes and failures. */
  readonly longestGapMs?: number | undefined;
  readonly probes?: number;
  readonly failedProbes?: number;
  /** A failure: from the kill to the first response from another host, as the client saw it (ms). */
  readonly servedAgainMs?: number | undefined;
  /** A target, for information only. */
  readonly target?: string | undefined;
  readonly clients?: Readonly<Record<ClientClass, ClassSummary>> | undefined;
  readonly problem?: string | undefined;
}

export interface EtcdDrillReport {
  readonly title: string;
  readonly ok: boolean;
  readonly lab: {readonly prefix: string; readonly hosts: readonly string[]; readonly etcd: readonly string[]; readonly serviceIp: string;
    readonly leaseTtlS: number};
  readonly probeIntervalMs: number;
  readonly startedAtWallMs: number;
  readonly endedAtWallMs: number;
  readonly phases: readonly EtcdPhaseReport[];
  /** Every overlap the kernel events show (none when the service never had two holders). */
  readonly overlaps: ReadonlyArray<{readonly fromMs: number; readonly toMs: number | undefined; readonly hosts: readonly string[]}>;
  readonly interrupted: string | undefined;
}

export interface EtcdDrillOptions {
  readonly title: string;
  readonly probeIntervalMs: number;
  readonly say: (line: string) => void;
  readonly signal: AbortSignal;
  /** Keep-alive clients, downloads and uploads during each switch (a switch drains them as a pair's does). */
  readonly clients?: boolean;
}

// A switch reports progress at least every second; silence this long means the agent is gone.
const SWITCH_IDLE_TIMEOUT_MS = 60_000;
// The drill's traffic is bounded in time and count, whatever happens to the drill.
const TRAFFIC_MAX_S = 600;
const CLIENTS_MAX_S = 120;
const CLIENT_ARGS = ['--fresh-interval-ms', '0', '--keep-alive', '4', '--keep-alive-interval-ms', '50', '--download-every-ms', '500',
  '--upload-every-ms', '500'];
const CLIENTS_LEAD_MS = 1500;
// Probes on either side of a phase belong to its window, so a gap at its edge is seen.
const WINDOW_MARGIN_MS = 300;
// How long a failover or a return may take before the phase fails: the TTL, the stagger of the hosts, and slack for a busy machine.
const SETTLE_SLACK_MS = 15_000;
// A planned switch's target (information): the pair drill's 60 ms plus two probe intervals.
const PLANNED_GAP_MS = 60;
// A failover's target (information): the TTL, then a poll (250 ms), a stagger (400 ms a host before) and the probe.
const FAILOVER_SLACK_MS = 1000;

export async function runEtcdDrill(lab: EtcdLab, options: EtcdDrillOptions): Promise<EtcdDrillReport> {
  const startedAt = Date.now();
  const say = options.say;
  const phases: EtcdPhaseReport[] = [];
  let interrupted: string | undefined;
  let probers: ServiceProbers | undefined;
  let watch: AddressWatch | undefined;
  let history: AddressHistory | undefined;
  const names: readonly string[] = lab.hosts.map((h) => h.name);

  const phase = async (name: EtcdPhaseName, title: string, work: () => Promise<Partial<EtcdPhaseReport>>): Promise<EtcdPhaseReport> => {
    say(`\n== ${title}`);
    const started = Date.now();
    let result: Partial<EtcdPhaseReport>;
    try {
      result = await work();
    } catch (error) {
      result = {ok: false, problem: describeError(error)};
    }
    const ended = Date.now();
    await sleep(WINDOW_MARGIN_MS);
    const records = (await probers?.read()) ?? [];
    const inWindow = records.filter((r) => r.sentAt >= started - WINDOW_MARGIN_MS && r.sentAt <= ended + WINDOW_MARGIN_MS);
    const summary = inWindow.length === 0 ? undefined : summarizeProbes(records, started - WINDOW_MARGIN_MS, ended + WINDOW_MARGIN_MS);
    const report: EtcdPhaseReport = {
      name, title, ok: result.ok ?? true, startedAtWallMs: started, endedAtWallMs: ended, facts: result.facts ?? [], ...result,
      longestGapMs: summary?.longestGapMs, probes: summary?.probes ?? 0, failedProbes: summary?.failed ?? 0,
    };
    say(`   ${report.ok ? 'ok' : 'FAILED'}${summary === undefined ? '' : `: client's longest gap ${Math.round(summary.longestGapMs)} ms, ` +
      `${summary.failed} of ${summary.probes} probes failed`}${report.problem === undefined ? '' : `; ${report.problem}`}`);
    phases.push(report);
    return report;
  };
  const stopped = (): boolean => {
    if (options.signal.aborted && interrupted === undefined) interrupted = 'stopped by the operator (Ctrl-C)';
    return options.signal.aborted;
  };

  const switchTo = async (to: string): Promise<Partial<EtcdPhaseReport>> => {
    const clients = options.clients === true ? await startClients({namespace: lab.client.namespace, url: lab.serviceUrl, durationS: CLIENTS_MAX_S,
      out: join(lab.dir, `drill-clients-${to}-${Date.now()}.json`), args: CLIENT_ARGS}).catch((error: unknown) => {
      say(`   (no keep-alive clients, downloads or uploads this time: ${describeError(error)})`);
      return undefined;
    }) : undefined;
    if (clients !== undefined) await sleep(CLIENTS_LEAD_MS);
    let summary: ClientsSummary | undefined;
    let result: SwitchResult;
    try {
      say(`   baton switchover --to ${to}, run on ${to}`);
      result = await callAgent(etcdLabHost(lab, to).socket, {id: 'drill', type: 'switchover', options: {
        dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined, to,
      }}, SWITCH_IDLE_TIMEOUT_MS, (progress) => say(formatProgress(progress).replace(/\n$/, ''))) as SwitchResult;
    } finally {
      summary = await clients?.stop().catch(() => undefined);
    }
    const settled = await waitForOneHolder(lab, SETTLE_SLACK_MS);
    const facts = [`outcome ${result.outcome} in ${result.totalMs} ms, ${result.confirmedRequests ?? 0} request(s) confirmed in ${to}'s access log`,
      `${settled.holder} holds the service at epoch ${settled.epoch}; ${settled.standing.join(', ')} stand by`];
    const common = {facts, holder: settled.holder, epoch: settled.epoch, outcome: result.outcome, confirmedRequests: result.confirmedRequests,
      clients: summary?.classes, target: `client's longest gap <= ${PLANNED_GAP_MS + 2 * options.probeIntervalMs} ms (60 ms plus two probe intervals)`};
    if (result.outcome !== 'done') return {...common, ok: false, problem: `rolled back at ${result.failedStep ?? '?'}: ${result.reason ?? 'no reason given'}`};
    if (settled.holder !== to) return {...common, ok: false, problem: `the switch said done, but ${settled.holder} holds the service`};
    return {...common, ok: true};
  };

  const unheldWindows = new Map<EtcdPhaseReport, readonly [number, number]>();
  try {
    watch = await watchAddress(lab.hosts.map((h) => ({name: h.name, namespace: h.namespace})), 'eth0', [lab.serviceAddress]);
    probers = await startServiceProbers({urls: [lab.serviceUrl], families: [4]}, {
      namespace: lab.client.namespace, intervalMs: options.probeIntervalMs, timeoutMs: Math.min(200, options.probeIntervalMs * 10),
      durationS: TRAFFIC_MAX_S, maxProbes: Math.ceil(TRAFFIC_MAX_S * 1000 / options.probeIntervalMs), out: () => join(lab.dir, 'drill-probes.jsonl'),
    });
    say(`client probing ${lab.serviceUrl} every ${options.probeIntervalMs} ms; kernel address events recorded on ${names.join(', ')}`);
    await sleep(2 * WINDOW_MARGIN_MS);

    const start = await phase('start', 'start: one host holds the service, the others stand by', async () => {
      const settled = await waitForOneHolder(lab, SETTLE_SLACK_MS);
      const serving = await kernelHolders(lab);
      const facts = [`${settled.holder} holds the service at epoch ${settled.epoch}; ${settled.standing.join(', ')} stand by`,
        `the kernels have ${lab.serviceAddress} up on: ${serving.join(', ') || 'no host'}`];
      if (serving.length !== 1 || serving[0] !== settled.holder) return {ok: false, facts, problem: `the agents say ${settled.holder} holds it, the kernels say ${serving.join('+') || 'nobody'}`};
      return {ok: true, facts, holder: settled.holder, epoch: settled.epoch};
    });
    const first = start.holder;
    if (start.ok && first !== undefined && !stopped()) {
      const next = names[(names.indexOf(first) + 1) % names.length] ?? first;
      const over = await phase('switchover', `planned switchover: baton switchover --to ${next}, run on ${next}`, () => switchTo(next));
      unheldWindows.set(over, windowOf(over));
      if (over.ok && !stopped()) {
        const back = await phase('switchback', `switchback: baton switchover --to ${first}, run on ${first}`, () => switchTo(first));
        unheldWindows.set(back, windowOf(back));
        if (back.ok && !stopped()) {
          const dead = etcdLabHost(lab, first);
          const failure = await phase('failure', `the holder's failure: ${first}'s agent killed (SIGKILL) and its service link cut`, async () => {
            const killedAt = Date.now();
            process.kill(dead.pid, 'SIGKILL');
            await setEtcdHostLink(dead, false);
            say(`   ${first}: agent (pid ${dead.pid}) killed, eth0 down`);
            const served = await firstServedBy(probers, killedAt, (host) => host !== first, lab.leaseTtlS * 1000 + SETTLE_SLACK_MS, options.signal);
            const others = lab.hosts.filter((h) => h.name !== first);
            const settled = await waitForOneHolder(lab, SETTLE_SLACK_MS, others);
            const facts = [`${served === undefined ? 'no host' : served.host} served the client ${served === undefined ? '' : `${Math.round(served.atMs - killedAt)} ms after the kill`}`,
              `${settled.holder} holds the service at epoch ${settled.epoch}; ${settled.standing.join(', ')} stand${settled.standing.length === 1 ? 's' : ''} by`];
            const target = `served again within lease_ttl_s ${lab.leaseTtlS} s + ${FAILOVER_SLACK_MS} ms`;
            if (served === undefined) return {ok: false, facts, target, problem: 'no other host served the client'};
            return {ok: true, facts, target, holder: settled.holder, epoch: settled.epoch, servedAgainMs: served.atMs - killedAt};
          });
          unheldWindows.set(failure, windowOf(failure));
          if (!stopped()) {
            await phase('return', `the dead host returns: ${first}'s agent restarted, its link up; it stands by`, async () => {
              await startAgent(dead);
              await writeEtcdLab(lab);
              // The agent removes the address its predecessor left before anything else; only then may the link come up.
              const deadline = Date.now() + SETTLE_SLACK_MS;
              while (await servesAddressBehindLink(dead.namespace, lab.serviceAddress)) {
                if (Date.now() > deadline) return {ok: false, problem: `${first}'s restarted agent did not remove ${lab.serviceAddress} within ${SETTLE_SLACK_MS} ms`};
                await sleep(20);
              }
              await setEtcdHostLink(dead, true);
              const settled = await waitForOneHolder(lab, SETTLE_SLACK_MS);
              const facts = [`${first}'s agent restarted (pid ${dead.pid}) removed the address it had left, then its link came up`,
                `${settled.holder} holds the service at epoch ${settled.epoch}; ${settled.standing.join(', ')} stand by (no preemption)`];
              return {ok: settled.holder !== first, facts, holder: settled.holder, epoch: settled.epoch,
                ...(settled.holder === first ? {problem: `${first} took the service back on its return`} : {})};
            });
          }
        }
      }
    }
  } catch (error) {
    phases.push({name: 'start', title: 'the drill could not run', ok: false, startedAtWallMs: startedAt, endedAtWallMs: Date.now(), facts: [],
      problem: describeError(error)});
  } finally {
    stopped();
    await probers?.stop().catch(() => undefined);
    history = await watch?.stop().catch(() => undefined);
  }
  const judged = phases.map((p) => {
    const window = unheldWindows.get(p);
    return history === undefined || window === undefined ? p : {...p, unheldMs: longestUnheld(history, window[0], window[1])};
  });
  const holders = history === undefined ? undefined : judgeHolders(history);
  const never: EtcdPhaseReport = {
    name: 'never-two-holders', title: 'never two holders: the three hosts\' kernel address events, merged', startedAtWallMs: startedAt,
    endedAtWallMs: Date.now(), ok: holders !== undefined && holders.overlaps.length === 0,
    facts: holders === undefined ? [] : [`${history?.events.length ?? 0} address and link events; at the end ${holders.final.join(', ') || 'no host'} held the service`,
      holders.overlaps.length === 0 ? 'no moment with the address up on two hosts' : holders.overlaps.map((o) =>
        `${o.hosts.join(' and ')} both held it from ${new Date(o.fromMs).toISOString()} for ${o.toMs === undefined ? 'the rest of the drill' : `${(o.toMs - o.fromMs).toFixed(1)} ms`}`).join('; ')],
    problem: holders === undefined ? 'the kernel address events could not be read' : holders.overlaps.length === 0 ? undefined : 'two hosts held the address at once',
  };
  say(`\n== ${never.title}\n   ${never.ok ? 'ok' : 'FAILED'}: ${never.facts.join('; ')}`);
  const all = [...judged, never];
  return {
    title: options.title, ok: interrupted === undefined && all.every((p) => p.ok),
    lab: {prefix: lab.prefix, hosts: names, etcd: lab.endpoints, serviceIp: lab.serviceIp, leaseTtlS: lab.leaseTtlS},
    probeIntervalMs: options.probeIntervalMs, startedAtWallMs: startedAt, endedAtWallMs: Date.now(), phases: all,
    overlaps: holders?.overlaps ?? [], interrupted,
  };
}

function windowOf(phase: EtcdPhaseReport): readonly [number, number] {
  return [phase.startedAtWallMs, phase.endedAtWallMs];
}

/** The hosts whose kernel has the service address up on eth0 with the link up. */
async function kernelHolders(lab: EtcdLab): Promise<string[]> {
  const up = await Promise.all(lab.hosts.map((h) => servesAddress(h, 'eth0', lab.serviceAddress)));
  return lab.hosts.filter((_, i) => up[i]).map((h) => h.name);
}

/** Whether the address is on eth0 in `namespace`, whatever the link's state. */
async function servesAddressBehindLink(namespace: string, address: string): Promise<boolean> {
  const {stdout} = await execa('ip', ['-n', namespace, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], {timeout: 10_000});
  return stdout.split('\n').some((line) => line.includes(` ${address}/`));
}

/** The first successful probe sent after `after` and answered by a host `which` accepts: who, and when it was answered. */
async function firstServedBy(probers: ServiceProbers | undefined, after: number, which: (host: string) => boolean, withinMs: number,
  signal: AbortSignal): Promise<{host: string; atMs: number} | undefined> {
  const deadline = Date.now() + withinMs;
  while (probers !== undefined && Date.now() < deadline && !signal.aborted) {
    const found = (await probers.read()).filter((r: ProbeRecord) => r.ok && r.sentAt > after && r.host !== null && which(r.host))
      .sort((a, b) => a.sentAt - b.sentAt)[0];
    if (found?.host != null) return {host: found.host, atMs: found.sentAt + found.rttMs};
    await sleep(50);
  }
  return undefined;
}

export function formatEtcdDrillReport(report: EtcdDrillReport): string {
  const lines: string[] = [];
  lines.push(`${report.title}: ${report.ok ? 'PASSED' : 'FAILED'}${report.interrupted === undefined ? '' : ` (interrupted: ${report.interrupted})`}`);
  lines.push(`  lab ${report.lab.prefix}: hosts ${report.lab.hosts.join(', ')} in etcd mode, etcd ${report.lab.etcd.join(', ')}, ` +
    `service IP ${report.lab.serviceIp}, lease_ttl_s ${report.lab.leaseTtlS} (the lab's; 10 by default); client probing every ${report.probeIntervalMs} ms`);
  lines.push('');
  lines.push('  phase              result  unheld (kernel)  client gap  failed probes  holder (epoch)');
  for (const phase of report.phases) {
    const ms = (value: number | undefined): string => (value === undefined ? '-' : `${Math.round(value)} ms`);
    const holder = phase.holder === undefined ? '' : `${phase.holder}${phase.epoch === undefined ? '' : ` (${phase.epoch})`}`;
    lines.push(`  ${phase.name.padEnd(18)} ${(phase.ok ? 'PASS' : 'FAIL').padEnd(7)} ${ms(phase.unheldMs).padStart(15)}  ${ms(phase.longestGapMs).padStart(10)}  ` +
      `${String(phase.failedProbes ?? '-').padStart(13)}  ${holder}`);
  }
  for (const phase of report.phases) {
    lines.push('');
    lines.push(`  ${phase.title} (${phase.ok ? 'PASS' : 'FAIL'}, ${((phase.endedAtWallMs - phase.startedAtWallMs) / 1000).toFixed(1)} s)`);
    for (const fact of phase.facts) lines.push(`    ${fact}`);
    if (phase.unheldMs !== undefined) lines.push(`    the address was on no host for at most ${phase.unheldMs.toFixed(1)} ms (kernel address events)`);
    if (phase.longestGapMs !== undefined && phase.name !== 'never-two-holders') {
      lines.push(`    the client's longest gap ${Math.round(phase.longestGapMs)} ms, ${phase.failedProbes ?? 0} of ${phase.probes ?? 0} probes failed`);
    }
    if (phase.servedAgainMs !== undefined) lines.push(`    served again ${Math.round(phase.servedAgainMs)} ms after the kill`);
    if (phase.target !== undefined) lines.push(`    target (information): ${phase.target}`);
    if (phase.clients !== undefined) lines.push(`    ${clientsLine(phase.clients)}`);
    if (phase.problem !== undefined) lines.push(`    problem: ${phase.problem}`);
  }
  return `${lines.join('\n')}\n`;
}
