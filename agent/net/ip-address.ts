// IP addresses and subnets on ipaddr.js: strict parsing to one canonical text, prefix bounds, network and broadcast
// addresses, membership. Shared by the agent's config, the lab and the CLI, so all three accept the same addresses.

import ipaddr from 'ipaddr.js';
import type {ServiceIp} from '../state-machine.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  /**
   * Canonical text, so that one address written two ways compares equal and matches the sender addresses the kernel
   * reports: IPv4 dotted decimal; IPv6 lowercase with the longest zero run compressed (RFC 5952). A zone
   * (fe80::1%eth0) is kept as written.
   */
  readonly address: string;
  readonly family: IpFamily;
}

/** A subnet given by its first address, e.g. 192.0.2.0/25. */
export interface Subnet {
  readonly network: IpAddress;
  readonly prefixLength: number;
}

/** Why parseHostCidr refused its text; config and CLI turn this into their own messages. */
export type HostCidrProblem =
  | {readonly problem: 'no-prefix-length'}
  /** `addressText` (the part before the slash) is no address, or has a zone, which `ip addr add` refuses. */
  | {readonly problem: 'not-an-address'; readonly addressText: string}
  | {readonly problem: 'prefix-length-out-of-range'; readonly family: IpFamily}
  | {readonly problem: 'network-address' | 'broadcast-address'; readonly address: string;
    readonly prefixLength: number};

// IPv4 only as four decimal parts without leading zeros, as `ip` and net.isIP read it: ipaddr.js would also take
// inet_aton's forms (127.1, 0x7f.0.0.1, 0177.0.0.1), which name another address than a reader expects.
const FOUR_PART_DECIMAL = /^(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}$/;
// A zone as net.isIP takes it (an interface name or index): ipaddr.js would refuse fe80::1%br-lan or %eth0.10.
const ZONE = /^%[0-9A-Za-z.:-]+$/;
// The prefix length as written: digits without a leading zero, so that 024 is not silently taken for 24.
const PREFIX_LENGTH = /^[1-9]\d{0,2}$/;

/** The address in canonical form; undefined when `text` is not an IPv4 or IPv6 address. */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (FOUR_PART_DECIMAL.test(text)) {
    return ipaddr.IPv4.isValid(text) ? {address: ipaddr.IPv4.parse(text).toString(), family: 4} : undefined;
  }
  const zoneAt = text.indexOf('%');
  const bare = zoneAt === -1 ? text : text.slice(0, zoneAt);
  const zone = zoneAt === -1 ? '' : text.slice(zoneAt);
  if (zone !== '' && !ZONE.test(zone)) return undefined;
  const hex = withHexTail(bare);
  if (hex === undefined || !hex.includes(':') || !ipaddr.IPv6.isValid(hex)) return undefined;
  return {address: ipaddr.IPv6.parse(hex).toRFC5952String() + zone, family: 6};
}

/** The 16 bytes of an IPv6 address without a zone, as 32 lowercase hex digits (for a packet helper's request);
 *  undefined for anything else. */
export function ipv6Hex(text: string): string | undefined {
  const ip = parseIpAddress(text);
  if (ip?.family !== 6 || ip.address.includes('%')) return undefined;
  return Buffer.from(ipaddr.IPv6.parse(ip.address).toByteArray()).toString('hex');
}

/**
 * An IPv6 text whose dotted IPv4 tail (::ffff:192.0.2.1) is rewritten as two hex groups; undefined when that tail
 * is not four-part decimal. ipaddr.js would take 0x7f.0.0.1 there too, and reads ::192.0.2.1 as ::ffff:192.0.2.1.
 */
function withHexTail(text: string): string | undefined {
  if (!text.includes('.')) return text;
  const colon = text.lastIndexOf(':');
  const tail = text.slice(colon + 1);
  if (!FOUR_PART_DECIMAL.test(tail) || !ipaddr.IPv4.isValid(tail)) return undefined;
  const [a = 0, b = 0, c = 0, d = 0] = ipaddr.IPv4.parse(tail).octets;
  return `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/** The canonical text of `text` when it is an IP address (see IpAddress.address), else `text` in lower case. */
export function canonicalIpText(text: string): string {
  return parseIpAddress(text)?.address ?? text.toLowerCase();
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address stands for (a dual-stack socket shows IPv4 clients as
 * ::ffff:192.0.2.7); any other address as it is.
 */
export function unmapIpv4(ip: IpAddress): IpAddress {
  if (ip.family === 4) return ip;
  const v6 = ipaddr.IPv6.parse(ip.address.split('%')[0] ?? '');
  return v6.isIPv4MappedAddress() ? {address: v6.toIPv4Address().toString(), family: 4} : ip;
}

/** Whether `ip` is an IPv6 link-local address (fe80::/10), which names a host only together with its link (a zone). */
export function isLinkLocal(ip: IpAddress): boolean {
  return ip.family === 6 && parse(ip).range() === 'linkLocal';
}

/** The zone of `ip` without its `%` (eth0 of fe80::1%eth0); undefined when it has none. */
export function zoneOf(ip: IpAddress): string | undefined {
  const at = ip.address.indexOf('%');
  return at === -1 ? undefined : ip.address.slice(at + 1);
}

/**
 * `address:port` as a URL or a log reader expects it: an IPv6 address in brackets ([2001:db8::11]:7411), so the
 * port cannot be read as a last group.
 */
export function endpointText(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Bits in an address of the family: the largest prefix length. */
export function addressBitsOf(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/**
 * What `ip` is in its subnet of `prefixLength`. With 2 or more host bits, the host part all zeros is the network
 * address (in IPv6 the subnet-router anycast address) and all ones the IPv4 broadcast; /31 and /32 (/127 and /128)
 * have neither (RFC 3021, RFC 6164).
 */
export function addressRoleOf(ip: IpAddress, prefixLength: number): 'network' | 'broadcast' | 'host' {
  const hostBits = addressBitsOf(ip.family) - prefixLength;
  if (hostBits < 2) return 'host';
  const bytes = parse(ip).toByteArray();
  const hostPart = (byte: number, index: number): number => byte & ~maskByte(prefixLength, index) & 0xff;
  if (bytes.every((byte, index) => hostPart(byte, index) === 0)) return 'network';
  const allOnes = bytes.every((byte, index) => hostPart(byte, index) === (~maskByte(prefixLength, index) & 0xff));
  return ip.family === 4 && allOnes ? 'broadcast' : 'host';
}

/**
 * A host's address with its prefix length, as the service IP is written (192.0.2.100/24): the prefix is 1..32
 * (1..128), the address neither its subnet's network address nor its broadcast address, and has no zone.
 */
export function parseHostCidr(text: string): ServiceIp | HostCidrProblem {
  const slash = text.lastIndexOf('/');
  if (slash === -1) return {problem: 'no-prefix-length'};
  const addressText = text.slice(0, slash);
  const ip = parseIpAddress(addressText);
  if (ip === undefined || ip.address.includes('%')) return {problem: 'not-an-address', addressText};
  const prefixText = text.slice(slash + 1);
  const prefixLength = PREFIX_LENGTH.test(prefixText) ? Number(prefixText) : 0;
  if (prefixLength < 1 || prefixLength > addressBitsOf(ip.family)) {
    return {problem: 'prefix-length-out-of-range', family: ip.family};
  }
  const role = addressRoleOf(ip, prefixLength);
  if (role !== 'host') return {problem: `${role}-address`, address: ip.address, prefixLength};
  return {address: ip.address, prefixLength, family: ip.family, cidr: `${ip.address}/${prefixLength}`};
}

/**
 * The subnet whose first address is `network`; undefined when that is no address, the prefix length is not an
 * integer 0..32 (0..128), or `network` has host bits set (it is not the subnet's first address).
 */
export function parseSubnet(network: string, prefixLength: number): Subnet | undefined {
  const ip = parseIpAddress(network);
  if (ip === undefined || ip.address.includes('%')) return undefined;
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > addressBitsOf(ip.family)) return undefined;
  const first = parse(ip).toByteArray().map((byte, index) => byte & maskByte(prefixLength, index));
  return ipaddr.fromByteArray(first).toString() === parse(ip).toString() ? {network: ip, prefixLength} : undefined;
}

/** Whether `ip` lies in `subnet`; never for an address of the other family. */
export function isInSubnet(ip: IpAddress, subnet: Subnet): boolean {
  if (ip.family !== subnet.network.family) return false;
  return parse(ip).match(parse(subnet.network), subnet.prefixLength);
}

/** Whether `ip` is a usable host address of `subnet`: inside it, and neither its network nor its broadcast address. */
export function isHostOf(ip: IpAddress, subnet: Subnet): boolean {
  return isInSubnet(ip, subnet) && addressRoleOf(ip, subnet.prefixLength) === 'host';
}

/** Whether all of `inner` lies in `outer` (a subnet lies in itself). */
export function isSubnetOf(inner: Subnet, outer: Subnet): boolean {
  return inner.prefixLength >= outer.prefixLength && isInSubnet(inner.network, outer);
}

/** The library's form of an address, without its zone (which no subnet maths looks at). */
function parse(ip: IpAddress): ipaddr.IPv4 | ipaddr.IPv6 {
  return ip.family === 4 ? ipaddr.IPv4.parse(ip.address) : ipaddr.IPv6.parse(ip.address.split('%')[0] ?? '');
}

/** Byte `index` of the netmask of `prefixLength` (0xff, a partial byte, or 0). */
function maskByte(prefixLength: number, index: number): number {
  const bits = Math.min(8, Math.max(0, prefixLength - 8 * index));
  return (0xff << (8 - bits)) & 0xff;
}
