// What this agent sends its peer: the envelope every datagram carries (sequence, boot, sent-at), signed and
// counted, and the sent-at times of recent datagrams, which turn the peer's acks into RTT samples.

import {encodeMessage, type Beacon, type Envelope, type Message} from './beacon-codec.js';
import type {Config} from '../config/schema.js';
import type {BeaconTransport, Clock} from '../ports.js';
import type {OutgoingReply, OutgoingRequest} from './peer-requests.js';

// Our sent-at times are kept for the last SENT_KEPT datagrams to turn the peer's acks into RTT samples; at a
// beacon every 200 ms that is 13 s at most, far beyond any RTT worth measuring. Every datagram is recorded, not
// only beacons: the peer acks the newest datagram of any kind it accepted (a request or reply during a switch),
// and each sequence number drops the one SENT_KEPT before it, so the map holds SENT_KEPT at most (with beacons
// only, a beacon SENT_KEPT before a request or reply was never dropped: the map grew with every switch).
export const SENT_KEPT = 64;

export class Outbox {
  readonly #config: Config;
  readonly #clock: Clock;
  readonly #transport: BeaconTransport;
  readonly #bootId: string;
  readonly #sentAt = new Map<number, number>();
  #seq = 0;
  #sent = 0;

  constructor(config: Config, clock: Clock, transport: BeaconTransport, bootId: string) {
    this.#config = config;
    this.#clock = clock;
    this.#transport = transport;
    this.#bootId = bootId;
  }

  /** Datagrams sent since start. */
  get sent(): number {
    return this.#sent;
  }

  /** The monotonic time our datagram `seq` left, while it is among the last SENT_KEPT. */
  sentAt(seq: number): number | undefined {
    return this.#sentAt.get(seq);
  }

  /** Sends a beacon built from the envelope; throws when the transport refuses it. */
  async beacon(body: Omit<Beacon, keyof Envelope>): Promise<void> {
    await this.#transmit({kind: 'beacon', beacon: {...this.#envelope(), ...body}});
  }

  async request(request: OutgoingRequest, peerBoot: string): Promise<void> {
    await this.#transmit({kind: 'request', request: {...this.#envelope(), to: peerBoot, ...request}});
  }

  async reply(reply: OutgoingReply): Promise<void> {
    await this.#transmit({kind: 'reply', reply: {...this.#envelope(), ...reply}});
  }

  #envelope(): Envelope {
    this.#seq += 1;
    this.#sentAt.set(this.#seq, this.#clock.now());
    this.#sentAt.delete(this.#seq - SENT_KEPT);
    return {pair: this.#config.pair, node: this.#config.node, boot: this.#bootId, seq: this.#seq, sentAt: Math.round(this.#clock.wallNow())};
  }

  async #transmit(message: Message): Promise<void> {
    await this.#transport.send(encodeMessage(message, this.#config.keyring.signing));
    this.#sent += 1;
  }
}
