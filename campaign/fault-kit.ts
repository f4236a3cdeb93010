// What every fault case of the campaign uses: a lab with a client probing the service IP, a switch asked of an
// agent with an action fired at a chosen step, the checks that exactly one kernel holds the IP and the client is
// served by it, and the verdict with its table text.

import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {StatusReport, SwitchoverOptions, SwitchProgress, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {callAgent} from '../cli/control-client.js';
import type {Lab, LabHost} from '../cli/lab/lab.js';
import type {ServiceProbers} from '../cli/lab/probe-control.js';
import type {CampaignContext} from './case.js';
import {checkOneHolder, pairStatus, settle, startLabProbers, SWITCH_DEFAULTS, withCampaignLab} from './lab.js';

/** What one case found: pass or fail, the figures for the table, and the longer story when it failed. */
export interface Verdict {
  readonly ok: boolean;
  readonly figures: string;
  readonly detail?: string;
}

// The client asks every 50 ms, so confirm-traffic's requests arrive within a fraction of a second and a gap in
// service shows up; a 200 ms timeout per request keeps a dead IP from stacking up requests.
const PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 200;
// Far beyond any case (each takes well under a minute); the prober is stopped at the end of its case anyway.
const PROBE_DURATION_S = 600;
// A switch answers within its steps' deadlines (10 s each) and the confirmation time; 90 s is a hung agent.
const SWITCH_TIMEOUT_MS = 90_000;
// A pause long enough for the fault to be injected (a few `ip` or `mount` runs, or an agent's restart) before
// the switch goes on; the switch waits this long after the step whatever happens.
export const PAUSE_S = 3;
// Beacons every 200 ms (the default) and a dead timer of 1 s: a stepped clock makes the peer dead within it.
export const DEFAULT_DEAD_AFTER_MS = 1000;

/** A lab (nginx) with the client requesting the service IP every 50 ms for as long as `work` runs. */
export function withFaultLab<T>(context: CampaignContext, options: {extraConfig?: string}, work: (lab: Lab) => Promise<T>): Promise<T> {
  return withCampaignLab(context, {...options.extraConfig === undefined ? {} : {extraConfig: options.extraConfig}}, async (lab) => {
    let prober: ServiceProbers | undefined;
    try {
      prober = await startLabProbers(lab, {intervalMs: PROBE_INTERVAL_MS,
        timeoutMs: PROBE_TIMEOUT_MS, durationS: PROBE_DURATION_S, maxProbes: PROBE_DURATION_S * (1000 / PROBE_INTERVAL_MS), out: join(lab.dir, 'probes.jsonl')});
      return await work(lab);
    } finally {
      await prober?.stop().catch(() => undefined);
    }
  });
}

/** Runs an action once, the first time a switch's progress matches; the switch goes on meanwhile. */
export class Trigger {
  readonly #matches: (progress: SwitchProgress) => boolean;
  readonly #action: () => Promise<void>;
  #running: Promise<void> | undefined;

  constructor(matches: (progress: SwitchProgress) => boolean, action: () => Promise<void>) {
    this.#matches = matches;
    this.#action = action;
  }

  get fired(): boolean {
    return this.#running !== undefined;
  }

  observe(progress: SwitchProgress): void {
    if (this.#running !== undefined || !this.#matches(progress)) return;
    this.#running = this.#action();
    // Handled here so a failure cannot end the campaign as an unhandled rejection; done() still throws it.
    this.#running.catch(() => undefined);
  }

  /** Resolves once the action has ended; throws what it threw. */
  async done(): Promise<void> {
    await this.#running;
  }
}

export function isPause(step: string): (progress: SwitchProgress) => boolean {
  return (p) => p.kind === 'note' && p.text.startsWith(`pausing `) && p.text.includes(` after ${step} `);
}

export function isStepOk(step: string): (progress: SwitchProgress) => boolean {
  return (p) => p.kind === 'step' && p.step === step && p.action === 'apply' && p.status === 'ok';
}

/** A planned switch asked of `host`'s agent, as `baton switchover` does, its progress shown to `trigger`. */
export async function switchWith(host: LabHost, options: Partial<SwitchoverOptions>, trigger?: Trigger): Promise<SwitchResult | {error: string}> {
  try {
    return await callAgent(host.socket, {id: 'campaign-faults', type: 'switchover', options: {...SWITCH_DEFAULTS, ...options}},
      SWITCH_TIMEOUT_MS, (progress) => trigger?.observe(progress)) as SwitchResult;
  } catch (error) {
    return {error: describeError(error)};
  }
}

export function isDone(result: SwitchResult | {error: string}): result is SwitchResult {
  return !('error' in result) && result.outcome === 'done';
}

export function isRolledBack(result: SwitchResult | {error: string}): result is SwitchResult {
  return !('error' in result) && result.outcome === 'rolled-back';
}

/** The words baton gave: the error, or the rollback's reason and check. */
export function outcomeText(result: SwitchResult | {error: string}): string {
  if ('error' in result) return result.error;
  return [result.reason, result.rollbackCheck].filter((t) => t !== undefined).join('; ');
}

/** Problems unless exactly the `role` host's kernel holds the IP and the client is served by it. */
export async function holderIs(lab: Lab, role: 'primary' | 'backup', when: string): Promise<string[]> {
  const check = await checkOneHolder(lab);
  if (!check.ok) return [`${when}: ${check.problem}`];
  if (check.holder !== role) return [`${when}: the ${check.holder ?? '?'} holds the IP, expected the ${role}`];
  return [];
}

// After a move, the client's ARP cache follows the announcement within about a second; on a loaded machine one look
// can miss. 15 s bounds the wait for the outcome, it is not a target (test/integration/lab-helpers.ts servedBy).
const SERVED_WITHIN_MS = 15_000;

/** holderIs, once the client has had time to follow: problems unless it holds within SERVED_WITHIN_MS. */
export async function holderIsSoon(lab: Lab, role: 'primary' | 'backup', when: string): Promise<string[]> {
  const deadline = Date.now() + SERVED_WITHIN_MS;
  for (;;) {
    const problems = await holderIs(lab, role, when);
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(250);
  }
}

export async function settledOr(lab: Lab, when: string): Promise<string[]> {
  const problem = await settle(lab);
  return problem === undefined ? [] : [`${when}: ${problem}`];
}

/** Problems when either agent still says it is in a switch. */
export async function notSwitching(lab: Lab, when: string): Promise<string[]> {
  const status = await pairStatus(lab);
  if ('error' in status) return [`${when}: status failed: ${status.error}`];
  return [status.primary, status.backup].filter((s) => s.switching !== undefined || s.self.state === 'switching')
    .map((s) => `${when}: the ${s.self.role} is still in switch ${s.switching?.id ?? '?'} (${s.self.state}: ${s.self.reason})`);
}

export async function statusOrThrow(lab: Lab): Promise<{primary: StatusReport; backup: StatusReport}> {
  const status = await pairStatus(lab);
  if ('error' in status) throw new Error(`status failed: ${status.error}`);
  return status;
}

/** Passed when nothing went wrong; else the problems, then everything baton said in full. */
export function verdict(problems: readonly string[], figures: string, story: readonly string[]): Verdict {
  if (problems.length === 0) return {ok: true, figures};
  return {ok: false, figures, detail: `${problems.join('; ')}\n  baton said: ${story.join('\n  baton said: ')}`};
}

/** What baton answered, short for a table cell: done, or the reason without the step and host it repeats. */
export function said(result: SwitchResult | {error: string}, max: number): string {
  if ('error' in result) return `refused "${core(result.error, max)}"`;
  if (result.outcome === 'done') return `done in ${result.totalMs} ms`;
  const reason = (result.reason ?? '').replace(/^\S+ failed on the \w+: /, '');
  return `rolled back at ${result.failedStep ?? '?'}: "${core(reason, max)}"`;
}

/** Paths, boot ids and repeated explanations cut down; whitespace flattened; the length capped. */
function core(text: string, max: number): string {
  const cut = text
    .replaceAll(/'?\/[^\s']*\/([^\s'/]+)'?/g, '…/$1')
    .replace(/^the \w+ \S+ cannot write its switch journal in state_dir \S+: /, 'journal: ')
    .replace(/ \(boot \S+, now \S+\)/, ' (new boot id)')
    .replace(/(\d+) datagram\(s\) from its address rejected since the last valid one, the latest (\w+): [^;]*;/, '$1 datagrams rejected, latest $2;');
  return shorten(cut, max);
}

function shorten(text: string, max: number): string {
  const flat = text.replaceAll(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** The last line of the agent's log that matches, or undefined. */
export async function lastLogLine(host: LabHost, pattern: RegExp): Promise<string | undefined> {
  const lines = (await readFile(host.logFile, 'utf8').catch(() => '')).split('\n');
  return lines.findLast((line) => pattern.test(line));
}
