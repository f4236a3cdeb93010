// The etcd hosts' beacon sockets on one fake LAN: a datagram sent reaches the socket bound to its address at once,
// unless that direction is cut (one way or both, per pair of addresses).

import type {BeaconSocket, ReceivedDatagram} from '../../agent/ports.js';

export class FakeBeaconNet {
  readonly #sockets = new Map<string, FakeBeaconSocket>();
  readonly #cut = new Set<string>();
  /** Datagrams sent, delivered or not. */
  sent = 0;

  socket(address: string): FakeBeaconSocket {
    const socket = new FakeBeaconSocket(address, this);
    this.#sockets.set(address, socket);
    return socket;
  }

  /** Datagrams from `from` to `to` are lost from now on (until heal). */
  cut(from: string, to: string): void {
    this.#cut.add(`${from}>${to}`);
  }

  /** Both ways between `a` and each of `others`. */
  cutBoth(a: string, ...others: string[]): void {
    for (const b of others) {
      this.cut(a, b);
      this.cut(b, a);
    }
  }

  heal(): void {
    this.#cut.clear();
  }

  deliver(from: string, to: string, datagram: Uint8Array): void {
    this.sent += 1;
    if (this.#cut.has(`${from}>${to}`)) return;
    this.#sockets.get(to)?.push({datagram, from, fromPort: 7411});
  }
}

export class FakeBeaconSocket implements BeaconSocket {
  readonly #address: string;
  readonly #net: FakeBeaconNet;
  readonly #queue: ReceivedDatagram[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(address: string, net: FakeBeaconNet) {
    this.#address = address;
    this.#net = net;
  }

  push(datagram: ReceivedDatagram): void {
    if (this.#closed) return;
    this.#queue.push(datagram);
    this.#wake?.();
  }

  async send(datagram: Uint8Array, address: string): Promise<void> {
    if (!this.#closed) this.#net.deliver(this.#address, address, datagram);
  }

  async *receive(): AsyncIterable<ReceivedDatagram> {
    while (!this.#closed) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
  }
}
