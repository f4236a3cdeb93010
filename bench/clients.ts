// Planned switches as real clients see them: the client classes of cli/lab/clients.ts at once (a new connection
// per request, keep-alive connections, downloads and uploads in flight) while the service IP moves back and forth,
// with the lab's real nginx; once at idle and once with both cores busy. Each condition is measured twice: moved by
// the agents (the switch with its drain) and moved by hand without agents (the runbook: ip addr del on the giver,
// ip addr add and arping -U / -A on the taker, back to back from this process), which is the reference.
//
// Per move: the requests that failed (by when they failed: a failure belongs to the last move that started before
// it), the longest time between two successful completions per class around the move, the "unowned window" from the
// kernels' own address events (the giver's address-removed on eth0 to the taker's address-added on eth0), and for
// the agents the drain and the switch total from the SwitchResult. Figures, not pass/fail: the targets are printed
// beside them.

import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {describeError} from '../agent/errors.js';
import type {DrainSummary, SwitchResult} from '../agent/control-protocol.js';
import type {CommandRunner} from '../agent/ports.js';
import type {Role} from '../agent/state-machine.js';
import {callAgent} from '../cli/control-client.js';
import {judgeHolders, watchServiceAddress, type AddressHistory} from '../cli/lab/address-events.js';
import {CLIENT_CLASSES, type ClientClass, type ClientRecord, type ClientsSummary} from '../cli/lab/clients.js';
import {readClientRecords, startClients, type RunningClients} from '../cli/lab/clients-control.js';
import {longestUnanswered, proberStalls} from '../cli/lab/probe-report.js';
import {labDown, labUp, signalAgent, waitForSettledPair, LAB_SERVICE_IP, type Lab} from '../cli/lab/lab.js';
import {servesAddress} from '../cli/lab/observe.js';
import {SERVICE_LAN} from '../cli/lab/topology-plan.js';
import {startCpuHog, type CpuHog} from './cpu-hog.js';
import {median} from './record.js';

export type Condition = 'idle' | 'loaded';
export type Mover = 'baton' | 'hand';

export interface ClientsBenchOptions {
  readonly runner: CommandRunner;
  /** Labs and client files go under it. */
  readonly dir: string;
  /** Switchovers and as many switchbacks per run. */
  readonly roundTrips: number;
  readonly conditions: readonly Condition[];
  /** A fresh lab prefix for each lab. */
  readonly newPrefix: () => string;
  /** Set when the bench is asked to stop: the run ends before its next move, and its lab is removed. */
  readonly interrupted: () => boolean;
  readonly say: (line: string) => void;
  /** Each condition's figures once its two runs are done, by id (bench/record.ts): clients.CONDITION.MOVER.…. */
  readonly onFigures?: (condition: Condition, figures: Readonly<Record<string, number>>) => Promise<void>;
}

interface Move {
  readonly giver: Role;
  readonly taker: Role;
  /** Wall-clock ms: the switch request sent / the first `ip` started. */
  readonly startAt: number;
  /** Wall-clock ms: the switch result back / the last arping ended. */
  readonly endAt: number;
  /** The SwitchResult's totalMs, or the hand move's del + add + arping. */
  readonly totalMs: number;
  /** 'done', or the switch's other outcome. */
  readonly outcome: string;
  readonly drain: DrainSummary | undefined;
  readonly notes: readonly string[];
  /** The agents' switch: each step's time as the coordinator reported it, ms. */
  readonly steps: Readonly<Record<string, number>>;
}

interface Run {
  readonly condition: Condition;
  readonly mover: Mover;
  readonly moves: readonly Move[];
  /** Switch requests the agents answered with an error (nothing moved); each was asked again. */
  readonly refusals: readonly string[];
  /** Why the run stopped before its last move, when it did. */
  readonly endedEarly: string | undefined;
  readonly records: readonly ClientRecord[];
  readonly summaries: readonly ClientsSummary[];
  readonly history: AddressHistory;
  /** Loaded runs: whether both busy loops lasted the whole run. */
  readonly hogHeld: boolean | undefined;
  readonly wallMs: number;
}

// The issue's clients: a new connection per request every 20 ms (200 ms timeout); 4 keep-alive connections, a
// request every 20 ms each; a 1 MiB download and a 1 MiB upload (256 KiB/s, so 4 s) each started every 500 ms,
// overlapping.
const CLIENT_ARGS = ['--fresh-interval-ms', '20', '--fresh-timeout-ms', '200', '--keep-alive', '4', '--keep-alive-interval-ms', '20',
  '--download-every-ms', '500', '--upload-every-ms', '500'];
export const CLIENTS_TEXT = 'a new connection per request every 20 ms (timeout 200 ms); 4 keep-alive connections, a request every 20 ms each; ' +
  'a 1 MiB download and a 1 MiB upload at 256 KiB/s each started every 500 ms';
// clients.js runs at most 600 s and starts at most 1000 downloads and 1000 uploads (500 s of each): a run longer
// than a segment gets a new clients process between two moves once the current one is this old.
const SEGMENT_S = 480;
const ROTATE_AFTER_MS = 360_000;
// A transfer lasts 4 s: after this long ~8 downloads and ~8 uploads are in flight, as at every later move.
const WARMUP_MS = 4500;
// Each move starts at least this long after the previous one started (the same steady state of transfers in flight
// before every move, whoever moves the IP) and this long after it ended.
const MIN_SPACING_MS = 4500;
const SETTLE_MS = 400;
// A refused switch is asked again after the pair settled and this pause, at most this many times per move.
const REFUSED_RETRY_MS = 2000;
const MAX_SWITCH_ATTEMPTS = 10;
// The window a move's longest gaps are measured in: from a little before it starts to a while after it ends.
const GAP_BEFORE_MS = 400;
const GAP_AFTER_MS = 1000;
// A move's kernel events: from just before its start to this long after its end.
const EVENTS_AFTER_MS = 1000;
// arping -c 1 sends at once and then idles its 1 s interval: it is interrupted after this long.
const ARPING_INTERRUPT_MS = 200;
// The busy loops outlive any run by far, and end by themselves if this process is killed.
const HOG_BOUND_S = 1800;
// A transfer takes 4 s at the lab's rate; one that took this long stalled on the way.
const STALLED_TRANSFER_MS = 6000;
const MAX_NOTES = 12;
const CLASSES = CLIENT_CLASSES;
const TRANSFERS: readonly ClientClass[] = ['downloads', 'uploads'];
const CLASS_TEXT: Readonly<Record<ClientClass, string>> = {fresh: 'new connection', keepAlive: 'keep-alive', downloads: 'download', uploads: 'upload'};

/** Runs every condition with the agents and by hand, printing a table per condition. */
export async function benchClients(options: ClientsBenchOptions): Promise<void> {
  const moves = options.roundTrips * 2;
  console.log(`\nplanned switches with ${CLASSES.length} client classes at once (nginx, keep-alive on): ${options.roundTrips} round trips ` +
    `(${moves} moves) per run; clients: ${CLIENTS_TEXT}`);
  for (const condition of options.conditions) {
    const runs: Run[] = [];
    for (const mover of ['baton', 'hand'] as const) runs.push(await measureRun(options, condition, mover));
    printCondition(condition, runs[0] as Run, runs[1] as Run);
    await options.onFigures?.(condition, {
      ...recordedFigures(`clients.${condition}.baton`, runs[0] as Run),
      ...recordedFigures(`clients.${condition}.hand`, runs[1] as Run),
    });
  }
}

/** A run's figures as the record keeps them (bench/record.ts): what the docs quote, under `prefix`. */
function recordedFigures(prefix: string, run: Run): Record<string, number> {
  const f = figures(run);
  const max = (values: readonly number[]): number => (values.length === 0 ? Number.NaN : Math.max(...values));
  const out: Record<string, number> = {[`${prefix}.moves`]: run.moves.length};
  for (const kind of CLASSES) {
    out[`${prefix}.failed.${kind}`] = f.failed[kind].total;
    out[`${prefix}.gap.${kind}.median`] = quantile(f.gaps[kind], 0.5) ?? Number.NaN;
    out[`${prefix}.gap.${kind}.max`] = max(f.gaps[kind]);
  }
  out[`${prefix}.unowned.median`] = quantile(f.unowned.values, 0.5) ?? Number.NaN;
  out[`${prefix}.unowned.p99`] = quantile(f.unowned.values, 0.99) ?? Number.NaN;
  out[`${prefix}.unowned.max`] = max(f.unowned.values);
  out[`${prefix}.drain.median`] = quantile(f.drainMs, 0.5) ?? Number.NaN;
  out[`${prefix}.drain.max`] = max(f.drainMs);
  out[`${prefix}.total.median`] = quantile(f.totalMs, 0.5) ?? Number.NaN;
  return out;
}

async function measureRun(options: ClientsBenchOptions, condition: Condition, mover: Mover): Promise<Run> {
  const started = Date.now();
  const prefix = options.newPrefix();
  const label = `${condition}-${mover}`;
  const filesDir = join(options.dir, `clients-${label}-${prefix}`);
  await mkdir(filesDir, {recursive: true});
  options.say(`  ${label}: lab ${prefix} ...`);
  const lab = await labUp({runner: options.runner, prefix, baseDir: options.dir, web: 'nginx'});
  let hog: CpuHog | undefined;
  let clients: RunningClients | undefined;
  let watch: Awaited<ReturnType<typeof watchServiceAddress>> | undefined;
  try {
    await waitForSettledPair(lab, 20_000);
    if (mover === 'hand') await stopAgents(lab);
    if (condition === 'loaded') hog = await startCpuHog(2, HOG_BOUND_S);
    watch = await watchServiceAddress(lab);
    const summaries: ClientsSummary[] = [];
    const records: ClientRecord[] = [];
    let segment = 0;
    let segmentStarted = 0;
    const startSegment = async (): Promise<RunningClients> => {
      segment += 1;
      const running = await startClients({
        namespace: lab.client.namespace, url: `http://${SERVICE_LAN.serviceAddress}/`, durationS: SEGMENT_S,
        out: join(filesDir, `summary-${segment}.json`), records: join(filesDir, `records-${segment}.jsonl`),
        args: [...CLIENT_ARGS, ...['--max-downloads', '--max-uploads'].flatMap((option) => [option, String(Math.ceil(SEGMENT_S * 2) + 1)])],
      });
      segmentStarted = Date.now();
      await sleep(WARMUP_MS);
      return running;
    };
    const endSegment = async (running: RunningClients): Promise<void> => {
      summaries.push(await running.stop());
      records.push(...await readClientRecords(join(filesDir, `records-${segment}.jsonl`)));
    };
    clients = await startSegment();
    const moves: Move[] = [];
    const refusals: string[] = [];
    let endedEarly: string | undefined;
    let holder: Role = 'primary';
    for (let i = 0; i < options.roundTrips * 2; i += 1) {
      if (options.interrupted()) throw new Error('interrupted');
      const previous = moves.at(-1);
      if (Date.now() - segmentStarted > ROTATE_AFTER_MS) {
        // The previous move's gap window must close before its clients stop, or the pause between the two clients
        // processes would count as its longest gap.
        if (previous !== undefined) await sleep(Math.max(0, previous.endAt + GAP_AFTER_MS + SETTLE_MS - Date.now()));
        const old = clients;
        clients = undefined;
        await endSegment(old);
        clients = await startSegment();
      }
      if (previous !== undefined) {
        const wait = Math.max(previous.startAt + MIN_SPACING_MS, previous.endAt + SETTLE_MS) - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const taker: Role = holder === 'primary' ? 'backup' : 'primary';
      let move: Move | undefined;
      for (let attempt = 1; move === undefined; attempt += 1) {
        if (mover === 'hand') {
          move = await handMove(lab, holder, taker);
          break;
        }
        try {
          move = await batonMove(lab, holder, taker);
        } catch (error) {
          // A switch the agents refuse (e.g. a peer whose beacons came late on a busy machine) changed nothing: it is
          // counted, and asked again once the pair has settled.
          refusals.push(`move ${i + 1} (${holder} -> ${taker}), attempt ${attempt}: ${describeError(error)}`);
          if (attempt >= MAX_SWITCH_ATTEMPTS) break;
          await waitForSettledPair(lab, 20_000);
          await sleep(REFUSED_RETRY_MS);
        }
      }
      if (move === undefined) {
        // The figures of the moves made so far are still worth printing; the table says the run was cut short.
        endedEarly = `move ${i + 1} was refused ${MAX_SWITCH_ATTEMPTS} times in a row; the run ended after ${moves.length} moves`;
        options.say(`  ${label}: ${endedEarly}`);
        break;
      }
      moves.push(move);
      if (mover === 'baton') {
        const status = await waitForSettledPair(lab, 20_000);
        holder = status.primary.self.holdsIp === true ? 'primary' : 'backup';
      } else {
        holder = taker;
      }
      if ((i + 1) % 10 === 0) options.say(`  ${label}: ${i + 1} moves`);
    }
    await sleep(GAP_AFTER_MS + SETTLE_MS);
    const last = clients;
    clients = undefined;
    await endSegment(last);
    const history = await watch.stop();
    watch = undefined;
    const hogHeld = hog === undefined ? undefined : hog.allAlive();
    return {condition, mover, moves, refusals, endedEarly, records, summaries, history, hogHeld, wallMs: Date.now() - started};
  } finally {
    await clients?.stop().catch(() => undefined);
    await watch?.stop().catch(() => undefined);
    await hog?.stop();
    await labDown(options.runner, lab.prefix, options.dir);
  }
}

/** The hand-run reference has no agents: both stop (on_stop: keep), the address stays where it is. */
async function stopAgents(lab: Lab): Promise<void> {
  await signalAgent(lab.hosts.backup, 'SIGTERM');
  await signalAgent(lab.hosts.primary, 'SIGTERM');
  if (!await servesAddress(lab.hosts.primary) || await servesAddress(lab.hosts.backup)) {
    throw new Error(`lab ${lab.prefix}: after the agents stopped, the primary should hold ${LAB_SERVICE_IP} alone`);
  }
}

async function batonMove(lab: Lab, giver: Role, taker: Role): Promise<Move> {
  const steps: Record<string, number> = {};
  const startAt = Date.now();
  const result = await callAgent(lab.hosts[giver].socket, {id: 'bench', type: 'switchover',
    options: {dryRun: false, strict: false, minRequests: 3, confirmTimeoutS: 10, pauseAfter: undefined}}, 120_000, (progress) => {
    if (progress.kind === 'step' && progress.action === 'apply' && progress.status === 'ok') steps[progress.step] = progress.elapsedMs;
  }) as SwitchResult;
  const endAt = Date.now();
  const notes: string[] = [];
  if (result.outcome !== 'done') notes.push(`${result.outcome}: ${result.reason ?? ''}`);
  if (result.drain === undefined && result.outcome === 'done') notes.push('the switch reported no drain');
  return {giver, taker, startAt, endAt, totalMs: result.totalMs, outcome: result.outcome, drain: result.drain, notes, steps};
}

async function handMove(lab: Lab, giver: Role, taker: Role): Promise<Move> {
  const notes: string[] = [];
  const startAt = Date.now();
  await execa('ip', ['-n', lab.hosts[giver].namespace, 'addr', 'del', LAB_SERVICE_IP, 'dev', 'eth0']);
  await execa('ip', ['-n', lab.hosts[taker].namespace, 'addr', 'add', LAB_SERVICE_IP, 'dev', 'eth0']);
  await Promise.all((['-U', '-A'] as const).map(async (form) => {
    const arping = execa('ip', ['netns', 'exec', lab.hosts[taker].namespace, 'arping', form, '-c', '1', '-I', 'eth0', SERVICE_LAN.serviceAddress],
      {reject: false, timeout: 10_000});
    const interrupt = setTimeout(() => arping.kill('SIGINT'), ARPING_INTERRUPT_MS);
    const result = await arping;
    clearTimeout(interrupt);
    if (!/Sent [1-9]\d* probe/.test(String(result.stdout))) notes.push(`arping ${form} sent nothing: ${String(result.stdout).trim()} ${String(result.stderr).trim()}`);
  }));
  const endAt = Date.now();
  return {giver, taker, startAt, endAt, totalMs: endAt - startAt, outcome: 'done', drain: undefined, notes, steps: {}};
}

// ---- figures ----

interface Figures {
  /** Per class: failures in total, and per move. */
  readonly failed: Readonly<Record<ClientClass, {total: number; perMove: number[]; between: number}>>;
  /** Per transfer class, those that completed, but far slower than their 4 s: stalled at a move and resumed (e.g.
   *  when the IP came back to their host by hand a move later). */
  readonly stalled: Readonly<Partial<Record<ClientClass, number>>>;
  readonly requests: Readonly<Record<ClientClass, {attempts: number; ok: number}>>;
  /** Per class, the longest gap in each move's window. */
  readonly gaps: Readonly<Record<ClientClass, number[]>>;
  /** Per move with both events; missing: moves where one of them was not seen. */
  readonly unowned: {values: number[]; missing: number};
  readonly drainMs: number[];
  readonly totalMs: number[];
  readonly errors: Readonly<Record<ClientClass, Map<string, number>>>;
  readonly overlaps: number;
  readonly notes: string[];
}

function figures(run: Run): Figures {
  const stalled: Partial<Record<ClientClass, number>> = {};
  const failed = {} as Record<ClientClass, {total: number; perMove: number[]; between: number}>;
  const requests = {} as Record<ClientClass, {attempts: number; ok: number}>;
  const gaps = {} as Record<ClientClass, number[]>;
  const errors = {} as Record<ClientClass, Map<string, number>>;
  // New connections go out on a fixed schedule, so a hole in their sends is the clients' process not running (a
  // busy host), not the service: it is left out of every class's gap, as the drill's probe report does.
  const windows = run.moves.map((m) => ({from: m.startAt - GAP_BEFORE_MS, to: m.endAt + GAP_AFTER_MS}));
  const freshSends = run.records.filter((r) => r.class === 'fresh').map((r) => r.sentAt).sort((x, y) => x - y);
  const stalls = windows.map(({from, to}) => proberStalls(freshSends.filter((at) => at >= from && at <= to)));
  for (const kind of CLASSES) {
    const mine = run.records.filter((r) => r.class === kind);
    const perMove = run.moves.map(() => 0);
    let between = 0;
    const reasons = new Map<string, number>();
    for (const record of mine.filter((r) => !r.ok)) {
      // A failure belongs to the first move that was under way while the request was (a download that hangs at a
      // move fails at its timeout, moves later); one that overlaps no move failed between moves.
      const index = run.moves.findIndex((m) => m.startAt <= record.sentAt + record.rttMs && m.endAt + GAP_AFTER_MS >= record.sentAt);
      if (index < 0) between += 1;
      else perMove[index] = (perMove[index] ?? 0) + 1;
      const reason = (record.error ?? '?').replace(/\d+ of \d+ bytes/, 'short body');
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    failed[kind] = {total: mine.filter((r) => !r.ok).length, perMove, between};
    if (TRANSFERS.includes(kind)) stalled[kind] = mine.filter((r) => r.ok && r.rttMs > STALLED_TRANSFER_MS).length;
    requests[kind] = {attempts: mine.length, ok: mine.filter((r) => r.ok).length};
    errors[kind] = reasons;
    const completions = mine.filter((r) => r.ok).map((r) => r.sentAt + r.rttMs).sort((x, y) => x - y);
    gaps[kind] = windows.map(({from, to}, i) => longestUnanswered(completions, from, to, stalls[i]));
  }
  const unowned: number[] = [];
  let missing = 0;
  for (const move of run.moves) {
    const inMove = run.history.events.filter((e) => e.atMs >= move.startAt - 50 && e.atMs <= move.endAt + EVENTS_AFTER_MS);
    const removed = inMove.find((e) => e.host === move.giver && e.change === 'address-removed');
    const added = inMove.find((e) => e.host === move.taker && e.change === 'address-added');
    if (removed === undefined || added === undefined) missing += 1;
    else unowned.push(added.atMs - removed.atMs);
  }
  const notes = [...(run.endedEarly === undefined ? [] : [`RUN CUT SHORT: ${run.endedEarly}`]), ...run.refusals.map((r) => `switch refused, asked again: ${r}`), ...run.moves.flatMap((m, i) => {
    const drain = m.drain === undefined ? [] : [
      ...((m.drain.left ?? 1) > 0 ? [`the drain ended after ${m.drain.ms} ms with ${String(m.drain.left)} connection(s) left`] : []),
      ...m.drain.problems.map((problem) => `drain problem: ${problem}`),
    ];
    return [...m.notes, ...drain].map((n) => `move ${i + 1} (${m.giver} -> ${m.taker}): ${n}`);
  })];
  const counted = run.summaries.reduce((n, s) => n + CLASSES.reduce((k, c) => k + s.classes[c].attempts, 0), 0);
  if (counted !== run.records.length) notes.push(`the clients counted ${counted} requests but recorded ${run.records.length}`);
  const longestStall = Math.max(0, ...stalls.flat().map(([from, to]) => to - from));
  if (longestStall > 0) notes.push(`the clients' process stalled for up to ${Math.round(longestStall)} ms around a move (left out of the gaps)`);
  if (run.hogHeld === false) notes.push('a busy loop of the CPU hog ended before the run did: part of this run was not loaded');
  return {
    failed, stalled, requests, gaps, errors, unowned: {values: unowned, missing},
    drainMs: run.moves.flatMap((m) => (m.drain === undefined ? [] : [m.drain.ms])),
    totalMs: run.moves.map((m) => m.totalMs),
    overlaps: judgeHolders(run.history).overlaps.length,
    notes,
  };
}

/** Where the longest new-connection gap of a move ended (wall-clock ms). */
function longestGapAt(run: Run, index: number): number {
  const move = run.moves[index];
  if (move === undefined) return 0;
  const completions = run.records.filter((r) => r.class === 'fresh' && r.ok).map((r) => r.sentAt + r.rttMs).sort((x, y) => x - y);
  const from = move.startAt - GAP_BEFORE_MS;
  const to = move.endAt + GAP_AFTER_MS;
  let best = {gap: -1, at: from};
  let previous = from;
  for (const at of [...completions.filter((c) => c >= from && c <= to), to]) {
    if (at - previous > best.gap) best = {gap: at - previous, at};
    previous = at;
  }
  return best.at;
}

function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  if (q === 0.5) return median(values);
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: with 40 moves the p99 is the largest value.
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function ms(value: number | undefined, digits = 0): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

function printCondition(condition: Condition, baton: Run, hand: Run): void {
  const b = figures(baton);
  const h = figures(hand);
  const loaded = condition === 'loaded';
  const rows: Array<[string, string, string, string]> = [];
  const failedCell = (f: Figures, kind: ClientClass): string => {
    const c = f.failed[kind];
    return `${c.total}  (${ms(quantile(c.perMove, 0.5))} / ${Math.max(0, ...c.perMove)})`;
  };
  const gapCell = (f: Figures, kind: ClientClass): string => `${ms(quantile(f.gaps[kind], 0.5))} / ${ms(Math.max(...f.gaps[kind]))}`;
  const meets = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  rows.push(['failed requests: total (per move: median / max)', '', '', '']);
  for (const kind of CLASSES) {
    const target = TRANSFERS.includes(kind) && loaded ? 'none under load' : `0  ${meets(b.failed[kind].total === 0)}`;
    rows.push([`  ${CLASS_TEXT[kind]}`, failedCell(b, kind), failedCell(h, kind), target]);
  }
  for (const kind of TRANSFERS) {
    rows.push([`  ${kind} slower than ${STALLED_TRANSFER_MS / 1000} s (stalled, not failed)`, String(b.stalled[kind] ?? 0), String(h.stalled[kind] ?? 0), '']);
  }
  rows.push(['longest gap per move, ms: median / max', '', '', '']);
  const handMedian = quantile(h.gaps.fresh, 0.5) ?? 0;
  for (const kind of CLASSES) {
    const target = kind === 'fresh' ? `median <= by hand's (${ms(handMedian)})  ${meets((quantile(b.gaps.fresh, 0.5) ?? Infinity) <= handMedian)}` : '';
    rows.push([`  ${CLASS_TEXT[kind]}`, gapCell(b, kind), gapCell(h, kind), target]);
  }
  const unownedCell = (f: Figures): string => `${ms(quantile(f.unowned.values, 0.5), 1)} / ${ms(quantile(f.unowned.values, 0.99), 1)} / ` +
    `${ms(f.unowned.values.length === 0 ? undefined : Math.max(...f.unowned.values), 1)}` + (f.unowned.missing > 0 ? `  (${f.unowned.missing} not seen)` : '');
  const limit = loaded ? 20 : 5;
  rows.push(['unowned window, ms: median / p99 / max', unownedCell(b), unownedCell(h),
    `p99 <= ${limit}  ${meets((quantile(b.unowned.values, 0.99) ?? Infinity) <= limit && b.unowned.missing === 0)}`]);
  const stepCell = (step: string): string => {
    const times = baton.moves.flatMap((m) => (m.steps[step] === undefined ? [] : [m.steps[step]]));
    return `${ms(quantile(times, 0.5))} / ${ms(times.length === 0 ? undefined : Math.max(...times))}`;
  };
  rows.push(['  step primary-net-down, ms: median / max', stepCell('primary-net-down'), '-', '']);
  rows.push(['  step backup-net-up, ms: median / max', stepCell('backup-net-up'), '-', '']);
  rows.push(['drain, ms: median / max', `${ms(quantile(b.drainMs, 0.5))} / ${ms(b.drainMs.length === 0 ? undefined : Math.max(...b.drainMs))}`, '-', '']);
  const cut = baton.moves.filter((m) => m.drain !== undefined && (m.drain.left ?? 1) > 0);
  rows.push(['  drains that ended with connections left (cut)', `${cut.length} of ${baton.moves.length}, ` +
    `${cut.reduce((n, m) => n + (m.drain?.left ?? 0), 0)} connections`, '-', '']);
  rows.push(['switch total, ms: median / max', `${ms(quantile(b.totalMs, 0.5))} / ${ms(Math.max(...b.totalMs))}`,
    `${ms(quantile(h.totalMs, 0.5))} / ${ms(Math.max(...h.totalMs))}`, '']);
  rows.push(['requests ok / sent', CLASSES.map((k) => `${b.requests[k].ok}/${b.requests[k].attempts}`).join('  '),
    CLASSES.map((k) => `${h.requests[k].ok}/${h.requests[k].attempts}`).join('  '), '']);
  rows.push(['switch requests refused (asked again)', String(baton.refusals.length), '-', '']);
  rows.push(['two holders at once (kernel events)', String(b.overlaps), String(h.overlaps), '0']);
  rows.push(['run wall time, s', (baton.wallMs / 1000).toFixed(0), (hand.wallMs / 1000).toFixed(0), '']);

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0), ['', 'baton (drain)', 'by hand (runbook)', 'target (baton)'][i]?.length ?? 0));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 3 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
  console.log(`\n${condition === 'idle' ? 'idle' : 'loaded (two busy loops on the 2 cores)'}: ${baton.moves.length} moves by the agents, ${hand.moves.length} by hand`);
  console.log(`  ${line(['', 'baton (drain)', 'by hand (runbook)', 'target (baton)'])}`);
  for (const row of rows) console.log(`  ${line(row)}`);
  console.log(`  (by hand: switch total is ip addr del, ip addr add, then arping -U and -A at once until interrupted after ${ARPING_INTERRUPT_MS} ms; ` +
    'unowned window: the giver\'s address-removed to the taker\'s address-added on eth0, as `ip -ts monitor` in each host namespace saw them)');
  for (const [name, f, run] of [['baton', b, baton], ['by hand', h, hand]] as const) {
    const worst = f.gaps.fresh.indexOf(Math.max(...f.gaps.fresh));
    const move = run.moves[worst];
    if (move !== undefined) {
      console.log(`  ${name}, longest new-connection gap: move ${worst + 1} (${move.giver} -> ${move.taker}), ${ms(f.gaps.fresh[worst])} ms` +
        `, at ${ms(longestGapAt(run, worst) - move.startAt)} ms after the move started`);
    }
    for (const kind of CLASSES) {
      if (f.errors[kind].size === 0) continue;
      const reasons = [...f.errors[kind]].sort((x, y) => y[1] - x[1]).slice(0, 4).map(([reason, n]) => `${n}x ${reason}`).join(', ');
      console.log(`  ${name}, ${CLASS_TEXT[kind]} failures: ${reasons}${f.failed[kind].between > 0 ? `; ${f.failed[kind].between} of them between moves` : ''}`);
    }
    const notes = [...new Set(f.notes)];
    for (const note of notes.slice(0, MAX_NOTES)) console.log(`  ${name}: ${note}`);
    if (notes.length > MAX_NOTES) console.log(`  ${name}: … ${notes.length - MAX_NOTES} more notes`);
  }
}
