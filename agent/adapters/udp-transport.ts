// BeaconTransport over UDP with dgram-as-promised: bound to the listen address, sends only to the peer.

import {DgramAsPromised, type SocketAsPromised} from 'dgram-as-promised';
import {isIPv6} from 'node:net';
import {BatonError, describeError} from '../errors.js';
import {errorCode} from '../config/messages.js';
import type {BeaconTransport, ReceivedDatagram} from '../ports.js';
import {endpointText} from '../net/ip-address.js';

export interface UdpTransportOptions {
  readonly listen: {readonly address: string; readonly port: number};
  readonly peer: {readonly address: string; readonly port: number};
  /** Datagrams waiting for the agent beyond this are dropped (counted), so a flood cannot grow memory. */
  readonly maxQueued?: number;
  /** How long an IPv6 listen address that cannot be bound yet is waited for (default TENTATIVE_WAIT_MS). */
  readonly tentativeWaitMs?: number;
}

// 4096 datagrams of at most 1.1 KB: under 5 MB even when full.
const DEFAULT_MAX_QUEUED = 4096;
// The socket's kernel receive buffer: datagrams that arrive while the agent is busy (a switch step's process
// spawn, a fsync) wait there. The kernel caps the request at net.core.rmem_max and doubles it; Debian's default
// cap (208 KB) holds about 300 small datagrams, a few tens of ms of a 10,000/s flood. Raising rmem_max buys headroom.
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

// Duplicate address detection holds a new IPv6 address tentative for up to 1 s of random delay plus
// dad_transmits (1) × RetransTimer (1 s): about 2 s. 5 s covers it with margin and a second transmission.
export const TENTATIVE_WAIT_MS = 5_000;
const BIND_RETRY_MS = 100;

export interface UdpTransport extends BeaconTransport {
  /** Datagrams dropped because the agent fell behind. */
  readonly dropped: number;
}

/** Binds the socket; throws BatonError PEER_UNREACHABLE naming the address when it cannot. */
export async function createUdpTransport(options: UdpTransportOptions): Promise<UdpTransport> {
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const queue: ReceivedDatagram[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let dropped = 0;
  // Datagrams queued, and handed to the reader and taken back (it asked for the next): what caughtUp() compares.
  let queued = 0;
  let consumed = 0;
  let waiters: Array<{readonly upTo: number; readonly resolve: () => void}> = [];
  const settleWaiters = (): void => {
    if (waiters.length === 0) return;
    const ready = waiters.filter((w) => closed || w.upTo <= consumed);
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  };

  // Messages are taken from the 'message' event rather than recv(): recv() listens only while a call is
  // pending, and datagrams that arrive together in one loop turn would be lost between two calls.
  const ipv6 = isIPv6(options.listen.address);
  const open = (): SocketAsPromised => DgramAsPromised.createSocket(
    {type: ipv6 ? 'udp6' : 'udp4', recvBufferSize: RECEIVE_BUFFER_BYTES},
    (msg, rinfo) => {
      if (queue.length >= maxQueued) {
        dropped += 1;
        return;
      }
      queue.push({datagram: new Uint8Array(msg.buffer, msg.byteOffset, msg.length), from: rinfo.address, fromPort: rinfo.port});
      queued += 1;
      wake?.();
    },
  );
  const bindWaitMs = ipv6 ? options.tentativeWaitMs ?? TENTATIVE_WAIT_MS : 0;
  const started = performance.now();
  let socket = open();
  for (;;) {
    try {
      await socket.bind(options.listen.port, options.listen.address);
      break;
    } catch (error) {
      await socket.close().catch(() => undefined);
      // An IPv6 address is tentative until duplicate address detection has passed, and cannot be bound meanwhile
      // (EADDRNOTAVAIL), e.g. at boot or just after `ip address add`: worth waiting for.
      const tentative = ipv6 && errorCode(error) === 'EADDRNOTAVAIL';
      if (tentative && performance.now() - started < bindWaitMs) {
        await new Promise((resolve) => setTimeout(resolve, BIND_RETRY_MS));
        socket = open();
        continue;
      }
      throw new BatonError('PEER_UNREACHABLE',
        `cannot listen on ${endpointText(options.listen.address, options.listen.port)}: ${describeError(error)}. ` +
        (tentative ? `Is listen.address configured on this host? If it is, it was still not usable after ${bindWaitMs} ms: ` +
          '`ip -6 address show` says tentative (duplicate address detection still running) or dadfailed (another host has it)'
          : 'Is listen.address configured on this host, and is no other baton-agent using the port?'), {cause: error});
    }
  }

  return {
    get dropped() {
      return dropped;
    },
    async send(datagram) {
      try {
        await socket.send(datagram, options.peer.port, options.peer.address);
      } catch (error) {
        throw new BatonError('PEER_UNREACHABLE', `cannot send to ${endpointText(options.peer.address, options.peer.port)}: ${describeError(error)}`, {cause: error});
      }
    },
    async *receive() {
      while (!closed) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          consumed += 1;
          settleWaiters();
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
    async caughtUp() {
      // Each turn of the event loop reads at most 32 datagrams from the kernel's buffer (libuv), so turns are taken
      // until one reads nothing new and the reader has had everything. Under a flood that never happens: the caller
      // bounds the wait. The first setImmediate reaches this turn's check phase; each one after it spans a whole
      // turn, its poll phase included.
      const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
      await turn();
      while (!closed) {
        const before = queued;
        await turn();
        const upTo = queued;
        if (consumed < upTo) {
          await new Promise<void>((resolve) => {
            waiters.push({upTo, resolve});
          });
        } else if (upTo === before) {
          return;
        }
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      settleWaiters();
      wake?.();
      await socket.close();
    },
  };
}
