// Runs a planned switch. SwitchParticipant does this host's part (begin, apply, undo, confirm, finish), for the
// local coordinator and for the peer's requests alike, writing the journal before each step; runSwitchover
// coordinates both hosts from the one the operator asked, streams progress, and rolls back on any failure.

import type {JsonObject, PeerRequest} from './beacon-codec.js';
import type {Config} from './config/schema.js';
import type {DryRunStep, HostLabel, SwitchProgress, SwitchResult, SwitchoverOptions} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import type {Logger} from './log.js';
import type {PeerRequester} from './peer-requests.js';
import type {PeerView} from './state-machine.js';
import {assertPreflight, comparePreflight, encodeHostInfo, formatPreflight, parseHostInfo} from './preflight.js';
import type {AccessLogWatcher, Clock, HostInfoSource, JournalStore, NetworkDriver, SwitchJournal} from './ports.js';
import type {AgentEvent, MachineState, SwitchOutcome} from './state-machine.js';
import {describeStep, planRollback, SWITCH_STEP_NAMES, SWITCHOVER_PLAN, type SwitchSide, type SwitchStepName} from './switch-plan.js';
import {applyStep, isServing, takeBackIfFree, TrafficCounter, undoStep, verifyStep} from './switch-steps.js';

// A network step is a few `ip` runs and at most one ARP burst: 10 s means something is stuck, not slow.
export const STEP_DEADLINE_MS = 10_000;
// Remote steps get the step deadline plus two seconds of retries for lost datagrams.
const REMOTE_SLACK_MS = 2000;
// While waiting on the peer, its liveness is checked this often: a peer that died is noticed after dead_after_ms,
// not after the request's own deadline.
const PEER_WATCH_MS = 100;
// After a rollback the old host must show it serves again; one request is proof enough, and waiting the full
// confirmation time only when there is no traffic at all.
const ROLLBACK_CHECK_REQUESTS = 1;

export interface SwitchDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly network: NetworkDriver;
  readonly journal: JournalStore;
  readonly accessLog: AccessLogWatcher | undefined;
  readonly hostInfo: HostInfoSource;
  readonly log: Logger;
  readonly dispatch: (event: AgentEvent) => Promise<void>;
  readonly machine: () => MachineState;
  /** The peer as its last beacon showed it, alive as of now (the machine's view learns of a death later). */
  readonly peer: () => PeerView | undefined;
  readonly saveEpoch: (epoch: number) => Promise<void>;
  /** A driver that records the commands it would run, for --dry-run. */
  readonly recordingNetwork: () => {readonly network: NetworkDriver; commands(): string[]};
  /** Called after this host announced the IP, to schedule the repeat. */
  readonly announced: () => void;
  /** Called after each step here changed the interface, so beacons report the new truth at once. */
  readonly observed: () => Promise<void>;
  readonly self: HostLabel;
}

interface CurrentSwitch {
  readonly id: string;
  readonly side: SwitchSide;
  readonly coordinator: boolean;
  readonly peerBoot: string;
  readonly epoch: number;
  readonly startedAtWall: number;
  applied: SwitchStepName[];
  phase: 'forward' | 'rollback';
  counter: TrafficCounter | undefined;
  /** backup-net-up is journalled and its epoch saved ahead (see apply). */
  prepared: boolean;
}

export class SwitchParticipant {
  readonly #deps: SwitchDeps;
  #current: CurrentSwitch | undefined;
  #journalWrites: Promise<void> = Promise.resolve();

  constructor(deps: SwitchDeps) {
    this.#deps = deps;
  }

  get current(): {readonly id: string; readonly side: SwitchSide; readonly coordinator: boolean} | undefined {
    return this.#current;
  }

  /** Joins a switch on this host: checks this host can play `side`, journals, enters `switching`. Idempotent per id. */
  async begin(id: string, side: SwitchSide, coordinator: boolean, peerBoot: string, epoch: number): Promise<void> {
    if (this.#current?.id === id) return;
    if (this.#current !== undefined) throw new BatonError('SWITCH_IN_PROGRESS', `switch ${this.#current.id} is already running on ${this.#deps.self.host}`);
    const state = this.#deps.machine();
    // A taker whose interface cannot even be looked at is not refused here: its first step fails and says why,
    // and the switch rolls back naming that step.
    const serving = side === 'taker' ? await isServing(this.#deps).catch(() => false) : await isServing(this.#deps);
    if (side === 'giver' && !serving) throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} does not hold the service IP, so it cannot hand it over`);
    if (side === 'taker') {
      if (serving) throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} already holds the service IP`);
      if (state.name !== 'standby' && state.name !== 'released') {
        throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} is ${state.name} (${state.reason}), not ready to take the service IP`);
      }
    }
    this.#current = {id, side, coordinator, peerBoot, epoch, startedAtWall: Math.round(this.#deps.clock.wallNow()), applied: [], phase: 'forward', counter: undefined, prepared: false};
    try {
      await this.#writeJournal(undefined);
    } catch (error) {
      // Nothing has changed yet, so there is nothing to undo; but a host left "in" a switch it never joined would
      // refuse every later one and beacon its id forever.
      this.#current = undefined;
      throw error;
    }
    await this.#deps.dispatch({type: 'switch-begun', switchId: id, side});
    this.#deps.log.notice(`(switch ${id}) joined as ${side}${coordinator ? ', coordinating' : ''}`);
  }

  /** Applies and verifies one of this host's steps. Idempotent: a step already applied is not done twice. */
  async apply(id: string, step: SwitchStepName): Promise<void> {
    const current = this.#require(id);
    if (current.applied.includes(step)) return;
    // Between primary-net-down and backup-net-up nobody serves: that window is the service gap. So the taker
    // does the slow, durable work for backup-net-up (journal and epoch fsyncs) at the end of assign-ip, and the
    // giver answers as soon as its address is verified gone.
    if (!(step === 'backup-net-up' && current.prepared)) await this.#writeJournal(step);
    if (step === 'backup-net-up') {
      current.counter?.stop();
      current.counter = this.#deps.accessLog === undefined ? undefined : new TrafficCounter(this.#deps.accessLog, this.#deps.clock);
    }
    await applyStep(step, this.#deps);
    await verifyStep(step, this.#deps);
    current.applied.push(step);
    if (step === 'assign-ip') {
      // The epoch is saved before the IP can be live, so no restart can bring it up under an older one.
      await this.#deps.saveEpoch(current.epoch);
      await this.#writeJournal('backup-net-up');
      current.prepared = true;
    } else if (step === 'primary-net-down') {
      // Not waited for: the journal already says primary-net-down is pending, which recovery treats as maybe
      // done; the giver's answer must not wait for an fsync while nobody serves.
      this.#writeJournal(undefined).catch((error: unknown) => this.#deps.log.error(`(switch ${id}) journal: ${describeError(error)}`));
    } else {
      await this.#writeJournal(undefined);
    }
    void this.#deps.observed();
    if (step === 'backup-net-up') this.#deps.announced();
  }

  /**
   * Undoes one of this host's applied steps, and verifies it; a step never applied here is left alone. With
   * `unlessHeld` (the taker may still hold the IP: it never undid backup-net-up), primary-net-down is undone only
   * when the IP is free (takeBackIfFree); otherwise it throws STEP_FAILED saying so, and the IP stays off this host.
   */
  async undo(id: string, step: SwitchStepName, unlessHeld = false): Promise<void> {
    const current = this.#require(id);
    current.phase = 'rollback';
    if (!current.applied.includes(step)) return;
    // An undo runs even when its journal entry cannot be written: it moves this host back to the known-good state
    // (a taker gives the IP up, a giver takes it back), and skipping it would leave the IP on both hosts or on
    // neither. The unwritten journal is reported; the switch is already failing for a reason of its own.
    await this.#writeJournal(step).catch((error: unknown) => this.#deps.log.error(`(switch ${id}) undo ${step} goes ahead without its journal entry: ${describeError(error)}`));
    if (step === 'primary-net-down') {
      current.counter?.stop();
      current.counter = this.#deps.accessLog === undefined ? undefined : new TrafficCounter(this.#deps.accessLog, this.#deps.clock);
    }
    if (step === 'backup-net-up') current.counter?.stop();
    if (step === 'primary-net-down' && unlessHeld) {
      const result = await takeBackIfFree(this.#deps, this.#deps.peer());
      if (!result.tookBack) throw new BatonError('STEP_FAILED', `undo primary-net-down: not taken back: ${result.why}`);
    } else {
      await undoStep(step, this.#deps);
    }
    current.applied = current.applied.filter((s) => s !== step);
    await this.#writeJournal(undefined).catch((error: unknown) => this.#deps.log.error(`(switch ${id}) undo ${step} done, but not journalled: ${describeError(error)}`));
    await this.#deps.observed();
    if (step === 'primary-net-down') this.#deps.announced();
  }

  /** Waits until the access log shows `needed` requests since the IP came up here (or came back, after a rollback). */
  async confirm(id: string, needed: number, timeoutMs: number, onProgress?: (count: number, elapsedMs: number) => void): Promise<number> {
    const current = this.#require(id);
    if (this.#deps.config.confirm.accessLog === undefined) {
      throw new BatonError('ACCESS_LOG_UNREADABLE', `confirm.access_log is not set in ${this.#deps.config.file} on ${this.#deps.self.host}`);
    }
    if (current.counter === undefined) throw new BatonError('STEP_FAILED', 'confirm-traffic: the service IP was not brought up on this host in this switch');
    return current.counter.waitFor(needed, timeoutMs, onProgress);
  }

  /** Ends the switch here: tidies up, clears the journal, and leaves `switching` for the state the outcome gives. */
  async finish(id: string, outcome: SwitchOutcome, reason: string): Promise<void> {
    const current = this.#require(id);
    const {config, network, log} = this.#deps;
    current.counter?.stop();
    // Link mode: the giver's address stays on its downed interface until here; removed now so that bringing the
    // link up again (resume, maintenance) can never make it answer for the IP.
    if (current.side === 'giver' && outcome === 'done' && config.service.mode === 'link') {
      await network.removeAddress(config.service.ip).catch((error: unknown) => log.error(`(switch ${id}) removing ${config.service.ip.cidr} from the downed ${config.service.interface} failed: ${describeError(error)}`));
    }
    const serving = await isServing(this.#deps).catch(() => false);
    await this.#deps.observed();
    this.#current = undefined;
    // The switch ends even when its journal cannot be removed: staying `switching` would refuse every later switch.
    // A journal left behind is treated at the next start like a crash's, and recovery keeps whoever serves.
    await this.#clearJournal().catch((error: unknown) => log.error(`(switch ${id}) the journal could not be cleared; the next start will treat the switch as interrupted: ${describeError(error)}`));
    await this.#deps.dispatch({type: 'switch-ended', switchId: id, outcome, holdsIp: serving, epoch: serving && current.side === 'taker' ? current.epoch : 0, reason});
    log.notice(`(switch ${id}) ${outcome}: ${reason}`);
  }

  /**
   * The coordinating peer went silent or restarted mid-switch: end the switch here so that exactly one host holds
   * the IP. A host that serves keeps serving; a giver that had released the IP takes it back; a taker undoes its
   * preparations.
   */
  async abandon(reason: string): Promise<void> {
    const current = this.#current;
    if (current === undefined || current.coordinator) return;
    this.#deps.log.warning(`(switch ${current.id}) abandoned: ${reason}`);
    let keptOff = '';
    try {
      if (!(await isServing(this.#deps))) {
        // A giver's release is undone only if the taker does not hold the IP: its agent may be gone while its
        // kernel still serves.
        for (const step of planRollback(current.applied)) await this.undo(current.id, step.name, true);
      }
    } catch (error) {
      keptOff = `: ${describeError(error)}`;
      this.#deps.log.error(`(switch ${current.id}) undo after abandoning failed: ${describeError(error)}`);
    }
    const serving = await isServing(this.#deps).catch(() => false);
    await this.finish(current.id, 'interrupted', `switch ${current.id} interrupted: ${reason}; ${serving ? 'this host serves' : `this host does not serve${keptOff}`}`);
  }

  /** This host's commands for one step, recorded rather than run. */
  async describe(step: SwitchStepName): Promise<DryRunStep> {
    const recording = this.#deps.recordingNetwork();
    await applyStep(step, {config: this.#deps.config, network: recording.network});
    return {step, host: this.#deps.self, does: describeStep(step, this.#deps.config.service.mode), commands: recording.commands()};
  }

  /** Whether confirm-traffic can work here: the access log is configured and readable. */
  async checkLog(): Promise<void> {
    const {config, accessLog, self} = this.#deps;
    if (config.confirm.accessLog === undefined || accessLog === undefined) {
      throw new BatonError('ACCESS_LOG_UNREADABLE', `confirm.access_log is not set in ${config.file} on ${self.role} ${self.host}: baton cannot confirm traffic there`);
    }
    await accessLog.check();
  }

  /** Answers the coordinating peer's requests. */
  async handle(request: PeerRequest, peerBoot: string): Promise<JsonObject> {
    const p = request.params;
    switch (request.op) {
      case 'host-info':
        return encodeHostInfo(await this.#deps.hostInfo.collect()) as unknown as JsonObject;
      case 'check-log':
        await this.checkLog();
        return {};
      case 'plan':
        return await this.describe(stepParam(p)) as unknown as JsonObject;
      case 'begin': {
        const side = p['side'];
        const epoch = p['epoch'];
        if (side !== 'giver' && side !== 'taker') throw new BatonError('BAD_REQUEST', 'begin: side must be giver or taker');
        if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw new BatonError('BAD_REQUEST', 'begin: bad epoch');
        await this.begin(request.switchId, side, false, peerBoot, epoch);
        return {};
      }
      case 'apply':
        await this.apply(request.switchId, stepParam(p));
        return {};
      case 'undo':
        await this.undo(request.switchId, stepParam(p), p['unlessHeld'] === true);
        return {};
      case 'confirm': {
        const needed = p['needed'];
        const timeoutMs = p['timeoutMs'];
        if (typeof needed !== 'number' || typeof timeoutMs !== 'number') throw new BatonError('BAD_REQUEST', 'confirm: needed and timeoutMs are numbers');
        return {count: await this.confirm(request.switchId, needed, timeoutMs)};
      }
      case 'resume':
      case 'drop-link':
        throw new BatonError('BAD_REQUEST', `${request.op} is answered by the agent, not by a switch`);
      case 'finish': {
        const outcome = p['outcome'];
        const reason = p['reason'];
        if ((outcome !== 'done' && outcome !== 'rolled-back') || typeof reason !== 'string') throw new BatonError('BAD_REQUEST', 'finish: outcome and reason');
        if (this.#current?.id !== request.switchId) return {};
        await this.finish(request.switchId, outcome, reason);
        return {};
      }
    }
  }

  #require(id: string): CurrentSwitch {
    if (this.#current?.id !== id) {
      throw new BatonError('SWITCH_IN_PROGRESS', `no switch ${id} is running on ${this.#deps.self.host}${this.#current === undefined ? '' : ` (switch ${this.#current.id} is)`}`);
    }
    return this.#current;
  }

  /** Writes the journal as it is now; writes (and the final clear) happen one after another, in order. */
  #writeJournal(pending: SwitchStepName | undefined): Promise<void> {
    const c = this.#current;
    if (c === undefined) return Promise.resolve();
    const journal: SwitchJournal = {
      switchId: c.id, side: c.side, coordinator: c.coordinator, peerBoot: c.peerBoot, epoch: c.epoch,
      applied: [...c.applied], pending, phase: c.phase, startedAtWall: c.startedAtWall,
    };
    return this.#inOrder(() => this.#deps.journal.save(journal).catch((error: unknown) => {
      throw this.#unwritable('write', error);
    }));
  }

  #clearJournal(): Promise<void> {
    return this.#inOrder(() => this.#deps.journal.clear().catch((error: unknown) => {
      throw this.#unwritable('clear', error);
    }));
  }

  /** A journal failure in words an operator can act on: which host, which directory, what to check. */
  #unwritable(action: 'write' | 'clear', error: unknown): BatonError {
    const {config, self} = this.#deps;
    return new BatonError('STATE_UNWRITABLE', `the ${self.role} ${self.host} cannot ${action} its switch journal in state_dir ${config.stateDir}: ` +
      `${describeError(error)}; a switch needs a writable state_dir (is its filesystem read-only or full?)`, {cause: error});
  }

  #inOrder(write: () => Promise<void>): Promise<void> {
    const done = this.#journalWrites.then(write);
    this.#journalWrites = done.catch(() => undefined);
    return done;
  }
}

function stepParam(params: JsonObject): SwitchStepName {
  const step = params['step'];
  if (typeof step !== 'string' || !(SWITCH_STEP_NAMES as readonly string[]).includes(step)) {
    throw new BatonError('BAD_REQUEST', `unknown step ${JSON.stringify(step)}`);
  }
  return step as SwitchStepName;
}

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
  readonly deps: SwitchDeps;
  readonly participant: SwitchParticipant;
  readonly requester: PeerRequester;
  readonly peer: () => PeerSnapshot;
  readonly newSwitchId: () => string;
}

/**
 * Runs a planned switchover from this host. Resolves with the outcome (done, rolled back, or the dry-run plan);
 * throws BatonError when it refuses to start (peer not alive, switch running, fault, preflight --strict).
 */
export async function runSwitchover(c: CoordinatorDeps, options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
  const {deps, participant, requester} = c;
  const {config, clock, log} = deps;
  const started = clock.now();
  const peer = c.peer();
  if (participant.current !== undefined) throw new BatonError('SWITCH_IN_PROGRESS', `switch ${participant.current.id} is already running`);
  if (peer.view?.alive !== true || peer.boot === undefined) {
    throw new BatonError('PEER_UNREACHABLE', `the peer ${peer.label.role} at ${config.peer.address}:${config.peer.port} is not alive` +
      `${peer.rejecting === undefined ? '' : ` (${peer.rejecting})`}: a planned switch needs both agents (see baton status)`);
  }
  if (peer.switchId !== '' || peer.view.state === 'switching') throw new BatonError('SWITCH_IN_PROGRESS', `the peer is already running switch ${peer.switchId}`);
  const selfServing = await isServing(deps);
  if (selfServing && peer.view.holdsIp) throw new BatonError('STEP_FAILED', 'both hosts hold the service IP: resolve that first (see baton status)');
  if (!selfServing && !peer.view.holdsIp) throw new BatonError('STEP_FAILED', 'neither host holds the service IP: there is nothing to switch over');
  const selfSide: SwitchSide = selfServing ? 'giver' : 'taker';
  const takerState = selfSide === 'taker' ? deps.machine().name : peer.view.state;
  if (takerState === 'fault') {
    const why = selfSide === 'taker' ? `: ${deps.machine().reason}` : '';
    throw new BatonError('STEP_FAILED', `the ${selfSide === 'taker' ? deps.self.role : peer.label.role} is in fault${why}; it cannot take the service IP`);
  }
  if (takerState !== 'standby' && takerState !== 'released') throw new BatonError('STEP_FAILED', `the host to take over is ${takerState}, not standby`);
  const takerHealth = selfSide === 'taker' ? deps.machine().health : peer.health;
  if (takerHealth === 'failing') throw new BatonError('STEP_FAILED', `the ${selfSide === 'taker' ? deps.self.role : peer.label.role}'s health checks fail: it cannot take the service IP`);
  const labels: Record<SwitchSide, HostLabel> = selfSide === 'giver' ? {giver: deps.self, taker: peer.label} : {giver: peer.label, taker: deps.self};
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
  const remote = async (op: PeerRequest['op'], switchId: string, params: JsonObject, deadlineMs = STEP_DEADLINE_MS + REMOTE_SLACK_MS): Promise<JsonObject> => {
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
    deps.hostInfo.collect().catch((error: unknown) => `the ${deps.self.role}: ${describeError(error)}`),
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
    emit({kind: 'preflight', text: formatPreflight(report, `${deps.self.role}`, `${peer.label.role}`)});
    assertPreflight(report, options.strict);
  }
  const checkLog = (side: SwitchSide): Promise<unknown> => (side === selfSide ? participant.checkLog() : remote('check-log', '', {}));
  await checkLog('taker');
  const giverLog = await checkLog('giver').then(() => undefined, (error: unknown) => describeError(error));
  if (giverLog !== undefined) emit({kind: 'note', text: `warning: a rollback could not confirm traffic on the ${labels.giver.role}: ${giverLog}`});

  const switchId = c.newSwitchId();
  if (options.dryRun) {
    const plan: DryRunStep[] = [];
    for (const step of SWITCHOVER_PLAN) {
      plan.push(step.on === selfSide ? await participant.describe(step.name) : await remote('plan', '', {step: step.name}) as unknown as DryRunStep);
    }
    return {switchId, outcome: 'dry-run', giver: labels.giver, taker: labels.taker, reason: undefined, failedStep: undefined,
      totalMs: Math.round(clock.now() - started), confirmedRequests: undefined, rollbackCheck: undefined, plan};
  }

  const epoch = Math.max(deps.machine().epoch, peer.view.epoch) + 1;
  emit({kind: 'start', switchId, giver: labels.giver, taker: labels.taker, mode: config.service.mode});
  log.notice(`(switch ${switchId}) ${labels.giver.role} ${labels.giver.host} -> ${labels.taker.role} ${labels.taker.host}, ${config.service.mode} mode, epoch ${epoch}`);
  await participant.begin(switchId, selfSide, true, peer.boot, epoch);
  const otherSide: SwitchSide = selfSide === 'giver' ? 'taker' : 'giver';
  try {
    await remote('begin', switchId, {side: otherSide, epoch});
  } catch (error) {
    await participant.finish(switchId, 'rolled-back', `the peer refused to begin: ${describeError(error)}`);
    throw error;
  }

  const applied: SwitchStepName[] = [];
  let confirmed: number | undefined;
  let failure: {step: SwitchStepName; error: unknown} | undefined;
  for (const planned of SWITCHOVER_PLAN) {
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
      emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'ok', elapsedMs: Math.round(clock.now() - stepStarted),
        detail: planned.name === 'confirm-traffic' ? `${confirmed} request(s) in the access log` : undefined});
      log.info(`(switch ${switchId}) ${planned.name} on ${host.role} ok ${Math.round(clock.now() - stepStarted)}ms`);
      if (options.pauseAfter?.step === planned.name) {
        emit({kind: 'note', text: `pausing ${options.pauseAfter.seconds} s after ${planned.name} (--pause-after)`});
        const missing = await pauseWatchingPeer(options.pauseAfter.seconds * 1000);
        if (missing !== undefined) emit({kind: 'note', text: `pause ended early: ${missing}`});
      }
    } catch (error) {
      // A step that was applied on the host but failed its check, or whose answer was lost, is undone too; one
      // refused before it started is not.
      if (started && planned.name !== 'confirm-traffic') applied.push(planned.name);
      failure = {step: planned.name, error};
      emit({kind: 'step', step: planned.name, host, action: 'apply', status: 'failed', elapsedMs: Math.round(clock.now() - stepStarted), detail: describeError(error)});
      log.error(`(switch ${switchId}) ${planned.name} on ${host.role} failed: ${describeError(error)}`);
      break;
    }
  }

  if (failure === undefined) {
    const reason = `switch ${switchId}: ${hostText(labels.taker)} serves, ${confirmed} request(s) confirmed; ${hostText(labels.giver)} is free to upgrade`;
    await finishBoth('done', reason);
    return {switchId, outcome: 'done', giver: labels.giver, taker: labels.taker, reason: undefined, failedStep: undefined,
      totalMs: Math.round(clock.now() - started), confirmedRequests: confirmed, rollbackCheck: undefined, plan: undefined};
  }

  // Rollback: undo only what was applied, newest first, until the giver serves again; then check its log.
  const reason = `${failure.step} failed on the ${labels[sideOfStep(failure.step)].role}: ${describeError(failure.error)}`;
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

function hostText(host: HostLabel): string {
  return `${host.role} (${host.host})`;
}

function sideOfStep(step: SwitchStepName): SwitchSide {
  return SWITCHOVER_PLAN.find((s) => s.name === step)?.on ?? 'taker';
}

async function withDeadline<T>(work: Promise<T>, ms: number, what: string, clock: Clock): Promise<T> {
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

export function isSwitchError(error: unknown): boolean {
  return isBatonError(error, 'STEP_FAILED') || isBatonError(error, 'TRAFFIC_NOT_CONFIRMED');
}
