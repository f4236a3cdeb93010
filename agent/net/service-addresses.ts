// The service's addresses as one service (issue 16's dual stack: an IPv4 and an IPv6 address that move together, in
// the same steps): each NetworkDriver call made for the service applies to every address, in the config's order. A
// single-stack service is the same code with one address.
//
// A mixed state (one address present, the other not) reads neither as "all there" nor as "all gone": a step that
// verifies presence asks for all, one that verifies absence asks for none (presenceOf() tells the three apart).

import {BatonError, describeError} from '../errors.js';
import type {Config} from '../config/schema.js';
import type {DrainDriver, NetworkDriver} from '../ports.js';
import type {ServiceIp} from '../state-machine.js';

/** How many of the service's addresses a host has: all, none, or some (a mixed state, never "done" either way). */
export type Presence = 'all' | 'none' | 'some';

/**
 * Adds every address, in order. All or none: when one add fails, the addresses this call added are taken back before
 * the failure is thrown, since a step that fails is not undone on its host (only applied steps are), and one address
 * left behind would answer beside the host that serves again. Throws what the failed add threw, or COMMAND_FAILED
 * naming both failures when the take-back fails too.
 */
export async function addAll(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<void> {
  const added: ServiceIp[] = [];
  try {
    for (const ip of ips) {
      await network.addAddress(ip);
      added.push(ip);
    }
  } catch (error) {
    try {
      await removeAll(network, added);
    } catch (takeBack) {
      throw new BatonError('COMMAND_FAILED', `${describeError(error)}; and taking back ${describeAddresses(added)}, ` +
        `added before it, failed too: ${describeError(takeBack)}`, {cause: error});
    }
    throw error;
  }
}

/**
 * Removes every address, in order; idempotent. A removal that fails does not keep the next address from being
 * removed: a host that must hold neither keeps as little as it can. Throws the first failure once all were tried.
 */
export async function removeAll(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<void> {
  let failure: {error: unknown} | undefined;
  for (const ip of ips) {
    try {
      await network.removeAddress(ip);
    } catch (error) {
      failure ??= {error};
    }
  }
  if (failure !== undefined) throw failure.error;
}

/**
 * Announces every address at once (gratuitous ARP for IPv4, unsolicited NA for IPv6): the first announcement of each
 * is what moves its clients, so neither waits for the other's burst. Started in the config's order; throws the first
 * failure after all have ended.
 */
export async function announceAll(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<void> {
  await settleAll(ips.map((ip) => network.announce(ip)));
}

/** Duplicate address detection for the service: whether another host answers for any of its addresses. The probes
 *  run in parallel (each listens for its own timeout). */
export async function isAnyInUse(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<boolean> {
  return (await settleAll(ips.map((ip) => network.isAddressInUse(ip)))).some(Boolean);
}

/** The service's addresses split by what a check found: each in `present` or `absent`, in the config's order. */
export interface Found {
  readonly present: readonly ServiceIp[];
  readonly absent: readonly ServiceIp[];
}

/** Which of the addresses are on the service interface, as the kernel reports it now (NetworkDriver.hasAddress). */
export async function findAddresses(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<Found> {
  return split(ips, await Promise.all(ips.map((ip) => network.hasAddress(ip))));
}

/** Which of the addresses this host answers for (NetworkDriver.isServing: cheap, never throws). */
export async function findServing(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<Found> {
  return split(ips, await Promise.all(ips.map((ip) => network.isServing(ip))));
}

export function presenceOf(found: Found): Presence {
  if (found.absent.length === 0) return 'all';
  return found.present.length === 0 ? 'none' : 'some';
}

/** Whether this host answers for every address: what "holds the service IP" means for a dual-stack service. */
export async function isServingAll(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<boolean> {
  return presenceOf(await findServing(network, ips)) === 'all';
}

/** Whether this host answers for any address: a host that must not serve (a release, on_stop) acts on this. */
export async function isServingAny(network: NetworkDriver, ips: readonly ServiceIp[]): Promise<boolean> {
  return presenceOf(await findServing(network, ips)) !== 'none';
}

/** The addresses for messages: `192.0.2.100/24 and 2001:db8::100/64`. */
export function describeAddresses(ips: readonly ServiceIp[]): string {
  return ips.map((ip) => ip.cidr).join(' and ');
}

/**
 * A service held in part, for people: `partly held: 192.0.2.100 held, 2001:db8:0:1::100 missing`. Takes the
 * addresses as text, with or without their prefix length (status reports and the lab name them as CIDRs), and shows
 * them without it: a prefix length says nothing of where an address is.
 */
export function describePartlyHeld(held: readonly string[], missing: readonly string[]): string {
  const bare = (cidr: string): string => cidr.split('/')[0] ?? cidr;
  return `partly held: ${[...held.map((a) => `${bare(a)} held`), ...missing.map((a) => `${bare(a)} missing`)].join(', ')}`;
}

function split(ips: readonly ServiceIp[], flags: readonly boolean[]): Found {
  return {present: ips.filter((_, i) => flags[i]), absent: ips.filter((_, i) => !flags[i])};
}

/** Waits for every promise (none is left running unobserved), then throws the first failure in order. */
async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

export type OwnDrainAddresses = {readonly addresses: readonly string[]; readonly unavailable?: undefined}
  | {readonly addresses?: undefined; readonly unavailable: string};

/** The host's own addresses that the taker would send strays to, one per service address and of its family (a
 *  dual-stack service drains both addresses, or neither), or why there is none. */
export async function ownDrainAddresses(service: Config['service'], drain: DrainDriver): Promise<OwnDrainAddresses> {
  const addresses: string[] = [];
  for (const ip of service.ips) {
    const address = await drain.ownAddress(ip);
    if (address === undefined) return {unavailable: `${service.interface} has no IPv${ip.family} address of its own besides the service IP (link-local ones do not count)`};
    addresses.push(address);
  }
  return {addresses};
}
