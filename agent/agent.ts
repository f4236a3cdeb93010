// The agent's event loop: beacons out and in, timers, control requests → step() → effects run here.

import {encodeMessage, type Beacon, type RejectReason} from './beacon-codec.js';
import type {Config} from './config.js';
import type {StatusReport} from './control-protocol.js';
import {describeError} from './errors.js';
import type {Logger} from './log.js';
import {PeerMonitor} from './peer-monitor.js';
import type {BeaconTransport, Clock, NetworkDriver, Role, StateStore} from './ports.js';
import {initialState, step, type AgentEvent, type Effect, type MachineState, type PlanName, type StepName} from './state-machine.js';
import {LatenessTracker} from './timers.js';

export interface AgentDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly transport: BeaconTransport;
  readonly network: NetworkDriver;
  readonly store: StateStore;
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

  constructor(deps: AgentDeps) {
    this.#deps = deps;
    this.#bootId = deps.newId();
    this.#peerRole = deps.config.node === 'primary' ? 'backup' : 'primary';
    this.#monitor = new PeerMonitor({
      pair: deps.config.pair,
      peerRole: this.#peerRole,
      peerAddress: deps.config.peer.address,
      keyring: deps.config.keyring,
      deadAfterMs: deps.config.heartbeat.deadAfterMs,
      maxClockSkewMs: deps.config.heartbeat.maxClockSkewMs,
    });
    this.#lateness = new LatenessTracker(deps.config.heartbeat.intervalMs);
    this.#machine = initialState(deps.config.node, 0);
  }

  get bootId(): string {
    return this.#bootId;
  }

  get state(): MachineState {
    return this.#machine;
  }

  /** Loads persisted state and starts the loops; resolves once the agent is running (not once it has decided). */
  async start(): Promise<void> {
    const {clock, store, log, config} = this.#deps;
    const saved = await store.load();
    this.#machine = initialState(config.node, saved?.epoch ?? 0);
    this.#startedAt = clock.now();
    this.#stateSince = this.#startedAt;
    this.#observedHoldsIp = await this.#observeHoldsIp();
    log.notice(`(agent) ${config.node} of pair ${config.pair} starting, boot ${this.#bootId}, epoch ${this.#machine.epoch}, ` +
      `service IP ${config.service.ip.cidr} on ${config.service.interface} (${this.#observedHoldsIp ? 'held here' : 'not held here'})`);
    this.#loops.push(this.#receiveLoop(), this.#beaconLoop(), this.#observeLoop(), this.#startup());
  }

  async stop(): Promise<void> {
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
    let holdsIp: boolean | undefined;
    let holdsIpError: string | undefined;
    try {
      holdsIp = await this.#deps.network.hasAddress(config.service.ip);
    } catch (error) {
      holdsIpError = describeError(error);
    }
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
        holdsIpError,
        health: 'ok',
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
        rttMs: peer.rttMs === undefined ? undefined : {last: round2(peer.rttMs.last), average: round2(peer.rttMs.average)},
        loss: peer.loss,
      },
      beacons: {sent: this.#sent, accepted: peer.accepted, rejected: peer.rejected},
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
    if (state.name !== before.name) {
      this.#stateSince = this.#deps.clock.now();
      this.#deps.log.notice(`(state) ${before.name} -> ${state.name}: ${state.reason}`);
      this.#loggedRejects.clear();
    }
    await this.#runEffects(effects);
  }

  async #runEffects(effects: readonly Effect[]): Promise<void> {
    let failure: string | undefined;
    for (const effect of effects) {
      switch (effect.type) {
        case 'save-epoch':
          try {
            await this.#deps.store.save({epoch: effect.epoch});
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
        log.error(`(plan ${planId} ${plan}) ${name} failed after ${Math.round(clock.now() - stepStarted)}ms: ${describeError(error)}`);
        this.#observedHoldsIp = await this.#observeHoldsIp();
        await this.dispatch({type: 'plan-finished', planId, ok: false, error: `${name}: ${describeError(error)}`});
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
      case 'assign-ip':
        await network.addAddress(ip);
        this.#observedHoldsIp = await network.hasAddress(ip);
        if (!this.#observedHoldsIp) throw new Error(`${ip.cidr} is not on ${config.service.interface} after adding it`);
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
      const beacon = observation.beacon;
      if (observation.newBoot) {
        log.notice(`(peer) ${beacon.node} ${beacon.host} seen: boot ${beacon.boot}, state ${beacon.state}, ${beacon.holdsIp ? 'holds' : 'does not hold'} the service IP, epoch ${beacon.epoch}`);
      } else if (!this.#peerWasAlive) {
        log.notice(`(peer) ${beacon.node} ${beacon.host} alive again: state ${beacon.state}`);
      }
      this.#peerWasAlive = true;
      this.#recordAck(beacon, now);
      void this.dispatch({type: 'peer-seen', beacon});
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
      this.#checkPeerLiveness();
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

  #checkPeerLiveness(): void {
    const now = this.#deps.clock.now();
    if (this.#peerWasAlive && !this.#monitor.isAlive(now)) {
      this.#peerWasAlive = false;
      this.#deps.log.warning(`(peer) lost: no valid beacon for ${this.#deps.config.heartbeat.deadAfterMs} ms`);
      void this.dispatch({type: 'peer-lost'});
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
    }
  }

  async #observeHoldsIp(): Promise<boolean> {
    try {
      return await this.#deps.network.hasAddress(this.#deps.config.service.ip);
    } catch (error) {
      this.#deps.log.error(`(network) cannot observe the service IP: ${describeError(error)}`);
      return false;
    }
  }

  async #sendBeacon(): Promise<void> {
    const {clock, config, transport, log, hostname} = this.#deps;
    this.#seq += 1;
    const now = clock.now();
    const newest = this.#monitor.newest();
    const beacon: Beacon = {
      pair: config.pair,
      node: config.node,
      host: hostname,
      boot: this.#bootId,
      seq: this.#seq,
      sentAt: Math.round(clock.wallNow()),
      state: this.#machine.name,
      epoch: this.#machine.epoch,
      holdsIp: this.#observedHoldsIp,
      health: 'ok',
      switchId: '',
      ack: newest === undefined ? undefined : {boot: newest.boot, seq: newest.seq, heldMs: Math.round(now - newest.at)},
    };
    this.#sentAt.set(this.#seq, now);
    this.#sentAt.delete(this.#seq - SENT_KEPT);
    try {
      await transport.send(encodeMessage({kind: 'beacon', beacon}, config.keyring.signing));
      this.#sent += 1;
    } catch (error) {
      log.debug(`(beacon) send failed: ${describeError(error)}`);
    }
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
