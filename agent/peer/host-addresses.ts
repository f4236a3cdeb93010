// The addresses one host tells the other at the start of a switch, so that the confirmation on either host does not
// count requests of the other host as clients (request-evidence.ts, own-address), whatever family or address they
// leave from: the beacon address alone is one of them, and an IPv6 service with IPv4 beacons would see the peer's
// IPv6 probes as clients.

import {canonicalAddress} from '../access-log.js';
import {BatonError} from '../errors.js';
import {isLinkLocal, parseIpAddress} from '../net/ip-address.js';

// A request must fit one datagram (beacon-codec.ts, MAX_BODY_BYTES 1400 with the envelope): 16 IPv6 addresses of at
// most 39 characters, quoted and separated, are under 700 bytes.
export const MAX_HOST_ADDRESSES = 16;

/**
 * What of a host's interface addresses is worth telling: canonical, each once, without loopback (every host has it;
 * the judge knows it) and link-local addresses (a request to the service IP never leaves from one), at most
 * MAX_HOST_ADDRESSES; `left` is what did not fit, for a log line.
 */
export function shareableAddresses(addresses: readonly string[]): {readonly shared: readonly string[]; readonly left: readonly string[]} {
  const usable = [...new Set(addresses.flatMap((text) => {
    const ip = parseIpAddress(text);
    if (ip === undefined || isLinkLocal(ip)) return [];
    const canonical = canonicalAddress(ip.address);
    return canonical === '::1' || canonical.startsWith('127.') ? [] : [canonical];
  }))];
  return {shared: usable.slice(0, MAX_HOST_ADDRESSES), left: usable.slice(MAX_HOST_ADDRESSES)};
}

/**
 * The addresses in a peer's request or answer, checked (they are the peer's word); undefined when absent (an agent
 * older than this field sends none). Throws BatonError BAD_REQUEST naming `what` when they are not a list of at most
 * MAX_HOST_ADDRESSES IP addresses.
 */
export function decodeHostAddresses(value: unknown, what: string): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_HOST_ADDRESSES) {
    throw new BatonError('BAD_REQUEST', `${what}: addresses must be a list of at most ${MAX_HOST_ADDRESSES} IP addresses`);
  }
  return value.map((item: unknown) => {
    const ip = typeof item === 'string' ? parseIpAddress(item) : undefined;
    if (ip === undefined) throw new BatonError('BAD_REQUEST', `${what}: addresses: ${JSON.stringify(item).slice(0, 60)} is not an IP address`);
    return canonicalAddress(ip.address);
  });
}
