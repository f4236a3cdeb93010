// Part "crash": SIGKILL an agent (the backup's, the primary's, or both) at every point of a planned switch, in
// both directions, and restart it at once, as a crashed process or a rebooted host would be. Afterwards exactly
// one host's kernel may hold the IP and the client must be answered by it, neither journal may be left behind,
// and `baton status` must say what happened to the switch on each killed host.
//
// The switch is asked of the primary's agent, so the coordinator is the giver in the switchover and the taker in
// the switchback, and then of the backup's, which swaps them: the matrix kills coordinators and participants on
// either side of either role. The whole matrix runs in address mode and again in link mode, where the steps bring
// interfaces down and up instead of moving the address.

import {mkdir, readFile, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import type {ServiceMode} from '../agent/config/schema.js';
import type {ResumeResult, StatusReport, SwitchoverOptions, SwitchProgress, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import type {Role} from '../agent/state-machine.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent, type Lab, type LabHost} from '../cli/lab/lab.js';
import {judgeHolders, watchServiceAddress, type AddressWatch} from '../cli/lab/address-events.js';
import {DRAIN_STEP_NAMES, SWITCH_STEP_NAMES, type SwitchStepName} from '../agent/plans/plans.js';
import type {CampaignPart, CaseResult} from './case.js';
import {checkJournals, checkOneHolder, describeSwitch, pairStatus, SWITCH_DEFAULTS, startLabProbers, withCampaignLab} from './lab.js';

type Direction = 'switchover' | 'switchback';
/** Where the kill lands: in the pause after one of the four steps, or while the taker counts requests. */
type CrashPoint = SwitchStepName;
type Victim = Role | 'both';

interface CrashCase {
  readonly mode: ServiceMode;
  /** The agent the switch is asked of, which coordinates it. */
  readonly askedOf: Role;
  readonly direction: Direction;
  readonly point: CrashPoint;
  readonly victim: Victim;
}

const MODES: readonly ServiceMode[] = ['address', 'link'];
const ASKED_OF: readonly Role[] = ['primary', 'backup'];
const DIRECTIONS: readonly Direction[] = ['switchover', 'switchback'];
/** Every step of the switch in address mode, the drain's included; link mode has no drain. */
const POINTS: Readonly<Record<ServiceMode, readonly CrashPoint[]>> = {
  address: SWITCH_STEP_NAMES,
  link: SWITCH_STEP_NAMES.filter((step) => !DRAIN_STEP_NAMES.includes(step)),
};
const VICTIMS: readonly Victim[] = ['backup', 'primary', 'both'];

/**
 * The fast subset: each victim, both directions, coordinator and participant on each side, the gap and the
 * confirmation; the two cases where a backup coordinates and its peer restarts or its kernel keeps the IP; in link
 * mode the two where a giver restarts with its link down.
 */
const FAST_CASES: readonly CrashCase[] = [
  {mode: 'address', askedOf: 'primary', direction: 'switchover', point: 'assign-ip', victim: 'backup'},
  {mode: 'address', askedOf: 'primary', direction: 'switchover', point: 'primary-net-down', victim: 'primary'},
  {mode: 'address', askedOf: 'primary', direction: 'switchover', point: 'confirm-traffic', victim: 'both'},
  {mode: 'address', askedOf: 'primary', direction: 'switchback', point: 'backup-net-down', victim: 'both'},
  {mode: 'address', askedOf: 'primary', direction: 'switchback', point: 'primary-net-down', victim: 'backup'},
  {mode: 'address', askedOf: 'primary', direction: 'switchback', point: 'backup-net-up', victim: 'primary'},
  {mode: 'address', askedOf: 'backup', direction: 'switchover', point: 'backup-net-up', victim: 'backup'},
  {mode: 'address', askedOf: 'backup', direction: 'switchback', point: 'primary-net-down', victim: 'primary'},
  // The drain: a giver killed while it holds its connections, a taker killed while it hands strays on, and both
  // killed while the giver drains: a restarted agent removes what the drain left.
  {mode: 'address', askedOf: 'primary', direction: 'switchover', point: 'hold-connections', victim: 'primary'},
  {mode: 'address', askedOf: 'backup', direction: 'switchback', point: 'forward-strays', victim: 'primary'},
  {mode: 'address', askedOf: 'primary', direction: 'switchover', point: 'drain-connections', victim: 'both'},
  {mode: 'link', askedOf: 'primary', direction: 'switchover', point: 'primary-net-down', victim: 'primary'},
  {mode: 'link', askedOf: 'primary', direction: 'switchback', point: 'primary-net-down', victim: 'both'},
];

// The pause the kill lands in. Far longer than any settling: a coordinator that sleeps through its peer's death
// instead of rolling back shows up as a pair that does not settle in SETTLE_TIMEOUT_MS.
const PAUSE_S = 30;
// The client probes every 50 ms (20 requests/s). Confirmation then needs 80 requests, about 4 s of traffic after
// backup-net-up, so a kill at the first progress report of confirm-traffic lands while the taker still counts.
const PROBE_INTERVAL_MS = 50;
const CONFIRM_REQUESTS = 80;
// Confirmation and the rollback check get 10 s, as the lab's config gives them.
const CONFIRM_TIMEOUT_S = 10;
// A restarted agent listens 2 intervals, recovers and probes; the peer needs dead_after_ms (1 s) to notice a
// death. 25 s is far beyond that yet below the pause, so a stuck `switching` fails the case.
const SETTLE_TIMEOUT_MS = 25_000;
// From the request to the kill point: preflight and up to four steps, each well under a second in the lab.
const REACH_TIMEOUT_MS = 20_000;
// Long enough for any run of the full matrix, bounded so a forgotten prober cannot run on for hours.
const PROBER_DURATION_S = 1800;
const POLL_MS = 200;

export function caseName(c: CrashCase): string {
  const at = c.point === 'confirm-traffic' ? 'during confirm-traffic' : `after ${c.point}`;
  return `${c.mode === 'link' ? 'link, ' : ''}${c.direction}${c.askedOf === 'backup' ? ' by backup' : ''}, ${at}, kill ${c.victim}`;
}

/** The cases in running order: all of one mode, then the other, so that each mode needs one lab. */
export function crashMatrix(fast: boolean): CrashCase[] {
  if (fast) return [...FAST_CASES];
  return MODES.flatMap((mode) => ASKED_OF.flatMap((askedOf) => DIRECTIONS.flatMap((direction) =>
    POINTS[mode].flatMap((point) => VICTIMS.map((victim) => ({mode, askedOf, direction, point, victim}))))));
}

/** A lab that a case left in a state the part cannot bring back from: rebuilt, and the case reported failed. */
class LabBroken extends Error {
  override readonly name = 'LabBroken';
}

export const crashPart: CampaignPart = {
  name: 'crash',
  about: 'SIGKILL the backup, the primary or both at each point of a switch (both directions, either coordinating, address and link mode) and restart: ' +
    'never two holders, one at rest that serves, clean journals, status says what happened',
  async run(context) {
    const cases = crashMatrix(context.fast);
    const rows: CaseResult[] = [];
    const started = Date.now();
    // Outside the run's scratch directory, which is removed at the end: a failed case's logs are its evidence.
    const keptLogs = join(context.keptLogs, 'crash');
    let labs = 0;
    let broken = 0;
    while (rows.length < cases.length) {
      labs += 1;
      const mode = (cases[rows.length] as CrashCase).mode;
      await withCampaignLab(context, {mode, progress: (line) => context.say(line)}, async (lab) => {
        const prober = await startLabProbers(lab, {
          intervalMs: PROBE_INTERVAL_MS, timeoutMs: 200,
          durationS: PROBER_DURATION_S, maxProbes: Math.ceil(PROBER_DURATION_S * 1000 / PROBE_INTERVAL_MS), out: join(context.dir, `crash-probes-${labs}.jsonl`),
        });
        try {
          // A fresh lab that does not come to rest costs the case it was built for, so rebuilding always ends.
          const fresh = await restoreBaseline(lab).then(() => undefined, (error: unknown) => describeError(error));
          if (fresh !== undefined) {
            const c = cases[rows.length] as CrashCase;
            rows.push({group: 'crash', name: caseName(c), ok: false, figures: 'lab broken', detail: `a fresh lab did not come to rest: ${fresh}`});
            broken += 1;
            return;
          }
          while (rows.length < cases.length && (cases[rows.length] as CrashCase).mode === mode) {
            const c = cases[rows.length] as CrashCase;
            const caseStarted = Date.now();
            context.say(`crash: ${caseName(c)}`);
            const row = await runCase(lab, c, keptLogs);
            rows.push(row);
            context.say(`crash: ${row.ok ? 'pass' : 'FAIL'} ${caseName(c)} in ${((Date.now() - caseStarted) / 1000).toFixed(1)} s`);
            const restored = await restoreBaseline(lab).then(() => undefined, (error: unknown) => describeError(error));
            if (restored !== undefined) {
              context.say(`crash: the lab could not be brought back after "${caseName(c)}" (${restored}): rebuilding it`);
              if (row.ok) rows[rows.length - 1] = {...row, ok: false, detail: `the lab could not be brought back afterwards: ${restored}`};
              broken += 1;
              return;
            }
          }
        } finally {
          await prober.stop().catch(() => undefined);
        }
      });
    }
    context.say(`crash: ${rows.length} cases in ${((Date.now() - started) / 1000).toFixed(0)} s, ${labs} lab(s) built, ${broken} of them left broken by a case`);
    return rows;
  },
};

function failed(c: CrashCase, error: unknown): CaseResult {
  return {group: 'crash', name: caseName(c), ok: false, figures: error instanceof LabBroken ? 'lab broken' : 'did not run to the end', detail: describeError(error)};
}

/** Runs one case; when it fails, the agents' log lines written meanwhile are kept and named in the detail. */
async function runCase(lab: Lab, c: CrashCase, keptLogs: string): Promise<CaseResult> {
  const marks = await Promise.all([lab.hosts.primary, lab.hosts.backup].map((host) => stat(host.logFile).then((s) => s.size, () => 0)));
  const row = await crashOnce(lab, c).catch((error: unknown) => failed(c, error));
  if (row.ok) return row;
  const dir = join(keptLogs, caseName(c).replaceAll(/[^a-z0-9-]+/g, '-'));
  await mkdir(dir, {recursive: true});
  for (const [i, host] of [lab.hosts.primary, lab.hosts.backup].entries()) {
    const text = await readFile(host.logFile).catch(() => Buffer.alloc(0));
    await writeFile(join(dir, `${host.role}.log`), text.subarray(marks[i] ?? 0));
  }
  return {...row, detail: `${row.detail ?? row.figures} (agent logs of the case: ${dir})`};
}

async function crashOnce(lab: Lab, c: CrashCase): Promise<CaseResult> {
  if (c.direction === 'switchback') await moveToBackup(lab);
  const coordinator = lab.hosts[c.askedOf];
  const options: Partial<SwitchoverOptions> = c.point === 'confirm-traffic'
    ? {minRequests: CONFIRM_REQUESTS, confirmTimeoutS: CONFIRM_TIMEOUT_S}
    : {pauseAfter: {step: c.point, seconds: PAUSE_S}, confirmTimeoutS: CONFIRM_TIMEOUT_S};
  const reached = Promise.withResolvers<void>();
  let switchId: string | undefined;
  const onProgress = (p: SwitchProgress): void => {
    if (p.kind === 'start') switchId = p.switchId;
    if (c.point === 'confirm-traffic' ? p.kind === 'waiting' && p.step === 'confirm-traffic' : p.kind === 'note' && p.text.startsWith('pausing')) reached.resolve();
  };
  // Watched from the pair at rest, before the switch: the kernels' own events show any moment both held the IP.
  const addresses = await watchServiceAddress(lab);
  const running = switchWithProgress(coordinator, options, onProgress);
  const ended = running.then((result) => {
    throw new Error(`the switch ended before the kill point (${c.point}): ${describeSwitch(result)}`);
  });
  ended.catch(() => undefined);
  await Promise.race([reached.promise, ended, timeout(REACH_TIMEOUT_MS, `the switch did not reach the kill point (${c.point})`)])
    .catch(async (error: unknown) => {
      await addresses.stop().catch(() => undefined);
      throw error;
    });

  const victims = c.victim === 'both' ? [lab.hosts.primary, lab.hosts.backup] : [lab.hosts[c.victim]];
  const killedAt = Date.now();
  await Promise.all(victims.map((host) => signalAgent(host, 'SIGKILL')));
  for (const host of victims) await startAgent(host, lab);

  const quiet = await waitQuiet(lab, SETTLE_TIMEOUT_MS);
  const settledS = ((Date.now() - killedAt) / 1000).toFixed(1);
  const both = await bothHeld(addresses, killedAt);
  // The coordinator, when it survived, has answered by now: it ended its switch before the pair could settle.
  const answer = await Promise.race([running, timeout(1000, 'no answer')]).then(describeSwitch, describeError);
  if ('problem' in quiet) {
    return {group: 'crash', name: caseName(c), ok: false, figures: `not settled after ${settledS} s`,
      detail: `${both === undefined ? '' : `both kernels held the IP ${both}; `}${quiet.problem}; the coordinator answered: ${answer}`};
  }
  const holder = quiet.check.holder ?? 'nobody';
  const problems = [...statusProblems(quiet.status, victims.map((v) => v.role), switchId)];
  if (both !== undefined) problems.unshift(`both kernels held the IP ${both}`);
  const said = (['primary', 'backup'] as const).map((role) => {
    const last = quiet.status[role].lastSwitch;
    return victims.some((v) => v.role === role) ? `${role} "${shorten(last?.reason ?? '(nothing)')}"` : `${role} ${last?.outcome ?? 'says nothing'}`;
  }).join(', ');
  return {
    group: 'crash', name: caseName(c), ok: problems.length === 0,
    figures: `ends on ${holder}, settled in ${settledS} s, status: ${said}`,
    detail: problems.length === 0 ? undefined : `${problems.join('; ')}; the coordinator answered: ${answer}`,
  };
}

// recovery.ts's account of where this host's part was: its side, its last step done, the one it was at.
const STEP = `(${SWITCH_STEP_NAMES.join('|')})`;
const RESTARTED_REASON = new RegExp(`\\((giver|taker), (before any of its steps|before or during ${STEP}|after ${STEP}(, before or during ${STEP})?)\\)`);

/**
 * What `baton status` must tell after the crash: each killed host reports the switch as interrupted with the
 * point it was at, and a survivor reports how the switch ended for it.
 */
function statusProblems(status: {primary: StatusReport; backup: StatusReport}, victims: readonly Role[], switchId: string | undefined): string[] {
  const problems: string[] = [];
  for (const role of ['primary', 'backup'] as const) {
    const last = status[role].lastSwitch;
    if (last === undefined) {
      problems.push(`the ${role}'s status says nothing about the switch`);
      continue;
    }
    if (switchId !== undefined && last.id !== switchId) problems.push(`the ${role}'s last switch is ${last.id}, not ${switchId}`);
    if (victims.includes(role)) {
      if (last.outcome !== 'interrupted') problems.push(`the restarted ${role} says the switch was ${last.outcome}, not interrupted`);
      if (!RESTARTED_REASON.test(last.reason)) problems.push(`the restarted ${role}'s reason does not say where its part of the switch was: "${last.reason}"`);
    } else if (last.reason.trim() === '') {
      problems.push(`the ${role} says ${last.outcome} without a reason`);
    }
  }
  return problems;
}

/** The status reason without the switch id it repeats and in fewer words, cut to fit a table cell. */
export function shorten(reason: string): string {
  const text = reason.replace(/^switch \S+ (was )?/, '').replace('interrupted by a restart of this agent', 'interrupted by the restart')
    .replaceAll('before or during', 'before/during').replaceAll('the service IP', 'the IP');
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}

interface Quiet {
  readonly status: {primary: StatusReport; backup: StatusReport};
  readonly check: Awaited<ReturnType<typeof checkOneHolder>>;
}

/**
 * Waits until the pair is at rest: both agents answer and see each other, neither is starting or switching,
 * exactly one kernel holds the IP and the client is answered by it, and no journal is left. The last
 * observation as the problem when that does not happen within `timeoutMs`.
 */
async function waitQuiet(lab: Lab, timeoutMs: number): Promise<Quiet | {problem: string}> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer from the agents yet';
  for (;;) {
    const status = await pairStatus(lab);
    if ('error' in status) {
      last = status.error;
    } else {
      const busy = (['primary', 'backup'] as const).flatMap((role) => {
        const s = status[role];
        if (s.self.state === 'starting' || s.self.state === 'switching' || s.switching !== undefined) return [`the ${role} is ${s.self.state}${s.switching === undefined ? '' : ` (switch ${s.switching.id})`}`];
        return s.peer.alive ? [] : [`the ${role} does not see its peer`];
      });
      if (busy.length > 0) {
        last = busy.join(', ');
      } else {
        const check = await checkOneHolder(lab);
        const journals = await checkJournals(lab);
        if (check.ok && journals.problems.length === 0) return {status, check};
        last = [check.problem, ...journals.problems].filter((p) => p !== '').join('; ');
      }
    }
    if (Date.now() > deadline) return {problem: `not at rest within ${timeoutMs} ms: ${last}`};
    await sleep(POLL_MS);
  }
}

/**
 * When both kernels held the IP at once, from their own timestamped events (undefined when never): the end state
 * alone would hide a split brain that the pair healed by itself.
 */
async function bothHeld(addresses: AddressWatch, killedAt: number): Promise<string | undefined> {
  const {overlaps} = judgeHolders(await addresses.stop());
  return overlaps.length === 0 ? undefined : overlaps.map((o) =>
    `${((o.fromMs - killedAt) / 1000).toFixed(2)} s after the kill for ${o.toMs === undefined ? 'good' : `${Math.round(o.toMs - o.fromMs)} ms`}`).join(', ');
}

/** A switch asked of `host`, its progress passed to `onProgress`; the result, or the error that came instead. */
async function switchWithProgress(host: LabHost, options: Partial<SwitchoverOptions>, onProgress: (p: SwitchProgress) => void): Promise<SwitchResult | {error: string}> {
  try {
    return await callAgent(host.socket, {id: 'campaign-crash', type: 'switchover', options: {...SWITCH_DEFAULTS, ...options}},
      (PAUSE_S + 30) * 1000, onProgress) as SwitchResult;
  } catch (error) {
    return {error: describeError(error)};
  }
}

/** A switch that must complete: asked of the primary, it moves the IP to the other host. */
async function cleanSwitch(lab: Lab, why: string): Promise<void> {
  const result = await switchWithProgress(lab.hosts.primary, {confirmTimeoutS: CONFIRM_TIMEOUT_S}, () => undefined);
  if ('error' in result || result.outcome !== 'done') throw new LabBroken(`${why}: the switch was not done: ${describeSwitch(result)}`);
}

async function resume(host: LabHost): Promise<void> {
  await callAgent(host.socket, {id: 'campaign-crash', type: 'resume', peer: false}) as ResumeResult;
}

/** Before a switchback: the IP moved to the backup by a clean switch, the released primary resumed. */
async function moveToBackup(lab: Lab): Promise<void> {
  await cleanSwitch(lab, 'moving the IP to the backup before the switchback');
  await resume(lab.hosts.primary);
  const at = await waitQuiet(lab, SETTLE_TIMEOUT_MS);
  if ('problem' in at) throw new LabBroken(`after moving the IP to the backup: ${at.problem}`);
  if (at.check.holder !== 'backup' || at.status.primary.self.state !== 'standby') {
    throw new LabBroken(`after moving the IP to the backup: the ${at.check.holder ?? 'nobody'} holds it, the primary is ${at.status.primary.self.state}`);
  }
}

/**
 * The known state every case starts from: at rest, the IP on the primary (active), the backup standby. A pair
 * where the backup holds the IP is switched back; a released host is resumed. Throws when that cannot be reached.
 */
async function restoreBaseline(lab: Lab): Promise<void> {
  let at = await waitQuiet(lab, SETTLE_TIMEOUT_MS);
  if ('problem' in at) throw new LabBroken(at.problem);
  if (at.check.holder === 'backup') {
    await cleanSwitch(lab, 'moving the IP back to the primary');
    at = await waitQuiet(lab, SETTLE_TIMEOUT_MS);
    if ('problem' in at) throw new LabBroken(at.problem);
  }
  for (const role of ['primary', 'backup'] as const) {
    if (at.status[role].self.state === 'released') await resume(lab.hosts[role]);
  }
  at = await waitQuiet(lab, SETTLE_TIMEOUT_MS);
  if ('problem' in at) throw new LabBroken(at.problem);
  const {primary, backup} = at.status;
  if (at.check.holder !== 'primary' || primary.self.state !== 'active' || backup.self.state !== 'standby') {
    throw new LabBroken(`the ${at.check.holder ?? 'nobody'} holds the IP, the primary is ${primary.self.state}, the backup ${backup.self.state}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref());
}
