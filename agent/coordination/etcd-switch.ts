// A planned switchover in etcd mode (`baton switchover --to HOST`, on any host; HOST runs it): the runbook's steps with a pair's
// order, the handover of the service's key written as one etcd transaction, the confirmation in the taker's access
// log, and the rollback of whatever was done. The two hosts talk through one record in etcd, the switch key beside
// the service's key, each moving it on by a compare-and-swap:
//
//   asker  writes requested (when the operator asked on another host than the taker), then follows the record
//   taker  backup-net-down, assign-ip, [forward-strays]; a lease of its own, renewed from now on
//   taker  writes giver-down-requested          (only if the service key is still the giver's, at its epoch)
//   giver  [hold-connections], primary-net-down; writes giver-down  (it keeps its lease: no third host can campaign)
//   taker  one transaction: the service key to the taker's lease, the record to handed-over
//   taker  backup-net-up; confirm-traffic; writes done
//   giver  its hold ends (its lease, which holds no key any more, is revoked); [drain-connections, writes drained]
//   taker  [end-forwarding, writes forwarding-ended]
//   giver  [end-hold]; writes finished
//
// The steps in brackets are the drain, a pair's (plans.ts: the same steps at the same places of the order, from the
// same catalogue, and the same wait, drain.ts): the taker runs the switch with one when both hosts can drain, its own
// readiness and the giver's as its presence value says it (presence.ts), and the record names the giver's own addresses
// that forward-strays sends to. Without one (a host that cannot drain, or a giver whose presence does not say) the
// taker says why and the switch is the runbook's five steps. The taker reports "free to upgrade" once the giver's
// connections drained or its drain timed out, with the number cut.
//
// Never two holders: the giver removes its address before the handover, the taker adds its address after it, and
// each address change goes through its host's claim queue behind the checks of its own lease's deadline.
//
// A rollback before the handover writes rolling-back: the giver puts its address back (it never stopped holding the
// key) and takes its hold-connections back; the taker then takes back its own steps, forward-strays among them. After it, the taker removes its address and hands the key back to the giver's lease in one transaction
// (handed-back): the giver puts its address back. A giver that hears nothing for long after giver-down rolls back by
// itself within 2 s; a taker whose agent died after the handover leaves a lease that expires, and the hosts campaign
// as after any failure.

import type {EtcdConfig, EtcdService} from '../config/schema.js';
import {presenceKey, serviceKey} from '../config/coordination.js';
import type {DrainSummary, HostLabel, SwitchoverOptions, SwitchProgress, SwitchResult} from '../control-protocol.js';
import {BatonError, describeError} from '../errors.js';
import type {Logger} from '../log.js';
import {executeStep, executeUndo, STEP_DEADLINE_MS, type StepRun} from '../plans/executor.js';
import {drainText} from '../plans/coordinator.js';
import {drainReadiness, waitForDrain, type DrainEnd, type DrainSettings} from '../plans/drain.js';
import {isSwitchStepName, type SwitchStepName} from '../plans/plans.js';
import {TrafficCounter} from '../plans/traffic.js';
import {parseIpAddress} from '../net/ip-address.js';
import {ownDrainAddresses} from '../net/service-addresses.js';
import type {AccessLogWatcher, Clock, CommandRunner, CoordinationStore, StoredKey} from '../ports.js';
import {parsePresence} from './presence.js';
import type {PreparedHold, ServiceClaim} from './service-claim.js';
import {CALL_TIMEOUT_MS} from './lease-holder.js';

export type SwitchPhase =
  | 'requested' | 'giver-down-requested' | 'giver-down' | 'giver-failed' | 'handed-over' | 'done' | 'drained' | 'forwarding-ended'
  | 'finished' | 'rolling-back' | 'handed-back' | 'rolled-back';
export const SWITCH_PHASES: readonly SwitchPhase[] = [
  'requested', 'giver-down-requested', 'giver-down', 'giver-failed', 'handed-over', 'done', 'drained', 'forwarding-ended', 'finished',
  'rolling-back', 'handed-back', 'rolled-back',
];
/** Phases after which nobody acts: a new switch may write over the record. */
const FINAL_PHASES: readonly SwitchPhase[] = ['finished', 'rolled-back'];

export interface SwitchRecord {
  readonly id: string;
  readonly giver: string;
  readonly taker: string;
  /** The service key's revision when the switch began: the giver's epoch. */
  readonly epoch: number;
  readonly phase: SwitchPhase;
  /** The giver's lease, which the key is handed back to on a rollback after the handover. */
  readonly giverLease?: string;
  /** Why the giver failed, or why the switch rolls back. */
  readonly reason?: string;
  /** Who asked, when the switch was asked for on another host than the taker (phase requested). */
  readonly requestedBy?: string;
  /** The asker's --min-requests and --confirm-timeout, for the taker to use. */
  readonly minRequests?: number;
  readonly confirmTimeoutS?: number;
  /** How it ended, written by the taker once it has: what the asker reports. */
  readonly result?: RecordedResult;
  /** The switch drains: the giver's own addresses (one per service address) that the taker's forward-strays sends to. */
  readonly giverAddresses?: readonly string[];
  /** The taker's drain.timeout_s, which the giver's drain-connections waits at most (as a pair's coordinator's). */
  readonly drainTimeoutS?: number;
  /** The giver's step that failed (phase giver-failed): hold-connections or primary-net-down. */
  readonly failedStep?: SwitchStepName;
  /** How long the giver's hold-connections took. */
  readonly holdMs?: number;
  /** How the giver's drain-connections ended (phase drained). */
  readonly drained?: DrainEnd;
  /** What went wrong on the giver after the taker was confirmed (its end-hold); the switch stands. */
  readonly problem?: string;
}

/** A switch's end as the record keeps it for the host that asked. */
export interface RecordedResult {
  readonly outcome: 'done' | 'rolled-back';
  readonly reason: string;
  readonly failedStep?: string;
  readonly totalMs: number;
  readonly confirmedRequests?: number;
  readonly drain?: DrainSummary;
}

/** The record as etcd has it, or why it cannot be read: a record of another version, or a forged one, is not acted on. */
export function decodeSwitchRecord(text: string): SwitchRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'not an object';
  const {id, giver, taker, epoch, phase, giverLease, reason, requestedBy, minRequests, confirmTimeoutS, result} = value as Record<string, unknown>;
  const drainParts = decodeDrainParts(value as Record<string, unknown>);
  if (typeof drainParts === 'string') return drainParts;
  if (typeof id !== 'string' || id === '' || typeof giver !== 'string' || typeof taker !== 'string') return 'id, giver and taker must be strings';
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch <= 0) return 'epoch must be a positive integer';
  if (typeof phase !== 'string' || !(SWITCH_PHASES as readonly string[]).includes(phase)) return `unknown phase ${String(phase)}`;
  if (giverLease !== undefined && typeof giverLease !== 'string') return 'giverLease must be a string';
  if (reason !== undefined && typeof reason !== 'string') return 'reason must be a string';
  if (requestedBy !== undefined && typeof requestedBy !== 'string') return 'requestedBy must be a string';
  if (minRequests !== undefined && !isCount(minRequests, 1_000_000)) return 'minRequests must be an integer 1..1000000';
  if (confirmTimeoutS !== undefined && !isCount(confirmTimeoutS, 3600)) return 'confirmTimeoutS must be an integer 1..3600';
  const ended = result === undefined ? undefined : decodeResult(result);
  if (typeof ended === 'string') return `result: ${ended}`;
  return {id, giver, taker, epoch, phase: phase as SwitchPhase, ...giverLease === undefined ? {} : {giverLease: giverLease as string},
    ...reason === undefined ? {} : {reason: reason as string}, ...requestedBy === undefined ? {} : {requestedBy: requestedBy as string},
    ...minRequests === undefined ? {} : {minRequests: minRequests as number},
    ...confirmTimeoutS === undefined ? {} : {confirmTimeoutS: confirmTimeoutS as number}, ...ended === undefined ? {} : {result: ended},
    ...drainParts};
}

/** The record's drain fields, checked (they name addresses that packets are sent to), or what is wrong with them. */
function decodeDrainParts(value: Record<string, unknown>): Partial<SwitchRecord> | string {
  const {giverAddresses, drainTimeoutS, failedStep, holdMs, drained, problem} = value;
  const parts: {-readonly [K in keyof SwitchRecord]?: SwitchRecord[K]} = {};
  if (giverAddresses !== undefined) {
    const addresses = Array.isArray(giverAddresses) ? giverAddresses.map((a) => typeof a === 'string' ? parseIpAddress(a)?.address : undefined) : [];
    if (addresses.length === 0 || addresses.length > 2 || addresses.some((a) => a === undefined)) return 'giverAddresses must be one or two IP addresses';
    parts.giverAddresses = addresses as string[];
  }
  if (drainTimeoutS !== undefined) {
    if (!isCount(drainTimeoutS, 3600)) return 'drainTimeoutS must be an integer 1..3600';
    parts.drainTimeoutS = drainTimeoutS as number;
  }
  if (failedStep !== undefined) {
    if (!isSwitchStepName(failedStep)) return `unknown failedStep ${String(failedStep)}`;
    parts.failedStep = failedStep;
  }
  if (holdMs !== undefined) {
    if (typeof holdMs !== 'number' || !(holdMs >= 0)) return 'holdMs must be a duration';
    parts.holdMs = holdMs;
  }
  if (drained !== undefined) {
    const end = decodeDrainEnd(drained);
    if (typeof end === 'string') return `drained: ${end}`;
    parts.drained = end;
  }
  if (problem !== undefined) {
    if (typeof problem !== 'string') return 'problem must be a string';
    parts.problem = problem;
  }
  return parts;
}

function decodeDrainEnd(value: unknown): DrainEnd | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const {left, ms, graceful} = value as Record<string, unknown>;
  if (typeof left !== 'number' || !Number.isInteger(left) || left < 0 || typeof ms !== 'number' || !(ms >= 0)) return 'left and ms are required';
  if (graceful !== undefined && typeof graceful !== 'string') return 'graceful must be a string';
  return {left, ms, graceful: graceful as string | undefined};
}

function decodeSummary(value: unknown): DrainSummary | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const {left, ms, graceful, problems} = value as Record<string, unknown>;
  if ((left !== undefined && (typeof left !== 'number' || left < 0)) || typeof ms !== 'number' || ms < 0) return 'left and ms must be counts';
  if (graceful !== undefined && typeof graceful !== 'string') return 'graceful must be a string';
  if (!Array.isArray(problems) || problems.some((p) => typeof p !== 'string')) return 'problems must be a list of strings';
  return {left: left as number | undefined, ms, graceful: graceful as string | undefined, problems: problems as string[]};
}

function isCount(value: unknown, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max;
}

function decodeResult(value: unknown): RecordedResult | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const {outcome, reason, failedStep, totalMs, confirmedRequests, drain} = value as Record<string, unknown>;
  if (outcome !== 'done' && outcome !== 'rolled-back') return 'outcome must be done or rolled-back';
  if (typeof reason !== 'string' || typeof totalMs !== 'number' || totalMs < 0) return 'reason and totalMs are required';
  if (failedStep !== undefined && typeof failedStep !== 'string') return 'failedStep must be a string';
  if (confirmedRequests !== undefined && (typeof confirmedRequests !== 'number' || confirmedRequests < 0)) return 'confirmedRequests must be a count';
  const summary = drain === undefined ? undefined : decodeSummary(drain);
  if (typeof summary === 'string') return `drain: ${summary}`;
  return {outcome, reason, totalMs, ...failedStep === undefined ? {} : {failedStep: failedStep as string},
    ...confirmedRequests === undefined ? {} : {confirmedRequests: confirmedRequests as number}, ...summary === undefined ? {} : {drain: summary}};
}

/** The switch record's key, beside the service's. */
export function switchKey(prefix: string, service: string): string {
  return `${prefix}services/${service}/switch`;
}

export interface EtcdSwitchDeps {
  readonly config: EtcdConfig;
  /** The service this switch moves (one EtcdSwitch per service). */
  readonly service: EtcdService;
  readonly clock: Clock;
  readonly store: CoordinationStore;
  readonly claim: ServiceClaim;
  readonly run: StepRun;
  readonly log: Logger;
  readonly healthy: () => boolean;
  /** The access log of confirm.access_log, when set: the taker counts requests in it after backup-net-up. */
  readonly accessLog: AccessLogWatcher | undefined;
  readonly newId: () => string;
  /** Told when this host, the taker, has taken the address (backup-net-up). */
  readonly onServing?: () => void;
  /** Runs drain.graceful_command on the giver. */
  readonly runner: CommandRunner;
}

// While a switch waits on the other host, the record is read this often: the gap between the giver's removal and the
// taker's handover is one write and at most one period.
const FAST_POLL_MS = 10;
// Otherwise a host looks for a switch naming it as the giver four times a second: a switch waits at most that long
// for the giver to begin, while the address is still where it was.
const IDLE_POLL_MS = 250;
// The taker waits this long for the giver's step: its step deadline, and two seconds to notice and answer.
const GIVER_DEADLINE_MS = STEP_DEADLINE_MS + 2000;
// A giver that has removed its address and then sees no handover for this long serves again by itself: the taker's
// next move is one read and one transaction (ms), so 2 s means it is gone or cut off. Safe against a late taker: the
// giver's compare-and-swap and the taker's handover both compare the record's revision, and only one can win.
const GIVER_ALONE_BEFORE_HANDOVER_MS = 2000;
// After the handover the giver waits out the taker's confirmation (its own confirm.timeout_s, as the hosts' files
// normally agree) and this much more before it gives its keyless lease up on its own.
const GIVER_ALONE_AFTER_HANDOVER_SLACK_MS = 15_000;
// After done, the taker waits this long for the giver to end its hold before it reports the switch done anyway.
const FINISH_WAIT_MS = 5000;
// While the giver drains (drain.timeout_s, 60 s by default) the taker reads the record this often: it waits for the
// connections, not for a gap.
const DRAIN_POLL_MS = 100;
// The taker waits for the giver's drain its drain.timeout_s and this much more (the giver's step deadline and a look).
const DRAIN_SLACK_MS = GIVER_DEADLINE_MS;
// A host that asked another to take the service follows the record this often (progress, not the gap).
const ASK_POLL_MS = 50;
// The host asked looks for a request at least every IDLE_POLL_MS; one that has not taken it within this long is not
// running or cannot reach etcd, and the request is withdrawn (nothing has moved).
const PICKUP_MS = 3000;

/** Each phase in words, for the host that asked and follows the record. */
const PHASE_WORDS: Readonly<Record<SwitchPhase, string>> = {
  'requested': 'asked',
  'giver-down-requested': 'the taker is ready (backup-net-down, assign-ip); the giver is asked for primary-net-down',
  'giver-down': 'the giver took its address down (primary-net-down)',
  'giver-failed': 'the giver could not take its address down',
  'handed-over': 'the key was handed over to the taker in one transaction; backup-net-up, then confirm-traffic',
  'done': 'the taker serves, requests confirmed; the giver ends its hold (and drains its connections, when the switch drains)',
  'drained': 'the giver\'s connections drained (drain-connections); the taker ends its forwarding (end-forwarding)',
  'forwarding-ended': 'the taker ended its forwarding; the giver ends its hold on the address (end-hold)',
  'finished': 'the giver ended its hold',
  'rolling-back': 'rolling back: the giver puts its address back',
  'handed-back': 'rolling back: the key was handed back to the giver',
  'rolled-back': 'rolled back',
};

type Emit = (progress: SwitchProgress) => void;

export class EtcdSwitch {
  readonly #deps: EtcdSwitchDeps;
  readonly #key: string;
  readonly #serviceKey: string;
  #running = false;
  #current: Promise<void> | undefined;
  /** The giver's addresses while this host takes over in a switch that drains (StepContext.giverAddresses). */
  #giverAddresses: readonly string[] = [];
  /** The switch whose hold-connections is in place on this host, the giver. */
  #holding: string | undefined;

  constructor(deps: EtcdSwitchDeps) {
    this.#deps = deps;
    const {prefix} = deps.config.coordination;
    this.#key = switchKey(prefix, deps.service.name);
    this.#serviceKey = serviceKey(prefix, deps.service.name);
  }

  /**
   * `baton switchover --to HOST`, asked on any host: run here when HOST is this host, else asked of HOST through the
   * record (phase requested), which HOST runs and writes the result into.
   */
  async switchover(options: SwitchoverOptions, emit: Emit): Promise<SwitchResult> {
    const self = this.#deps.config.coordination.host;
    const to = refuseUnsupported(options, this.#deps.service.hosts);
    return to === self ? this.#switchHere(options, emit, undefined) : this.#ask(to, options, emit);
  }

  /** The switch to this host, run here end to end; `requested`: the record another host wrote to ask for it. */
  async #switchHere(options: SwitchoverOptions, emit: Emit, requested: {revision: number; value: SwitchRecord} | undefined): Promise<SwitchResult> {
    const {config, service, claim, log} = this.#deps;
    const self = config.coordination.host;
    if (this.#running || claim.switching !== undefined) {
      throw new BatonError('SWITCH_IN_PROGRESS', `switch ${claim.switching ?? ''} is already running on this host`.replace('  ', ' '));
    }
    const key = await this.#holderOtherThan(self, `this host (${self})`);
    if (!this.#deps.healthy()) throw new BatonError('PREFLIGHT_REFUSED', `the health checks of host ${self} fail: it does not take ${service.name}`);
    // As a pair's: no switch that cannot be confirmed. Checked before anything moves.
    const accessLog = this.#deps.accessLog;
    if (service.confirm.accessLog === undefined || accessLog === undefined) {
      throw new BatonError('ACCESS_LOG_UNREADABLE', `confirm.access_log is not set in ${config.file} on host ${self}: baton cannot confirm traffic here`);
    }
    await accessLog.check();
    const revision = requested?.revision ?? await this.#recordRevisionIfOver();
    this.#running = true;
    const id = requested?.value.id ?? this.#deps.newId();
    claim.switchBegan(id);
    const running = (async () => {
      try {
        const result = await this.#run(id, key, revision, options, emit);
        await this.#recordResult(id, result);
        return result;
      } finally {
        claim.switchEnded();
        this.#running = false;
        this.#giverAddresses = [];
        log.info(`(switch ${id}) over`);
      }
    })();
    this.#current = running.then(() => undefined, () => undefined);
    return running;
  }

  /** The giver's addresses while this host takes over in a switch that drains (for forward-strays). */
  get giverAddresses(): readonly string[] {
    return this.#giverAddresses;
  }

  /** Resolves when no switch runs on this host (one that runs ends by its own deadlines). */
  async idle(): Promise<void> {
    await this.#current;
  }

  /** The end of a switch, into its record for the host that asked (the phase stays: the giver may still act on it). */
  async #recordResult(id: string, result: SwitchResult): Promise<void> {
    const ended: RecordedResult = {outcome: result.outcome === 'done' ? 'done' : 'rolled-back', reason: result.reason ?? '', totalMs: result.totalMs,
      ...result.failedStep === undefined ? {} : {failedStep: result.failedStep},
      ...result.confirmedRequests === undefined ? {} : {confirmedRequests: result.confirmedRequests},
      ...result.drain === undefined ? {} : {drain: result.drain}};
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = await this.#read().catch(() => undefined);
      if (now === undefined || now.value.id !== id) return;
      // Nothing was done on the giver (it failed, or never began): the switch is over for it too.
      const phase: SwitchPhase = ended.outcome === 'rolled-back' && (now.value.phase === 'giver-failed' || now.value.phase === 'requested')
        ? 'rolled-back' : now.value.phase;
      const wrote = await this.#deps.store.transact([{key: this.#key, modRevision: now.revision}],
        [{type: 'put', key: this.#key, value: JSON.stringify({...now.value, phase, result: ended})}], {timeoutMs: CALL_TIMEOUT_MS}).catch(() => undefined);
      if (wrote?.succeeded === true) return;
    }
    this.#deps.log.warning(`(switch ${id}) its result could not be written to ${this.#key}: the host that asked will not see it`);
  }

  /** The service key, held by another host than `taker` (`who` in words): nothing to move otherwise. */
  async #holderOtherThan(taker: string, who: string): Promise<StoredKey> {
    const {service, store} = this.#deps;
    const key = await store.read(this.#serviceKey, {timeoutMs: CALL_TIMEOUT_MS});
    if (key === undefined) throw new BatonError('PREFLIGHT_REFUSED', `nobody holds ${service.name} (${this.#serviceKey} is absent): there is nothing to move`);
    if (key.value === taker) throw new BatonError('PREFLIGHT_REFUSED', `${who} holds ${service.name} already, at epoch ${key.modRevision}`);
    return key;
  }

  /** The switch record's revision (0: none) when no switch is under way; a switch that is refuses this one. */
  async #recordRevisionIfOver(): Promise<number> {
    const existing = await this.#deps.store.read(this.#key, {timeoutMs: CALL_TIMEOUT_MS});
    const before = existing === undefined ? undefined : decodeSwitchRecord(existing.value);
    if (existing !== undefined && typeof before === 'object' && !FINAL_PHASES.includes(before.phase)) {
      throw new BatonError('SWITCH_IN_PROGRESS', `switch ${before.id} from ${before.giver} to ${before.taker} is ${before.phase} (${this.#key})`);
    }
    return existing?.modRevision ?? 0;
  }

  /** Asks host `to` to take the service: writes the request, then follows the record until the taker writes the end. */
  async #ask(to: string, options: SwitchoverOptions, emit: Emit): Promise<SwitchResult> {
    const {config, service, store, clock, log} = this.#deps;
    const self = config.coordination.host;
    const key = await this.#holderOtherThan(to, `host ${to}`);
    const recordRevision = await this.#recordRevisionIfOver();
    const id = this.#deps.newId();
    const started = clock.now();
    const ask: SwitchRecord = {id, giver: key.value, taker: to, epoch: key.modRevision, phase: 'requested', requestedBy: self,
      ...options.minRequests === undefined ? {} : {minRequests: options.minRequests},
      ...options.confirmTimeoutS === undefined ? {} : {confirmTimeoutS: options.confirmTimeoutS}};
    const wrote = await store.transact([{key: this.#key, modRevision: recordRevision}],
      [{type: 'put', key: this.#key, value: JSON.stringify(ask)}], {timeoutMs: CALL_TIMEOUT_MS});
    if (!wrote.succeeded) throw new BatonError('SWITCH_IN_PROGRESS', `${this.#key} changed while the switch was being asked for: another switch began`);
    const giver: HostLabel = {role: 'host', host: key.value};
    const taker: HostLabel = {role: 'host', host: to};
    emit({kind: 'start', switchId: id, giver, taker, mode: service.service.mode});
    emit({kind: 'note', text: `asked host ${to} to take ${service.name}: it runs the switch, and this host follows it in etcd`});
    log.notice(`(switch ${id}) asked ${to} to take ${service.name} from ${key.value}`);
    const rolledBack = (reason: string): SwitchResult => ({switchId: id, outcome: 'rolled-back', giver, taker, reason, failedStep: undefined,
      totalMs: Math.round(clock.now() - started), confirmedRequests: undefined, rollbackCheck: undefined, plan: undefined});
    const confirmS = options.confirmTimeoutS ?? service.confirm.timeoutS;
    const until = started + confirmS * 1000 + 2 * GIVER_DEADLINE_MS + FINISH_WAIT_MS + config.drain.timeoutS * 1000 + DRAIN_SLACK_MS;
    let lastPhase: SwitchPhase = 'requested';
    let revision = wrote.revision;
    while (clock.now() < until) {
      await clock.sleep(ASK_POLL_MS);
      const now = await this.#read().catch(() => undefined);
      if (now === undefined || now.value.id !== id) {
        throw new BatonError('STEP_FAILED', `switch ${id}: its record ${this.#key} was replaced; see \`baton status\` on ${to}`);
      }
      revision = now.revision;
      if (now.value.phase !== lastPhase) {
        lastPhase = now.value.phase;
        emit({kind: 'note', text: `${PHASE_WORDS[lastPhase]}${now.value.reason === undefined ? '' : ` (${now.value.reason})`}`});
      }
      const ended = now.value.result;
      if (ended !== undefined) {
        return {switchId: id, outcome: ended.outcome, giver, taker, reason: ended.reason, failedStep: ended.failedStep, totalMs: ended.totalMs,
          confirmedRequests: ended.confirmedRequests, rollbackCheck: undefined, plan: undefined, ...ended.drain === undefined ? {} : {drain: ended.drain}};
      }
      if (lastPhase === 'requested' && clock.now() - started > PICKUP_MS) {
        // Taken back only if the taker has still not moved it on: a compare-and-swap on the request itself.
        const reason = `host ${to} did not take the request within ${PICKUP_MS / 1000} s: its agent is not running, or it cannot reach etcd; nothing moved`;
        const result: RecordedResult = {outcome: 'rolled-back', reason, totalMs: Math.round(clock.now() - started)};
        const withdrawn = await store.transact([{key: this.#key, modRevision: revision}],
          [{type: 'put', key: this.#key, value: JSON.stringify({...ask, phase: 'rolled-back', result})}], {timeoutMs: CALL_TIMEOUT_MS}).catch(() => undefined);
        if (withdrawn?.succeeded === true) return rolledBack(reason);
      }
    }
    throw new BatonError('STEP_FAILED', `switch ${id}: no end from host ${to} within ${Math.round((until - started) / 1000)} s (its last phase: ` +
      `${lastPhase}); see \`baton status\` on ${to} and ${key.value}`);
  }

  async #run(id: string, key: StoredKey, recordRevision: number, options: SwitchoverOptions, emit: Emit): Promise<SwitchResult> {
    const {config, service, clock, store, claim, run, log} = this.#deps;
    const started = clock.now();
    const giver: HostLabel = {role: 'host', host: key.value};
    const taker: HostLabel = {role: 'host', host: config.coordination.host};
    const epoch = key.modRevision;
    emit({kind: 'start', switchId: id, giver, taker, mode: service.service.mode});
    log.notice(`(switch ${id}) ${service.name} from ${giver.host} (epoch ${epoch}) to ${taker.host}`);
    // The drain needs both hosts, as a pair's: without it the switch is the runbook's five steps, and connections open
    // at the move are cut, as they always were. Never silently.
    const drainPlan = await this.#decideDrain(giver.host);
    if (drainPlan.off !== undefined) {
      log.warning(`(switch ${id}) no drain: ${drainPlan.off}`);
      if (config.drain.enabled) emit({kind: 'note', text: `no drain: ${drainPlan.off}; connections open on host ${giver.host} at the move will be cut`});
    }
    const giverAddresses = drainPlan.giverAddresses ?? [];
    const drains = giverAddresses.length > 0;
    this.#giverAddresses = giverAddresses;
    const applied: SwitchStepName[] = [];
    let prepared: PreparedHold | undefined;
    let record: {revision: number; value: SwitchRecord} | undefined;
    let counter: TrafficCounter | undefined;
    let failedStep: string | undefined;
    // forward-strays is in force here (applied, not yet ended or taken back).
    let forwarding = false;
    const local = async (step: SwitchStepName): Promise<void> => {
      const at = clock.now();
      failedStep = step;
      try {
        await claim.addressOp(() => executeStep(step, run));
      } catch (error) {
        emit({kind: 'step', step, host: taker, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - at), detail: describeError(error)});
        throw error;
      }
      applied.push(step);
      emit({kind: 'step', step, host: taker, action: 'apply', status: 'ok', elapsedMs: Math.round(clock.now() - at), detail: undefined});
    };
    const result = (outcome: 'done' | 'rolled-back', reason: string, confirmed: number | undefined, drain?: DrainSummary): SwitchResult => ({
      switchId: id, outcome, giver, taker, reason, failedStep: outcome === 'done' ? undefined : failedStep,
      totalMs: Math.round(clock.now() - started), confirmedRequests: confirmed, rollbackCheck: undefined, plan: undefined,
      ...drain === undefined ? {} : {drain},
    });
    /** Takes forward-strays back when the switch ends without end-forwarding (after the giver serves again). */
    const stopForwarding = async (): Promise<void> => {
      if (!forwarding) return;
      const at = clock.now();
      await executeUndo('forward-strays', run).then(
        () => emit({kind: 'step', step: 'forward-strays', host: taker, action: 'undo', status: 'ok', elapsedMs: Math.round(clock.now() - at), detail: undefined}),
        (error: unknown) => emit({kind: 'step', step: 'forward-strays', host: taker, action: 'undo', status: 'failed', elapsedMs: Math.round(clock.now() - at),
          detail: describeError(error)}));
      forwarding = false;
    };

    // Before the handover: what fails is taken back here, and the giver is asked to put its address back.
    let handedAt: number | undefined;
    try {
      await local('backup-net-down');
      await local('assign-ip');
      if (drains) {
        await local('forward-strays');
        forwarding = true;
      }
      failedStep = 'assign-ip';
      prepared = await claim.prepareHold();
      const asked: SwitchRecord = {id, giver: giver.host, taker: taker.host, epoch, phase: 'giver-down-requested',
        ...drains ? {giverAddresses, drainTimeoutS: config.drain.timeoutS} : {}};
      const written = await store.transact(
        [{key: this.#serviceKey, modRevision: epoch}, {key: this.#key, modRevision: recordRevision}],
        [{type: 'put', key: this.#key, value: JSON.stringify(asked)}], {timeoutMs: CALL_TIMEOUT_MS});
      if (!written.succeeded) throw new BatonError('STEP_FAILED', `${this.#serviceKey} or ${this.#key} changed since the preflight`);
      record = {revision: written.revision, value: asked};
      failedStep = drains ? 'hold-connections' : 'primary-net-down';
      const downAt = clock.now();
      const answer = await this.#waitFor(id, ['giver-down', 'giver-failed', 'rolling-back'], GIVER_DEADLINE_MS);
      if (answer === undefined || answer.value.phase !== 'giver-down') {
        const why = answer === undefined ? `${giver.host} did not answer within ${GIVER_DEADLINE_MS / 1000} s` : answer.value.reason ?? answer.value.phase;
        const step = answer?.value.failedStep ?? 'primary-net-down';
        failedStep = step;
        emit({kind: 'step', step, host: giver, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - downAt), detail: why});
        if (answer !== undefined) record = answer;
        throw new BatonError('STEP_FAILED', `${step} on ${giver.host}: ${why}`);
      }
      record = answer;
      const holdMs = answer.value.holdMs ?? 0;
      if (drains) emit({kind: 'step', step: 'hold-connections', host: giver, action: 'apply', status: 'ok', elapsedMs: Math.round(holdMs), detail: undefined});
      emit({kind: 'step', step: 'primary-net-down', host: giver, action: 'apply', status: 'ok', elapsedMs: Math.round(Math.max(0, clock.now() - downAt - holdMs)),
        detail: undefined});
      // The handover: the key to this host's lease, only if nobody wrote it or the record since.
      failedStep = 'backup-net-up';
      const handed: SwitchRecord = {...answer.value, phase: 'handed-over'};
      const handover = await store.transact(
        [{key: this.#serviceKey, modRevision: epoch}, {key: this.#key, modRevision: answer.revision}],
        [{type: 'put', key: this.#serviceKey, value: taker.host, lease: prepared.lease}, {type: 'put', key: this.#key, value: JSON.stringify(handed)}],
        {timeoutMs: CALL_TIMEOUT_MS});
      if (!handover.succeeded) throw new BatonError('STEP_FAILED', `the handover of ${this.#serviceKey} was refused: the key or the record changed`);
      handedAt = handover.revision;
      record = {revision: handover.revision, value: handed};
      claim.adoptHold(prepared, handover.revision);
      log.notice(`(switch ${id}) ${this.#serviceKey} handed over at epoch ${handover.revision}`);
    } catch (error) {
      const reason = describeError(error);
      log.error(`(switch ${id}) rolling back: ${reason}`);
      await this.#rollBackBeforeHandover(id, record, prepared, applied, giver, emit);
      // forward-strays was among the steps taken back.
      forwarding = false;
      return result('rolled-back', reason, undefined);
    }

    // After the handover: this host holds the key; a failure hands it back.
    try {
      // Counting from before backup-net-up: a request that arrives at once is not missed.
      const accessLog = this.#deps.accessLog;
      if (accessLog !== undefined) counter = new TrafficCounter(accessLog, clock, service.confirm.statuses);
      if (!prepared.holder.holds()) throw new BatonError('STEP_FAILED', 'this host\'s lease deadline passed before backup-net-up');
      await local('backup-net-up');
      this.#deps.onServing?.();
      let count: number | undefined;
      if (counter !== undefined) {
        failedStep = 'confirm-traffic';
        const needed = options.minRequests ?? service.confirm.minRequests;
        const timeoutMs = (options.confirmTimeoutS ?? service.confirm.timeoutS) * 1000;
        const at = clock.now();
        count = await counter.waitFor(needed, timeoutMs, (n, elapsedMs) =>
          emit({kind: 'waiting', step: 'confirm-traffic', host: taker, count: n, needed, elapsedMs: Math.round(elapsedMs)}));
        emit({kind: 'step', step: 'confirm-traffic', host: taker, action: 'check', status: 'ok', elapsedMs: Math.round(clock.now() - at),
          detail: `${count} request(s) in the access log`});
      }
      const done: SwitchRecord = {...record.value, phase: 'done'};
      const wrote = await store.transact([{key: this.#key, modRevision: record.revision}], [{type: 'put', key: this.#key, value: JSON.stringify(done)}],
        {timeoutMs: CALL_TIMEOUT_MS});
      // Confirmed: nothing from here on rolls the switch back (as a pair's drain-connections, end-forwarding, end-hold).
      let drain: DrainSummary | undefined;
      if (wrote.succeeded && drains) {
        drain = await this.#drainAndTidy(id, giver, taker, emit, () => {
          forwarding = false;
        });
      } else if (wrote.succeeded) {
        await this.#waitFor(id, ['finished'], FINISH_WAIT_MS);
      }
      await stopForwarding();
      const reason = `switch ${id}: host ${taker.host} serves ${service.name} at epoch ${handedAt}, ${count ?? 0} request(s) confirmed; ` +
        `host ${giver.host} is free to upgrade${drain === undefined ? '' : `; ${drainText(drain)}`}`;
      log.notice(`(switch ${id}) done: ${reason}`);
      return result('done', reason, count, drain);
    } catch (error) {
      const reason = describeError(error);
      log.error(`(switch ${id}) handing back: ${reason}`);
      await this.#handBack(id, record, prepared, handedAt, giver, taker, emit);
      await stopForwarding();
      return result('rolled-back', reason, undefined);
    } finally {
      counter?.stop();
      // Whatever happened, forward-strays does not outlive the switch.
      if (forwarding) await executeUndo('forward-strays', run).catch((error: unknown) => log.error(`(switch ${id}) taking forward-strays back failed: ${describeError(error)}`));
    }
  }

  /** What the drain reads of this host's file for this service. */
  #drainSettings(): DrainSettings {
    const {config, service} = this.#deps;
    return {file: config.file, service: service.service, drain: config.drain};
  }

  /**
   * Whether this switch drains, as a pair's coordinator decides it: this host's own readiness, and the giver's as its
   * presence value says it (its own addresses, one per service address and of its family), or why not.
   */
  async #decideDrain(giverHost: string): Promise<{readonly giverAddresses: readonly string[]; readonly off?: undefined} | {readonly giverAddresses?: undefined; readonly off: string}> {
    const {config, store, run} = this.#deps;
    const self = config.coordination.host;
    const mine = await drainReadiness(this.#drainSettings(), run.ctx.drain).catch((error: unknown) => ({unavailable: `looking failed: ${describeError(error)}`}));
    if (mine.unavailable !== undefined) return {off: `host ${self} (the taker) cannot drain: ${mine.unavailable}`};
    const key = presenceKey(config.coordination.prefix, giverHost);
    let stored;
    try {
      stored = await store.read(key, {timeoutMs: CALL_TIMEOUT_MS});
    } catch (error) {
      return {off: `host ${giverHost}'s presence (${key}) could not be read: ${describeError(error)}`};
    }
    if (stored === undefined) return {off: `host ${giverHost} has no presence key (${key}): its own addresses for the drain are not known`};
    const theirs = parsePresence(stored.value)?.drain?.[this.#deps.service.name];
    if (theirs === undefined) {
      return {off: `host ${giverHost}'s presence (${key}) does not say its own addresses for the drain (its baton is older than the drain in etcd mode?)`};
    }
    if (theirs.unavailable !== undefined) return {off: `host ${giverHost} (the giver) cannot drain: ${theirs.unavailable}`};
    const families = this.#deps.service.service.ips.map((ip) => ip.family);
    const matching = theirs.addresses.length === families.length && families.every((family, i) => parseIpAddress(theirs.addresses[i] ?? '')?.family === family);
    return matching ? {giverAddresses: theirs.addresses}
      : {off: `host ${giverHost} did not say an address of its own for each service address (${families.map((f) => `IPv${f}`).join(' and ')}): it said ${theirs.addresses.join(', ')}`};
  }

  /**
   * After the taker is confirmed: the giver drains (drain-connections), then this host ends its forwarding
   * (end-forwarding), then the giver its hold (end-hold). Never throws: what goes wrong is in the summary's problems.
   */
  async #drainAndTidy(id: string, giver: HostLabel, taker: HostLabel, emit: Emit, forwardingEnded: () => void): Promise<DrainSummary> {
    const {config, clock, store, run, log} = this.#deps;
    const problems: string[] = [];
    const waitMs = config.drain.timeoutS * 1000 + DRAIN_SLACK_MS;
    const drainAt = clock.now();
    const drained = await this.#waitFor(id, ['drained', 'finished'], waitMs, DRAIN_POLL_MS,
      (elapsedMs) => emit({kind: 'waiting', step: 'drain-connections', host: giver, count: -1, needed: 0, elapsedMs: Math.round(elapsedMs)}));
    const end = drained?.value.phase === 'drained' ? drained.value.drained : undefined;
    if (end !== undefined) {
      emit({kind: 'step', step: 'drain-connections', host: giver, action: 'apply', status: 'ok', elapsedMs: Math.round(clock.now() - drainAt),
        detail: end.left === 0 ? 'no connection left' : `${end.left} connection(s) left at the drain timeout, cut`});
    } else {
      const why = drained === undefined ? `host ${giver.host} did not say its drain ended within ${Math.round(waitMs / 1000)} s`
        : `host ${giver.host} ended its hold without draining (its agent restarted?)`;
      problems.push(`drain-connections on host ${giver.host}: ${why}`);
      emit({kind: 'step', step: 'drain-connections', host: giver, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - drainAt), detail: why});
    }
    const endAt = clock.now();
    try {
      await executeStep('end-forwarding', run);
      forwardingEnded();
      emit({kind: 'step', step: 'end-forwarding', host: taker, action: 'apply', status: 'ok', elapsedMs: Math.round(clock.now() - endAt), detail: undefined});
    } catch (error) {
      problems.push(`end-forwarding on host ${taker.host}: ${describeError(error)}`);
      emit({kind: 'step', step: 'end-forwarding', host: taker, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - endAt), detail: describeError(error)});
    }
    if (drained?.value.phase === 'drained') {
      const holdAt = clock.now();
      const next: SwitchRecord = {...drained.value, phase: 'forwarding-ended'};
      const told = await store.transact([{key: this.#key, modRevision: drained.revision}], [{type: 'put', key: this.#key, value: JSON.stringify(next)}],
        {timeoutMs: CALL_TIMEOUT_MS}).catch((error: unknown) => {
        log.error(`(switch ${id}) cannot tell ${giver.host} to end its hold: ${describeError(error)}`);
        return undefined;
      });
      const finished = told?.succeeded === true ? await this.#waitFor(id, ['finished'], GIVER_DEADLINE_MS) : undefined;
      const why = finished === undefined ? `host ${giver.host} did not say it ended its hold (it ends it by itself ${GIVER_DEADLINE_MS / 1000} s after the drain)`
        : finished.value.problem;
      if (why !== undefined) problems.push(`end-hold on host ${giver.host}: ${why}`);
      emit({kind: 'step', step: 'end-hold', host: giver, action: 'apply', status: why === undefined ? 'ok' : 'failed', elapsedMs: Math.round(clock.now() - holdAt),
        detail: why});
    }
    return {left: end?.left, ms: end?.ms ?? 0, graceful: end?.graceful, problems};
  }

  /** Before the handover: the giver puts its address back (if it took it away), this host takes its steps back. */
  async #rollBackBeforeHandover(id: string, record: {revision: number; value: SwitchRecord} | undefined, prepared: PreparedHold | undefined,
    applied: readonly SwitchStepName[], giver: HostLabel, emit: Emit): Promise<void> {
    const {store, claim, run, clock, log} = this.#deps;
    if (record !== undefined && record.value.phase !== 'giver-failed') {
      const back: SwitchRecord = {...record.value, phase: 'rolling-back'};
      const asked = await store.transact([{key: this.#key, modRevision: record.revision}], [{type: 'put', key: this.#key, value: JSON.stringify(back)}],
        {timeoutMs: CALL_TIMEOUT_MS}).catch((error: unknown) => {
        log.error(`(switch ${id}) cannot ask ${giver.host} to put its address back: ${describeError(error)}; it does by itself when it hears nothing`);
        return undefined;
      });
      if (asked?.succeeded === true) {
        const at = clock.now();
        const ended = await this.#waitFor(id, ['rolled-back'], GIVER_DEADLINE_MS);
        emit({kind: 'step', step: 'primary-net-down', host: giver, action: 'undo', status: ended === undefined ? 'failed' : 'ok',
          elapsedMs: Math.round(clock.now() - at), detail: ended === undefined ? `${giver.host} did not say it serves again` : undefined});
      } else if (asked !== undefined) {
        // The giver moved the record on (it rolled back by itself, or failed): read it for what it says.
        const now = await this.#read();
        log.warning(`(switch ${id}) the record changed under the rollback: ${now === undefined ? 'gone' : now.value.phase}`);
      }
    }
    for (const step of [...applied].reverse()) {
      const at = clock.now();
      await claim.addressOp(() => executeUndo(step, run)).then(
        () => emit({kind: 'step', step, host: {role: 'host', host: this.#deps.config.coordination.host}, action: 'undo', status: 'ok', elapsedMs: Math.round(clock.now() - at), detail: undefined}),
        (error: unknown) => emit({kind: 'step', step, host: {role: 'host', host: this.#deps.config.coordination.host}, action: 'undo', status: 'failed', elapsedMs: Math.round(clock.now() - at), detail: describeError(error)}));
    }
    if (prepared !== undefined) await prepared.holder.release();
  }

  /** After the handover: this host's address goes, the key goes back to the giver's lease, and the giver serves again. */
  async #handBack(id: string, record: {revision: number; value: SwitchRecord}, prepared: PreparedHold, handedAt: number | undefined,
    giver: HostLabel, taker: HostLabel, emit: Emit): Promise<void> {
    const {store, claim, run, clock, log} = this.#deps;
    const at = clock.now();
    await claim.addressOp(() => executeUndo('backup-net-up', run)).catch((error: unknown) =>
      log.error(`(switch ${id}) removing the address for the handback failed: ${describeError(error)}`));
    emit({kind: 'step', step: 'backup-net-up', host: taker, action: 'undo', status: 'ok', elapsedMs: Math.round(clock.now() - at), detail: undefined});
    const giverLease = record.value.giverLease;
    const back: SwitchRecord = {...record.value, phase: 'handed-back'};
    const handed = giverLease === undefined || handedAt === undefined ? undefined : await store.transact(
      [{key: this.#serviceKey, modRevision: handedAt}, {key: this.#key, modRevision: record.revision}],
      [{type: 'put', key: this.#serviceKey, value: giver.host, lease: giverLease}, {type: 'put', key: this.#key, value: JSON.stringify(back)}],
      {timeoutMs: CALL_TIMEOUT_MS}).catch((error: unknown) => {
      log.error(`(switch ${id}) the handback failed: ${describeError(error)}`);
      return undefined;
    });
    if (handed?.succeeded !== true) {
      // The giver's lease is gone (its agent died) or the key moved: this host keeps the service rather than leave
      // it on nobody.
      log.error(`(switch ${id}) the key could not go back to ${giver.host}: this host keeps ${this.#deps.service.name}`);
      await claim.addressOp(() => executeStep('backup-net-up', run)).catch((error: unknown) =>
        log.error(`(switch ${id}) putting the address back failed: ${describeError(error)}`));
      emit({kind: 'note', text: `the key could not go back to host ${giver.host}: host ${taker.host} keeps serving`});
      return;
    }
    // The giver holds the key again: this host's hold ends (its lease holds no key any more).
    await prepared.holder.release();
    const back2 = clock.now();
    const ended = await this.#waitFor(id, ['rolled-back'], GIVER_DEADLINE_MS);
    emit({kind: 'step', step: 'primary-net-down', host: giver, action: 'undo', status: ended === undefined ? 'failed' : 'ok',
      elapsedMs: Math.round(clock.now() - back2), detail: ended === undefined ? `${giver.host} did not say it serves again` : undefined});
  }

  /** Reads the record until its phase is one of `phases` (for switch `id`), or `withinMs` passes (undefined). */
  async #waitFor(id: string, phases: readonly SwitchPhase[], withinMs: number, pollMs = FAST_POLL_MS,
    onSecond?: (elapsedMs: number) => void): Promise<{revision: number; value: SwitchRecord} | undefined> {
    const {clock} = this.#deps;
    const from = clock.now();
    const until = from + withinMs;
    let toldAt = from;
    while (clock.now() < until) {
      const now = await this.#read().catch(() => undefined);
      if (now !== undefined && now.value.id === id && phases.includes(now.value.phase)) return now;
      if (onSecond !== undefined && clock.now() - toldAt >= 1000) {
        toldAt = clock.now();
        onSecond(toldAt - from);
      }
      await clock.sleep(pollMs);
    }
    return undefined;
  }

  async #read(): Promise<{revision: number; value: SwitchRecord} | undefined> {
    const stored = await this.#deps.store.read(this.#key, {timeoutMs: CALL_TIMEOUT_MS});
    if (stored === undefined) return undefined;
    const value = decodeSwitchRecord(stored.value);
    if (typeof value === 'string') {
      this.#deps.log.warning(`(switch) ${this.#key} is not a switch record (${value}): ignored`);
      return undefined;
    }
    return {revision: stored.modRevision, value};
  }

  /**
   * The giver's part, and the leftovers of a switch this host took part in before a restart: reads the record and
   * acts on a phase that names this host, until `signal` aborts.
   */
  async serve(signal: AbortSignal): Promise<void> {
    const {clock, log} = this.#deps;
    let lastMove = clock.now();
    let lastSeen = '';
    while (!signal.aborted) {
      let record;
      try {
        record = await this.#read();
      } catch {
        record = undefined;
      }
      const seen = record === undefined ? '' : `${record.value.id}:${record.value.phase}`;
      if (seen !== lastSeen) {
        lastSeen = seen;
        lastMove = clock.now();
      }
      const busy = record !== undefined && !FINAL_PHASES.includes(record.value.phase) && this.#involves(record.value);
      if (record !== undefined && busy) {
        await this.#act(record, clock.now() - lastMove).catch((error: unknown) =>
          log.error(`(switch ${record.value.id}) ${describeError(error)}`));
      }
      await clock.sleep(busy ? FAST_POLL_MS : IDLE_POLL_MS, signal).catch(() => undefined);
    }
  }

  #involves(record: SwitchRecord): boolean {
    const self = this.#deps.config.coordination.host;
    return record.giver === self || (record.taker === self && !this.#running);
  }

  async #act({revision, value}: {revision: number; value: SwitchRecord}, stillForMs: number): Promise<void> {
    const {claim, run, log, store} = this.#deps;
    const self = this.#deps.config.coordination.host;
    const move = async (phase: SwitchPhase, extra: Partial<SwitchRecord> = {}): Promise<boolean> => {
      const next = {...value, ...extra, phase};
      const wrote = await store.transact([{key: this.#key, modRevision: revision}], [{type: 'put', key: this.#key, value: JSON.stringify(next)}],
        {timeoutMs: CALL_TIMEOUT_MS});
      return wrote.succeeded;
    };
    if (value.taker === self) {
      if (value.phase === 'requested') {
        await this.#takeRequested({revision, value});
        return;
      }
      // A switch to this host from before this agent started (it died mid-switch): its lease is gone with it.
      if (value.phase === 'giver-down-requested' || value.phase === 'giver-down') {
        log.warning(`(switch ${value.id}) left unfinished by this host's previous agent: asking ${value.giver} to serve again`);
        await move('rolling-back', {reason: `the taker's agent (${self}) restarted mid-switch`});
      }
      // Its drain, left waiting on this host: the forwarding went with the restart (the start removes a drain's
      // leftovers), so the giver may end its hold.
      if (value.phase === 'drained') {
        await executeUndo('forward-strays', run).catch((error: unknown) => log.error(`(switch ${value.id}) taking forward-strays back failed: ${describeError(error)}`));
        await move('forwarding-ended');
      }
      return;
    }
    switch (value.phase) {
      case 'giver-down-requested': {
        const hold = claim.currentHold();
        if (hold === undefined || hold.epoch !== value.epoch) {
          await move('giver-failed', {reason: `${self} does not hold the service at epoch ${value.epoch}`});
          return;
        }
        claim.switchBegan(value.id);
        const holdMs = value.giverAddresses === undefined ? undefined : await this.#holdConnections(value);
        if (typeof holdMs === 'string') {
          claim.switchEnded();
          await move('giver-failed', {reason: `hold-connections on ${self}: ${holdMs}`, failedStep: 'hold-connections'});
          return;
        }
        log.notice(`(switch ${value.id}) giving ${this.#deps.service.name} to ${value.taker}: primary-net-down`);
        try {
          await claim.addressOp(() => executeStep('primary-net-down', run));
        } catch (error) {
          await claim.addressOp(() => executeUndo('primary-net-down', run)).catch(() => undefined);
          await this.#undoHold(value.id);
          claim.switchEnded();
          await move('giver-failed', {reason: `primary-net-down on ${self}: ${describeError(error)}`, failedStep: 'primary-net-down'});
          return;
        }
        if (!await move('giver-down', {giverLease: hold.lease, ...holdMs === undefined ? {} : {holdMs}})) await this.#serveAgain(value.id);
        return;
      }
      case 'giver-down':
      case 'handed-over':
        if (value.phase === 'handed-over' && await this.#keyGone()) {
          // The taker lost the key (its lease expired): nothing will come back to this host, whose address is down; its
          // keyless lease ends now, so that it campaigns like the others instead of waiting the switch out. (A key that
          // names this host again is a handback read before its record: the next look sees handed-back.)
          log.warning(`(switch ${value.id}) ${value.taker} no longer holds the key after the handover: this host's hold ends`);
          // The record ends too: its taker is gone and will not write done, and a record left handed-over refuses
          // every later switch (found by the campaign's etcd part: the taker killed right after the handover).
          await move('finished', {reason: `${value.taker} lost the key after the handover`});
          claim.switchEnded();
          await claim.release();
          await this.#undoHold(value.id);
          return;
        }
        // The taker's turn. One that went silent for long leaves this host to take its address back (before the
        // handover: it still holds the key) or to give up its hold (after: the key is the taker's).
        if (stillForMs < (value.phase === 'giver-down' ? GIVER_ALONE_BEFORE_HANDOVER_MS
          : this.#deps.service.confirm.timeoutS * 1000 + GIVER_ALONE_AFTER_HANDOVER_SLACK_MS)) return;
        if (value.phase === 'giver-down') {
          log.error(`(switch ${value.id}) ${value.taker} said nothing for ${Math.round(stillForMs / 1000)} s after primary-net-down: serving again`);
          if (await move('rolled-back', {reason: `${value.taker} went silent mid-switch`})) await this.#serveAgain(value.id);
        } else {
          log.error(`(switch ${value.id}) ${value.taker} said nothing for ${Math.round(stillForMs / 1000)} s after the handover: this host's hold ends`);
          // Ended here too, or it refuses every later switch (the campaign: giver and taker killed after the handover).
          await move('finished', {reason: `${value.taker} said nothing after the handover`});
          claim.switchEnded();
          await claim.release();
          await this.#undoHold(value.id);
        }
        return;
      case 'rolling-back':
        await this.#serveAgain(value.id);
        await move('rolled-back');
        return;
      case 'handed-back': {
        const key = await store.read(this.#serviceKey, {timeoutMs: CALL_TIMEOUT_MS});
        if (key?.value === self) claim.epochChanged(key.modRevision);
        await this.#serveAgain(value.id);
        await move('rolled-back');
        return;
      }
      case 'done': {
        claim.switchEnded();
        await claim.release();
        if (this.#holding === value.id) {
          // The drain: this host's connections finish here while the taker serves (drain-connections, as a pair's).
          const {config, clock, runner} = this.#deps;
          const timeoutMs = (value.drainTimeoutS ?? config.drain.timeoutS) * 1000;
          const end = await waitForDrain({config: this.#drainSettings(), clock, log, runner, drain: run.ctx.drain}, value.id, timeoutMs);
          await move('drained', {drained: end});
          return;
        }
        await move('finished');
        log.notice(`(switch ${value.id}) ${value.taker} serves ${this.#deps.service.name}; this host is free`);
        return;
      }
      case 'drained':
        // The taker ends its forwarding. One that says nothing for long leaves the hold to end here anyway.
        if (stillForMs < GIVER_DEADLINE_MS) return;
        log.error(`(switch ${value.id}) ${value.taker} said nothing for ${Math.round(stillForMs / 1000)} s after the drain: ending the hold`);
        await this.#endHold({revision, value}, move);
        return;
      case 'forwarding-ended':
        await this.#endHold({revision, value}, move);
        return;
      case 'giver-failed':
        return;
    }
  }

  /** A switch to this host asked for on another host: run it here; a refusal goes into the record as its end. */
  async #takeRequested(requested: {revision: number; value: SwitchRecord}): Promise<void> {
    const {log, clock, store} = this.#deps;
    const {value} = requested;
    const started = clock.now();
    log.notice(`(switch ${value.id}) ${value.requestedBy ?? 'another host'} asks this host to take ${this.#deps.service.name} from ${value.giver}`);
    const options: SwitchoverOptions = {dryRun: false, strict: false, minRequests: value.minRequests, confirmTimeoutS: value.confirmTimeoutS,
      pauseAfter: undefined, to: value.taker};
    try {
      await this.#switchHere(options, (progress) => log.info(`(switch ${value.id}) ${JSON.stringify(progress)}`), requested);
    } catch (error) {
      const reason = describeError(error);
      log.error(`(switch ${value.id}) refused: ${reason}`);
      const result: RecordedResult = {outcome: 'rolled-back', reason, totalMs: Math.round(clock.now() - started)};
      await store.transact([{key: this.#key, modRevision: requested.revision}],
        [{type: 'put', key: this.#key, value: JSON.stringify({...value, phase: 'rolled-back', result})}], {timeoutMs: CALL_TIMEOUT_MS})
        .catch((failure: unknown) => log.error(`(switch ${value.id}) the refusal could not be written: ${describeError(failure)}`));
    }
  }

  /** Whether the service key is absent (not when it cannot be read: then the giver waits, as before). */
  async #keyGone(): Promise<boolean> {
    const key = await this.#deps.store.read(this.#serviceKey, {timeoutMs: CALL_TIMEOUT_MS}).catch(() => 'unknown' as const);
    return key === undefined;
  }

  /** The giver puts its address back after a rollback, if it still holds the key (no probe: the taker never served),
   *  then takes its hold-connections back (a pair's rollback order). */
  async #serveAgain(id: string): Promise<void> {
    const {claim, run, log} = this.#deps;
    claim.switchEnded();
    if (claim.currentHold() === undefined) {
      await this.#undoHold(id);
      log.warning(`(switch ${id}) rolled back, but this host no longer holds the key: it stands by`);
      return;
    }
    try {
      await claim.addressOp(() => executeUndo('primary-net-down', run));
    } finally {
      await this.#undoHold(id);
    }
    log.notice(`(switch ${id}) rolled back: this host serves again`);
  }

  /**
   * The giver's hold-connections, before its primary-net-down: the addresses the taker forwards to must be this host's
   * own as they are now (its presence may be a moment old). Returns how long it took, or why it failed (taken back).
   */
  async #holdConnections(value: SwitchRecord): Promise<number | string> {
    const {service, claim, run, clock, log} = this.#deps;
    const at = clock.now();
    try {
      const own = await ownDrainAddresses(service.service, run.ctx.drain);
      const said = (value.giverAddresses ?? []).join(', ');
      if (own.unavailable !== undefined || own.addresses.join(', ') !== said) {
        throw new BatonError('STEP_FAILED', `the taker forwards to ${said}, but this host's own addresses are ` +
          `${own.unavailable ?? own.addresses.join(', ')} now (its presence is rewritten within a second: try again)`);
      }
      this.#holding = value.id;
      await claim.addressOp(() => executeStep('hold-connections', run));
    } catch (error) {
      await this.#undoHold(value.id);
      log.error(`(switch ${value.id}) hold-connections failed: ${describeError(error)}`);
      return describeError(error);
    }
    log.notice(`(switch ${value.id}) hold-connections: this host keeps accepting its connections' packets, without answering ARP`);
    return Math.round(clock.now() - at);
  }

  /** Takes this host's hold-connections back (the switch rolled back, or ended without its drain); idempotent. */
  async #undoHold(id: string): Promise<void> {
    if (this.#holding !== id) return;
    this.#holding = undefined;
    await executeUndo('hold-connections', this.#deps.run).catch((error: unknown) =>
      this.#deps.log.error(`(switch ${id}) taking hold-connections back failed; the next start removes it: ${describeError(error)}`));
  }

  /** The giver's end-hold once the taker ended its forwarding (or went silent): then the switch is finished. */
  async #endHold({value}: {revision: number; value: SwitchRecord},
    move: (phase: SwitchPhase, extra?: Partial<SwitchRecord>) => Promise<boolean>): Promise<void> {
    const {run, log} = this.#deps;
    let problem: string | undefined;
    try {
      await executeStep('end-hold', run);
    } catch (error) {
      problem = describeError(error);
      log.error(`(switch ${value.id}) end-hold failed: ${problem}; the next start removes it`);
    }
    this.#holding = undefined;
    await move('finished', problem === undefined ? {} : {problem});
    log.notice(`(switch ${value.id}) ${value.taker} serves ${this.#deps.service.name}; this host's connections drained and it is free`);
  }
}

/** What an etcd switch does not do (yet), refused before anything moves; the host to move the service to. */
function refuseUnsupported(options: SwitchoverOptions, hosts: readonly string[]): string {
  if (options.to === undefined) {
    throw new BatonError('BAD_REQUEST', `etcd mode: name the host to move the service to: \`baton switchover --to HOST\` (one of ${hosts.join(', ')})`);
  }
  if (!hosts.includes(options.to)) throw new BatonError('BAD_REQUEST', `--to ${options.to}: not one of the service's hosts (${hosts.join(', ')})`);
  if (options.dryRun) throw new BatonError('BAD_REQUEST', '--dry-run: not there yet in etcd mode');
  if (options.pauseAfter !== undefined) throw new BatonError('BAD_REQUEST', '--pause-after: etcd mode has no rehearsal aids');
  return options.to;
}
