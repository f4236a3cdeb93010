// What this agent sends its peer: the envelope every datagram carries (sequence, boot, sent-at), signed and
// counted, and when each recent one left (sent-log.ts), which turns the peer's acks into RTT samples and proof.

import {encodeMessage, type Beacon, type Envelope, type Message} from './beacon-codec.js';
import type {Config} from '../config/schema.js';
import type {BeaconTransport, Clock} from '../ports.js';
import type {OutgoingReply, OutgoingRequest} from './peer-requests.js';
import type {SentLog} from './sent-log.js';

export class Outbox {
  readonly #config: Config;
  readonly #clock: Clock;
  readonly #transport: BeaconTransport;
  readonly #bootId: string;
  readonly #sentLog: SentLog;
  #seq = 0;
  #sent = 0;

  constructor(config: Config, clock: Clock, transport: BeaconTransport, bootId: string, sentLog: SentLog) {
    this.#config = config;
    this.#sentLog = sentLog;
    this.#clock = clock;
    this.#transport = transport;
    this.#bootId = bootId;
  }

  /** Datagrams sent since start. */
  get sent(): number {
    return this.#sent;
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
    // Every kind: the peer acknowledges the newest datagram it received, a request or a reply as well as a beacon.
    this.#sentLog.record(this.#seq, this.#clock.now());
    return {pair: this.#config.pair, node: this.#config.node, boot: this.#bootId, seq: this.#seq, sentAt: Math.round(this.#clock.wallNow())};
  }

  async #transmit(message: Message): Promise<void> {
    await this.#transport.send(encodeMessage(message, this.#config.keyring.signing));
    this.#sent += 1;
  }
}
