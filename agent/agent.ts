// The agent's event loop and its wiring: beacons out and in, timers, peer and control requests → step() →
// effects. What each effect does lives elsewhere: plans run through plans/executor.ts, switches through
// plans/participant.ts and plans/coordinator.ts, status is assembled in status-report.ts.

import type {JsonObject, PeerRequest} from './peer/beacon-codec.js';
import type {Config, OnStop} from './config/schema.js';
import type {AgentStatus, DrainResult, FailResult, HostLabel, RehearsalAids, ResumeResult, SwitchoverOptions, SwitchProgress, SwitchResult} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import {HealthMonitor, type HealthProbe} from './health.js';
import {HealthHandover} from './health-handover.js';
import type {HookRunner} from './hooks.js';
import type {Logger} from './log.js';
import {PeerLink} from './peer/peer-link.js';
import {decodePeerParams} from './peer/peer-protocol.js';
import {PeerVersion, VERSION_ASK_DEADLINE_MS} from './peer/peer-version.js';
import {Coordinator} from './plans/coordinator.js';
import {createStepRun, executeStep, logPlanOutcome, runPlan, type StepRun} from './plans/executor.js';
import {SwitchParticipant} from './plans/participant.js';
import type {LocalPlanName, LocalStepName} from './plans/plans.js';
import {recoverInterruptedSwitch} from './plans/recovery.js';
import type {
  AccessLogWatcher, ArrivalCounter, BeaconTransport, Clock, CommandRunner, DrainDriver, HostInfoSource, JournalStore, NetworkDriver, RecordingDrivers,
  StateStore,
} from './ports.js';
import {Observer} from './observer.js';
import {PreProbe} from './preprobe.js';
import {askRehearsalAids, dropLink, failActive, REHEARSAL_ASK_DEADLINE_MS, requireRehearsal, type LinkDrop} from './rehearsal.js';
import {initialState, step, type AgentEvent, type Effect, type MachineState, type PeerView} from './state-machine.js';
import {assembleStatus} from './status-report.js';
import type {MetricsSource} from './metrics.js';
import {AgentTally, countingAnnouncements} from './tally.js';
import {LatenessTracker, runTicks} from './timers.js';
import {VERSION} from './version.js';
import {announceAll, describeAddresses, findServing, isAnyInUse, isServingAll, isServingAny, removeAll} from './net/service-addresses.js';

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
  /** The kernel's side of a switch's drain. */
  readonly drain: DrainDriver;
  /** The kernel's count of clients' new connections to the service IP, for confirm-traffic (none: the log only). */
  readonly arrivals?: ArrivalCounter;
  /** Runs drain.graceful_command. */
  readonly runner: CommandRunner;
  /** Drivers that record instead of running, for switchover --dry-run. */
  readonly recordingDrivers: () => RecordingDrivers;
  /** Runs the health checks of config.health. */
  readonly healthProbe: HealthProbe;
  /** Runs hooks.on_state_change, when configured. */
  readonly hooks: HookRunner | undefined;
  readonly log: Logger;
  readonly newId: () => string;
  /** This host's addresses as its interfaces have them now, told to the peer when a switch begins; none when absent. */
  readonly hostAddresses?: () => readonly string[];
  readonly hostname: string;
  readonly pid: number;
}

// At start we listen for two intervals before deciding, so a live peer that holds the IP is heard first.
const STARTUP_LISTEN_INTERVALS = 2;
// The liveness loop sleeps until the dead timer (or the pre-probe) is due; never less than this, so a clock
// quirk cannot make it spin.
const LIVENESS_MIN_SLEEP_MS = 5;
// Rehearsal requests to the peer: a few retries on a healthy link.
const REQUEST_DEADLINE_MS = 5000;
const STOPPING_REPEATS = 2;
const STOPPING_REPEAT_MS = 20;

export class Agent {
  readonly #deps: AgentDeps;
  readonly #peer: PeerLink;
  readonly #peerVersion: PeerVersion;
  readonly #lateness: LatenessTracker;
  readonly #abort = new AbortController();
  readonly #bootId: string;
  readonly #steps: StepRun;
  readonly #preprobe: PreProbe;
  #machine: MachineState;
  #stateSince = 0;
  #startedAt = 0;
  readonly #observer: Observer;
  #stopping = false;
  #queue: Promise<void> = Promise.resolve();
  readonly #loops: Promise<void>[] = [];
  readonly #participant: SwitchParticipant;
  #lastSwitch: {id: string; outcome: string; reason: string; endedAt: number} | undefined;
  readonly #coordinator: Coordinator;
  readonly #health: HealthMonitor;
  readonly #handover: HealthHandover;
  readonly #tally = new AgentTally();
  // Settled the first time the machine leaves `starting`; never rejected (a stop while starting leaves it too).
  readonly #decided = Promise.withResolvers<void>();

  constructor(agentDeps: AgentDeps) {
    // One driver for every move and look of the agent's, its announcements counted.
    const deps = {...agentDeps, network: countingAnnouncements(agentDeps.network, this.#tally)};
    const {config, clock, network, log} = deps;
    this.#deps = deps;
    this.#bootId = deps.newId();
    this.#peer = new PeerLink({
      config, clock, transport: deps.transport, log, newId: deps.newId, bootId: this.#bootId,
      answer: (request) => this.#answer(request),
      onBeacon: (beacon) => {
        this.#peerVersion.seen(beacon);
        void this.dispatch({type: 'peer-seen', beacon});
      },
      onPeerRestarted: () => void this.#participant.abandon('the peer restarted'),
    });
    this.#peerVersion = new PeerVersion({
      clock, log, selfBoot: this.#bootId, peerRole: this.#peer.peerRole, intervalMs: config.heartbeat.intervalMs,
      ask: () => this.#peer.requester.request('version', '', {}, {deadlineMs: VERSION_ASK_DEADLINE_MS, signal: this.#abort.signal}),
    });
    this.#lateness = new LatenessTracker(config.heartbeat.intervalMs);
    this.#machine = initialState(config.node, 0);
    this.#observer = new Observer(network, config.service.ips, log);
    this.#preprobe = new PreProbe(clock, network, config.service.ips, config.heartbeat);
    this.#steps = createStepRun({
      service: config.service, network, clock, log, signal: this.#abort.signal,
      probe: () => this.#preprobe.fresh(this.#peer.stats().lastSeenAt) ?? isAnyInUse(network, config.service.ips),
      drain: deps.drain, giverAddresses: () => this.#participant.giverAddresses,
    });
    this.#participant = new SwitchParticipant({
      config, clock, journal: deps.journal, store: deps.store, accessLog: deps.accessLog, arrivals: deps.arrivals, hostInfo: deps.hostInfo, log,
      self: this.#selfLabel(), steps: this.#steps, recordingDrivers: deps.recordingDrivers, runner: deps.runner, hostAddresses: deps.hostAddresses,
      host: {
        machine: () => this.#machine,
        peer: () => this.#peerNow(),
        dispatch: (event) => this.dispatch(event),
        observed: async () => void await this.#observer.refresh(),
      },
    });
    this.#coordinator = new Coordinator({
      config, clock, log, hostInfo: deps.hostInfo, network, self: this.#selfLabel(),
      machine: () => this.#machine,
      participant: this.#participant,
      requester: this.#peer.requester,
      peer: () => this.#peer.snapshot(this.#peerNow()),
      newSwitchId: () => deps.newId().replaceAll(/[^A-Za-z0-9]/g, '').slice(0, 10) || 'switch',
    });
    this.#handover = new HealthHandover({
      clock, log, peerRole: this.#peer.peerRole, signal: this.#abort.signal,
      machine: () => this.#machine,
      peerHealth: () => this.#peer.stats().lastBeacon?.health ?? 'unknown',
      switchover: () => this.switchover({dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined}, () => undefined),
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
    await this.#observer.refresh();
    log.notice(`(agent) ${config.node} of pair ${config.pair} starting, boot ${this.#bootId}, epoch ${this.#machine.epoch}, ` +
      `service IP ${describeAddresses(config.service.ips)} on ${config.service.interface} (${this.#observer.holdsIp ? 'held here' : 'not held here'}), ` +
      `replay protection ${config.heartbeat.replayProtection}`);
    this.#loops.push(this.#peer.receive(), runTicks(clock, this.#lateness, log, this.#abort.signal, () => this.#sendBeacon()), this.#livenessLoop(), this.#observer.watch(clock, this.#abort.signal, this.#deps.config.service.interface, (holdsIp, interfaceRunning) => this.#observed(holdsIp, interfaceRunning)), this.#startup());
    this.#health.start();
  }

  /**
   * A clean stop (SIGTERM) per on_stop: `keep` leaves the IP where it is and says "stopping" to the peer, which
   * then does not take over while the IP still answers ARP; `release` removes the IP first and says so, and a
   * healthy standby takes over at once instead of waiting for the dead timer. Throws when the release fails.
   */
  async shutdown(onStop: OnStop): Promise<void> {
    const {network, config, log} = this.#deps;
    // From here the interface is this stop's to change: a look at it while the release runs would find the IP gone
    // while the state is still active, and take it back (a repair racing the release).
    this.#stopping = true;
    await this.#queue;
    let released = false;
    if (onStop === 'release' && await isServingAny(network, config.service.ips)) {
      await executeStep('release-ip', this.#steps);
      released = true;
      log.notice(`(agent) released ${describeAddresses(config.service.ips)} (on_stop: release)`);
    }
    await this.#observer.refresh();
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

  async status(): Promise<AgentStatus> {
    const {config, clock, network, transport, hostname, pid} = this.#deps;
    const served = await findServing(network, config.service.ips);
    const current = this.#participant.current;
    const peer = this.#peer.stats();
    return assembleStatus({
      config, now: clock.now(), startedAt: this.#startedAt, stateSince: this.#stateSince, machine: this.#machine,
      self: {host: hostname, pid, bootId: this.#bootId, version: VERSION}, served, health: this.#health.snapshot(),
      peer, peerVersion: this.#peerVersion.of(peer.lastBeacon?.boot), lastSwitch: this.#lastSwitch,
      switching: current === undefined ? undefined : {id: current.id, side: current.side},
      beacons: {sent: this.#peer.sent, droppedUnread: transport.dropped}, lateness: this.#lateness.snapshot(),
    });
  }

  /** The status and the tally at one moment: what the metrics endpoint shows. */
  async metrics(): Promise<MetricsSource> {
    return {status: await this.status(), tally: this.#tally.snapshot()};
  }

  async #handle(event: AgentEvent): Promise<void> {
    const before = this.#machine;
    const {state, effects} = step(before, event);
    this.#machine = state;
    if (state.name !== 'starting') this.#decided.resolve();
    if (event.type === 'switch-begun') this.#tally.switchBegun(event.switchId, this.#deps.clock.now());
    if (event.type === 'switch-ended') {
      this.#lastSwitch = {id: event.switchId, outcome: event.outcome, reason: event.reason, endedAt: this.#deps.clock.now()};
      this.#tally.switchEnded(event.switchId, event.outcome, this.#lastSwitch.endedAt);
    }
    if ((state.name === 'released') !== (before.name === 'released')) {
      // Released survives a restart: a host freed for maintenance must not become a standby by rebooting.
      await this.#deps.store.save({epoch: state.epoch, released: state.name === 'released'}).catch((error: unknown) =>
        this.#deps.log.error(`(state) could not save that this host is ${state.name}: ${describeError(error)}`));
    }
    if (state.name !== before.name) {
      this.#stateSince = this.#deps.clock.now();
      this.#tally.transition(before.name, state.name);
      this.#deps.log.notice(`(state) ${before.name} -> ${state.name}: ${state.reason}`);
      this.#peer.stateChanged();
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
          this.#handover.start(effect.reason);
          break;
        case 'announce-again':
          await announceAll(network, config.service.ips).catch((error: unknown) =>
            log.warning(`(network) announcing ${describeAddresses(config.service.ips)} failed: ${describeError(error)}`));
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
    const outcome = await runPlan(steps, this.#steps);
    logPlanOutcome(this.#deps.log, `(plan ${planId} ${plan})`, outcome);
    // Beacons report what the plan left on the interface at once, not a second later.
    await this.#observer.refresh();
    await this.dispatch(outcome.ok ? {type: 'plan-finished', planId, ok: true}
      : {type: 'plan-finished', planId, ok: false, error: outcome.message, addressInUse: isBatonError(outcome.error, 'ADDRESS_IN_USE')});
  }

  async #startup(): Promise<void> {
    const {clock, config, network, log, journal} = this.#deps;
    try {
      await clock.sleep(config.heartbeat.intervalMs * STARTUP_LISTEN_INTERVALS, this.#abort.signal);
      const recovered = await recoverInterruptedSwitch({node: config.node, journal, log, steps: this.#steps}, this.#machine.peer);
      if (recovered !== undefined) {
        this.#lastSwitch = {id: recovered.switchId, outcome: 'interrupted', reason: recovered.reason, endedAt: clock.now()};
        this.#tally.switchEnded(recovered.switchId, 'interrupted', clock.now());
      }
      // No switch runs while the agent starts: whatever a drain left (this agent was killed during one, or its
      // tidying failed) is taken back before the host decides anything.
      const leftovers: string[] = [];
      for (const ip of config.service.ips) {
        leftovers.push(...await this.#deps.drain.removeLeftovers(ip).catch((error: unknown) => [`nothing: looking failed: ${describeError(error)}`]));
      }
      if (leftovers.length > 0) log.warning(`(agent) removed what an interrupted drain left: ${leftovers.join(', ')}`);
      if (await this.#deps.arrivals?.removeLeftovers().catch((error: unknown) => {
        log.warning(`(agent) could not look for an arrival counter an interrupted switch left: ${describeError(error)}`);
        return false;
      })) log.warning('(agent) removed the arrival counter an interrupted switch left');
      const holdsIp = await this.#observer.refresh();
      // Probing our own address would find ourselves: only probe when it is not on our interface.
      const addressInUse = holdsIp ? false : await isAnyInUse(network, config.service.ips);
      await this.dispatch({type: 'probed', holdsIp, addressInUse});
    } catch (error) {
      if (this.#abort.signal.aborted) return;
      log.error(`(agent) start-up probe failed: ${describeError(error)}`);
      await this.dispatch({type: 'probed', holdsIp: false, addressInUse: true});
    }
  }

  /** `baton drain HOST` is etcd mode's: a pair has one other host, which `baton switchover` moves the service to. */
  drain(host: string): Promise<DrainResult> {
    return Promise.reject(new BatonError('BAD_REQUEST', `drain ${host}: a pair has no drain; \`baton switchover\` moves the service ` +
      'to the peer, and the host it leaves is released until `baton resume`'));
  }

  /** The operator's switchover, run from this host. One at a time. */
  async switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    if (options.pauseAfter !== undefined) requireRehearsal(this.#deps.config, 'switchover --pause-after');
    if (options.service !== undefined) {
      throw new BatonError('BAD_REQUEST', `switchover --service ${options.service}: a pair moves its one service, and takes no --service`);
    }
    if (options.to !== undefined) {
      throw new BatonError('BAD_REQUEST', `switchover --to ${options.to}: a pair moves the service to its peer, and takes no --to ` +
        '(it is for etcd mode, with three or more hosts); leave it out');
    }
    return this.#coordinator.run(options, emit);
  }

  /** The peer as its last beacon showed it, alive as of now (the machine's view learns of a death later). */
  #peerNow(): PeerView | undefined {
    const peer = this.#machine.peer;
    return peer === undefined ? undefined : {...peer, alive: this.#peer.isAlive()};
  }

  /** The peer's requests: its part of a switch, and the rehearsal helpers. */
  async #answer(request: PeerRequest): Promise<JsonObject> {
    switch (request.op) {
      case 'version':
        return {version: VERSION};
      case 'resume':
        return {...await this.#resumeHere()};
      case 'drop-link': {
        // This host's own configuration decides, whatever the asking host allows. A refusal is logged here too: the
        // peer, or someone holding the key, asked to cut this host's service link, and its operator should know.
        try {
          requireRehearsal(this.#deps.config, `the peer's drop-link (baton rehearse --with-failure)`);
        } catch (error) {
          this.#deps.log.warning(`(rehearsal) refused the peer's drop-link: ${describeError(error)}`);
          throw error;
        }
        const {seconds} = decodePeerParams('drop-link', request.params);
        await dropLink(this.#linkDrop(), seconds);
        return {};
      }
      case 'rehearsal':
        // This one boolean and nothing else of the configuration: whoever holds the key learns no more.
        return {enabled: this.#deps.config.rehearsal.enabled};
      default:
        return this.#participant.handle(request, this.#peer.peerBoot ?? '');
    }
  }

  /** Rehearsal (`baton rehearse --with-failure`): the host holding the IP plays a dying active host. */
  async failActive(seconds: number): Promise<FailResult> {
    const {network, config} = this.#deps;
    requireRehearsal(config, 'fail-active (baton rehearse --with-failure)');
    return failActive({
      drop: this.#linkDrop(), serving: () => isServingAll(network, config.service.ips), self: this.#selfLabel(), peer: this.#machine.peer,
      peerLabel: this.#peer.label(), askPeer: (s) => this.#peer.requester.request('drop-link', '', {seconds: s}, {deadlineMs: REQUEST_DEADLINE_MS}),
    }, seconds);
  }

  /** `baton rehearse --with-failure`, before any step: whether this host and the peer enable the rehearsal aids. */
  async rehearsalAids(): Promise<RehearsalAids> {
    return askRehearsalAids({
      self: this.#selfLabel(), enabled: this.#deps.config.rehearsal.enabled, peerLabel: () => this.#peer.label(), peerAlive: () => this.#peer.isAlive(),
      askPeer: () => this.#peer.requester.request('rehearsal', '', {}, {deadlineMs: REHEARSAL_ASK_DEADLINE_MS}),
    });
  }

  #linkDrop(): LinkDrop {
    const {network, config, clock, log} = this.#deps;
    return {network, iface: config.service.interface, clock, log, signal: this.#abort.signal};
  }

  /** `baton resume`: a released host becomes standby again; with `peer`, the other host. */
  async resume(peer = false): Promise<ResumeResult> {
    if (!peer) return this.#resumeHere();
    const result = await this.#peer.requester.request('resume', '', {}, {deadlineMs: REQUEST_DEADLINE_MS});
    return {state: String(result['state']), reason: String(result['reason'])};
  }

  async #resumeHere(): Promise<ResumeResult> {
    const {config, network} = this.#deps;
    if (this.#machine.name !== 'released') {
      throw new BatonError('STEP_FAILED', `this host is ${this.#machine.name}, not released: there is nothing to resume`);
    }
    // Link mode: the released host's service interface stayed down through its maintenance; a standby needs it up.
    // Without the service addresses: one left on the downed link (an IPv4 address stays there, and the switch's
    // removal may have failed) would answer beside the active host from the moment the link is up.
    if (config.service.mode === 'link') {
      await removeAll(network, config.service.ips);
      await network.setLink(config.service.interface, true);
    }
    await this.dispatch({type: 'resume-requested'});
    return {state: this.#machine.name, reason: this.#machine.reason};
  }

  #selfLabel(): HostLabel {
    return {role: this.#deps.config.node, host: this.#deps.hostname};
  }

  async #livenessLoop(): Promise<void> {
    const {clock, config} = this.#deps;
    while (!this.#abort.signal.aborted) {
      if (await this.#peer.checkLiveness(config.heartbeat.intervalMs, this.#abort.signal)) {
        void this.#participant.abandon('the peer went silent').then(() => this.dispatch({type: 'peer-lost'}));
      }
      const deadline = this.#peer.deadline();
      // A standby whose peer has been silent for nearly dead_after_ms probes the IP ahead of the takeover.
      if (this.#peer.wasAlive && deadline !== undefined && this.#machine.name === 'standby' && this.#machine.plan === undefined) {
        this.#preprobe.maybeStart(deadline);
      }
      const next = deadline === undefined || !this.#peer.wasAlive ? undefined : this.#preprobe.dueInMs(deadline);
      try {
        await clock.sleep(Math.max(LIVENESS_MIN_SLEEP_MS, Math.min(next ?? Infinity, config.heartbeat.intervalMs)), this.#abort.signal);
      } catch {
        return;
      }
    }
  }

  /** Each second's look at the interface: repairs when it differs from the state, and takeover retries. */
  #observed(holdsIp: boolean, interfaceRunning: boolean): void {
    if (this.#stopping) return;
    if (this.#participant.current === undefined) {
      void this.dispatch({type: 'observed', holdsIp, interfaceRunning, ...(this.#observer.partlyHeld ? {partlyHeld: true} : {})});
    }
    // Keep probing while the peer is silent (or was never heard since start) and the IP is not ours.
    if (!this.#peer.isAlive() && this.#deps.clock.now() - this.#startedAt > this.#deps.config.heartbeat.deadAfterMs) {
      void this.dispatch({type: 'peer-still-silent'});
    }
  }

  #sendBeacon(): Promise<void> {
    return this.#peer.sendBeacon({
      host: this.#deps.hostname,
      state: this.#machine.name,
      epoch: this.#machine.epoch,
      holdsIp: this.#observer.holdsIp,
      health: this.#machine.health,
      switchId: this.#participant.current?.id ?? '',
    });
  }
}
