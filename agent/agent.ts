// The agent's event loop: beacons out and in, timers, control requests → step() → effects run here.

import {encodeMessage, type Beacon, type Envelope, type JsonObject, type Message, type PeerRequest, type RejectReason} from './beacon-codec.js';
import type {Config, OnStop} from './config/schema.js';
import type {FailResult, HostLabel, ResumeResult, StatusReport, SwitchoverOptions, SwitchProgress, SwitchResult} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import type {Logger} from './log.js';
import {describeRejectedSinceValid, PeerMonitor} from './peer-monitor.js';
import {PeerRequester, PeerResponder, type OutgoingReply, type OutgoingRequest} from './peer-requests.js';
import type {
  AccessLogWatcher, BeaconTransport, Clock, HostInfoSource, JournalStore, NetworkDriver, Role, StateStore,
} from './ports.js';
import {ADDRESS_STILL_ANSWERS, initialState, step, type AgentEvent, type Effect, type MachineState, type PlanName, type StepName} from './state-machine.js';
import {runSwitchover, SwitchParticipant, type SwitchDeps} from './switch-runner.js';
import {isServing} from './switch-steps.js';
import {recoverInterruptedSwitch} from './recovery.js';
import {HealthMonitor, type HealthProbe} from './health.js';
import type {HookRunner} from './hooks.js';
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

// Our sent-at times are kept for the last SENT_KEPT beacons to turn the peer's acks into RTT samples;
// at 200 ms that is 13 s, far beyond any RTT worth measuring.
const SENT_KEPT = 64;
// The address is observed on the interface once a second for beacons and repairs: one `ip` run per second
// keeps the agent well under 1 % CPU, and a second is the resolution of what the peer learns from us.
const OBSERVE_EVERY_MS = 1000;
// At start we listen for two intervals before deciding, so a live peer that holds the IP is heard first.
const STARTUP_LISTEN_INTERVALS = 2;
// The announce step sends one gratuitous ARP of each form so traffic moves at once; a second burst follows after
// this delay for neighbours and switch ports that missed the first. Neighbours ignore an update within their
// locktime (Linux default 1 s) of the previous one, so the repeat comes just after it.
export const ANNOUNCE_REPEAT_MS = 1100;
// The liveness loop sleeps until the dead timer (or the pre-probe) is due; never less than this, so a clock
// quirk cannot make it spin.
const LIVENESS_MIN_SLEEP_MS = 5;
// The duplicate-address probe of a takeover (~200 ms, see main.ts) is started this long before the dead timer
// runs out, so that it overlaps the wait instead of adding to the outage. A result older than PROBE_FRESH_MS at
// takeover time is not used: the probe is run again.
const PREPROBE_LEAD_MS = 300;
const PROBE_FRESH_MS = 250;
// A failed health handover is tried again this long after: long enough not to flap, short against an outage
// of a sick host's service.
const HANDOVER_RETRY_MS = 30_000;
// A rehearsal's link drop lasts at most this long; the host brings its link back by itself after it.
const MAX_DROP_S = 300;
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
  #machine: MachineState;
  #stateSince = 0;
  #startedAt = 0;
  #seq = 0;
  readonly #sentAt = new Map<number, number>();
  #observedHoldsIp = false;
  #peerWasAlive = false;
  #queue: Promise<void> = Promise.resolve();
  readonly #loops: Promise<void>[] = [];
  readonly #loggedRejects = new Set<RejectReason>();
  #sent = 0;
  readonly #requester: PeerRequester;
  readonly #responder: PeerResponder;
  readonly #participant: SwitchParticipant;
  readonly #switchDeps: SwitchDeps;
  #lastSwitch: {id: string; outcome: string; reason: string; endedAt: number} | undefined;
  #coordinating = false;
  #preprobe: {startedAt: number; endedAt: number | undefined; result: Promise<boolean>} | undefined;
  readonly #health: HealthMonitor;
  #handingOver = false;
  // Settled the first time the machine leaves `starting`; never rejected (a stop while starting leaves it too).
  readonly #decided = Promise.withResolvers<void>();

  constructor(deps: AgentDeps) {
    this.#deps = deps;
    this.#bootId = deps.newId();
    this.#peerRole = deps.config.node === 'primary' ? 'backup' : 'primary';
    this.#monitor = new PeerMonitor({
      pair: deps.config.pair,
      peerRole: this.#peerRole,
      peerAddress: deps.config.peer.address,
      selfBoot: this.#bootId,
      keyring: deps.config.keyring,
      deadAfterMs: deps.config.heartbeat.deadAfterMs,
      maxClockSkewMs: deps.config.heartbeat.maxClockSkewMs,
    });
    this.#lateness = new LatenessTracker(deps.config.heartbeat.intervalMs);
    this.#machine = initialState(deps.config.node, 0);
    this.#requester = new PeerRequester((request) => this.#sendRequest(request), deps.clock, deps.newId,
      Math.min(REQUEST_RETRY_MS, deps.config.heartbeat.intervalMs));
    this.#responder = new PeerResponder(
      (request) => this.#answer(request),
      (reply) => this.#sendReply(reply),
    );
    this.#switchDeps = {
      config: deps.config, clock: deps.clock, network: deps.network, journal: deps.journal, accessLog: deps.accessLog,
      hostInfo: deps.hostInfo, log: deps.log,
      dispatch: (event) => this.dispatch(event),
      machine: () => this.#machine,
      peer: () => this.#machine.peer === undefined ? undefined : {...this.#machine.peer, alive: this.#monitor.isAlive(this.#deps.clock.now())},
      saveEpoch: (epoch) => deps.store.save({epoch, released: false}),
      recordingNetwork: deps.recordingNetwork,
      announced: () => void this.#repeatAnnounce(),
      observed: () => this.#refreshObserved(),
      self: this.#selfLabel(),
    };
    this.#participant = new SwitchParticipant(this.#switchDeps);
    this.#health = new HealthMonitor({
      probe: deps.healthProbe, settings: deps.config.health, clock: deps.clock,
      onChange: (health, reason) => {
        deps.log[health === 'ok' ? 'notice' : 'warning'](`(health) ${health}: ${reason}`);
        void this.dispatch({type: 'health-changed', health, reason});
      },
    });
  }

  async #refreshObserved(): Promise<void> {
    this.#observedHoldsIp = await this.#observeHoldsIp();
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
    if (onStop === 'release' && await isServing(this.#deps).catch(() => false)) {
      await network.removeAddress(config.service.ip);
      if (await network.hasAddress(config.service.ip)) throw new BatonError('STEP_FAILED', `${config.service.ip.cidr} is still on ${config.service.interface} after removing it`);
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
    const {config, clock} = this.#deps;
    const now = clock.now();
    const holdsIp = await isServing(this.#deps);
    const peer = this.#monitor.stats(now);
    const last = peer.lastBeacon;
    const lateness = this.#lateness.snapshot();
    return {
      pair: config.pair,
      self: {
        role: config.node,
        host: this.#deps.hostname,
        pid: this.#deps.pid,
        bootId: this.#bootId,
        state: this.#machine.name,
        reason: this.#machine.reason,
        stateForMs: Math.round(now - this.#stateSince),
        epoch: this.#machine.epoch,
        holdsIp,
        health: this.#machine.health,
        healthChecks: this.#health.snapshot().checks.map((c) => ({name: c.name, ok: c.ok, detail: c.detail})),
        uptimeMs: Math.round(now - this.#startedAt),
        listen: `${config.listen.address}:${config.listen.port}`,
      },
      service: {address: config.service.ip.cidr, interface: config.service.interface, mode: config.service.mode},
      peer: {
        role: this.#peerRole,
        address: `${config.peer.address}:${config.peer.port}`,
        alive: peer.alive,
        lastSeenMsAgo: peer.lastSeenAt === undefined ? undefined : Math.round(now - peer.lastSeenAt),
        host: last?.host,
        bootId: last?.boot,
        state: last?.state,
        holdsIp: last?.holdsIp,
        epoch: last?.epoch,
        health: last?.health,
        rttMs: peer.rttMs === undefined ? undefined : {last: round2(peer.rttMs.last), average: round2(peer.rttMs.average)},
        loss: peer.loss,
        rejectedSinceValid: peer.rejectedSinceValid,
      },
      lastSwitch: this.#lastSwitch === undefined ? undefined : {
        id: this.#lastSwitch.id, outcome: this.#lastSwitch.outcome, reason: this.#lastSwitch.reason,
        endedMsAgo: Math.round(now - this.#lastSwitch.endedAt),
      },
      switching: this.#participant.current === undefined ? undefined : {id: this.#participant.current.id, side: this.#participant.current.side},
      beacons: {sent: this.#sent, accepted: peer.accepted, rejected: peer.rejected, droppedUnread: this.#deps.transport.dropped},
      timers: {
        loopLagMs: {p99: lateness.p99, max: lateness.max},
        lateBeyondInterval: lateness.beyondInterval,
        intervalMs: config.heartbeat.intervalMs,
        deadAfterMs: config.heartbeat.deadAfterMs,
      },
    };
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
    let failure: string | undefined;
    for (const effect of effects) {
      switch (effect.type) {
        case 'save-epoch':
          try {
            await this.#deps.store.save({epoch: effect.epoch, released: false});
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
        case 'announce':
          await this.#deps.network.announce(this.#deps.config.service.ip).catch((error: unknown) =>
            this.#deps.log.warning(`(network) announcing ${this.#deps.config.service.ip.cidr} failed: ${describeError(error)}`));
          break;
        default: {
          const unknown: never = effect;
          throw new Error(`unknown effect ${JSON.stringify(unknown)}`);
        }
      }
    }
  }

  async #runPlan(planId: string, plan: PlanName, steps: readonly StepName[]): Promise<void> {
    const {clock, log} = this.#deps;
    const started = clock.now();
    for (const name of steps) {
      const stepStarted = clock.now();
      try {
        await this.#runStep(name);
        log.info(`(plan ${planId} ${plan}) ${name} ok ${Math.round(clock.now() - stepStarted)}ms`);
      } catch (error) {
        const addressInUse = isBatonError(error, 'ADDRESS_IN_USE');
        // An IP that keeps answering is probed every second: that is logged once, by the state change, not here.
        if (addressInUse) log.debug(`(plan ${planId} ${plan}) ${name}: ${describeError(error)}`);
        else log.error(`(plan ${planId} ${plan}) ${name} failed after ${Math.round(clock.now() - stepStarted)}ms: ${describeError(error)}`);
        this.#observedHoldsIp = await this.#observeHoldsIp();
        await this.dispatch({type: 'plan-finished', planId, ok: false, error: `${name}: ${describeError(error)}`, addressInUse});
        return;
      }
    }
    log.info(`(plan ${planId} ${plan}) done in ${Math.round(clock.now() - started)}ms`);
    await this.dispatch({type: 'plan-finished', planId, ok: true});
  }

  /** Apply, then verify: only an observed effect counts as done. */
  async #runStep(name: StepName): Promise<void> {
    const {network, config} = this.#deps;
    const ip = config.service.ip;
    switch (name) {
      case 'probe-address':
        if (await (this.#freshPreprobe() ?? network.isAddressInUse(ip))) throw new BatonError('ADDRESS_IN_USE', `${ADDRESS_STILL_ANSWERS}: ${ip.address} answered an ARP probe`);
        return;
      case 'assign-ip':
        await network.addAddress(ip);
        if (config.service.mode === 'link') await network.setLink(config.service.interface, true);
        this.#observedHoldsIp = await isServing(this.#deps);
        if (!this.#observedHoldsIp) throw new Error(`${ip.cidr} is not up on ${config.service.interface} after adding it`);
        return;
      case 'announce':
        await network.announce(ip);
        void this.#repeatAnnounce();
        return;
      case 'release-ip':
        await network.removeAddress(ip);
        this.#observedHoldsIp = await network.hasAddress(ip);
        if (this.#observedHoldsIp) throw new Error(`${ip.cidr} is still on ${config.service.interface} after removing it`);
        return;
      default: {
        const unknown: never = name;
        throw new Error(`unknown step ${String(unknown)}`);
      }
    }
  }

  async #repeatAnnounce(): Promise<void> {
    const {clock, config, network, log} = this.#deps;
    try {
      await clock.sleep(ANNOUNCE_REPEAT_MS, this.#abort.signal);
      if (!(await network.hasAddress(config.service.ip))) return;
      await network.announce(config.service.ip);
      log.debug(`(network) announced ${config.service.ip.cidr} again`);
    } catch (error) {
      if (!this.#abort.signal.aborted) log.warning(`(network) repeated announcement of ${config.service.ip.cidr} failed: ${describeError(error)}`);
    }
  }

  async #startup(): Promise<void> {
    const {clock, config, network, log} = this.#deps;
    try {
      await clock.sleep(config.heartbeat.intervalMs * STARTUP_LISTEN_INTERVALS, this.#abort.signal);
      await this.#recoverInterruptedSwitch();
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

  async #recoverInterruptedSwitch(): Promise<void> {
    const recovered = await recoverInterruptedSwitch({...this.#deps, announced: () => void this.#repeatAnnounce()}, this.#machine.peer);
    if (recovered !== undefined) {
      this.#lastSwitch = {id: recovered.switchId, outcome: 'interrupted', reason: recovered.reason, endedAt: this.#deps.clock.now()};
    }
  }

  /** The operator's switchover, run from this host. One at a time. */
  async switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    if (this.#coordinating) throw new BatonError('SWITCH_IN_PROGRESS', 'a switchover started from this host is already running');
    this.#coordinating = true;
    try {
      const last = this.#monitor.stats(this.#deps.clock.now()).lastBeacon;
      return await runSwitchover({
        deps: this.#switchDeps,
        participant: this.#participant,
        requester: this.#requester,
        peer: () => ({
          view: this.#machine.peer === undefined ? undefined : {...this.#machine.peer, alive: this.#monitor.isAlive(this.#deps.clock.now())},
          label: {role: this.#peerRole, host: last?.host ?? this.#deps.config.peer.address},
          health: last?.health,
          boot: this.#monitor.newest()?.boot,
          switchId: last?.switchId ?? '',
          rejecting: this.#rejecting(),
        }),
        newSwitchId: () => this.#deps.newId().replaceAll(/[^A-Za-z0-9]/g, '').slice(0, 10) || 'switch',
      }, options, emit);
    } finally {
      this.#coordinating = false;
    }
  }

  /**
   * The active host's checks fail: move the IP to the standby with the planned switchover (confirmed), if the
   * standby is alive, healthy and ready. Retried while the checks keep failing.
   */
  async #handOver(reason: string): Promise<void> {
    const {log, clock} = this.#deps;
    if (this.#handingOver) return;
    this.#handingOver = true;
    try {
      while (this.#machine.health === 'failing' && this.#machine.name === 'active' && !this.#abort.signal.aborted) {
        const peer = this.#machine.peer;
        if (peer?.alive === true && peer.state === 'standby' && this.#peerHealth() === 'ok') {
          log.warning(`(health) handing the service IP over to the ${this.#peerRole}: ${reason}`);
          try {
            const result = await this.switchover({dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined}, () => undefined);
            log.notice(`(health) handover ${result.switchId}: ${result.outcome}${result.reason === undefined ? '' : `: ${result.reason}`}`);
            if (result.outcome === 'done') return;
          } catch (error) {
            log.error(`(health) handover refused: ${describeError(error)}`);
          }
        } else {
          log.warning(`(health) checks fail but the ${this.#peerRole} cannot take over (${peer?.alive === true ? `${peer.state}, health ${this.#peerHealth()}` : 'not alive'}): keeping the service IP`);
        }
        await clock.sleep(HANDOVER_RETRY_MS, this.#abort.signal).catch(() => undefined);
      }
    } finally {
      this.#handingOver = false;
    }
  }

  /** Why the peer's datagrams are being rejected, when they are (since its last valid one). */
  #rejecting(): string | undefined {
    const rejected = this.#monitor.rejectedSinceValid;
    return rejected === undefined ? undefined : describeRejectedSinceValid(rejected);
  }

  #peerHealth(): string {
    return this.#monitor.stats(this.#deps.clock.now()).lastBeacon?.health ?? 'unknown';
  }

  /** The peer's requests: its part of a switch, and the two rehearsal helpers. */
  async #answer(request: PeerRequest): Promise<JsonObject> {
    switch (request.op) {
      case 'resume':
        return {...await this.#resumeHere()};
      case 'drop-link': {
        const seconds = request.params['seconds'];
        if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DROP_S) {
          throw new BatonError('BAD_REQUEST', `drop-link: seconds must be an integer 1..${MAX_DROP_S}`);
        }
        await this.#dropLink(seconds);
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
    if (await isServing(this.#deps)) {
      await this.#dropLink(seconds);
      return {host: this.#selfLabel(), seconds};
    }
    if (this.#machine.peer?.alive === true && this.#machine.peer.holdsIp) {
      await this.#requester.request('drop-link', '', {seconds}, {deadlineMs: REQUEST_DEADLINE_MS});
      return {host: {role: this.#peerRole, host: this.#monitor.stats(this.#deps.clock.now()).lastBeacon?.host ?? this.#deps.config.peer.address}, seconds};
    }
    throw new BatonError('STEP_FAILED', 'neither host holds the service IP: there is no active host to fail');
  }

  async #dropLink(seconds: number): Promise<void> {
    const {network, config, log, clock} = this.#deps;
    const iface = config.service.interface;
    await network.setLink(iface, false);
    log.warning(`(rehearsal) ${iface} down for ${seconds} s: this host plays a dying active host`);
    void clock.sleep(seconds * 1000, this.#abort.signal).then(async () => {
      await network.setLink(iface, true);
      log.notice(`(rehearsal) ${iface} up again`);
    }, () => undefined);
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
      const message = observation.message;
      if (observation.newBoot && this.#peerWasAlive) {
        // The peer restarted: whatever it asked of us before is void.
        this.#requester.abandonAll('the peer restarted');
        void this.#participant.abandon('the peer restarted');
      }
      if (!this.#peerWasAlive && !observation.newBoot) log.notice(`(peer) ${this.#peerRole} alive again`);
      this.#peerWasAlive = true;
      this.#handleMessage(message, observation.newBoot, now);
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
    const sentAt = this.#sentAt.get(beacon.ack.seq);
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
      this.#maybePreprobe();
      // Wake at the next moment that matters (the pre-probe, the dead timer), else once an interval.
      const deadline = this.#monitor.deadline();
      const now = clock.now();
      const next = deadline === undefined || !this.#peerWasAlive ? config.heartbeat.intervalMs
        : [deadline - this.#preprobeLeadMs(), deadline].map((at) => at - now).filter((ms) => ms > 0).sort((a, b) => a - b)[0] ?? config.heartbeat.intervalMs;
      try {
        await clock.sleep(Math.max(LIVENESS_MIN_SLEEP_MS, Math.min(next, config.heartbeat.intervalMs)), this.#abort.signal);
      } catch {
        return;
      }
    }
  }

  /** The pre-probe starts this long before the dead timer, but never before two beacons were missed. */
  #preprobeLeadMs(): number {
    const {intervalMs, deadAfterMs} = this.#deps.config.heartbeat;
    return Math.min(PREPROBE_LEAD_MS, deadAfterMs - 2 * intervalMs);
  }

  /** A standby whose peer has been silent for nearly dead_after_ms probes the IP ahead of the takeover. */
  #maybePreprobe(): void {
    const {clock, network, config} = this.#deps;
    const deadline = this.#monitor.deadline();
    const now = clock.now();
    if (!this.#peerWasAlive || deadline === undefined || this.#machine.name !== 'standby' || this.#machine.plan !== undefined) return;
    const lead = this.#preprobeLeadMs();
    if (deadline - now > lead || now >= deadline) return;
    if (this.#preprobe !== undefined && this.#preprobe.startedAt >= deadline - lead) return;
    const result = network.isAddressInUse(config.service.ip);
    const probe: {startedAt: number; endedAt: number | undefined; result: Promise<boolean>} = {startedAt: now, endedAt: undefined, result};
    this.#preprobe = probe;
    result.then(() => {
      probe.endedAt = clock.now();
    }, () => undefined);
  }

  /** The early probe's answer (awaited if still running), when it started after the peer's last beacon and is fresh. */
  #freshPreprobe(): Promise<boolean> | undefined {
    const probe = this.#preprobe;
    const lastSeen = this.#monitor.stats(this.#deps.clock.now()).lastSeenAt ?? Infinity;
    if (probe === undefined || probe.startedAt < lastSeen) return undefined;
    if (probe.endedAt !== undefined && this.#deps.clock.now() - probe.endedAt > PROBE_FRESH_MS) return undefined;
    return probe.result;
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

  async #observeHoldsIp(): Promise<boolean> {
    try {
      return await this.#deps.network.isServing(this.#deps.config.service.ip);
    } catch (error) {
      this.#deps.log.error(`(network) cannot observe the service IP: ${describeError(error)}`);
      return false;
    }
  }

  #envelope(): Envelope {
    const {clock, config} = this.#deps;
    this.#seq += 1;
    return {pair: config.pair, node: config.node, boot: this.#bootId, seq: this.#seq, sentAt: Math.round(clock.wallNow())};
  }

  async #sendRequest(request: OutgoingRequest): Promise<void> {
    await this.#transmit({kind: 'request', request: {...this.#envelope(), to: this.#monitor.newest()?.boot ?? '', ...request}});
  }

  async #sendReply(reply: OutgoingReply): Promise<void> {
    await this.#transmit({kind: 'reply', reply: {...this.#envelope(), ...reply}});
  }

  async #transmit(message: Message): Promise<void> {
    await this.#deps.transport.send(encodeMessage(message, this.#deps.config.keyring.signing));
    this.#sent += 1;
  }

  async #sendBeacon(): Promise<void> {
    const {clock, log, hostname} = this.#deps;
    const now = clock.now();
    const newest = this.#monitor.newest();
    const beacon: Beacon = {
      ...this.#envelope(),
      host: hostname,
      state: this.#machine.name,
      epoch: this.#machine.epoch,
      holdsIp: this.#observedHoldsIp,
      health: this.#machine.health,
      switchId: this.#participant.current?.id ?? '',
      ack: newest === undefined ? undefined : {boot: newest.boot, seq: newest.seq, heldMs: Math.round(now - newest.at)},
    };
    this.#sentAt.set(beacon.seq, now);
    this.#sentAt.delete(beacon.seq - SENT_KEPT);
    try {
      await this.#transmit({kind: 'beacon', beacon});
    } catch (error) {
      log.debug(`(beacon) send failed: ${describeError(error)}`);
    }
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
