// The agent's event loop and its wiring: beacons out and in, timers, peer and control requests → step() →
// effects. What each effect does lives elsewhere: plans run through plans/executor.ts, switches through
// plans/participant.ts and plans/coordinator.ts, status is assembled in status-report.ts.

import type {Beacon, JsonObject, Message, PeerRequest, RejectReason} from './beacon-codec.js';
import type {Config, OnStop} from './config.js';
import type {FailResult, HostLabel, ResumeResult, StatusReport, SwitchoverOptions, SwitchProgress, SwitchResult} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import {HealthMonitor, type HealthProbe} from './health.js';
import {runHealthHandover} from './health-handover.js';
import type {HookRunner} from './hooks.js';
import type {Logger} from './log.js';
import {Outbox} from './peer/outbox.js';
import {describeRejectedSinceValid, PeerMonitor} from './peer-monitor.js';
import {PeerRequester, PeerResponder} from './peer-requests.js';
import {createAnnouncer} from './plans/announcer.js';
import {runSwitchover} from './plans/coordinator.js';
import {executeStep, runPlan, type StepRun} from './plans/executor.js';
import {SwitchParticipant} from './plans/participant.js';
import type {LocalPlanName, LocalStepName} from './plans/plans.js';
import {recoverInterruptedSwitch} from './plans/recovery.js';
import type {AccessLogWatcher, BeaconTransport, Clock, HostInfoSource, JournalStore, NetworkDriver, Role, StateStore} from './ports.js';
import {PreProbe} from './preprobe.js';
import {dropLink} from './rehearsal.js';
import {initialState, step, type AgentEvent, type Effect, type MachineState, type PeerView} from './state-machine.js';
import {assembleStatus} from './status-report.js';
import {LatenessTracker} from './timers.js';

export interface AgentDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly transport: BeaconTransport;
  readonly network: NetworkDriver;
  readonly store: StateStore;
  readonly journal: JournalStore;
  /** This host's access log, when confirm.access_log is set. */
  readonly accessLog: AccessLogWatcher | undefined;
  readonly hostInfo: HostInfoSource;
  /** A driver that records instead of running, for switchover --dry-run. */
  readonly recordingNetwork: () => {readonly network: NetworkDriver; commands(): string[]};
  /** Runs the health checks of config.health. */
  readonly healthProbe: HealthProbe;
  /** Runs hooks.on_state_change, when configured. */
  readonly hooks: HookRunner | undefined;
  readonly log: Logger;
  readonly newId: () => string;
  readonly hostname: string;
  readonly pid: number;
}

// The address is observed on the interface once a second for beacons and repairs: one `ip` run per second
// keeps the agent well under 1 % CPU, and a second is the resolution of what the peer learns from us.
const OBSERVE_EVERY_MS = 1000;
// At start we listen for two intervals before deciding, so a live peer that holds the IP is heard first.
const STARTUP_LISTEN_INTERVALS = 2;
// The liveness loop sleeps until the dead timer (or the pre-probe) is due; never less than this, so a clock
// quirk cannot make it spin.
const LIVENESS_MIN_SLEEP_MS = 5;
// Rehearsal requests to the peer: a few retries on a healthy link.
const REQUEST_DEADLINE_MS = 5000;
const STOPPING_REPEATS = 2;
const STOPPING_REPEAT_MS = 20;
// Peer requests are resent this often until answered: short, because a lost datagram in a switch is service time.
const REQUEST_RETRY_MS = 100;

export class Agent {
  readonly #deps: AgentDeps;
  readonly #monitor: PeerMonitor;
  readonly #lateness: LatenessTracker;
  readonly #abort = new AbortController();
  readonly #bootId: string;
  readonly #peerRole: Role;
  readonly #outbox: Outbox;
  readonly #steps: StepRun;
  readonly #preprobe: PreProbe;
  #machine: MachineState;
  #stateSince = 0;
  #startedAt = 0;
  #observedHoldsIp = false;
  #peerWasAlive = false;
  #queue: Promise<void> = Promise.resolve();
  readonly #loops: Promise<void>[] = [];
  readonly #loggedRejects = new Set<RejectReason>();
  readonly #requester: PeerRequester;
  readonly #responder: PeerResponder;
  readonly #participant: SwitchParticipant;
  #lastSwitch: {id: string; outcome: string; reason: string; endedAt: number} | undefined;
  #coordinating = false;
  readonly #health: HealthMonitor;
  #handingOver = false;
  // Settled the first time the machine leaves `starting`; never rejected (a stop while starting leaves it too).
  readonly #decided = Promise.withResolvers<void>();

  constructor(deps: AgentDeps) {
    const {config, clock, network, log} = deps;
    this.#deps = deps;
    this.#bootId = deps.newId();
    this.#peerRole = config.node === 'primary' ? 'backup' : 'primary';
    this.#monitor = new PeerMonitor({
      pair: config.pair,
      peerRole: this.#peerRole,
      peerAddress: config.peer.address,
      selfBoot: this.#bootId,
      keyring: config.keyring,
      deadAfterMs: config.heartbeat.deadAfterMs,
      maxClockSkewMs: config.heartbeat.maxClockSkewMs,
    });
    this.#lateness = new LatenessTracker(config.heartbeat.intervalMs);
    this.#machine = initialState(config.node, 0);
    this.#outbox = new Outbox(config, clock, deps.transport, this.#bootId);
    this.#preprobe = new PreProbe(clock, network, config.service.ip, config.heartbeat);
    const announcer = createAnnouncer({network, ip: config.service.ip, clock, log, signal: this.#abort.signal});
    this.#steps = {
      mode: config.service.mode,
      clock,
      ctx: {
        service: config.service,
        network,
        announce: () => announcer.announce(),
        probe: () => this.#preprobe.fresh(this.#monitor.stats(clock.now()).lastSeenAt) ?? network.isAddressInUse(config.service.ip),
      },
    };
    this.#requester = new PeerRequester((request) => this.#outbox.request(request, this.#monitor.newest()?.boot ?? ''), clock, deps.newId,
      Math.min(REQUEST_RETRY_MS, config.heartbeat.intervalMs));
    this.#responder = new PeerResponder((request) => this.#answer(request), (reply) => this.#outbox.reply(reply));
    this.#participant = new SwitchParticipant({
      config, clock, journal: deps.journal, store: deps.store, accessLog: deps.accessLog, hostInfo: deps.hostInfo, log,
      self: this.#selfLabel(), steps: this.#steps, recordingNetwork: deps.recordingNetwork,
      host: {
        machine: () => this.#machine,
        peer: () => this.#peerNow(),
        dispatch: (event) => this.dispatch(event),
        observed: () => this.#refreshObserved(),
      },
    });
    this.#health = new HealthMonitor({
      probe: deps.healthProbe, settings: config.health, clock,
      onChange: (health, reason) => {
        log[health === 'ok' ? 'notice' : 'warning'](`(health) ${health}: ${reason}`);
        void this.dispatch({type: 'health-changed', health, reason});
      },
    });
  }

  get bootId(): string {
    return this.#bootId;
  }

  get state(): MachineState {
    return this.#machine;
  }

  /**
   * Resolves when the state machine first leaves `starting`: the agent has decided what it is (active, standby,
   * fault…, or stopping when stopped before deciding). What systemd's READY=1 waits for.
   */
  ready(): Promise<void> {
    return this.#decided.promise;
  }

  /** Loads persisted state and starts the loops; resolves once the agent is running (not once it has decided). */
  async start(): Promise<void> {
    const {clock, store, log, config} = this.#deps;
    const saved = await store.load();
    this.#machine = initialState(config.node, saved?.epoch ?? 0, saved?.released === true);
    this.#startedAt = clock.now();
    this.#stateSince = this.#startedAt;
    this.#observedHoldsIp = await this.#observeHoldsIp();
    log.notice(`(agent) ${config.node} of pair ${config.pair} starting, boot ${this.#bootId}, epoch ${this.#machine.epoch}, ` +
      `service IP ${config.service.ip.cidr} on ${config.service.interface} (${this.#observedHoldsIp ? 'held here' : 'not held here'})`);
    this.#loops.push(this.#receiveLoop(), this.#beaconLoop(), this.#livenessLoop(), this.#observeLoop(), this.#startup());
    this.#health.start();
  }

  /**
   * A clean stop (SIGTERM) per on_stop: `keep` leaves the IP where it is and says "stopping" to the peer, which
   * then does not take over while the IP still answers ARP; `release` removes the IP first and says so, and a
   * healthy standby takes over at once instead of waiting for the dead timer. Throws when the release fails.
   */
  async shutdown(onStop: OnStop): Promise<void> {
    const {network, config, log} = this.#deps;
    await this.#queue;
    let released = false;
    if (onStop === 'release' && await network.isServing(config.service.ip).catch(() => false)) {
      await executeStep('release-ip', this.#steps);
      released = true;
      log.notice(`(agent) released ${config.service.ip.cidr} (on_stop: release)`);
    }
    await this.#refreshObserved();
    await this.dispatch({type: 'stop-requested', released});
    // The "stopping" beacon is the last word: sent twice more, a few ms apart, so one lost datagram does not
    // leave the peer waiting for its dead timer.
    for (let i = 0; i < STOPPING_REPEATS; i += 1) {
      await this.#deps.clock.sleep(STOPPING_REPEAT_MS);
      await this.#sendBeacon();
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    this.#health.stop();
    this.#abort.abort();
    await this.#deps.transport.close();
    await Promise.allSettled(this.#loops);
    await this.#queue;
  }

  /** Feeds one event through the state machine and runs its effects; events are handled one at a time. */
  dispatch(event: AgentEvent): Promise<void> {
    const next = this.#queue.then(() => this.#handle(event));
    this.#queue = next.catch((error: unknown) => {
      this.#deps.log.error(`(agent) handling ${event.type} failed: ${describeError(error)}`);
    });
    return this.#queue;
  }

  async status(): Promise<StatusReport> {
    const {config, clock, network, transport, hostname, pid} = this.#deps;
    const holdsIp = await network.isServing(config.service.ip);
    const current = this.#participant.current;
    return assembleStatus({
      config, now: clock.now(), startedAt: this.#startedAt, stateSince: this.#stateSince, machine: this.#machine,
      self: {host: hostname, pid, bootId: this.#bootId}, holdsIp, health: this.#health.snapshot(),
      peer: this.#monitor.stats(clock.now()), lastSwitch: this.#lastSwitch,
      switching: current === undefined ? undefined : {id: current.id, side: current.side},
      beacons: {sent: this.#outbox.sent, droppedUnread: transport.dropped}, lateness: this.#lateness.snapshot(),
    });
  }

  async #handle(event: AgentEvent): Promise<void> {
    const before = this.#machine;
    const {state, effects} = step(before, event);
    this.#machine = state;
    if (state.name !== 'starting') this.#decided.resolve();
    if (event.type === 'switch-ended') {
      this.#lastSwitch = {id: event.switchId, outcome: event.outcome, reason: event.reason, endedAt: this.#deps.clock.now()};
    }
    if ((state.name === 'released') !== (before.name === 'released')) {
      // Released survives a restart: a host freed for maintenance must not become a standby by rebooting.
      await this.#deps.store.save({epoch: state.epoch, released: state.name === 'released'}).catch((error: unknown) =>
        this.#deps.log.error(`(state) could not save that this host is ${state.name}: ${describeError(error)}`));
    }
    if (state.name !== before.name) {
      this.#stateSince = this.#deps.clock.now();
      this.#deps.log.notice(`(state) ${before.name} -> ${state.name}: ${state.reason}`);
      this.#loggedRejects.clear();
      this.#deps.hooks?.notify({oldState: before.name, newState: state.name, reason: state.reason});
    } else if (state.reason !== before.reason) {
      this.#deps.log.info(`(state) ${state.name}: ${state.reason}`);
    }
    await this.#runEffects(effects);
  }

  async #runEffects(effects: readonly Effect[]): Promise<void> {
    const {store, network, config, log} = this.#deps;
    let failure: string | undefined;
    for (const effect of effects) {
      switch (effect.type) {
        case 'save-epoch':
          try {
            await store.save({epoch: effect.epoch, released: false});
          } catch (error) {
            // Taking the IP under an epoch that a restart could forget would break conflict resolution.
            failure = `could not save epoch ${effect.epoch}: ${describeError(error)}`;
          }
          break;
        case 'run-plan':
          if (failure !== undefined) {
            void this.dispatch({type: 'plan-finished', planId: effect.planId, ok: false, error: failure});
          } else {
            // Not awaited: beacons and control requests go on while the plan runs.
            void this.#runPlan(effect.planId, effect.plan, effect.steps);
          }
          break;
        case 'send-beacon':
          await this.#sendBeacon();
          break;
        case 'hand-over':
          void this.#handOver(effect.reason);
          break;
        case 'announce-again':
          await network.announce(config.service.ip).catch((error: unknown) =>
            log.warning(`(network) announcing ${config.service.ip.cidr} failed: ${describeError(error)}`));
          break;
        default: {
          const unknown: never = effect;
          throw new Error(`unknown effect ${JSON.stringify(unknown)}`);
        }
      }
    }
  }

  /** Runs a plan of this host's own through the executor, and feeds its outcome back to the state machine. */
  async #runPlan(planId: string, plan: LocalPlanName, steps: readonly LocalStepName[]): Promise<void> {
    const {log} = this.#deps;
    const outcome = await runPlan(steps, this.#steps);
    // Beacons report what the plan left on the interface at once, not a second later.
    this.#observedHoldsIp = await this.#observeHoldsIp();
    const label = `(plan ${planId} ${plan})`;
    for (const done of outcome.steps) log.info(`${label} ${done.step} ok ${done.ms}ms`);
    if (outcome.ok) {
      log.info(`${label} done in ${outcome.ms}ms`);
      await this.dispatch({type: 'plan-finished', planId, ok: true});
      return;
    }
    const addressInUse = isBatonError(outcome.error, 'ADDRESS_IN_USE');
    // An IP that keeps answering is probed every second: that is logged once, by the state change, not here.
    if (addressInUse) log.debug(`${label} ${outcome.message}`);
    else log.error(`${label} ${outcome.failed} failed after ${outcome.ms}ms: ${describeError(outcome.error)}`);
    for (const undone of outcome.undone) log.notice(`${label} undid ${undone}`);
    for (const undoFailure of outcome.undoFailures) log.error(`${label} ${undoFailure}`);
    await this.dispatch({type: 'plan-finished', planId, ok: false, error: outcome.message, addressInUse});
  }

  async #startup(): Promise<void> {
    const {clock, config, network, log, journal} = this.#deps;
    try {
      await clock.sleep(config.heartbeat.intervalMs * STARTUP_LISTEN_INTERVALS, this.#abort.signal);
      const recovered = await recoverInterruptedSwitch({node: config.node, journal, log, steps: this.#steps}, this.#machine.peer);
      if (recovered !== undefined) {
        this.#lastSwitch = {id: recovered.switchId, outcome: 'interrupted', reason: recovered.reason, endedAt: clock.now()};
      }
      const holdsIp = await this.#observeHoldsIp();
      this.#observedHoldsIp = holdsIp;
      // Probing our own address would find ourselves: only probe when it is not on our interface.
      const addressInUse = holdsIp ? false : await network.isAddressInUse(config.service.ip);
      await this.dispatch({type: 'probed', holdsIp, addressInUse});
    } catch (error) {
      if (this.#abort.signal.aborted) return;
      log.error(`(agent) start-up probe failed: ${describeError(error)}`);
      await this.dispatch({type: 'probed', holdsIp: false, addressInUse: true});
    }
  }

  /** The operator's switchover, run from this host. One at a time. */
  async switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    if (this.#coordinating) throw new BatonError('SWITCH_IN_PROGRESS', 'a switchover started from this host is already running');
    this.#coordinating = true;
    const {config, clock, log, hostInfo, network} = this.#deps;
    try {
      return await runSwitchover({
        config, clock, log, hostInfo, network, self: this.#selfLabel(),
        machine: () => this.#machine,
        participant: this.#participant,
        requester: this.#requester,
        peer: () => {
          const last = this.#monitor.stats(clock.now()).lastBeacon;
          return {
            view: this.#peerNow(),
            label: this.#peerLabel(),
            health: last?.health,
            boot: this.#monitor.newest()?.boot,
            switchId: last?.switchId ?? '',
            rejecting: this.#rejecting(),
          };
        },
        newSwitchId: () => this.#deps.newId().replaceAll(/[^A-Za-z0-9]/g, '').slice(0, 10) || 'switch',
      }, options, emit);
    } finally {
      this.#coordinating = false;
    }
  }

  async #handOver(reason: string): Promise<void> {
    if (this.#handingOver) return;
    this.#handingOver = true;
    try {
      await runHealthHandover({
        clock: this.#deps.clock, log: this.#deps.log, peerRole: this.#peerRole, signal: this.#abort.signal,
        machine: () => this.#machine,
        peerHealth: () => this.#monitor.stats(this.#deps.clock.now()).lastBeacon?.health ?? 'unknown',
        switchover: () => this.switchover({dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined}, () => undefined),
      }, reason);
    } finally {
      this.#handingOver = false;
    }
  }

  /** The peer as its last beacon showed it, alive as of now (the machine's view learns of a death later). */
  #peerNow(): PeerView | undefined {
    const peer = this.#machine.peer;
    return peer === undefined ? undefined : {...peer, alive: this.#monitor.isAlive(this.#deps.clock.now())};
  }

  /** Why the peer's datagrams are being rejected, when they are (since its last valid one). */
  #rejecting(): string | undefined {
    const rejected = this.#monitor.rejectedSinceValid;
    return rejected === undefined ? undefined : describeRejectedSinceValid(rejected);
  }

  /** The peer's requests: its part of a switch, and the two rehearsal helpers. */
  async #answer(request: PeerRequest): Promise<JsonObject> {
    switch (request.op) {
      case 'resume':
        return {...await this.#resumeHere()};
      case 'drop-link': {
        const seconds = request.params['seconds'];
        await this.#dropLink(typeof seconds === 'number' ? seconds : Number.NaN);
        return {};
      }
      default:
        return this.#participant.handle(request, this.#monitor.newest()?.boot ?? '');
    }
  }

  /**
   * Rehearsal (`baton rehearse --with-failure`): the host holding the IP brings its service link down for
   * `seconds`, as a dying host would, and up again by itself (its peer may not reach it meanwhile).
   */
  async failActive(seconds: number): Promise<FailResult> {
    if (await this.#deps.network.isServing(this.#deps.config.service.ip)) {
      await this.#dropLink(seconds);
      return {host: this.#selfLabel(), seconds};
    }
    if (this.#machine.peer?.alive === true && this.#machine.peer.holdsIp) {
      await this.#requester.request('drop-link', '', {seconds}, {deadlineMs: REQUEST_DEADLINE_MS});
      return {host: this.#peerLabel(), seconds};
    }
    throw new BatonError('STEP_FAILED', 'neither host holds the service IP: there is no active host to fail');
  }

  #dropLink(seconds: number): Promise<void> {
    const {network, config, clock, log} = this.#deps;
    return dropLink({network, iface: config.service.interface, clock, log, signal: this.#abort.signal}, seconds);
  }

  /** `baton resume`: a released host becomes standby again; with `peer`, the other host. */
  async resume(peer = false): Promise<ResumeResult> {
    if (!peer) return this.#resumeHere();
    const result = await this.#requester.request('resume', '', {}, {deadlineMs: REQUEST_DEADLINE_MS});
    return {state: String(result['state']), reason: String(result['reason'])};
  }

  async #resumeHere(): Promise<ResumeResult> {
    const {config, network} = this.#deps;
    if (this.#machine.name !== 'released') {
      throw new BatonError('STEP_FAILED', `this host is ${this.#machine.name}, not released: there is nothing to resume`);
    }
    // Link mode: the released host's service interface stayed down through its maintenance; a standby needs it up.
    if (config.service.mode === 'link') await network.setLink(config.service.interface, true);
    await this.dispatch({type: 'resume-requested'});
    return {state: this.#machine.name, reason: this.#machine.reason};
  }

  #selfLabel(): HostLabel {
    return {role: this.#deps.config.node, host: this.#deps.hostname};
  }

  #peerLabel(): HostLabel {
    return {role: this.#peerRole, host: this.#monitor.stats(this.#deps.clock.now()).lastBeacon?.host ?? this.#deps.config.peer.address};
  }

  async #receiveLoop(): Promise<void> {
    const {clock, log} = this.#deps;
    for await (const {datagram, from} of this.#deps.transport.receive()) {
      const now = clock.now();
      const observation = this.#monitor.observe(datagram, from, now, clock.wallNow());
      if (!observation.ok) {
        if (!this.#loggedRejects.has(observation.reason)) {
          // Each kind is logged once per state change: a flood must not flood the journal too.
          this.#loggedRejects.add(observation.reason);
          log.warning(`(beacon) rejected from ${from}: ${observation.reason}: ${observation.detail} (further ${observation.reason} rejections are counted in status, not logged)`);
        }
        continue;
      }
      if (observation.newBoot && this.#peerWasAlive) {
        // The peer restarted: whatever it asked of us before is void.
        this.#requester.abandonAll('the peer restarted');
        void this.#participant.abandon('the peer restarted');
      }
      if (!this.#peerWasAlive && !observation.newBoot) log.notice(`(peer) ${this.#peerRole} alive again`);
      this.#peerWasAlive = true;
      this.#handleMessage(observation.message, observation.newBoot, now);
    }
  }

  #handleMessage(message: Message, newBoot: boolean, now: number): void {
    switch (message.kind) {
      case 'beacon': {
        const beacon = message.beacon;
        if (newBoot) {
          this.#deps.log.notice(`(peer) ${beacon.node} ${beacon.host} seen: boot ${beacon.boot}, state ${beacon.state}, ${beacon.holdsIp ? 'holds' : 'does not hold'} the service IP, epoch ${beacon.epoch}`);
        }
        this.#recordAck(beacon, now);
        void this.dispatch({type: 'peer-seen', beacon});
        return;
      }
      case 'request':
        this.#responder.onRequest(message.request);
        return;
      case 'reply':
        this.#requester.onReply(message.reply);
        return;
    }
  }

  #recordAck(beacon: Beacon, now: number): void {
    if (beacon.ack === undefined || beacon.ack.boot !== this.#bootId) return;
    const sentAt = this.#outbox.sentAt(beacon.ack.seq);
    if (sentAt !== undefined) this.#monitor.recordAck(sentAt, beacon.ack.heldMs, now);
  }

  async #beaconLoop(): Promise<void> {
    const {clock, config, log} = this.#deps;
    const interval = config.heartbeat.intervalMs;
    let due = clock.now();
    while (!this.#abort.signal.aborted) {
      const lateness = clock.now() - due;
      if (this.#lateness.record(lateness)) {
        log.warning(`(timers) beacon tick ran ${Math.round(lateness)} ms late, more than the ${interval} ms interval: the peer may see us as dead (CPU starved, swapping, or a stopped process?)`);
      }
      await this.#sendBeacon();
      due += interval;
      // After a long stall, do not send a burst of catch-up beacons: resume the rhythm from now.
      const now = clock.now();
      if (due < now) due = now;
      try {
        await clock.sleep(due - now, this.#abort.signal);
      } catch {
        return;
      }
    }
  }

  async #livenessLoop(): Promise<void> {
    const {clock, config} = this.#deps;
    while (!this.#abort.signal.aborted) {
      this.#checkPeerLiveness();
      const deadline = this.#monitor.deadline();
      // A standby whose peer has been silent for nearly dead_after_ms probes the IP ahead of the takeover.
      if (this.#peerWasAlive && deadline !== undefined && this.#machine.name === 'standby' && this.#machine.plan === undefined) {
        this.#preprobe.maybeStart(deadline);
      }
      // Wake at the next moment that matters (the pre-probe, the dead timer), else once an interval.
      const now = clock.now();
      const next = deadline === undefined || !this.#peerWasAlive ? config.heartbeat.intervalMs
        : [deadline - this.#preprobe.leadMs, deadline].map((at) => at - now).filter((ms) => ms > 0).sort((a, b) => a - b)[0] ?? config.heartbeat.intervalMs;
      try {
        await clock.sleep(Math.max(LIVENESS_MIN_SLEEP_MS, Math.min(next, config.heartbeat.intervalMs)), this.#abort.signal);
      } catch {
        return;
      }
    }
  }

  #checkPeerLiveness(): void {
    const now = this.#deps.clock.now();
    if (this.#peerWasAlive && !this.#monitor.isAlive(now)) {
      this.#peerWasAlive = false;
      this.#deps.log.warning(`(peer) lost: no valid beacon for ${this.#deps.config.heartbeat.deadAfterMs} ms`);
      void this.#participant.abandon('the peer went silent').then(() => this.dispatch({type: 'peer-lost'}));
    }
  }

  async #observeLoop(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        await this.#deps.clock.sleep(OBSERVE_EVERY_MS, this.#abort.signal);
      } catch {
        return;
      }
      this.#observedHoldsIp = await this.#observeHoldsIp();
      if (this.#participant.current === undefined) void this.dispatch({type: 'observed', holdsIp: this.#observedHoldsIp});
      const now = this.#deps.clock.now();
      // Keep probing while the peer is silent (or was never heard since start) and the IP is not ours.
      if (!this.#monitor.isAlive(now) && now - this.#startedAt > this.#deps.config.heartbeat.deadAfterMs) {
        void this.dispatch({type: 'peer-still-silent'});
      }
    }
  }

  async #refreshObserved(): Promise<void> {
    this.#observedHoldsIp = await this.#observeHoldsIp();
  }

  async #observeHoldsIp(): Promise<boolean> {
    try {
      return await this.#deps.network.isServing(this.#deps.config.service.ip);
    } catch (error) {
      this.#deps.log.error(`(network) cannot observe the service IP: ${describeError(error)}`);
      return false;
    }
  }

  async #sendBeacon(): Promise<void> {
    const newest = this.#monitor.newest();
    try {
      await this.#outbox.beacon({
        host: this.#deps.hostname,
        state: this.#machine.name,
        epoch: this.#machine.epoch,
        holdsIp: this.#observedHoldsIp,
        health: this.#machine.health,
        switchId: this.#participant.current?.id ?? '',
        ack: newest === undefined ? undefined : {boot: newest.boot, seq: newest.seq, heldMs: Math.round(this.#deps.clock.now() - newest.at)},
      });
    } catch (error) {
      this.#deps.log.debug(`(beacon) send failed: ${describeError(error)}`);
    }
  }
}
