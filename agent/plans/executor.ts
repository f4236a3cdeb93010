// THE executor of steps: for every move of the service IP, each step goes journal → deadline → apply → verify →
// record, and a failed plan undoes what it had done, newest first. It returns what happened; the caller decides
// what that means for the host's state.

import {BatonError, describeError, isBatonError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, DrainDriver, NetworkDriver} from '../ports.js';
import {createAnnouncer} from './announcer.js';
import type {Config, ServiceMode} from '../config/schema.js';
import type {StepName} from './plans.js';
import {STEPS, type StepContext} from './steps.js';

// A network step is a few `ip` runs and at most one ARP burst (a duplicate-address probe listens ~200 ms): 10 s
// means something is stuck, not slow.
export const STEP_DEADLINE_MS = 10_000;

export interface StepRunDeps {
  readonly service: Config['service'];
  readonly network: NetworkDriver;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when the agent stops: a pending repeated announcement is dropped. */
  readonly signal: AbortSignal;
  /** The duplicate-address probe (an early probe's fresh answer, or a new one). */
  readonly probe: () => Promise<boolean>;
  readonly drain: DrainDriver;
  /** The giver's addresses while a switch with a drain runs here (StepContext.giverAddresses). */
  readonly giverAddresses: () => readonly string[];
}

/** How this host runs its steps: its service, its interface, and announcements that repeat. */
export function createStepRun(deps: StepRunDeps): StepRun {
  const {service, network, clock, log, signal} = deps;
  const announcer = createAnnouncer({network, ips: service.ips, clock, log, signal});
  return {mode: service.mode, clock, ctx: {service, network, announce: () => announcer.announce(), probe: deps.probe, drain: deps.drain, giverAddresses: deps.giverAddresses}};
}

export interface StepRun {
  readonly ctx: StepContext;
  readonly mode: ServiceMode;
  readonly clock: Clock;
  /** Default STEP_DEADLINE_MS. */
  readonly deadlineMs?: number;
}

/** Journal hooks around each step: written before it runs, and after it is verified. */
export interface StepJournal {
  before(step: StepName): Promise<void>;
  after(step: StepName): Promise<void>;
}

/**
 * One step: journal (before) → deadline → apply → verify → record (the journal's after). A verify failure names
 * the step (STEP_FAILED "<step>: what was found"); an apply failure is thrown as the adapter raised it. The deadline
 * throws STEP_FAILED; the step itself cannot be cancelled and may still finish later, which is why callers undo
 * it too.
 */
export async function executeStep(step: StepName, run: StepRun, journal?: StepJournal): Promise<void> {
  const actions = STEPS[step][run.mode];
  await journal?.before(step);
  await withDeadline((async () => {
    await actions.apply(run.ctx);
    await actions.verify(run.ctx).catch((error: unknown) => {
      throw named(error, step);
    });
  })(), run.deadlineMs ?? STEP_DEADLINE_MS, step, run.clock);
  await journal?.after(step);
}

/** Takes back one step and verifies that, within the deadline; failures read "undo <step>: …". */
export async function executeUndo(step: StepName, run: StepRun): Promise<void> {
  const what = `undo ${step}`;
  await withDeadline(STEPS[step][run.mode].undo(run.ctx).catch((error: unknown) => {
    throw named(error, what);
  }), run.deadlineMs ?? STEP_DEADLINE_MS, what, run.clock);
}

export interface StepTiming {
  readonly step: StepName;
  readonly ms: number;
}

export type PlanOutcome =
  | {readonly ok: true; readonly steps: readonly StepTiming[]; readonly ms: number}
  | {
    readonly ok: false; readonly steps: readonly StepTiming[]; readonly ms: number;
    /** The step that failed, and its error; `message` names the step once. */
    readonly failed: StepName; readonly error: unknown; readonly message: string;
    /** Steps undone after the failure, newest first, and the undos that failed. */
    readonly undone: readonly StepName[]; readonly undoFailures: readonly string[];
  };

/**
 * Runs a plan of this host's steps in order. On a failure, the steps already verified are undone, newest first,
 * and the outcome says which step failed and why. Never throws for a step's failure.
 */
export async function runPlan(steps: readonly StepName[], run: StepRun): Promise<PlanOutcome> {
  const {clock} = run;
  const started = clock.now();
  const done: StepTiming[] = [];
  for (const step of steps) {
    const stepStarted = clock.now();
    try {
      await executeStep(step, run);
      done.push({step, ms: Math.round(clock.now() - stepStarted)});
    } catch (error) {
      const undone: StepName[] = [];
      const undoFailures: string[] = [];
      for (const {step: back} of [...done].reverse()) {
        try {
          await executeUndo(back, run);
          undone.push(back);
        } catch (undoError) {
          undoFailures.push(describeError(undoError));
        }
      }
      const text = describeError(error);
      return {ok: false, steps: done, ms: Math.round(clock.now() - started), failed: step, error,
        message: text.startsWith(`${step}: `) ? text : `${step}: ${text}`, undone, undoFailures};
    }
  }
  return {ok: true, steps: done, ms: Math.round(clock.now() - started)};
}

/** The outcome in the log: each step done, the failure, and what was undone. */
export function logPlanOutcome(log: Logger, label: string, outcome: PlanOutcome): void {
  for (const done of outcome.steps) log.info(`${label} ${done.step} ok ${done.ms}ms`);
  if (outcome.ok) {
    log.info(`${label} done in ${outcome.ms}ms`);
    return;
  }
  // An IP that keeps answering is probed every second: that is logged once, by the state change, not here.
  if (isBatonError(outcome.error, 'ADDRESS_IN_USE')) log.debug(`${label} ${outcome.message}`);
  else log.error(`${label} ${outcome.failed} failed after ${outcome.ms}ms: ${describeError(outcome.error)}`);
  for (const undone of outcome.undone) log.notice(`${label} undid ${undone}`);
  for (const undoFailure of outcome.undoFailures) log.error(`${label} ${undoFailure}`);
}

/** The error with the step's name in front, its code and cause kept. */
function named(error: unknown, what: string): unknown {
  if (!isBatonError(error)) return error;
  return new BatonError(error.code, `${what}: ${error.message}`, {cause: error, details: error.details});
}

/** Races the work against a deadline; throws STEP_FAILED "<what> did not finish within N ms". */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string, clock: Clock): Promise<T> {
  const abort = new AbortController();
  try {
    return await Promise.race([
      work,
      clock.sleep(ms, abort.signal).then(() => {
        throw new BatonError('STEP_FAILED', `${what} did not finish within ${ms} ms`);
      }),
    ]);
  } finally {
    abort.abort();
  }
}
