// This host's side of a planned switch: begin, apply, undo, confirm, finish, for the local coordinator and for
// the peer's requests alike. Each step goes through the one executor; the journal is written before each step so
// that a restart knows what this host had done.

import type {JsonObject, PeerRequest} from '../peer/beacon-codec.js';
import {decodePeerParams, giverAddressList, giverAddressParam} from '../peer/peer-protocol.js';
import type {Config} from '../config/schema.js';
import type {DryRunStep, HostLabel} from '../control-protocol.js';
import {BatonError, describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {
  AccessLogWatcher, ArrivalCounter, Clock, CommandRunner, HostInfoSource, JournalStore, RecordingDrivers, StateStore, SwitchJournal,
} from '../ports.js';
import {encodeHostInfo} from '../preflight.js';
import type {AgentEvent, MachineState, PeerView, SwitchOutcome} from '../state-machine.js';
import {executeStep, executeUndo, type StepRun} from './executor.js';
import {planRollback, type SwitchSide, type SwitchStepName} from './plans.js';
import {describeStep, STEPS} from './steps.js';
import {takeBackIfFree} from './take-back.js';
import {TrafficCounter} from './traffic.js';
import {shareableAddresses} from '../peer/host-addresses.js';
import {canonicalAddress} from '../access-log.js';
import {announceAll, describeAddresses, isAnyInUse, isServingAll, removeAll} from '../net/service-addresses.js';
import {drainReadiness, waitForDrain, type DrainEnd, type DrainReadiness} from './drain.js';

/** What the participant needs of the agent that owns it. */
export interface SwitchHost {
  /** The state machine as it is now. */
  machine(): MachineState;
  /** The peer as its last beacon showed it, alive as of now (the machine's view learns of a death later). */
  peer(): PeerView | undefined;
  dispatch(event: AgentEvent): Promise<void>;
  /** A step here changed the interface: look at it again, so beacons report the new truth at once. */
  observed(): Promise<void>;
}

export interface ParticipantDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly journal: JournalStore;
  /** Where the epoch is saved before the IP can be live here. */
  readonly store: StateStore;
  readonly accessLog: AccessLogWatcher | undefined;
  /** The kernel's count of clients' new connections to the service IP; none: confirm-traffic reads the log only. */
  readonly arrivals?: ArrivalCounter;
  readonly hostInfo: HostInfoSource;
  readonly log: Logger;
  readonly self: HostLabel;
  /** This host's steps, run through the executor. */
  readonly steps: StepRun;
  /** Drivers that record the commands they would run, for --dry-run. */
  readonly recordingDrivers: () => RecordingDrivers;
  /** Runs drain.graceful_command. */
  readonly runner: CommandRunner;
  readonly host: SwitchHost;
  /** This host's addresses as its interfaces have them now, told to the peer at the start of a switch (none: told
   *  nothing; the peer then knows only its beacon address). */
  readonly hostAddresses?: () => readonly string[];
}

export type {DrainEnd, DrainReadiness};

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
  /** The arrival counter, once backup-net-up has added and announced the IP here (undefined: not started, or none). */
  arrivals: Promise<boolean> | undefined;
  /** backup-net-up is journalled and its epoch saved ahead (see apply). */
  prepared: boolean;
  /** Where forward-strays sends what is not the taker's, one per service address family: set on a taker whose
   *  switch drains, empty otherwise. */
  readonly giverAddresses: readonly string[];
  /** The peer's own addresses as it told them (host-addresses.ts): not clients, for the confirmation here. */
  peerAddresses: readonly string[];
}

export class SwitchParticipant {
  readonly #deps: ParticipantDeps;
  #current: CurrentSwitch | undefined;
  #journalWrites: Promise<void> = Promise.resolve();

  constructor(deps: ParticipantDeps) {
    this.#deps = deps;
  }

  get current(): {readonly id: string; readonly side: SwitchSide; readonly coordinator: boolean} | undefined {
    return this.#current;
  }

  /** The giver's addresses while this host takes over in a switch that drains (StepContext.giverAddresses). */
  get giverAddresses(): readonly string[] {
    return this.#current?.giverAddresses ?? [];
  }

  /** Whether a switch can drain on this host; as a giver, where the taker sends what is not its own. */
  async drainReadiness(): Promise<DrainReadiness> {
    return drainReadiness(this.#deps.config, this.#deps.steps.ctx.drain);
  }

  /** Joins a switch on this host: checks this host can play `side`, journals, enters `switching`. Idempotent per id.
   *  A taker given `giverAddresses` drains: its forward-strays sends there what is not its own. */
  async begin(id: string, side: SwitchSide, coordinator: boolean, peerBoot: string, epoch: number, giverAddresses: readonly string[] = [],
    peerAddresses: readonly string[] = []): Promise<void> {
    if (this.#current?.id === id) return;
    if (this.#current !== undefined) throw new BatonError('SWITCH_IN_PROGRESS', `switch ${this.#current.id} is already running on ${this.#deps.self.host}`);
    const state = this.#deps.host.machine();
    // A taker whose interface cannot even be looked at is not refused here: its first step fails and says why,
    // and the switch rolls back naming that step.
    const serving = side === 'taker' ? await this.#serving().catch(() => false) : await this.#serving();
    if (side === 'giver' && !serving) throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} does not hold the service IP, so it cannot hand it over`);
    if (side === 'taker') {
      if (serving) throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} already holds the service IP`);
      if (state.name !== 'standby' && state.name !== 'released') {
        throw new BatonError('STEP_FAILED', `${this.#deps.self.role} ${this.#deps.self.host} is ${state.name} (${state.reason}), not ready to take the service IP`);
      }
    }
    this.#current = {id, side, coordinator, peerBoot, epoch, startedAtWall: Math.round(this.#deps.clock.wallNow()), applied: [], phase: 'forward', counter: undefined, arrivals: undefined, prepared: false,
      giverAddresses: side === 'taker' ? giverAddresses : [], peerAddresses};
    try {
      await this.#writeJournal(undefined);
    } catch (error) {
      // Nothing has changed yet, so there is nothing to undo; but a host left "in" a switch it never joined would
      // refuse every later one and beacon its id forever.
      this.#current = undefined;
      throw error;
    }
    await this.#deps.host.dispatch({type: 'switch-begun', switchId: id, side});
    this.#deps.log.notice(`(switch ${id}) joined as ${side}${coordinator ? ', coordinating' : ''}`);
  }

  /**
   * This host's own addresses for the peer of switch `id` (host-addresses.ts), read now; a log line names those
   * that did not fit.
   */
  sharedAddresses(id: string): readonly string[] {
    // Not the service IP: the giver holds it now, and it moves.
    const service = this.#deps.config.service.ip.address;
    const {shared, left} = shareableAddresses((this.#deps.hostAddresses?.() ?? []).filter((address) => canonicalAddress(address) !== service));
    if (left.length > 0) {
      this.#deps.log.notice(`(switch ${id}) the peer is told ${shared.length} of this host's addresses; requests from ` +
        `${left.join(', ')} would count as clients there`);
    }
    return shared;
  }

  /** The peer's own addresses, as its answer to begin told them: not clients, for the confirmation here. */
  learnPeerAddresses(id: string, addresses: readonly string[]): void {
    if (this.#current?.id === id) this.#current.peerAddresses = addresses;
  }

  /** Applies and verifies one of this host's steps. Idempotent: a step already applied is not done twice. */
  async apply(id: string, step: SwitchStepName): Promise<void> {
    const current = this.#require(id);
    if (current.applied.includes(step)) return;
    // Between primary-net-down and backup-net-up nobody serves: that window is the service gap. So the taker
    // does the slow, durable work for backup-net-up (journal and epoch fsyncs) at the end of assign-ip, and the
    // giver answers as soon as its address is verified gone.
    if (step === 'backup-net-up') {
      current.counter?.stop();
      current.counter = undefined;
      // The counter starts once the address change is handed to the kernel (the step runs on to that point in the
      // microtasks before this), not before it: starting it took 3-17 ms in the lab, all of it unowned time.
      // Requests can only arrive after the address is there, so none is missed.
      setImmediate(() => this.#startCounter(current));
    }
    await executeStep(step, this.#deps.steps, {
      before: async () => {
        if (!(step === 'backup-net-up' && current.prepared)) await this.#writeJournal(step);
      },
      after: async () => {
        current.applied.push(step);
        // The address is up and announced: the kernel counts clients' connections from now on. Not waited for, and
        // not before: starting it spawns nft, which must not delay the announcement.
        if (step === 'backup-net-up') current.arrivals = this.#startArrivals(id);
        // The epoch is saved before the IP can be live, so no restart can bring it up under an older one.
        if (step === 'assign-ip') await this.#deps.store.save({epoch: current.epoch, released: false});
        if (step === (current.giverAddresses.length === 0 ? 'assign-ip' : 'forward-strays')) {
          // The taker's last step before backup-net-up (forward-strays when the switch drains) leaves it pending.
          await this.#writeJournal('backup-net-up');
          current.prepared = true;
        } else if (step === 'primary-net-down') {
          // Not waited for: the journal already says primary-net-down is pending, which recovery treats as maybe
          // done; the giver's answer must not wait for an fsync while nobody serves.
          this.#writeJournal(undefined).catch((error: unknown) => this.#deps.log.error(`(switch ${id}) journal: ${describeError(error)}`));
        } else {
          await this.#writeJournal(undefined);
        }
      },
    });
    // After the answer has left: reading the interfaces is synchronous, and after primary-net-down the answer is
    // what the taker waits for while nobody serves.
    setImmediate(() => void this.#deps.host.observed());
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
      current.counter = this.#deps.accessLog === undefined ? undefined : new TrafficCounter(this.#deps.accessLog, this.#deps.clock, this.#deps.config.confirm.statuses, current.peerAddresses);
    }
    if (step === 'backup-net-up') current.counter?.stop();
    if (step === 'primary-net-down' && unlessHeld) {
      const result = await takeBackIfFree(this.#deps.steps, this.#deps.config.node, this.#deps.host.peer());
      if (!result.tookBack) throw new BatonError('STEP_FAILED', `undo primary-net-down: not taken back: ${result.why}`);
    } else {
      await executeUndo(step, this.#deps.steps);
    }
    current.applied = current.applied.filter((s) => s !== step);
    await this.#writeJournal(undefined).catch((error: unknown) => this.#deps.log.error(`(switch ${id}) undo ${step} done, but not journalled: ${describeError(error)}`));
    await this.#deps.host.observed();
  }

  /** Waits until the access log shows `needed` requests since the IP came up here (or came back, after a rollback). */
  async confirm(id: string, needed: number, timeoutMs: number, onProgress?: (count: number, elapsedMs: number) => void): Promise<number> {
    const current = this.#require(id);
    if (this.#deps.config.confirm.accessLog === undefined) {
      throw new BatonError('ACCESS_LOG_UNREADABLE', `confirm.access_log is not set in ${this.#deps.config.file} on ${this.#deps.self.host}`);
    }
    if (current.counter === undefined && current.applied.includes('backup-net-up')) this.#startCounter(current);
    if (current.counter === undefined) throw new BatonError('STEP_FAILED', 'confirm-traffic: the service IP was not brought up on this host in this switch');
    // After a rollback the giver checks that it serves again: the log alone says so. Forward, the kernel's count of
    // new connections to the service IP shows the log's requests came through it.
    const arrivals = current.phase === 'forward' && await current.arrivals === true ? this.#deps.arrivals : undefined;
    const {ip, interface: iface} = this.#deps.config.service;
    return current.counter.waitFor(needed, timeoutMs, onProgress,
      arrivals === undefined ? undefined : {count: () => arrivals.count(), where: `${ip.address} on ${iface}`});
  }

  /**
   * The giver's drain, once the taker is confirmed: waits drain.graceful_after_s for its connections to end by
   * themselves, then runs drain.graceful_command for those left (the web server finishes its requests and closes its
   * keep-alive connections), then waits until no connection on the service IP is left, or `timeoutMs`. Never throws
   * for connections left: it says how many.
   */
  async drainConnections(id: string, timeoutMs: number, onProgress?: (left: number, elapsedMs: number) => void): Promise<DrainEnd> {
    const current = this.#require(id);
    const {config, clock, log, runner} = this.#deps;
    if (current.side !== 'giver') throw new BatonError('STEP_FAILED', 'drain-connections runs on the giver');
    await this.#writeJournal('drain-connections');
    const end = await waitForDrain({config, clock, log, runner, drain: this.#deps.steps.ctx.drain}, id, timeoutMs, onProgress);
    current.applied.push('drain-connections');
    await this.#writeJournal(undefined);
    return end;
  }

  /** Ends the switch here: tidies up, clears the journal, and leaves `switching` for the state the outcome gives. */
  async finish(id: string, outcome: SwitchOutcome, reason: string): Promise<void> {
    const current = this.#require(id);
    const {config, log} = this.#deps;
    const {network} = this.#deps.steps.ctx;
    current.counter?.stop();
    if (await current.arrivals === true) {
      await this.#deps.arrivals?.stop().catch((error: unknown) => log.error(`(switch ${id}) removing the arrival counter failed; the next start removes it: ${describeError(error)}`));
    }
    // A drain's preparations that are still in place (the switch ended before end-forwarding / end-hold, or they
    // failed) are taken back: they must not outlive the switch.
    for (const [prepared, ended] of [['forward-strays', 'end-forwarding'], ['hold-connections', 'end-hold']] as const) {
      if (current.applied.includes(prepared) && !current.applied.includes(ended)) {
        await executeUndo(prepared, this.#deps.steps).catch((error: unknown) => log.error(`(switch ${id}) taking back ${prepared} failed; the next start removes it: ${describeError(error)}`));
      }
    }
    // Link mode: the giver's address stays on its downed interface until here; removed now so that bringing the
    // link up again (resume, maintenance) can never make it answer for the IP.
    if (current.side === 'giver' && outcome === 'done' && config.service.mode === 'link') {
      await removeAll(network, config.service.ips).catch((error: unknown) => log.error(`(switch ${id}) removing ${describeAddresses(config.service.ips)} from the downed ${config.service.interface} failed: ${describeError(error)}`));
    }
    const serving = await this.#serving().catch(() => false);
    await this.#deps.host.observed();
    this.#current = undefined;
    // The switch ends even when its journal cannot be removed: staying `switching` would refuse every later switch.
    // A journal left behind is treated at the next start like a crash's, and recovery keeps whoever serves.
    await this.#clearJournal().catch((error: unknown) => log.error(`(switch ${id}) the journal could not be cleared; the next start will treat the switch as interrupted: ${describeError(error)}`));
    await this.#deps.host.dispatch({type: 'switch-ended', switchId: id, outcome, holdsIp: serving, epoch: serving && current.side === 'taker' ? current.epoch : 0, reason});
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
      if (!(await this.#serving())) {
        // A giver's release is undone only if the taker does not hold the IP: its agent may be gone while its
        // kernel still serves.
        for (const step of planRollback(current.applied)) await this.undo(current.id, step.name, true);
      }
    } catch (error) {
      keptOff = `: ${describeError(error)}`;
      this.#deps.log.error(`(switch ${current.id}) undo after abandoning failed: ${describeError(error)}`);
    }
    const serving = await this.#serving().catch(() => false);
    await this.finish(current.id, 'interrupted', `switch ${current.id} interrupted: ${reason}; ${serving ? 'this host serves' : `this host does not serve${keptOff}`}`);
  }

  /** This host's commands for one step, recorded rather than run. */
  async describe(step: SwitchStepName, giverAddresses: readonly string[] = []): Promise<DryRunStep> {
    const recording = this.#deps.recordingDrivers();
    const {service} = this.#deps.config;
    const ctx = {service, network: recording.network, announce: () => announceAll(recording.network, service.ips), probe: () => isAnyInUse(recording.network, service.ips),
      drain: recording.drain, giverAddresses: () => giverAddresses};
    await STEPS[step][service.mode].apply(ctx);
    return {step, host: this.#deps.self, does: describeStep(step, service.mode), commands: recording.commands()};
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
    switch (request.op) {
      case 'host-info':
        return encodeHostInfo(await this.#deps.hostInfo.collect()) as unknown as JsonObject;
      case 'check-log':
        await this.checkLog();
        return {};
      case 'plan': {
        const {step, giverAddress} = decodePeerParams('plan', request.params);
        return await this.describe(step, giverAddressList(giverAddress)) as unknown as JsonObject;
      }
      case 'begin': {
        const {side, epoch, giverAddress, addresses} = decodePeerParams('begin', request.params);
        await this.begin(request.switchId, side, false, peerBoot, epoch, giverAddressList(giverAddress), addresses);
        return {addresses: this.sharedAddresses(request.switchId)};
      }
      case 'can-drain': {
        const readiness = await this.drainReadiness();
        return readiness.unavailable === undefined ? {address: giverAddressParam(readiness.addresses)} : {unavailable: readiness.unavailable};
      }
      case 'drain': {
        const {timeoutMs} = decodePeerParams('drain', request.params);
        const end = await this.drainConnections(request.switchId, timeoutMs);
        return end.graceful === undefined ? {left: end.left, ms: end.ms} : {left: end.left, ms: end.ms, graceful: end.graceful};
      }
      case 'apply':
        await this.apply(request.switchId, decodePeerParams('apply', request.params).step);
        return {};
      case 'undo': {
        const {step, unlessHeld} = decodePeerParams('undo', request.params);
        await this.undo(request.switchId, step, unlessHeld);
        return {};
      }
      case 'confirm': {
        const {needed, timeoutMs} = decodePeerParams('confirm', request.params);
        return {count: await this.confirm(request.switchId, needed, timeoutMs)};
      }
      case 'resume':
      case 'drop-link':
      case 'rehearsal':
      case 'version':
        throw new BatonError('BAD_REQUEST', `${request.op} is answered by the agent, not by a switch`);
      case 'finish': {
        const {outcome, reason} = decodePeerParams('finish', request.params);
        if (this.#current?.id !== request.switchId) return {};
        await this.finish(request.switchId, outcome, reason);
        return {};
      }
    }
  }

  /** Starts the kernel's arrival counter; false (logged) when there is none or it cannot start: the log alone confirms. */
  async #startArrivals(id: string): Promise<boolean> {
    const {arrivals, config, log} = this.#deps;
    if (arrivals === undefined) return false;
    try {
      await arrivals.start(config.service.ips, [...new Set([config.peer.address, config.listen.address, ...this.#current?.peerAddresses ?? []])]);
      return true;
    } catch (error) {
      log.warning(`(switch ${id}) the kernel cannot count connections to ${config.service.ips.map((ip) => ip.address).join(' and ')} here, so the access log alone confirms: ${describeError(error)}`);
      return false;
    }
  }

  /** Starts counting this switch's requests, once. */
  #startCounter(current: CurrentSwitch): void {
    if (this.#current !== current || current.counter !== undefined || this.#deps.accessLog === undefined) return;
    current.counter = new TrafficCounter(this.#deps.accessLog, this.#deps.clock, this.#deps.config.confirm.statuses, current.peerAddresses);
  }

  /** Whether this host answers for the IP as clients see it (every service address), read from the kernel each time. */
  #serving(): Promise<boolean> {
    return isServingAll(this.#deps.steps.ctx.network, this.#deps.config.service.ips);
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
