// BeaconTransports joined by an in-memory wire: what one sends, the other receives, from its configured address.
// Datagrams can also be injected from any address, and the wire can be cut.

import type {BeaconTransport, ReceivedDatagram} from '../../agent/ports.js';

export class FakeTransport implements BeaconTransport {
  readonly address: string;
  readonly sent: Uint8Array[] = [];
  peer: FakeTransport | undefined;
  /** When false, datagrams sent from here are lost. */
  connected = true;
  /** Datagrams sent from here for which this says true are lost (e.g. the ones an older agent would drop). */
  lose: ((datagram: Uint8Array) => boolean) | undefined;
  /** The fake never falls behind. */
  readonly dropped = 0;
  #queue: ReceivedDatagram[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #queued = 0;
  #consumed = 0;
  #waiters: Array<{readonly upTo: number; readonly resolve: () => void}> = [];

  constructor(address: string) {
    this.address = address;
  }

  static pair(a: string, b: string): [FakeTransport, FakeTransport] {
    const left = new FakeTransport(a);
    const right = new FakeTransport(b);
    left.peer = right;
    right.peer = left;
    return [left, right];
  }

  async send(datagram: Uint8Array): Promise<void> {
    this.sent.push(datagram);
    if (this.connected && this.peer !== undefined && this.lose?.(datagram) !== true) this.peer.inject(datagram, this.address);
  }

  inject(datagram: Uint8Array, from: string): void {
    if (this.#closed) return;
    this.#queue.push({datagram, from, fromPort: 7411});
    this.#queued += 1;
    this.#wake?.();
  }

  async *receive(): AsyncIterable<ReceivedDatagram> {
    while (!this.#closed) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        this.#consumed += 1;
        this.#settle();
        continue;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  /** As the UDP transport's: resolves once what was injected so far has been read (no kernel buffer here). */
  async caughtUp(): Promise<void> {
    const upTo = this.#queued;
    if (this.#closed || this.#consumed >= upTo) return;
    await new Promise<void>((resolve) => {
      this.#waiters.push({upTo, resolve});
    });
  }

  #settle(): void {
    const ready = this.#waiters.filter((w) => this.#closed || w.upTo <= this.#consumed);
    this.#waiters = this.#waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#settle();
    this.#wake?.();
  }

  /** Opens the transport again for a restarted agent; what arrived while closed is lost, as on a real socket. */
  reopen(): void {
    this.#closed = false;
    this.#queue = [];
    this.#queued = 0;
    this.#consumed = 0;
  }
}
