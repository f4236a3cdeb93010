// The host that runs a planned switch end to end, from the one the operator asked: preflight, each step on the
// host that plays its side (here through the participant, there through peer requests), the confirmation, and
// the rollback of whatever was applied when anything fails. Streams progress; returns the outcome.

import type {JsonObject} from '../peer/beacon-codec.js';
import {decodeGiverAddress, giverAddressList, giverAddressParam, type PeerOp, type PeerParams} from '../peer/peer-protocol.js';
import type {Config} from '../config/schema.js';
import {hostText, type DrainSummary, type DryRunStep, type HostLabel, type SwitchProgress, type SwitchResult, type SwitchoverOptions} from '../control-protocol.js';
import {BatonError, describeError, isBatonError} from '../errors.js';
import {epochAbove} from '../epoch.js';
import type {Logger} from '../log.js';
import type {PeerRequester} from '../peer/peer-requests.js';
import type {Clock, HostInfoSource, NetworkDriver} from '../ports.js';
import {assertPreflight, comparePreflight, formatPreflight, parseHostInfo} from '../preflight.js';
import type {MachineState, PeerView} from '../state-machine.js';
import {STEP_DEADLINE_MS, withDeadline} from './executor.js';
import type {DrainEnd, DrainReadiness, SwitchParticipant} from './participant.js';
import {AFTER_CONFIRM_STEP_NAMES, planRollback, sideOf, switchoverPlan, type PlannedStep, type SwitchSide, type SwitchStepName} from './plans.js';
import {endpointText, parseIpAddress} from '../net/ip-address.js';
import {decodeHostAddresses} from '../peer/host-addresses.js';
import {isServingAll} from '../net/service-addresses.js';

// Remote steps get the step deadline plus two seconds of retries for lost datagrams.
const REMOTE_SLACK_MS = 2000;
// A live peer answers can-drain in milliseconds; one that says nothing for this long does not know the op.
const CAN_DRAIN_DEADLINE_MS = 2000;
// While waiting on the peer, its liveness is checked this often: a peer that died is noticed after dead_after_ms,
// not after the request's own deadline.
const PEER_WATCH_MS = 100;
// After a rollback the old host must show it serves again; one request is proof enough, and waiting the full
// confirmation time only when there is no traffic at all.
const ROLLBACK_CHECK_REQUESTS = 1;

export interface PeerSnapshot {
  readonly view: PeerView | undefined;
  readonly health: string | undefined;
  readonly label: HostLabel;
  readonly boot: string | undefined;
  readonly switchId: string;
  /** When the peer's datagrams arrive but are rejected (clocks apart, wrong key…): why, in words. */
  readonly rejecting: string | undefined;
}

export interface CoordinatorDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly hostInfo: HostInfoSource;
  readonly network: NetworkDriver;
  readonly self: HostLabel;
  /** The state machine as it is now. */
  readonly machine: () => MachineState;
  readonly participant: SwitchParticipant;
  readonly requester: PeerRequester;
  readonly peer: () => PeerSnapshot;
  readonly newSwitchId: () => string;
}

/** Runs the operator's switchovers from this host, one at a time. */
export class Coordinator {
  readonly #deps: CoordinatorDeps;
  #running = false;

  constructor(deps: CoordinatorDeps) {
    this.#deps = deps;
  }

  async run(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    if (this.#running) throw new BatonError('SWITCH_IN_PROGRESS', 'a switchover started from this host is already running');
    this.#running = true;
    try {
      return await runSwitchover(this.#deps, options, emit);
    } finally {
      this.#running = false;
    }
  }
}

/**
 * Runs a planned switchover from this host. Resolves with the outcome (done, rolled back, or the dry-run plan);
 * throws BatonError when it refuses to start (peer not alive, switch running, fault, preflight --strict).
 */
async function runSwitchover(c: CoordinatorDeps, options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
  const {participant, requester, config, clock, log} = c;
  const started = clock.now();
  const peer = c.peer();
  if (participant.current !== undefined) throw new BatonError('SWITCH_IN_PROGRESS', `switch ${participant.current.id} is already running`);
  if (peer.view?.alive !== true || peer.boot === undefined) {
    throw new BatonError('PEER_UNREACHABLE', `the peer ${peer.label.role} at ${endpointText(config.peer.address, config.peer.port)} is not alive` +
      `${peer.rejecting === undefined ? '' : ` (${peer.rejecting})`}: a planned switch needs both agents (see baton status)`);
  }
  if (peer.switchId !== '' || peer.view.state === 'switching') throw new BatonError('SWITCH_IN_PROGRESS', `the peer is already running switch ${peer.switchId}`);
  const selfServing = await isServingAll(c.network, config.service.ips);
  if (selfServing && peer.view.holdsIp) throw new BatonError('STEP_FAILED', 'both hosts hold the service IP: resolve that first (see baton status)');
  if (!selfServing && !peer.view.holdsIp) throw new BatonError('STEP_FAILED', 'neither host holds the service IP: there is nothing to switch over');
  const selfSide: SwitchSide = selfServing ? 'giver' : 'taker';
  const takerState = selfSide === 'taker' ? c.machine().name : peer.view.state;
  if (takerState === 'fault') {
    const why = selfSide === 'taker' ? `: ${c.machine().reason}` : '';
    throw new BatonError('STEP_FAILED', `the ${selfSide === 'taker' ? c.self.role : peer.label.role} is in fault${why}; it cannot take the service IP`);
  }
  if (takerState !== 'standby' && takerState !== 'released') throw new BatonError('STEP_FAILED', `the host to take over is ${takerState}, not standby`);
  const takerHealth = selfSide === 'taker' ? c.machine().health : peer.health;
  if (takerHealth === 'failing') throw new BatonError('STEP_FAILED', `the ${selfSide === 'taker' ? c.self.role : peer.label.role}'s health checks fail: it cannot take the service IP`);
  const labels: Record<SwitchSide, HostLabel> = selfSide === 'giver' ? {giver: c.self, taker: peer.label} : {giver: peer.label, taker: c.self};
  const needed = options.minRequests ?? config.confirm.minRequests;
  const confirmTimeoutMs = (options.confirmTimeoutS ?? config.confirm.timeoutS) * 1000;
  // Once the peer is found silent or restarted, the rest of the switch does not wait on it again: each request
  // would only run into its own deadline, and a restarted agent knows nothing of this switch. Its part is undone
  // by its journal when it comes back.
  let peerGone: string | undefined;
  const missingPeer = (): string | undefined => {
    if (peerGone !== undefined) return peerGone;
    const now = c.peer();
    if (now.view?.alive !== true) peerGone = `the ${peer.label.role} went silent (no valid beacon for ${config.heartbeat.deadAfterMs} ms${now.rejecting === undefined ? '' : `; ${now.rejecting}`})`;
    else if (now.boot !== peer.boot) peerGone = `the ${peer.label.role}'s agent restarted during the switch (boot ${peer.boot ?? '?'}, now ${now.boot ?? '?'}); it undoes its own part from its journal as it starts`;
    return peerGone;
  };
  const checkPeer = (): void => {
    const missing = missingPeer();
    if (missing !== undefined) throw new BatonError('PEER_UNREACHABLE', missing);
  };
  const remote = async <Op extends PeerOp>(op: Op, switchId: string, params: PeerParams<Op>, deadlineMs = STEP_DEADLINE_MS + REMOTE_SLACK_MS): Promise<JsonObject> => {
    checkPeer();
    const silent = new AbortController();
    const watch = async (): Promise<never> => {
      for (;;) {
        await clock.sleep(PEER_WATCH_MS, silent.signal);
        checkPeer();
      }
    };
    try {
      return await Promise.race([requester.request(op, switchId, params, {deadlineMs, signal: silent.signal}), watch()]);
    } finally {
      silent.abort();
    }
  };

  // Preflight: both hosts' software base, the target's load, and both access logs, before anything changes.
  // Both hosts collect their information at once. When one cannot (a version probe hung on a loaded host), the
  // comparison is incomplete: a warning, or a refusal under --strict. The switch itself does not depend on it,
  // and a switchover refused because a host is busy is the wrong answer to a busy host. A silent peer still fails.
  const [selfInfo, peerInfo] = await Promise.all([
    c.hostInfo.collect().catch((error: unknown) => `the ${c.self.role}: ${describeError(error)}`),
    remote('host-info', '', {}).then(
      (value) => {
        const parsed = parseHostInfo(value);
        return typeof parsed === 'string' ? `the ${peer.label.role}'s host information is unusable: ${parsed}` : parsed;
      },
      (error: unknown) => {
        if (isBatonError(error, 'PEER_UNREACHABLE')) throw error;
        return `the ${peer.label.role}: ${describeError(error)}`;
      }),
  ]);
  if (typeof selfInfo === 'string' || typeof peerInfo === 'string') {
    const missing = [selfInfo, peerInfo].filter((info) => typeof info === 'string').join('; ');
    if (options.strict) {
      throw new BatonError('PREFLIGHT_REFUSED', `preflight incomplete, the software bases could not be compared: ${missing}. ` +
        'Retry, or switch without --strict to go ahead with a warning.');
    }
    emit({kind: 'preflight', text: `preflight: incomplete, software base not compared\n  warning: ${missing}`});
  } else {
    const report = comparePreflight(selfInfo, peerInfo, selfSide === 'taker' ? 'self' : 'peer');
    emit({kind: 'preflight', text: formatPreflight(report, `${c.self.role}`, `${peer.label.role}`)});
    assertPreflight(report, options.strict);
  }
  const checkLog = (side: SwitchSide): Promise<unknown> => (side === selfSide ? participant.checkLog() : remote('check-log', '', {}));
  await checkLog('taker');
  const giverLog = await checkLog('giver').then(() => undefined, (error: unknown) => describeError(error));
  if (giverLog !== undefined) emit({kind: 'note', text: `warning: a rollback could not confirm traffic on the ${labels.giver.role}: ${giverLog}`});

  // The drain needs both hosts: the giver to hold its connections, the taker to hand their packets on. Without it
  // the switch is the runbook's five steps, and connections open at the move are cut, as they always were.
  const drainPlan = await decideDrain();
  if (drainPlan.off !== undefined && config.drain.enabled) emit({kind: 'note', text: `no drain: ${drainPlan.off}; connections open on the ${labels.giver.role} at the move will be cut`});
  const giverAddresses = drainPlan.giverAddresses ?? [];
  const drains = giverAddresses.length > 0;
  const giverParam = drains ? {giverAddress: giverAddressParam(giverAddresses)} : {};
  const steps = switchoverPlan(drains);

  const switchId = c.newSwitchId();
  if (options.dryRun) {
    const plan: DryRunStep[] = [];
    for (const step of steps) {
      plan.push(step.on === selfSide ? await participant.describe(step.name, giverAddresses)
        : await remote('plan', '', {step: step.name, ...giverParam}) as unknown as DryRunStep);
    }
    return {switchId, outcome: 'dry-run', giver: labels.giver, taker: labels.taker, reason: undefined, failedStep: undefined,
      totalMs: Math.round(clock.now() - started), confirmedRequests: undefined, rollbackCheck: undefined, plan};
  }

  const epoch = epochAbove(c.machine().epoch, peer.view.epoch);
  emit({kind: 'start', switchId, giver: labels.giver, taker: labels.taker, mode: config.service.mode});
  log.notice(`(switch ${switchId}) ${labels.giver.role} ${labels.giver.host} -> ${labels.taker.role} ${labels.taker.host}, ${config.service.mode} mode, epoch ${epoch}`);
  await participant.begin(switchId, selfSide, true, peer.boot, epoch, selfSide === 'taker' ? giverAddresses : []);
  const otherSide: SwitchSide = selfSide === 'giver' ? 'taker' : 'giver';
  try {
    const addresses = participant.sharedAddresses(switchId);
    const began = await remote('begin', switchId,
      otherSide === 'taker' ? {side: otherSide, epoch, ...giverParam, addresses} : {side: otherSide, epoch, addresses});
    participant.learnPeerAddresses(switchId, readPeerAddresses(began, log, switchId));
  } catch (error) {
    await participant.finish(switchId, 'rolled-back', `the peer refused to begin: ${describeError(error)}`);
    throw error;
  }

  const applied: SwitchStepName[] = [];
  // A step's report held back until the next step has started (deferReport), and given before anything else.
  let pendingReport: (() => void) | undefined;
  let confirmed: number | undefined;
  let failure: {step: SwitchStepName; error: unknown} | undefined;
  for (const planned of steps.filter((step) => !AFTER_CONFIRM_STEP_NAMES.includes(step.name))) {
    const host = labels[planned.on];
    const stepStarted = clock.now();
    let started = false;
    try {
      // No step that changes anything is taken without the peer that shares the switch: a giver must not release
      // the IP to a taker that died, nor a taker prepare for a giver that did. Confirming the traffic on this
      // host needs only the service, so it goes on when the giver is gone.
      if (!(planned.name === 'confirm-traffic' && planned.on === selfSide)) checkPeer();
      started = true;
      if (planned.name === 'confirm-traffic') {
        confirmed = await confirmOn(planned.on, needed, confirmTimeoutMs, host);
      } else if (planned.on === selfSide) {
        await withDeadline(participant.apply(switchId, planned.name), STEP_DEADLINE_MS, planned.name, clock);
      } else {
        await remote('apply', switchId, {step: planned.name});
      }
      applied.push(planned.name);
      flushReport();
      const elapsedMs = Math.round(clock.now() - stepStarted);
      const report = (): void => {
        emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'ok', elapsedMs,
          detail: planned.name === 'confirm-traffic' ? `${confirmed} request(s) in the access log` : undefined});
        log.info(`(switch ${switchId}) ${planned.name} on ${host.role} ok ${elapsedMs}ms`);
      };
      // After primary-net-down nobody serves until backup-net-up: that step starts first, and this one is reported
      // as soon as the loop is free, and in any case before anything about the next step.
      if (planned.name === 'primary-net-down' && options.pauseAfter?.step !== planned.name) deferReport(report);
      else report();
      await pauseIfAsked(planned.name);
    } catch (error) {
      flushReport();
      // A step that was applied on the host but failed its check, or whose answer was lost, is undone too; one
      // refused before it started is not.
      if (started && planned.name !== 'confirm-traffic') applied.push(planned.name);
      failure = {step: planned.name, error};
      emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - stepStarted), detail: describeError(error)});
      log.error(`(switch ${switchId}) ${planned.name} on ${host.role} failed: ${describeError(error)}`);
      break;
    }
  }

  flushReport();
  if (failure === undefined) {
    const drain = !drains ? undefined : await drainAndTidy(steps.filter((step) => AFTER_CONFIRM_STEP_NAMES.includes(step.name)));
    const reason = `switch ${switchId}: ${hostText(labels.taker)} serves, ${confirmed} request(s) confirmed; ${hostText(labels.giver)} is free to upgrade` +
      (drain === undefined ? '' : `; ${drainText(drain)}`);
    await finishBoth('done', reason);
    return {switchId, outcome: 'done', giver: labels.giver, taker: labels.taker, reason: undefined, failedStep: undefined,
      totalMs: Math.round(clock.now() - started), confirmedRequests: confirmed, rollbackCheck: undefined, plan: undefined, drain};
  }

  // Rollback: undo only what was applied, newest first, until the giver serves again; then check its log.
  const reason = `${failure.step} failed on the ${labels[sideOf(failure.step)].role}: ${describeError(failure.error)}`;
  emit({kind: 'note', text: `rolling back: ${reason}`});
  // A taker that did not undo backup-net-up (its agent died or restarted after it) may still serve from its
  // kernel, and a peer that is gone or restarted may decide on the IP by itself: then the giver takes it back only
  // when takeBackIfFree says so.
  let takerMayHold = false;
  let notTakenBack: string | undefined;
  for (const undo of planRollback(applied)) {
    const host = labels[undo.on];
    const undoStarted = clock.now();
    const unlessHeld = undo.name === 'primary-net-down' && (takerMayHold || peerGone !== undefined);
    try {
      if (undo.on === selfSide) await withDeadline(participant.undo(switchId, undo.name, unlessHeld), STEP_DEADLINE_MS, `undo ${undo.name}`, clock);
      else await remote('undo', switchId, {step: undo.name, unlessHeld});
      emit({kind: 'step', step: undo.name, host, action: 'undo', status: 'ok', elapsedMs: Math.round(clock.now() - undoStarted), detail: undefined});
    } catch (error) {
      if (undo.name === 'backup-net-up') takerMayHold = true;
      if (undo.name === 'primary-net-down') notTakenBack = describeError(error);
      emit({kind: 'step', step: undo.name, host, action: 'undo', status: 'failed', elapsedMs: Math.round(clock.now() - undoStarted), detail: describeError(error)});
      log.error(`(switch ${switchId}) undo ${undo.name} on ${host.role} failed: ${describeError(error)}`);
    }
  }
  let rollbackCheck: string;
  if (notTakenBack !== undefined) {
    rollbackCheck = `${hostText(labels.giver)} did not take the service IP back: ${notTakenBack}`;
  } else if (applied.includes('primary-net-down')) {
    const checkStarted = clock.now();
    try {
      const count = await confirmOn('giver', ROLLBACK_CHECK_REQUESTS, confirmTimeoutMs, labels.giver);
      rollbackCheck = `${hostText(labels.giver)} serves again: ${count} request(s) in its access log`;
      emit({kind: 'step', step: 'confirm-traffic', host: labels.giver, action: 'check', status: 'ok', elapsedMs: Math.round(clock.now() - checkStarted), detail: rollbackCheck});
    } catch (error) {
      rollbackCheck = `${hostText(labels.giver)} holds the service IP again, but its access log shows no request yet: ${describeError(error)}`;
      emit({kind: 'step', step: 'confirm-traffic', host: labels.giver, action: 'check', status: 'failed', elapsedMs: Math.round(clock.now() - checkStarted), detail: rollbackCheck});
    }
  } else {
    rollbackCheck = `${hostText(labels.giver)} never stopped serving`;
  }
  await finishBoth('rolled-back', `switch ${switchId} rolled back: ${reason}`);
  return {switchId, outcome: 'rolled-back', giver: labels.giver, taker: labels.taker, reason, failedStep: failure.step,
    totalMs: Math.round(clock.now() - started), confirmedRequests: confirmed, rollbackCheck, plan: undefined};

  function deferReport(report: () => void): void {
    pendingReport = report;
    setImmediate(flushReport);
  }

  function flushReport(): void {
    const report = pendingReport;
    pendingReport = undefined;
    report?.();
  }

  async function pauseIfAsked(step: SwitchStepName): Promise<void> {
    if (options.pauseAfter?.step !== step) return;
    emit({kind: 'note', text: `pausing ${options.pauseAfter.seconds} s after ${step} (--pause-after)`});
    const missing = await pauseWatchingPeer(options.pauseAfter.seconds * 1000);
    if (missing !== undefined) emit({kind: 'note', text: `pause ended early: ${missing}`});
  }

  /** Both hosts' readiness to drain; the giver's addresses (one per service address) when both can, or why not. */
  async function decideDrain(): Promise<{readonly giverAddresses: readonly string[]; readonly off?: undefined} | {readonly giverAddresses?: undefined; readonly off: string}> {
    const [mine, theirs] = await Promise.all([
      participant.drainReadiness(),
      remote('can-drain', '', {}, CAN_DRAIN_DEADLINE_MS).then(readReadiness, (error: unknown): DrainReadiness => {
        // A silent peer ends the switch here; a live one that does not answer runs a baton from before the drain
        // (its codec drops an op it does not know): the pair switches the old way until both are new.
        if (missingPeer() !== undefined) throw error;
        return {unavailable: `its agent did not answer whether it can drain (a baton older than the drain?): ${describeError(error)}`};
      }),
    ]);
    const bySide: Record<SwitchSide, DrainReadiness> = selfSide === 'giver' ? {giver: mine, taker: theirs} : {giver: theirs, taker: mine};
    for (const side of ['giver', 'taker'] as const) {
      const why = bySide[side].unavailable;
      if (why !== undefined) return {off: `the ${labels[side].role} cannot drain: ${why}`};
    }
    const addresses = bySide.giver.addresses ?? [];
    const families = config.service.ips.map((ip) => ip.family);
    const matching = families.every((family, i) => parseIpAddress(addresses[i] ?? '')?.family === family) && addresses.length === families.length;
    return matching ? {giverAddresses: addresses}
      : {off: `the ${labels.giver.role} did not say an address of its own for each service address (${families.map((f) => `IPv${f}`).join(' and ')}): it said ${addresses.join(', ') || 'none'}`};
  }

  /** After the taker is confirmed: the giver drains, then both take their preparations back. Never throws. */
  async function drainAndTidy(after: readonly PlannedStep[]): Promise<DrainSummary> {
    const problems: string[] = [];
    let end: DrainEnd | undefined;
    for (const planned of after) {
      const host = labels[planned.on];
      const stepStarted = clock.now();
      try {
        let detail: string | undefined;
        if (planned.name === 'drain-connections') {
          end = await drainOn(planned.on, host);
          detail = end.left === 0 ? 'no connection left' : `${end.left} connection(s) left at the drain timeout, cut`;
        } else if (planned.on === selfSide) {
          await withDeadline(participant.apply(switchId, planned.name), STEP_DEADLINE_MS, planned.name, clock);
        } else {
          await remote('apply', switchId, {step: planned.name});
        }
        emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'ok', elapsedMs: Math.round(clock.now() - stepStarted), detail});
        log.info(`(switch ${switchId}) ${planned.name} on ${host.role} ok ${Math.round(clock.now() - stepStarted)}ms`);
        await pauseIfAsked(planned.name);
      } catch (error) {
        problems.push(`${planned.name} on the ${host.role}: ${describeError(error)}`);
        emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - stepStarted), detail: describeError(error)});
        log.error(`(switch ${switchId}) ${planned.name} on ${host.role} failed (the switch stands): ${describeError(error)}`);
      }
    }
    return {left: end?.left, ms: end?.ms ?? 0, graceful: end?.graceful, problems};
  }

  async function drainOn(side: SwitchSide, host: HostLabel): Promise<DrainEnd> {
    const timeoutMs = config.drain.timeoutS * 1000;
    const progress = (left: number, elapsedMs: number): void => emit({kind: 'waiting', step: 'drain-connections', host, count: left, needed: 0, elapsedMs: Math.round(elapsedMs)});
    if (side === selfSide) return participant.drainConnections(switchId, timeoutMs, progress);
    const waitStarted = clock.now();
    const ticker = setInterval(() => progress(-1, clock.now() - waitStarted), 1000);
    try {
      return readDrainEnd(await remote('drain', switchId, {timeoutMs}, timeoutMs + 2 * STEP_DEADLINE_MS + REMOTE_SLACK_MS));
    } finally {
      clearInterval(ticker);
    }
  }

  /** The operator's pause, cut short when the peer goes silent or restarts: the switch it shares is over. */
  async function pauseWatchingPeer(ms: number): Promise<string | undefined> {
    const until = clock.now() + ms;
    for (let left = ms; left > 0; left = until - clock.now()) {
      const missing = missingPeer();
      if (missing !== undefined) return missing;
      await clock.sleep(Math.min(PEER_WATCH_MS, left));
    }
    return undefined;
  }

  async function confirmOn(side: SwitchSide, want: number, timeoutMs: number, host: HostLabel): Promise<number> {
    const progress = (count: number, elapsedMs: number): void => emit({kind: 'waiting', step: 'confirm-traffic', host, count, needed: want, elapsedMs: Math.round(elapsedMs)});
    if (side === selfSide) return participant.confirm(switchId, want, timeoutMs, progress);
    const waitStarted = clock.now();
    const ticker = setInterval(() => progress(-1, clock.now() - waitStarted), 1000);
    try {
      const result = await remote('confirm', switchId, {needed: want, timeoutMs}, timeoutMs + REMOTE_SLACK_MS + STEP_DEADLINE_MS);
      return typeof result['count'] === 'number' ? result['count'] : want;
    } finally {
      clearInterval(ticker);
    }
  }

  async function finishBoth(outcome: 'done' | 'rolled-back', why: string): Promise<void> {
    try {
      await remote('finish', switchId, {outcome, reason: why});
    } catch (error) {
      emit({kind: 'note', text: `the peer did not confirm the end of the switch: ${describeError(error)}`});
    }
    await participant.finish(switchId, outcome, why);
  }
}


/** The drain in the words of the final line. */
export function drainText(drain: DrainSummary): string {
  const left = drain.left === undefined ? 'its connections were not counted'
    : drain.left === 0 ? `its connections finished in ${(drain.ms / 1000).toFixed(1)} s`
      : `${drain.left} connection(s) were still open after the ${(drain.ms / 1000).toFixed(0)} s drain timeout and are cut`;
  return drain.problems.length === 0 ? left : `${left}; after the switch: ${drain.problems.join('; ')}`;
}

/**
 * The peer's own addresses from its answer to begin, checked: it is the peer's word. None from an older agent, or
 * from one whose list is wrong (logged): the confirmation then knows only its beacon address.
 */
function readPeerAddresses(answer: JsonObject, log: Logger, switchId: string): readonly string[] {
  try {
    return decodeHostAddresses(answer['addresses'], 'begin') ?? [];
  } catch (error) {
    log.warning(`(switch ${switchId}) the peer's answer to begin: ${describeError(error)}; only its beacon address is known as its own`);
    return [];
  }
}

/** The peer's can-drain answer, checked: it is the peer's word. */
function readReadiness(value: JsonObject): DrainReadiness {
  const {address, unavailable} = value;
  if (typeof unavailable === 'string') return {unavailable};
  try {
    const addresses = giverAddressList(decodeGiverAddress(address, 'can-drain'));
    if (addresses.length > 0) return {addresses: addresses.map((text) => parseIpAddress(text)?.address ?? text)};
  } catch {
    // Refused below, with the rest of what is not an answer.
  }
  return {unavailable: 'its answer names no address of its own'};
}

function readDrainEnd(value: JsonObject): DrainEnd {
  const {left, ms, graceful} = value;
  if (typeof left !== 'number' || typeof ms !== 'number') throw new BatonError('STEP_FAILED', 'the giver\'s drain answer has no connection count');
  return {left, ms, graceful: typeof graceful === 'string' ? graceful : undefined};
}
