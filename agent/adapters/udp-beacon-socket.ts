// BeaconSocket over UDP (dgram-as-promised): the etcd hosts' beacons (coordination/host-beacons.ts). Bound to this
// host's beacon address and port; sends to the other hosts' addresses on the same port.

import {DgramAsPromised} from 'dgram-as-promised';
import {isIPv6} from 'node:net';
import {BatonError, describeError} from '../errors.js';
import type {BeaconSocket, ReceivedDatagram} from '../ports.js';
import {endpointText} from '../net/ip-address.js';

// A few hosts each sending 5 beacons a second: 1024 waiting datagrams is a flood, dropped (counted) beyond that.
const MAX_QUEUED = 1024;

export interface UdpBeaconSocket extends BeaconSocket {
  /** Datagrams dropped unread because the agent fell behind. */
  readonly dropped: number;
}

/** Binds the socket; throws BatonError PEER_UNREACHABLE naming the address when it cannot. */
export async function createUdpBeaconSocket(options: {readonly address: string; readonly port: number}): Promise<UdpBeaconSocket> {
  const queue: ReceivedDatagram[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let dropped = 0;
  const socket = DgramAsPromised.createSocket({type: isIPv6(options.address) ? 'udp6' : 'udp4'}, (msg, rinfo) => {
    if (queue.length >= MAX_QUEUED) {
      dropped += 1;
      return;
    }
    queue.push({datagram: new Uint8Array(msg.buffer, msg.byteOffset, msg.length), from: rinfo.address, fromPort: rinfo.port});
    wake?.();
  });
  try {
    await socket.bind(options.port, options.address);
  } catch (error) {
    await socket.close().catch(() => undefined);
    throw new BatonError('PEER_UNREACHABLE', `cannot listen for the hosts' beacons on ${endpointText(options.address, options.port)}: ` +
      `${describeError(error)}. Is coordination.beacons.addresses' entry for this host configured on it, and is the port free?`, {cause: error});
  }
  return {
    get dropped() {
      return dropped;
    },
    async send(datagram, address) {
      try {
        await socket.send(datagram, options.port, address);
      } catch (error) {
        throw new BatonError('PEER_UNREACHABLE', `cannot send a beacon to ${endpointText(address, options.port)}: ${describeError(error)}`, {cause: error});
      }
    },
    async *receive() {
      while (!closed) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      wake?.();
      await socket.close().catch(() => undefined);
    },
  };
}
