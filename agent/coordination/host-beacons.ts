// The beacons between etcd hosts, for `on_etcd_loss: keep-while-peers-agree` (issue 17): each host tells every other,
// at a fixed interval, per service whether it holds it (the address may be on it), and which hosts it hears. From
// them, a holder that cannot renew its lease learns until when it may keep the service (keepUntilMs), and a host
// standing by learns how long it must not campaign even though etcd shows the key gone (campaignNotBeforeMs).
//
// The datagrams are a pair's: the same framing, key ids and HMAC-SHA256 over the whole datagram (beacon-codec.ts,
// kind HOST_BEACON_KIND, which a pair's agent refuses), signed with coordination.beacons.secret_file. Replay: per
// sending host, sequence numbers only go up within a run (boot), a run older than the newest one heard is refused,
// and sent-at must be within MAX_CLOCK_SKEW_MS of our wall clock.
//
// The timing rule. D = heard_within_ms, M = renew_margin_ms. Each host P says "I hear H" for each host H whose
// newest beacon reached P less than D ago, and names that beacon (H's boot and sequence number): an echo.
//   - H, past its lease's deadline, keeps the service only while, for every other host P, P's newest beacon says P
//     does not hold it and echoes a beacon of H's current run that H *sent* less than D ago (H's own monotonic clock,
//     from its sent log): keepUntil = min over P of (send time of the echoed beacon + D).
//   - P campaigns only when the key is gone in etcd and, for each host H whose newest beacon says it holds the service,
//     that beacon reached P more than 2·D + M ago; a host P has heard nothing from since it started counts as heard
//     holding just before P started.
// Why that is never two holders. Say P echoes H's beacon b, sent by H at time x and received by P at r ≥ x. P's
// statement "I do not hold it" is as of its sending, after r. H keeps at most until x + D. For P to hold the service
// later it must campaign, at the earliest M + 2·D after it last heard H (≥ r ≥ x), since every beacon of a holding H
// says so: so after x + 2·D + M, D + M after H stopped keeping. M (the same margin that puts the lease deadline
// before the lease's expiry) covers H's reaction: the timer that fires at keepUntil, and removing the address.
//   - Delays do not matter: H's bound counts from its own send time, not from when P's answer arrived.
//   - A one-way cut (H → P lost): P stops echoing; H's bound stops moving and it drops at x + D. P → H lost: the
//     same, H hears no fresh echo. Both ways: both. P campaigns only after 2·D + M without H's beacons.
//   - H frozen (SIGSTOP): it sends nothing, so nothing it sent is younger than when it froze; when it runs again its
//     first tick finds keepUntil past and drops before anything else. Meanwhile P campaigns after 2·D + M; the
//     address, still on the frozen host, answers P's duplicate-address probe, and P does not take it.
//   - P restarted: it heard nothing, so it waits 2·D + M from its start before campaigning (H's beacons, which say
//     held, then keep it waiting); what P said before it restarted echoes beacons H sent before P's restart.
//   - H restarted: echoes name H's boot, so an echo of its earlier run (another monotonic clock) counts for nothing.
// The rule needs D < lease TTL − M (config/etcd-beacons.ts): H's beacons say "held" from its campaign on, so any beacon
// of H that P can echo at H's lease deadline was sent while H held the service.

import type {Keyring} from '../config/secret-files.js';
import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import {HOST_BEACON_KIND, REJECT_REASONS, sealBody, unsealHostBeacon, type RejectReason} from '../peer/beacon-codec.js';
import {SentLog} from '../peer/sent-log.js';
import {parseIpAddress, unmapIpv4} from '../net/ip-address.js';
import type {BeaconSocket, Clock} from '../ports.js';

/** What a host says of one service. */
export interface ServiceWord {
  readonly name: string;
  /** The address may be on the sender: it campaigns, holds, keeps without etcd, or is in a planned switch. */
  readonly held: boolean;
  /** The key's revision while held (0 when unknown or not held). */
  readonly epoch: number;
  /** Held past the lease's deadline, by the other hosts' agreement. */
  readonly keeping: boolean;
}

/** One beacon a host heard: its run (boot) and sequence number, for the sender to know when it sent it. */
export interface HeardEcho {
  readonly host: string;
  readonly boot: string;
  readonly seq: number;
}

export interface HostBeacon {
  /** The coordination's name (from baton's prefix in etcd): beacons of another one are refused. */
  readonly cluster: string;
  readonly host: string;
  readonly boot: string;
  readonly seq: number;
  /** Sender's wall clock, ms since the epoch: only for the skew window. */
  readonly sentAt: number;
  readonly services: readonly ServiceWord[];
  readonly heard: readonly HeardEcho[];
}

export interface HostBeaconSettings {
  readonly cluster: string;
  readonly self: string;
  /** Every host, this one among them. */
  readonly hosts: readonly string[];
  /** Each host's beacon address (this one's too). */
  readonly addresses: ReadonlyMap<string, string>;
  readonly keyring: Keyring;
  readonly intervalMs: number;
  /** D: a host says it hears another only while the other's newest beacon is younger than this. */
  readonly heardWithinMs: number;
  /** M: renew_margin_ms. */
  readonly marginMs: number;
}

// The pair's default max_clock_skew_ms: a recording older than that is refused; hosts' clocks are NTP-synchronized.
export const MAX_CLOCK_SKEW_MS = 5_000;
// Earlier runs of each host are remembered, so that their recorded beacons cannot come back as a new run.
const RETIRED_BOOTS_KEPT = 16;

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const BODY_KEYS = new Set(['cluster', 'host', 'boot', 'seq', 'sentAt', 'services', 'heard']);
// A datagram holds at most MAX_BODY_BYTES; these keep a forged-but-signed body from asking for much work.
const MAX_SERVICES = 32;
const MAX_HEARD = 32;

/** The body as it goes on the wire; fields in a fixed order. */
export function hostBeaconBody(beacon: HostBeacon): Record<string, unknown> {
  return {
    cluster: beacon.cluster, host: beacon.host, boot: beacon.boot, seq: beacon.seq, sentAt: beacon.sentAt,
    services: beacon.services.map((s) => ({name: s.name, held: s.held, epoch: s.epoch, keeping: s.keeping})),
    heard: beacon.heard.map((h) => ({host: h.host, boot: h.boot, seq: h.seq})),
  };
}

export function encodeHostBeacon(beacon: HostBeacon, keyring: Keyring): Uint8Array {
  return sealBody(HOST_BEACON_KIND, hostBeaconBody(beacon), keyring.signing);
}

/** A HostBeacon, or what is wrong with the body. Strict: unknown fields and wrong types are refused. */
export function parseHostBeacon(body: unknown): HostBeacon | string {
  if (!isRecord(body)) return 'body is not a JSON object';
  for (const key of Object.keys(body)) if (!BODY_KEYS.has(key)) return 'unknown field';
  const {cluster, host, boot, seq, sentAt, services, heard} = body;
  if (typeof cluster !== 'string' || !NAME_PATTERN.test(cluster)) return 'field cluster: expected a name';
  if (typeof host !== 'string' || !NAME_PATTERN.test(host)) return 'field host: expected a host name';
  if (typeof boot !== 'string' || !ID_PATTERN.test(boot)) return 'field boot: expected a boot id';
  if (!isCount(seq) || seq < 1) return 'field seq: expected a positive integer';
  if (!isCount(sentAt)) return 'field sentAt: expected ms since the epoch';
  if (!Array.isArray(services) || services.length > MAX_SERVICES) return `field services: expected a list of at most ${MAX_SERVICES}`;
  const words: ServiceWord[] = [];
  for (const item of services as unknown[]) {
    if (!isRecord(item) || Object.keys(item).length !== 4) return 'field services: expected {name, held, epoch, keeping}';
    const {name, held, epoch, keeping} = item;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) return 'field services.name: expected a name';
    if (typeof held !== 'boolean' || typeof keeping !== 'boolean') return 'field services.held, keeping: expected booleans';
    if (!isCount(epoch)) return 'field services.epoch: expected a non-negative integer';
    words.push({name, held, epoch, keeping});
  }
  if (!Array.isArray(heard) || heard.length > MAX_HEARD) return `field heard: expected a list of at most ${MAX_HEARD}`;
  const echoes: HeardEcho[] = [];
  for (const item of heard as unknown[]) {
    if (!isRecord(item) || Object.keys(item).length !== 3) return 'field heard: expected {host, boot, seq}';
    const {host: heardHost, boot: heardBoot, seq: heardSeq} = item;
    if (typeof heardHost !== 'string' || !NAME_PATTERN.test(heardHost)) return 'field heard.host: expected a host name';
    if (typeof heardBoot !== 'string' || !ID_PATTERN.test(heardBoot)) return 'field heard.boot: expected a boot id';
    if (!isCount(heardSeq)) return 'field heard.seq: expected a non-negative integer';
    echoes.push({host: heardHost, boot: heardBoot, seq: heardSeq});
  }
  return {cluster, host, boot, seq, sentAt, services: words, heard: echoes};
}

export type BeaconReject = RejectReason | 'unknown-host';

/** What this host knows of another from its beacons. */
interface HeardHost {
  boot: string;
  highestSeq: number;
  /** Newest sentAt of the current run: another run that sent no later than that is the past, not a restart. */
  bootSentAt: number;
  /** Monotonic ms the newest beacon arrived. */
  atMs: number;
  beacon: HostBeacon;
  retired: {readonly boot: string; readonly highestSeq: number}[];
}

/** Why a holder may not keep, or until when it may (monotonic ms). */
export type KeepVerdict = {readonly ok: true; readonly untilMs: number} | {readonly ok: false; readonly why: string};

/**
 * The beacons heard and sent, and the two rules. No I/O: times are passed in (`now` in boot time, Clock.bootNow, which
 * goes on through a suspend as the lease holder's deadline does; `wallNow` only for the skew window).
 */
export class BeaconBoard {
  readonly #settings: HostBeaconSettings;
  readonly #boot: string;
  readonly #startedAtMs: number;
  readonly #sent: SentLog;
  #seq = 0;
  readonly #heard = new Map<string, HeardHost>();
  readonly #rejected = Object.fromEntries([...REJECT_REASONS, 'unknown-host'].map((r) => [r, 0])) as Record<BeaconReject, number>;
  #accepted = 0;

  constructor(settings: HostBeaconSettings, boot: string, startedAtMs: number) {
    this.#settings = settings;
    this.#boot = boot;
    this.#startedAtMs = startedAtMs;
    // Echoes of beacons sent up to 2·D ago are all a holder needs (older ones say nothing fresh): the ring holds them.
    this.#sent = new SentLog(settings.heardWithinMs * 2, settings.intervalMs);
  }

  get boot(): string {
    return this.#boot;
  }

  get accepted(): number {
    return this.#accepted;
  }

  get rejected(): Readonly<Record<BeaconReject, number>> {
    return this.#rejected;
  }

  /** This host's next beacon, recorded as sent at `now`. */
  compose(services: readonly ServiceWord[], now: number, wallNow: number): HostBeacon {
    this.#seq += 1;
    this.#sent.record(this.#seq, now);
    const heard = [...this.#heard].filter(([, h]) => now - h.atMs < this.#settings.heardWithinMs)
      .map(([host, h]) => ({host, boot: h.boot, seq: h.highestSeq}));
    return {cluster: this.#settings.cluster, host: this.#settings.self, boot: this.#boot, seq: this.#seq, sentAt: Math.round(wallNow),
      services, heard};
  }

  /** Judges one datagram; an accepted beacon becomes the sender's newest. */
  observe(datagram: Uint8Array, from: string, now: number, wallNow: number): {readonly ok: true; readonly beacon: HostBeacon} | {readonly ok: false; readonly reason: BeaconReject; readonly detail: string} {
    const result = this.#judge(datagram, from, now, wallNow);
    if (result.ok) this.#accepted += 1;
    else this.#rejected[result.reason] += 1;
    return result;
  }

  #judge(datagram: Uint8Array, from: string, now: number, wallNow: number): {readonly ok: true; readonly beacon: HostBeacon} | {readonly ok: false; readonly reason: BeaconReject; readonly detail: string} {
    const settings = this.#settings;
    const unsealed = unsealHostBeacon(datagram, settings.keyring, wallNow);
    if (!unsealed.ok) return unsealed;
    const beacon = parseHostBeacon(unsealed.body);
    if (typeof beacon === 'string') return {ok: false, reason: 'malformed', detail: beacon};
    if (beacon.cluster !== settings.cluster) return {ok: false, reason: 'wrong-pair', detail: `cluster '${beacon.cluster}', ours is '${settings.cluster}'`};
    const address = settings.addresses.get(beacon.host);
    if (beacon.host === settings.self || address === undefined || !settings.hosts.includes(beacon.host)) {
      return {ok: false, reason: 'unknown-host', detail: `host '${beacon.host}' is not another of coordination.hosts`};
    }
    if (!sameAddress(from, address)) return {ok: false, reason: 'wrong-source', detail: `${beacon.host}'s beacon from ${from}, its address is ${address}`};
    if (beacon.sentAt < wallNow - MAX_CLOCK_SKEW_MS) return {ok: false, reason: 'stale', detail: `sent ${Math.round(wallNow - beacon.sentAt)} ms ago by its clock`};
    if (beacon.sentAt > wallNow + MAX_CLOCK_SKEW_MS) return {ok: false, reason: 'future', detail: `sent ${Math.round(beacon.sentAt - wallNow)} ms ahead of our clock`};
    const known = this.#heard.get(beacon.host);
    if (known !== undefined) {
      if (beacon.boot === known.boot) {
        if (beacon.seq <= known.highestSeq) return {ok: false, reason: 'replay', detail: `seq ${beacon.seq}, newest ${known.highestSeq}`};
      } else if (known.retired.some((r) => r.boot === beacon.boot)) {
        return {ok: false, reason: 'replay', detail: `run ${beacon.boot} of ${beacon.host} already ended`};
      } else if (beacon.sentAt <= known.bootSentAt) {
        return {ok: false, reason: 'stale', detail: `run ${beacon.boot} sent no later than the current run ${known.boot}`};
      }
    }
    const retired = known === undefined ? [] : known.boot === beacon.boot ? known.retired
      : [{boot: known.boot, highestSeq: known.highestSeq}, ...known.retired].slice(0, RETIRED_BOOTS_KEPT);
    this.#heard.set(beacon.host, {boot: beacon.boot, highestSeq: beacon.seq, bootSentAt: Math.max(beacon.sentAt, known?.boot === beacon.boot ? known.bootSentAt : 0),
      atMs: now, beacon, retired});
    return {ok: true, beacon};
  }

  /**
   * Until when this host may keep `service` past its lease's deadline: while every other host that may hold it
   * (`hosts`, the service's) says in its newest beacon that it does not hold the service and echoes a beacon this run
   * sent less than D ago.
   */
  keepUntil(service: string, now: number, hosts: readonly string[] = this.#settings.hosts): KeepVerdict {
    const {self, heardWithinMs} = this.#settings;
    let untilMs = Number.POSITIVE_INFINITY;
    for (const host of hosts) {
      if (host === self) continue;
      const heard = this.#heard.get(host);
      if (heard === undefined) return {ok: false, why: `no beacon from ${host}`};
      if (heard.beacon.services.some((s) => s.name === service && s.held)) return {ok: false, why: `${host} says it holds ${service}`};
      const echo = heard.beacon.heard.find((h) => h.host === self && h.boot === this.#boot);
      const sentAt = echo === undefined ? undefined : this.#sent.sentAt(echo.seq);
      if (sentAt === undefined) return {ok: false, why: `${host} does not hear this host`};
      untilMs = Math.min(untilMs, sentAt + heardWithinMs);
    }
    if (untilMs <= now) return {ok: false, why: `no host heard this host's beacons in the last ${heardWithinMs} ms`};
    return {ok: true, untilMs};
  }

  /**
   * The monotonic ms before which this host must not campaign for `service`: 2·D + M after the newest beacon of each
   * host that says it holds the service, and after this host's start for each host not heard since.
   */
  campaignNotBefore(service: string, hosts: readonly string[] = this.#settings.hosts): number {
    const {self, heardWithinMs, marginMs} = this.#settings;
    const wait = 2 * heardWithinMs + marginMs;
    let notBefore = 0;
    for (const host of hosts) {
      if (host === self) continue;
      const heard = this.#heard.get(host);
      if (heard === undefined) notBefore = Math.max(notBefore, this.#startedAtMs + wait);
      else if (heard.beacon.services.some((s) => s.name === service && s.held)) notBefore = Math.max(notBefore, heard.atMs + wait);
    }
    return notBefore;
  }

  /** The newest beacon of each host heard, and how long ago it came (for status and logs). */
  heard(now: number): {readonly host: string; readonly agoMs: number; readonly beacon: HostBeacon}[] {
    return [...this.#heard].map(([host, h]) => ({host, agoMs: Math.round(now - h.atMs), beacon: h.beacon}));
  }
}

export interface HostBeaconsDeps {
  readonly clock: Clock;
  readonly socket: BeaconSocket;
  readonly settings: HostBeaconSettings;
  readonly boot: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** What this host says of its services now. */
  services(): readonly ServiceWord[];
  /** An accepted beacon arrived (the holder looks again at whether it may keep). Must not throw. */
  readonly onBeacon?: () => void;
}

/** Sends this host's beacon to every other host each interval, and judges what arrives, until the signal aborts. */
export class HostBeacons {
  readonly board: BeaconBoard;
  readonly #deps: HostBeaconsDeps;
  readonly #loggedRejects = new Set<BeaconReject>();
  #sendFailed = new Set<string>();

  constructor(deps: HostBeaconsDeps) {
    this.#deps = deps;
    this.board = new BeaconBoard(deps.settings, deps.boot, deps.clock.bootNow());
  }

  async run(): Promise<void> {
    const {signal, socket} = this.#deps;
    const receiving = this.#receive();
    signal.addEventListener('abort', () => void socket.close(), {once: true});
    while (!signal.aborted) {
      await this.sendNow();
      await this.#deps.clock.sleep(this.#deps.settings.intervalMs, signal).catch(() => undefined);
    }
    await socket.close();
    await receiving;
  }

  /** One beacon to every other host now (also at once after a change of what this host says). */
  async sendNow(): Promise<void> {
    const {clock, socket, settings, log} = this.#deps;
    const beacon = this.board.compose(this.#deps.services(), clock.bootNow(), clock.wallNow());
    const datagram = encodeHostBeacon(beacon, settings.keyring);
    await Promise.all(settings.hosts.filter((host) => host !== settings.self).map(async (host) => {
      const address = settings.addresses.get(host);
      if (address === undefined) return;
      try {
        await socket.send(datagram, address);
        this.#sendFailed.delete(host);
      } catch (error) {
        // Said once while it lasts: an unreachable host is what keep-while-peers-agree is about.
        if (!this.#sendFailed.has(host)) log.warning(`(beacons) ${describeError(error)}`);
        this.#sendFailed.add(host);
      }
    }));
  }

  async #receive(): Promise<void> {
    const {clock, socket, log} = this.#deps;
    for await (const {datagram, from} of socket.receive()) {
      const result = this.board.observe(datagram, from, clock.bootNow(), clock.wallNow());
      if (result.ok) {
        this.#deps.onBeacon?.();
        continue;
      }
      // Each reason once per run in the log (keepalived's log_rate_limited_error); all are counted.
      if (!this.#loggedRejects.has(result.reason)) log.warning(`(beacons) rejected a datagram from ${from}: ${result.reason}: ${result.detail}`);
      this.#loggedRejects.add(result.reason);
    }
  }
}

function sameAddress(from: string, configured: string): boolean {
  const a = parseIpAddress(from);
  const b = parseIpAddress(configured);
  if (a === undefined || b === undefined) return from === configured;
  return unmapIpv4(a).address === unmapIpv4(b).address;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
