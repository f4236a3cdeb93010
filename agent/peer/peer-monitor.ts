// The peer as seen through its datagrams: rejects and counts bad ones (version, pair, MAC, replay, skew, size,
// source), tracks liveness, round-trip time and loss. No I/O: times are passed in. Beacons, peer requests and
// replies share one sequence counter per boot, so one replay check covers them all.
//
// Two ways to tell the peer from a recording of it (heartbeat.replay_protection): by its wall clock (sent-at within
// max_clock_skew_ms of ours), or by acknowledgement: a beacon shows the peer alive only when it acknowledges one of
// our own datagrams, and only as of when it says it answered that one (our send time plus the time it held it, plus
// one interval), within dead_after_ms: a recording cannot acknowledge what we sent after it was made. The rules are in docs/protocol.md and
// docs/security.md ("Replay protection"); the comments below say which part of them each check is.

import {envelopeOf, openFrame, readFrame, REJECT_REASONS, type Beacon, type Decoded, type Message, type RejectReason} from './beacon-codec.js';
import type {Keyring} from '../config/secret-files.js';
import type {Role} from '../state-machine.js';
import {TokenBucket} from './token-bucket.js';
import {parseIpAddress, unmapIpv4} from '../net/ip-address.js';

export interface PeerMonitorOptions {
  readonly pair: string;
  /** The role the peer must announce (the other one than ours). */
  readonly peerRole: Role;
  readonly peerAddress: string;
  /** This agent's own boot id: a peer request must name it. */
  readonly selfBoot: string;
  readonly keyring: Keyring;
  readonly deadAfterMs: number;
  readonly maxClockSkewMs: number;
  /** Datagrams from the peer's address whose MAC is checked per second at most (see MAX_VERIFIED_PER_S). */
  readonly maxVerifiedPerS?: number;
  /** Set for heartbeat.replay_protection acknowledged (maxClockSkewMs is then not used); unset: by the clocks. */
  readonly acknowledged?: AcknowledgedOptions;
}

export interface AcknowledgedOptions {
  /** The beacon interval: a proof counts as of the acknowledged datagram's departure plus this much. */
  readonly intervalMs: number;
  /** When our own datagram `seq` of this boot left (monotonic ms), while we still know (sent-log.ts). */
  readonly sentAt: (seq: number) => number | undefined;
}

export type Observation =
  /**
   * `late`: a datagram that UDP reordered (a sequence number below the newest, never received before). It is
   * genuine and counted, but says nothing about now: it neither keeps the peer alive nor changes its view.
   */
  | {readonly ok: true; readonly message: Message; readonly newBoot: boolean; readonly late: boolean}
  | {readonly ok: false; readonly reason: RejectReason; readonly detail: string};

/** Datagrams from the peer's address rejected since the last one accepted: why a peer that sends looks dead. */
export interface RejectedSinceValid {
  readonly count: number;
  /** The latest one's reason and detail. */
  readonly reason: RejectReason;
  readonly detail: string;
}

export interface PeerStats {
  readonly alive: boolean;
  readonly lastBeacon: Beacon | undefined;
  /**
   * Monotonic ms the peer was last known alive: the arrival of its last accepted datagram (clock), or the
   * departure of our datagram its last proving beacon acknowledged, plus the time the peer held it and one
   * interval, at most its arrival
   * (acknowledged).
   */
  readonly lastSeenAt: number | undefined;
  readonly rttMs: {readonly last: number; readonly average: number} | undefined;
  /** Fraction of the peer's recent beacons that never arrived, 0..1; undefined before there is a window. */
  readonly loss: number | undefined;
  readonly accepted: number;
  readonly rejected: Readonly<Record<RejectReason, number>>;
  readonly rejectedSinceValid: RejectedSinceValid | undefined;
}

// Loss over the last LOSS_WINDOW sequence numbers: at the default 200 ms interval, the last 20 s.
const LOSS_WINDOW = 100;
// Earlier peer runs are remembered (boot id and highest sequence number) so their recorded datagrams cannot be
// replayed as a "new boot".
const RETIRED_BOOTS_KEPT = 16;
// The peer's address can be spoofed by anyone on the LAN, and a datagram with our key id costs an HMAC and a JSON
// parse before it can be told from a forgery: at most this many a second (a burst of as many at once) get that far,
// the rest are dropped as `rate-limited`, so a flood cannot take the CPU that sends our own beacons. The peer itself
// sends one beacon per interval (100/s at the 10 ms minimum) plus requests and replies resent every 100 ms: far
// below. The work it bounds cost 25–45 µs a forged datagram on a loaded 2-core machine (docs/security.md, "Floods"),
// so 2000/s is at most about a tenth of a core.
export const MAX_VERIFIED_PER_S = 2000;
// RTT average is exponential: each new sample weighs 1/8, as TCP's SRTT (RFC 6298).
const RTT_GAIN = 1 / 8;

/** Acknowledged mode: a run of the peer whose beacons carry no ack at all, and how many in a row. */
export interface WithoutAcks {
  readonly boot: string;
  readonly count: number;
}

/** What a beacon's ack proves (acknowledged mode): the peer was alive after it received our datagram `ackSeq`. */
interface Proof {
  readonly ackSeq: number;
  /** Monotonic ms the peer counts as alive from: min(arrival, departure of `ackSeq` + heldMs + interval). */
  readonly at: number;
}

export class PeerMonitor {
  readonly #options: PeerMonitorOptions;
  #boot: string | undefined;
  #highestSeq = 0;
  /** Arrival of the current boot's newest datagram: what our next ack names (heldMs counts from it). */
  #newestAt: number | undefined;
  /** Acknowledged: the highest of our sequence numbers a beacon of the current boot proved itself with (0: none). */
  #proofAck = 0;
  /** Acknowledged: another boot's newest datagram, acknowledged instead while the current boot is not alive. */
  #candidate: {readonly boot: string; readonly seq: number; readonly at: number} | undefined;
  #withoutAcks = 0;
  #received: number[] = [];
  #firstSeq = 0;
  /** Sequence numbers at or below this are replays even inside the loss window: a resumed boot's used ones. */
  #seqFloor = 0;
  #retiredBoots: {readonly boot: string; readonly highestSeq: number}[] = [];
  #lastBeacon: Beacon | undefined;
  #lastSeenAt: number | undefined;
  /** Newest sentAt of the current boot: another boot that sent no later than that is not a restart but the past. */
  #bootSentAt = 0;
  #rtt: {last: number; average: number} | undefined;
  #accepted = 0;
  #peerCanonical: string | undefined;
  #otherSource: {readonly text: string; readonly isPeer: boolean} | undefined;
  readonly #rejected: Record<RejectReason, number> = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  #rejectedSinceValid: RejectedSinceValid | undefined;
  readonly #verifyBudget: TokenBucket;

  constructor(options: PeerMonitorOptions) {
    this.#options = options;
    const perS = options.maxVerifiedPerS ?? MAX_VERIFIED_PER_S;
    this.#verifyBudget = new TokenBucket(perS, perS);
  }

  /**
   * Judges one datagram. By the clock, an accepted message that is not late proves the peer alive; by
   * acknowledgement, only a beacon that acknowledges one of our recent datagrams does. Such a beacon also updates
   * the peer view. Rejected datagrams only bump their counter (an unacknowledged beacon also uses up its number).
   * @param now monotonic ms; @param wallNow wall-clock ms (for the skew window and key expiry only)
   */
  observe(datagram: Uint8Array, from: string, now: number, wallNow: number): Observation {
    const result = this.#judge(datagram, from, now, wallNow);
    if (!result.ok) return this.#reject(result);
    const acknowledged = this.#options.acknowledged;
    return acknowledged === undefined ? this.#acceptByClock(result.message, now) : this.#acceptByAck(result.message, now, acknowledged);
  }

  #reject(result: Extract<Observation, {ok: false}>): Observation {
    this.#rejected[result.reason] += 1;
    // Only what came from the peer's address says anything about the peer; a third host's flood does not.
    if (result.reason !== 'wrong-source') {
      this.#rejectedSinceValid = {count: (this.#rejectedSinceValid?.count ?? 0) + 1, reason: result.reason, detail: result.detail};
    }
    return result;
  }

  #acceptByClock(message: Message, now: number): Observation {
    const envelope = envelopeOf(message);
    const newBoot = envelope.boot !== this.#boot;
    if (newBoot) this.#adopt(envelope);
    const late = envelope.seq < this.#highestSeq;
    this.#recordSeq(envelope.seq);
    this.#accepted += 1;
    if (late) return {ok: true, message, newBoot, late};
    this.#rejectedSinceValid = undefined;
    this.#bootSentAt = Math.max(this.#bootSentAt, envelope.sentAt);
    if (message.kind === 'beacon') this.#lastBeacon = message.beacon;
    this.#lastSeenAt = now;
    this.#newestAt = now;
    return {ok: true, message, newBoot, late};
  }

  /**
   * Acknowledged mode. A beacon proves the peer alive only with an ack of one of our datagrams of this boot that it
   * answered (by its heldMs) within dead_after_ms; a beacon that proves nothing uses up its sequence number (our acks name it, so a peer
   * that has not heard us yet can prove itself) but is rejected as `unacknowledged`: it neither keeps the peer
   * alive nor changes its view. Another run of the peer replaces the current one only by proving itself with an
   * ack newer than any the current one proved itself with. A request is taken only while the peer is alive (so it
   * is at most about dead_after_ms old); a reply answers a request of ours, which it cannot predate.
   */
  #acceptByAck(message: Message, now: number, acknowledged: AcknowledgedOptions): Observation {
    const envelope = envelopeOf(message);
    const ack = message.kind === 'beacon' ? message.beacon.ack : undefined;
    const proof = message.kind === 'beacon' ? this.#proofOf(message.beacon, now, acknowledged) : undefined;
    // Reported once per run, with its first proof: until then, as far as the agent is concerned, it has not spoken.
    let newBoot = false;
    if (envelope.boot !== this.#boot) {
      // The first run heard is taken on trust for its sequence numbers only: it shows nothing until it proves itself.
      if (this.#boot !== undefined && (proof === undefined || proof.ackSeq <= this.#proofAck)) {
        // Acknowledged in our beacons only while the current run is not alive: a restart that has not heard us
        // yet then learns our boot at once, and replayed recordings cannot take the acks from a live run.
        if (!this.isAlive(now)) this.#candidate = {boot: envelope.boot, seq: envelope.seq, at: now};
        return this.#reject({ok: false, reason: 'unacknowledged', detail: `${message.kind} of boot ${envelope.boot}, not the current ${this.#boot}: ` +
          `${proof === undefined ? `it acknowledges ${this.#describeAck(ack, now, acknowledged)}` : `its ack of our datagram ${proof.ackSeq} is no newer than the current boot's ${this.#proofAck}`} ` +
          '(a restart of the peer that has not heard this agent yet, or a recording)'});
      }
      this.#adopt(envelope);
    }
    if (message.kind === 'request' && !this.isAlive(now)) {
      return this.#reject({ok: false, reason: 'unacknowledged', detail: `${message.request.op} request while the peer has not shown itself alive in the last ` +
        `${this.#options.deadAfterMs} ms (a request counts only from a peer whose beacons acknowledge ours)`});
    }
    const late = envelope.seq < this.#highestSeq;
    this.#recordSeq(envelope.seq);
    if (late) {
      this.#accepted += 1;
      return {ok: true, message, newBoot: false, late};
    }
    this.#newestAt = now;
    this.#candidate = undefined;
    if (message.kind === 'beacon') {
      if (proof === undefined) {
        this.#withoutAcks = ack === undefined ? this.#withoutAcks + 1 : 0;
        return this.#reject({ok: false, reason: 'unacknowledged', detail: `beacon ${envelope.seq} acknowledges ${this.#describeAck(ack, now, acknowledged)}: ` +
          'it proves nothing about now (the peer does not hear this agent, or it is a recording)'});
      }
      this.#withoutAcks = 0;
      newBoot = this.#proofAck === 0;
      this.#proofAck = Math.max(this.#proofAck, proof.ackSeq);
      this.#lastSeenAt = Math.max(this.#lastSeenAt ?? proof.at, proof.at);
      this.#lastBeacon = message.beacon;
      this.#rejectedSinceValid = undefined;
    }
    this.#accepted += 1;
    return {ok: true, message, newBoot, late};
  }

  #proofOf(beacon: Beacon, now: number, acknowledged: AcknowledgedOptions): Proof | undefined {
    const ack = beacon.ack;
    if (ack === undefined || ack.boot !== this.#options.selfBoot) return undefined;
    const sentAt = acknowledged.sentAt(ack.seq);
    if (sentAt === undefined) return undefined;
    // The peer sent this beacon heldMs after our datagram reached it, so no earlier than sentAt + heldMs by our
    // clock: its own signed account, which a recording carries unchanged from when it was really sent. Without it a
    // peer whose timers run late (a stall, a loaded host) would be credited only with our datagram's departure and
    // declared dead early by its lateness.
    const sentByPeer = sentAt + ack.heldMs;
    if (now - sentByPeer >= this.#options.deadAfterMs) return undefined;
    // One interval of slack covers the path's delay to the peer and the rounding of heldMs; never past the arrival.
    return {ackSeq: ack.seq, at: Math.min(now, sentByPeer + acknowledged.intervalMs)};
  }

  #describeAck(ack: Beacon['ack'], now: number, acknowledged: AcknowledgedOptions): string {
    if (ack === undefined) return 'no datagram of ours';
    if (ack.boot !== this.#options.selfBoot) return `datagram ${ack.seq} of boot ${ack.boot}, not this run of the agent (${this.#options.selfBoot})`;
    const sentAt = acknowledged.sentAt(ack.seq);
    if (sentAt === undefined) return `our datagram ${ack.seq}, not one sent in the last ${this.#options.deadAfterMs} ms`;
    const held = ack.heldMs > 0 ? `, held ${ack.heldMs} ms by the peer before this beacon` : '';
    return `our datagram ${ack.seq}, sent ${Math.round(now - sentAt)} ms ago${held} (dead_after_ms is ${this.#options.deadAfterMs})`;
  }

  /** A run of the peer not seen before (or an ended one winning back) becomes the current one. */
  #adopt(envelope: {readonly boot: string; readonly seq: number}): void {
    // A boot that ended and speaks again (see #judge: only later than everything since) resumes above the
    // sequence numbers it had used, so its own recorded datagrams stay replays.
    const resumed = this.#unretire(envelope.boot);
    if (this.#boot !== undefined) this.#retire(this.#boot, this.#highestSeq);
    this.#boot = envelope.boot;
    this.#highestSeq = resumed?.highestSeq ?? 0;
    this.#seqFloor = this.#highestSeq;
    this.#received = [];
    this.#firstSeq = envelope.seq;
    this.#lastBeacon = undefined;
    this.#bootSentAt = 0;
    this.#proofAck = 0;
    this.#withoutAcks = 0;
    this.#candidate = undefined;
  }

  /** Round trip from one of our beacons that the peer acknowledged; `sentAt` is when we sent it (monotonic). */
  recordAck(sentAt: number, heldMs: number, now: number): void {
    const sample = Math.max(0, now - sentAt - heldMs);
    this.#rtt = this.#rtt === undefined
      ? {last: sample, average: sample}
      : {last: sample, average: this.#rtt.average + RTT_GAIN * (sample - this.#rtt.average)};
  }

  isAlive(now: number): boolean {
    return this.#lastSeenAt !== undefined && now - this.#lastSeenAt < this.#options.deadAfterMs;
  }

  /** When the peer will be declared dead if nothing more arrives (monotonic ms), or undefined if never seen. */
  deadline(): number | undefined {
    return this.#lastSeenAt === undefined ? undefined : this.#lastSeenAt + this.#options.deadAfterMs;
  }

  /** The current run of the peer, its newest sequence number and when that arrived. */
  newest(): {boot: string; seq: number; at: number} | undefined {
    if (this.#boot === undefined || this.#newestAt === undefined) return undefined;
    return {boot: this.#boot, seq: this.#highestSeq, at: this.#newestAt};
  }

  /**
   * What our next beacon acknowledges: the current run's newest datagram; in acknowledged mode, while that run
   * is not alive, another run's newest instead (a restart that must hear our boot to prove itself).
   */
  ackTarget(now: number): {boot: string; seq: number; at: number} | undefined {
    if (this.#candidate !== undefined && !this.isAlive(now)) return this.#candidate;
    return this.newest();
  }

  /** Acknowledged mode: the current run's beacons in a row that carried no ack at all, if any did. */
  get withoutAcks(): WithoutAcks | undefined {
    return this.#boot === undefined || this.#withoutAcks === 0 ? undefined : {boot: this.#boot, count: this.#withoutAcks};
  }

  /** Datagrams from the peer's address rejected since its last valid one, or undefined when none were. */
  get rejectedSinceValid(): RejectedSinceValid | undefined {
    return this.#rejectedSinceValid;
  }

  stats(now: number): PeerStats {
    return {
      alive: this.isAlive(now),
      lastBeacon: this.#lastBeacon,
      lastSeenAt: this.#lastSeenAt,
      rttMs: this.#rtt,
      loss: this.#loss(),
      accepted: this.#accepted,
      rejected: {...this.#rejected},
      rejectedSinceValid: this.#rejectedSinceValid,
    };
  }

  /**
   * Whether `from`, the sender as the socket reports it, is the peer's address. The kernel writes IPv6 in RFC 5952
   * form like the config's, so the text usually matches at once; otherwise it is compared canonically (an IPv4 peer
   * seen through a dual-stack socket as ::ffff:192.0.2.12, a peer ::c000:20c that inet_ntop writes ::192.0.2.12),
   * the last such text remembered so that a flood from one third address is not parsed again and again.
   */
  #isPeerAddress(from: string): boolean {
    if (from === this.#options.peerAddress) return true;
    if (this.#otherSource?.text !== from) {
      this.#peerCanonical ??= canonicalSource(this.#options.peerAddress);
      this.#otherSource = {text: from, isPeer: canonicalSource(from) === this.#peerCanonical};
    }
    return this.#otherSource.isPeer;
  }

  #judge(datagram: Uint8Array, from: string, now: number, wallNow: number): {ok: true; message: Message} | Extract<Decoded, {ok: false}> {
    const options = this.#options;
    // Source first: costs nothing and keeps a flood from a third address away from the HMAC.
    if (!this.#isPeerAddress(from)) return {ok: false, reason: 'wrong-source', detail: `from ${from}, peer is ${options.peerAddress}`};
    // Then the checks that cost nothing (framing, key id), and only then, within the budget, the MAC and the JSON.
    const framed = readFrame(datagram, options.keyring);
    if (!framed.ok) return framed;
    if (!this.#verifyBudget.take(now)) {
      return {ok: false, reason: 'rate-limited', detail: `more than ${options.maxVerifiedPerS ?? MAX_VERIFIED_PER_S} datagrams a second from the peer's address (a flood, its source spoofed?); dropped before the MAC`};
    }
    const decoded = openFrame(framed.frame, options.pair, wallNow);
    if (!decoded.ok) return decoded;
    const message = decoded.message;
    const envelope = envelopeOf(message);
    if (envelope.node !== options.peerRole) {
      return {ok: false, reason: 'wrong-node', detail: `sender says it is the ${envelope.node}; the peer must be the ${options.peerRole} (are both hosts configured with node: ${envelope.node}?)`};
    }
    // Acknowledged mode compares no clocks: freshness is proven by acks (#acceptByAck), not by sent-at.
    if (options.acknowledged !== undefined) return this.#judgeSequence(message);
    const skew = envelope.sentAt - wallNow;
    if (skew < -options.maxClockSkewMs) return {ok: false, reason: 'stale', detail: `sent ${-skew} ms ago, window is ${options.maxClockSkewMs} ms (replay, or clocks apart)`};
    if (skew > options.maxClockSkewMs) return {ok: false, reason: 'future', detail: `sent ${skew} ms in the future, window is ${options.maxClockSkewMs} ms (clocks apart?)`};
    // Another boot is a restart only if it speaks strictly later than everything the current boot sent, whether the
    // current one is alive or silent: the peer runs one agent at a time, so any datagram of an earlier run was sent
    // before the current run's first. Silence proves nothing (a partition, or an attacker withholding beacons), and
    // an agent that restarted does not know the peer's earlier boots: without this rule, one datagram of such a boot
    // replayed inside the skew window would replace the live boot and retire it, and every real beacon after that
    // would be refused. The cost: a peer that restarts with its clock stepped back is heard once its clock passes
    // the old run's last sent-at, at most 2 × max_clock_skew_ms later (both sent-ats were inside the window).
    if (this.#boot !== undefined && envelope.boot !== this.#boot && envelope.sentAt <= this.#bootSentAt) {
      return {ok: false, reason: 'replay', detail: `boot ${envelope.boot} sent at ${envelope.sentAt}, not after the current boot ${this.#boot} (${this.#bootSentAt}): not a restart`};
    }
    return this.#judgeSequence(message);
  }

  /** The checks both modes share: ended runs, the request's addressee, sequence numbers. */
  #judgeSequence(message: Message): {ok: true; message: Message} | Extract<Decoded, {ok: false}> {
    const options = this.#options;
    const envelope = envelopeOf(message);
    // An ended boot speaking later than the current one is the live one winning back (the current one was a run
    // whose clock was ahead); its datagrams already seen, or older, stay replays.
    const retired = this.#retiredBoots.find((r) => r.boot === envelope.boot);
    if (retired !== undefined && envelope.seq <= retired.highestSeq) {
      return {ok: false, reason: 'replay', detail: `boot ${envelope.boot} has ended (sequence ${envelope.seq}, it had reached ${retired.highestSeq})`};
    }
    if (message.kind === 'request' && message.request.to !== options.selfBoot) {
      return {ok: false, reason: 'replay', detail: `${message.request.op} request for boot ${message.request.to || '(none)'}, this agent is boot ${options.selfBoot} (sent before it restarted?)`};
    }
    // A request changes things, so it must be newer than everything seen: no reordering allowance. A request
    // that lost a race with a later beacon is simply retried by its sender with a fresh sequence number.
    const lateAllowed = message.kind !== 'request' && this.#isLateButNew(envelope.seq);
    if (envelope.boot === this.#boot && envelope.seq <= this.#highestSeq && !lateAllowed) {
      return {ok: false, reason: 'replay', detail: `${message.kind} sequence ${envelope.seq} already seen or older than the newest (${this.#highestSeq})`};
    }
    return {ok: true, message};
  }

  // UDP may reorder: a sequence number below the newest is still fresh if it was never received and is
  // inside the loss window. It is counted for loss but never replaces the newest beacon's view.
  #isLateButNew(seq: number): boolean {
    return seq > Math.max(this.#seqFloor, this.#highestSeq - LOSS_WINDOW) && !this.#received.includes(seq);
  }

  #recordSeq(seq: number): void {
    this.#received.push(seq);
    this.#highestSeq = Math.max(this.#highestSeq, seq);
    const floor = this.#highestSeq - LOSS_WINDOW;
    if (this.#received.length > LOSS_WINDOW * 2) this.#received = this.#received.filter((s) => s > floor);
  }

  #loss(): number | undefined {
    if (this.#boot === undefined) return undefined;
    const floor = Math.max(this.#firstSeq, this.#highestSeq - LOSS_WINDOW + 1);
    const expected = this.#highestSeq - floor + 1;
    if (expected < 2) return undefined;
    const got = new Set(this.#received.filter((s) => s >= floor)).size;
    return Math.max(0, (expected - got) / expected);
  }

  #retire(boot: string, highestSeq: number): void {
    this.#retiredBoots.push({boot, highestSeq});
    if (this.#retiredBoots.length > RETIRED_BOOTS_KEPT) this.#retiredBoots.shift();
  }

  #unretire(boot: string): {readonly highestSeq: number} | undefined {
    const index = this.#retiredBoots.findIndex((r) => r.boot === boot);
    return index < 0 ? undefined : this.#retiredBoots.splice(index, 1)[0];
  }
}

/**
 * Why a peer whose datagrams arrive looks dead, for refusals and status: how many were rejected since the last
 * valid one and the latest reason. Clock skew (stale, future) names the fix, since it is the usual cause.
 */
export function describeRejectedSinceValid(rejected: RejectedSinceValid): string {
  const hint = rejected.reason === 'stale' || rejected.reason === 'future' ? '; check both hosts\' clocks (timedatectl, NTP)'
    : rejected.reason === 'unacknowledged' ? '; check that beacons pass both ways between the hosts (firewall, routes)' : '';
  return `${rejected.count} datagram(s) from its address rejected since the last valid one, the latest ${rejected.reason}: ${rejected.detail}${hint}`;
}

/** An address's canonical text, an IPv4-mapped one as its IPv4 address; text that is no address as it is. */
function canonicalSource(text: string): string {
  const ip = parseIpAddress(text);
  return ip === undefined ? text : unmapIpv4(ip).address;
}
