// The channel to the peer: what arrives (judged by the monitor, then beacons, requests and replies routed), what
// leaves (beacons, requests, replies through the outbox), and what this host knows of the peer from it.

import type {Beacon, Envelope, JsonObject, Message, PeerRequest, RejectReason} from './beacon-codec.js';
import type {Config} from '../config/schema.js';
import type {HostLabel} from '../control-protocol.js';
import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import {describeRejectedSinceValid, PeerMonitor, type PeerStats} from './peer-monitor.js';
import {PeerRequester, PeerResponder} from './peer-requests.js';
import type {BeaconTransport, Clock} from '../ports.js';
import type {PeerSnapshot} from '../plans/coordinator.js';
import type {PeerView, Role} from '../state-machine.js';
import {Outbox} from './outbox.js';
import {SentLog} from './sent-log.js';

// Peer requests are resent this often until answered: short, because a lost datagram in a switch is service time.
const REQUEST_RETRY_MS = 100;

export interface PeerLinkDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly transport: BeaconTransport;
  readonly log: Logger;
  readonly newId: () => string;
  readonly bootId: string;
  /** Answers one of the peer's requests (its reply carries the result or the error). */
  readonly answer: (request: PeerRequest) => Promise<JsonObject>;
  /** A valid beacon arrived; `newBoot` when it is the first of a new peer agent. */
  readonly onBeacon: (beacon: Beacon, newBoot: boolean) => void;
  /** The peer's agent restarted: whatever it asked of us before is void. */
  readonly onPeerRestarted: () => void;
}

export class PeerLink {
  readonly requester: PeerRequester;
  readonly peerRole: Role;
  readonly #deps: PeerLinkDeps;
  readonly #monitor: PeerMonitor;
  readonly #outbox: Outbox;
  readonly #responder: PeerResponder;
  readonly #loggedRejects = new Set<RejectReason>();
  readonly #sentLog: SentLog;
  /** The peer run whose missing acks were logged (once per run). */
  #warnedWithoutAcks: string | undefined;
  #wasAlive = false;

  constructor(deps: PeerLinkDeps) {
    const {config, clock} = deps;
    this.#deps = deps;
    this.peerRole = config.node === 'primary' ? 'backup' : 'primary';
    const sentLog = new SentLog(config.heartbeat.deadAfterMs, config.heartbeat.intervalMs);
    this.#sentLog = sentLog;
    this.#monitor = new PeerMonitor({
      pair: config.pair,
      peerRole: this.peerRole,
      peerAddress: config.peer.address,
      selfBoot: deps.bootId,
      keyring: config.keyring,
      deadAfterMs: config.heartbeat.deadAfterMs,
      maxClockSkewMs: config.heartbeat.maxClockSkewMs,
      ...(config.heartbeat.replayProtection === 'acknowledged'
        ? {acknowledged: {intervalMs: config.heartbeat.intervalMs, sentAt: (seq: number) => sentLog.sentAt(seq)}}
        : {}),
    });
    this.#outbox = new Outbox(config, clock, deps.transport, deps.bootId, sentLog);
    this.requester = new PeerRequester((request) => this.#outbox.request(request, this.peerBoot ?? ''), clock, deps.newId,
      Math.min(REQUEST_RETRY_MS, config.heartbeat.intervalMs));
    this.#responder = new PeerResponder(deps.answer, (reply) => this.#outbox.reply(reply));
  }

  /** Datagrams sent since start. */
  get sent(): number {
    return this.#outbox.sent;
  }

  /** The boot id of the newest peer agent heard, if any. */
  get peerBoot(): string | undefined {
    return this.#monitor.newest()?.boot;
  }

  /** Whether the peer was alive when last looked at (by a beacon, or by checkLiveness). */
  get wasAlive(): boolean {
    return this.#wasAlive;
  }

  stats(): PeerStats {
    return this.#monitor.stats(this.#deps.clock.now());
  }

  isAlive(): boolean {
    return this.#monitor.isAlive(this.#deps.clock.now());
  }

  /** When the peer is dead unless a valid beacon arrives first. */
  deadline(): number | undefined {
    return this.#monitor.deadline();
  }

  /** The peer as its last beacon named it. */
  label(): HostLabel {
    return {role: this.peerRole, host: this.stats().lastBeacon?.host ?? this.#deps.config.peer.address};
  }

  /** Why the peer's datagrams are being rejected, when they are (since its last valid one). */
  rejecting(): string | undefined {
    const rejected = this.#monitor.rejectedSinceValid;
    return rejected === undefined ? undefined : describeRejectedSinceValid(rejected);
  }

  /** The peer as a switch needs it: `view` is the state machine's, alive as of now. */
  snapshot(view: PeerView | undefined): PeerSnapshot {
    const last = this.stats().lastBeacon;
    return {view, label: this.label(), health: last?.health, boot: this.peerBoot, switchId: last?.switchId ?? '', rejecting: this.rejecting()};
  }

  /** A new state: each kind of rejection is logged once more. */
  stateChanged(): void {
    this.#loggedRejects.clear();
  }

  /**
   * True once, when the peer that was alive has gone silent for dead_after_ms. Judged on everything that arrived:
   * a loop that was busy (a starved CPU, a flood) when the time ran out may hold the peer's last beacon unread in
   * its queue or socket, so what is waiting is read first (for at most `catchUpMs`) and the peer looked at again.
   * Measured in the campaign's flood case before this: "lost" and "alive again" 6 ms apart, the beacon queued.
   */
  async checkLiveness(catchUpMs: number, signal: AbortSignal): Promise<boolean> {
    if (!this.#wasAlive || this.isAlive()) return false;
    await Promise.race([this.#deps.transport.caughtUp(), this.#deps.clock.sleep(catchUpMs, signal).catch(() => undefined)]);
    if (!this.#wasAlive || this.isAlive()) return false;
    this.#wasAlive = false;
    this.#deps.log.warning(`(peer) lost: no valid beacon for ${this.#deps.config.heartbeat.deadAfterMs} ms`);
    return true;
  }

  /** Sends a beacon with an ack of the peer's newest datagram; a failed send is logged, not thrown. */
  async sendBeacon(body: Omit<Beacon, keyof Envelope | 'ack'>): Promise<void> {
    const newest = this.#monitor.ackTarget(this.#deps.clock.now());
    try {
      await this.#outbox.beacon({
        ...body,
        ack: newest === undefined ? undefined : {boot: newest.boot, seq: newest.seq, heldMs: Math.round(this.#deps.clock.now() - newest.at)},
      });
    } catch (error) {
      this.#deps.log.debug(`(beacon) send failed: ${describeError(error)}`);
    }
  }

  /** Reads datagrams until the transport closes. */
  async receive(): Promise<void> {
    const {clock, log, transport} = this.#deps;
    for await (const {datagram, from} of transport.receive()) {
      const now = clock.now();
      const observation = this.#monitor.observe(datagram, from, now, clock.wallNow());
      if (!observation.ok) {
        if (!this.#loggedRejects.has(observation.reason)) {
          // Each kind is logged once per state change: a flood must not flood the journal too.
          this.#loggedRejects.add(observation.reason);
          log.warning(`(beacon) rejected from ${from}: ${observation.reason}: ${observation.detail} (further ${observation.reason} rejections are counted in status, not logged)`);
        }
        if (observation.reason === 'unacknowledged') this.#warnWithoutAcks();
        continue;
      }
      if (observation.late) {
        // Reordered, or withheld and replayed: older than what the peer has already said. A late reply still
        // answers its request (a request id is used once); a late beacon would show the peer as it was, not is.
        if (observation.message.kind === 'reply') this.requester.onReply(observation.message.reply);
        continue;
      }
      if (observation.newBoot && this.#wasAlive) {
        this.requester.abandonAll('the peer restarted');
        this.#deps.onPeerRestarted();
      }
      // A reply, or in acknowledged mode a request, is taken without making the peer alive: only what does counts.
      const alive = this.#monitor.isAlive(now);
      if (alive && !this.#wasAlive && !observation.newBoot) log.notice(`(peer) ${this.peerRole} alive again`);
      if (alive) this.#wasAlive = true;
      this.#route(observation.message, observation.newBoot, now);
    }
  }

  /**
   * Acknowledged mode: a peer whose beacons carry no ack at all for dead_after_ms counts as dead; said once per
   * run of the peer, with the two causes and the way out, so the operator is not left with "lost" alone.
   */
  #warnWithoutAcks(): void {
    const {config, log} = this.#deps;
    const without = this.#monitor.withoutAcks;
    const enough = Math.ceil(config.heartbeat.deadAfterMs / config.heartbeat.intervalMs);
    if (without === undefined || without.count < enough || this.#warnedWithoutAcks === without.boot) return;
    this.#warnedWithoutAcks = without.boot;
    log.warning(`(peer) ${this.peerRole} boot ${without.boot}: ${without.count} beacons in a row acknowledge no datagram of this agent: ` +
      `it does not hear this host (UDP to ${config.peer.address} port ${config.peer.port} blocked or misrouted?), or its agent does not acknowledge. ` +
      'With heartbeat.replay_protection: acknowledged a peer is alive only while its beacons acknowledge ours, so it counts as dead until they do ' +
      '(replay_protection: clock would take them by their sent-at instead)');
  }

  #route(message: Message, newBoot: boolean, now: number): void {
    switch (message.kind) {
      case 'beacon': {
        const beacon = message.beacon;
        if (newBoot) {
          this.#deps.log.notice(`(peer) ${beacon.node} ${beacon.host} seen: boot ${beacon.boot}, state ${beacon.state}, ${beacon.holdsIp ? 'holds' : 'does not hold'} the service IP, epoch ${beacon.epoch}`);
        }
        if (beacon.ack !== undefined && beacon.ack.boot === this.#deps.bootId) {
          const sentAt = this.#sentLog.sentAt(beacon.ack.seq);
          if (sentAt !== undefined) this.#monitor.recordAck(sentAt, beacon.ack.heldMs, now);
        }
        this.#deps.onBeacon(beacon, newBoot);
        return;
      }
      case 'request':
        this.#responder.onRequest(message.request);
        return;
      case 'reply':
        this.requester.onReply(message.reply);
        return;
    }
  }
}
