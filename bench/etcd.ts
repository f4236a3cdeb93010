// `npm run bench -- --coordination etcd`: the switchover and failover parts on the etcd lab (cli/lab/etcd-lab.ts:
// three hosts, three etcd members, lease_ttl_s 3), while a client probes the service address. Planned: a switchover
// to the next host and a switchback, each asked of its taker (`baton switchover --to HOST` run there); the longest
// gap between successful responses per switch. Failover: the holder's agent killed (SIGKILL) and its service link
// cut, as a dead host; the time from the kill to the first response from another host, and the longest gap. The
// figures go under etcd.* in the record, and each is printed beside the pair figure that measures the same thing.

import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import type {SwitchResult} from '../agent/control-protocol.js';
import type {CommandRunner} from '../agent/ports.js';
import {callAgent} from '../cli/control-client.js';
import {etcdLabHost, etcdLabUp, setEtcdHostLink, waitForOneHolder, type EtcdLab} from '../cli/lab/etcd-lab.js';
import {labDown, startAgent} from '../cli/lab/lab.js';
import {startServiceProbers} from '../cli/lab/probe-control.js';
import {summarizeStreams} from '../cli/lab/probe-report.js';
import {median, type FigureRecord} from './record.js';

export type Coordination = 'pair' | 'etcd';

/** The parts the etcd bench measures; rest and clients are pair mode's only. */
export const ETCD_BENCH_PARTS = ['switchover', 'failover'] as const;

/**
 * --coordination: pair (the default) or etcd; etcd measures only the switchover and failover parts, in IPv4 (the
 * etcd lab's service address). Returns the problem in words, or the coordination. Pure.
 */
export function parseCoordination(value: string, parts: ReadonlySet<string>, family: string): Coordination | string {
  if (value !== 'pair' && value !== 'etcd') return `--coordination: expected pair or etcd, got ${value}`;
  if (value === 'pair') return value;
  const others = [...parts].filter((part) => !(ETCD_BENCH_PARTS as readonly string[]).includes(part));
  if (others.length > 0) return `--coordination etcd measures the switchover and failover parts, not ${others.join(', ')}: add --only switchover,failover`;
  if (family !== '4') return `--coordination etcd: the etcd lab's service is IPv4 only, got --family ${family}`;
  return value;
}

/** Each etcd figure and the pair figure that measures the same thing, where there is one. */
export function pairFigureOf(etcdId: string): string | undefined {
  const planned = /^etcd\.switchover\.(probe-\d+ms)\.(gap\.median|gap\.max|failed\.total|total\.median|switches)$/.exec(etcdId);
  if (planned !== null) return `switchover.${planned[1] ?? ''}.${planned[2] ?? ''}`;
  // A pair's unplanned figure is the client's gap after a link cut with the default timers: the same thing seen by
  // the same client, the detection being the pair's dead-after against etcd's lease.
  const failover = /^etcd\.failover\.kill\.gap\.(median|min|max)$/.exec(etcdId);
  if (failover !== null) return `failover.defaults.gap.${failover[1] ?? ''}`;
  if (etcdId === 'etcd.failover.kill.runs') return 'failover.defaults.runs';
  return undefined;
}

/** Lines "id  etcd value  pair value (its run)" for `measured`, the pair's from `record`. Pure. */
export function besidePair(measured: Readonly<Record<string, number>>, record: FigureRecord): string[] {
  return Object.entries(measured).map(([id, value]) => {
    const pairId = pairFigureOf(id);
    const pair = pairId === undefined ? undefined : record.figures[pairId];
    const pairText = pairId === undefined ? 'pair mode: no such figure' : pair === undefined ? `pair mode: ${pairId} not recorded`
      : `pair mode ${fmt(pair.value)} (${pairId}, run ${pair.run})`;
    return `  ${id.padEnd(40)} etcd ${fmt(value)}   ${pairText}`;
  });
}

function fmt(n: number): string {
  return (Math.round(n * 10) / 10).toString().padStart(7);
}

export interface EtcdBenchOptions {
  readonly runner: CommandRunner;
  readonly dir: string;
  readonly web: 'nginx' | 'builtin';
  readonly prefix: string;
  readonly parts: ReadonlySet<string>;
  readonly runs: number;
  readonly intervals: readonly number[];
  /** Writes a part's figures (replacing its earlier ones: the prefix given) and prints them beside pair mode's. */
  readonly record: (part: string, replaces: string, measured: Readonly<Record<string, number>>) => Promise<void>;
  readonly say: (line: string) => void;
}

// Settle time around each switch so the window shows the steady state on both sides of it (as the pair's bench).
const MARGIN_MS = 400;
// A switch answers within its confirmation (10 s in the lab) and a few steps; silence this long means its agent is gone.
const SWITCH_TIMEOUT_MS = 60_000;
// The etcd lab settles in well under a second; a busy machine gets far more.
const SETTLE_MS = 20_000;
const FAILOVER_PROBE_MS = 10;
const FAILOVER_TIMEOUT_MS = 50;
// A dead holder's key goes lease_ttl_s (3 s in the lab) after its last renewal; the next host serves within a second
// of that. Waiting far longer bounds a run on a busy machine.
const FAILOVER_WITHIN_MS = 20_000;

export async function benchEtcd(options: EtcdBenchOptions): Promise<void> {
  const say = options.say;
  const lab = await etcdLabUp({runner: options.runner, prefix: options.prefix, baseDir: options.dir, web: options.web,
    progress: (line) => process.stderr.write(`${line}\n`)});
  try {
    say(`baton bench in etcd mode: lab ${lab.prefix}, hosts ${lab.hosts.map((h) => h.name).join(', ')}, etcd ${lab.endpoints.length} members, ` +
      `lease_ttl_s ${lab.leaseTtlS}, ${options.web}`);
    if (options.parts.has('switchover')) await benchSwitches(lab, options);
    if (options.parts.has('failover')) await benchFailovers(lab, options);
  } finally {
    await labDown(options.runner, lab.prefix, options.dir);
  }
}

interface Sample {
  readonly label: string;
  readonly gapMs: number;
  readonly failed: number;
  readonly switchMs: number;
}

async function benchSwitches(lab: EtcdLab, options: EtcdBenchOptions): Promise<void> {
  const names: readonly string[] = lab.hosts.map((h) => h.name);
  for (const intervalMs of options.intervals) {
    const samples: Sample[] = [];
    for (let i = 1; i <= options.runs; i += 1) {
      const first = (await waitForOneHolder(lab, SETTLE_MS)).holder;
      const next = names[(names.indexOf(first) + 1) % names.length] ?? first;
      samples.push(await measuredSwitch(lab, next, intervalMs, options.dir, `e${intervalMs}-over-${i}`));
      await waitForOneHolder(lab, SETTLE_MS);
      samples.push(await measuredSwitch(lab, first, intervalMs, options.dir, `e${intervalMs}-back-${i}`));
    }
    options.say(`\netcd mode, planned switch (switchover --to the next host, then back), probe every ${intervalMs} ms (timeout ${Math.min(200, intervalMs * 4)} ms):`);
    for (const s of samples) options.say(`  ${s.label.padEnd(18)} longest gap ${fmt(s.gapMs)} ms   failed ${String(s.failed).padStart(4)}   switch ${fmt(s.switchMs)} ms`);
    const id = `etcd.switchover.probe-${intervalMs}ms`;
    await options.record('switchover', `${id}.`, {[`${id}.switches`]: samples.length, [`${id}.gap.median`]: median(samples.map((s) => s.gapMs)),
      [`${id}.gap.max`]: Math.max(...samples.map((s) => s.gapMs)), [`${id}.failed.total`]: samples.reduce((n, s) => n + s.failed, 0),
      [`${id}.total.median`]: median(samples.map((s) => s.switchMs))});
  }
}

/** One planned switch to `to`, asked of `to`, while the client probes every `intervalMs`. */
async function measuredSwitch(lab: EtcdLab, to: string, intervalMs: number, dir: string, label: string): Promise<Sample> {
  const prober = await startServiceProbers({urls: [lab.serviceUrl], families: [4]}, {namespace: lab.client.namespace,
    intervalMs, timeoutMs: Math.min(200, intervalMs * 4), durationS: 30, maxProbes: Math.ceil(30_000 / intervalMs), out: () => join(dir, `${label}.jsonl`)});
  try {
    await sleep(MARGIN_MS);
    const from = Date.now();
    const result = await callAgent(etcdLabHost(lab, to).socket, {id: 'bench', type: 'switchover', options: {
      dryRun: false, strict: false, minRequests: 3, confirmTimeoutS: 10, pauseAfter: undefined, to}}, SWITCH_TIMEOUT_MS) as SwitchResult;
    if (result.outcome !== 'done') throw new Error(`${label}: switchover --to ${to} ${result.outcome}: ${result.reason ?? ''}`);
    await sleep(MARGIN_MS);
    const summary = summarizeStreams(await prober.stop(), from - MARGIN_MS, Date.now());
    return {label, gapMs: summary.longestGapMs, failed: summary.failed, switchMs: result.totalMs};
  } finally {
    await prober.stop();
  }
}

async function benchFailovers(lab: EtcdLab, options: EtcdBenchOptions): Promise<void> {
  const served: number[] = [];
  const gaps: number[] = [];
  for (let i = 1; i <= options.runs; i += 1) {
    const holder = etcdLabHost(lab, (await waitForOneHolder(lab, SETTLE_MS)).holder);
    const prober = await startServiceProbers({urls: [lab.serviceUrl], families: [4]}, {namespace: lab.client.namespace,
      intervalMs: FAILOVER_PROBE_MS, timeoutMs: FAILOVER_TIMEOUT_MS, durationS: 30, maxProbes: 3000, out: () => join(options.dir, `etcd-failover-${i}.jsonl`)});
    let killedAt = 0;
    try {
      await sleep(MARGIN_MS);
      killedAt = Date.now();
      process.kill(holder.pid, 'SIGKILL');
      await setEtcdHostLink(holder, false);
      const deadline = killedAt + FAILOVER_WITHIN_MS;
      let first: number | undefined;
      while (first === undefined && Date.now() < deadline) {
        const answer = (await prober.read()).filter((r) => r.ok && r.sentAt > killedAt && r.host !== null && r.host !== holder.name)
          .sort((a, b) => a.sentAt - b.sentAt)[0];
        if (answer !== undefined) first = answer.sentAt + answer.rttMs;
        else await sleep(50);
      }
      if (first === undefined) throw new Error(`etcd failover ${i}: no other host served within ${FAILOVER_WITHIN_MS} ms of killing ${holder.name}`);
      await sleep(MARGIN_MS);
      const summary = summarizeStreams(await prober.stop(), killedAt - MARGIN_MS, Date.now());
      served.push(first - killedAt);
      gaps.push(summary.longestGapMs);
      options.say(`  etcd failover ${i}: ${holder.name} killed, another host served ${fmt(first - killedAt)} ms later, longest gap ${fmt(summary.longestGapMs)} ms`);
    } finally {
      await prober.stop();
      await returnHost(lab, holder.name);
    }
  }
  options.say(`\netcd mode, unplanned failover (the holder's agent killed and its link cut, lease_ttl_s ${lab.leaseTtlS}), probe every ${FAILOVER_PROBE_MS} ms:`);
  const id = 'etcd.failover.kill';
  await options.record('failover', `${id}.`, {[`${id}.runs`]: served.length, [`${id}.served.median`]: median(served),
    [`${id}.served.min`]: Math.min(...served), [`${id}.served.max`]: Math.max(...served),
    [`${id}.gap.median`]: median(gaps), [`${id}.gap.min`]: Math.min(...gaps), [`${id}.gap.max`]: Math.max(...gaps)});
}

/** The dead host back as the drill brings it back: its agent restarted removes the address it left, then its link comes up. */
async function returnHost(lab: EtcdLab, name: string): Promise<void> {
  const host = etcdLabHost(lab, name);
  await startAgent(host);
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const {stdout} = await execa('ip', ['-n', host.namespace, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    if (!stdout.includes(` ${lab.serviceAddress}/`)) break;
    if (Date.now() > deadline) throw new Error(`${name}'s restarted agent did not remove ${lab.serviceAddress} within ${SETTLE_MS} ms`);
    await sleep(20);
  }
  await setEtcdHostLink(host, true);
  await waitForOneHolder(lab, SETTLE_MS);
}
