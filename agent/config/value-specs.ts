// What a config key may hold (Spec): integers in a range, one of some words, text, paths, names, addresses.

import {isIP} from 'node:net';
import {isAbsolute} from 'node:path/posix';
import type {ServiceIp} from '../ports.js';
import {describeChar, quote} from './messages.js';

// sockaddr_un.sun_path is 108 bytes on Linux, one of them the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;
// IFNAMSIZ is 16 bytes, one of them the terminating NUL.
const MAX_INTERFACE_NAME_BYTES = 15;

/** Why a value was refused, beyond "expected …, got …". */
export class Rejection {
  readonly note: string | undefined;

  constructor(note?: string) {
    this.note = note;
  }
}

/** What a key holds: `what` completes "expected …"; `parse` gets a scalar's value, or the node of anything else. */
export interface Spec<T> {
  readonly what: string;
  parse(value: unknown): T | Rejection;
}

function text(value: unknown): string | Rejection {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') {
    return new Rejection('not text; put it in quotes if you mean text');
  }
  return new Rejection();
}

export function textSpec(what: string, check: (value: string) => string | Rejection): Spec<string> {
  return {what, parse: (value) => {
    const string = text(value);
    return string instanceof Rejection ? string : check(string);
  }};
}

export function integer(min: number, max: number): Spec<number> {
  return {what: `an integer ${min}..${max}`, parse: (value) => {
    if (typeof value === 'number' && Number.isInteger(value)) {
      return value >= min && value <= max ? value : new Rejection();
    }
    if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) {
      return new Rejection('text; write the number without quotes');
    }
    return new Rejection();
  }};
}

export function oneOf<T extends string>(values: readonly T[]): Spec<T> {
  const quoted = values.map((value) => `'${value}'`);
  return {
    what: `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`,
    parse: (value) => values.find((allowed) => allowed === value) ?? new Rejection(),
  };
}

export const PORT = integer(1, 65_535);

export const TEXT = textSpec('text', (value) => value);

export const HTTP_URL = textSpec('an absolute http:// or https:// URL', (value) => {
  const url = URL.parse(value);
  if (url === null) return new Rejection('not a URL');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return new Rejection(`the scheme ${quote(url.protocol.slice(0, -1))} is neither http nor https`);
  }
  return url.href;
});

export const PAIR_ID = textSpec('a pair id of 1..32 characters from A-Z a-z 0-9 . _ -',
  (value) => /^[A-Za-z0-9._-]{1,32}$/.test(value) ? value : new Rejection());

export const ABSOLUTE_PATH = textSpec('an absolute path', (value) => {
  if (value.includes('\0')) return new Rejection('it contains a NUL character');
  return isAbsolute(value) ? value : new Rejection();
});

export const SOCKET_PATH = textSpec(
  `an absolute path of at most ${MAX_SOCKET_PATH_BYTES} bytes (a unix socket address)`,
  (value) => {
    const path = ABSOLUTE_PATH.parse(value);
    if (path instanceof Rejection) return path;
    const bytes = Buffer.byteLength(path);
    return bytes <= MAX_SOCKET_PATH_BYTES ? path : new Rejection(`${bytes} bytes`);
  });

// The kernel refuses '/', ':', whitespace and NUL; baton also refuses the rest of the control characters and the
// shell's metacharacters: such a name is far likelier an injection attempt or a typo than a real interface.
const FORBIDDEN_IN_INTERFACE = /[/:\s\p{Cc};&|$`'"\\<>(){}[\]*?!#~]/u;

export const INTERFACE_NAME = textSpec(`a Linux interface name (1..${MAX_INTERFACE_NAME_BYTES} bytes, ` +
  'no \'/\', \':\', whitespace, control or shell characters)', (value) => {
  const bytes = Buffer.byteLength(value);
  if (bytes === 0 || bytes > MAX_INTERFACE_NAME_BYTES) return new Rejection(`${bytes} bytes`);
  if (value === '.' || value === '..') return new Rejection(`'${value}' is reserved`);
  const forbidden = FORBIDDEN_IN_INTERFACE.exec(value)?.[0];
  return forbidden === undefined ? value : new Rejection(`${describeChar(forbidden)} is not allowed`);
});

export interface IpAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export const IP_ADDRESS: Spec<IpAddress> = {
  what: 'an IPv4 or IPv6 address',
  parse: (value) => {
    const string = text(value);
    return string instanceof Rejection ? string : parseIp(string) ?? new Rejection();
  },
};

export const SERVICE_CIDR: Spec<ServiceIp> = {
  what: 'an address with its prefix length, like 192.0.2.100/24',
  parse: parseServiceIp,
};

function parseServiceIp(value: unknown): ServiceIp | Rejection {
  const string = text(value);
  if (string instanceof Rejection) return string;
  const slash = string.lastIndexOf('/');
  if (slash === -1) return new Rejection('no prefix length');
  const ip = parseIp(string.slice(0, slash));
  if (ip === undefined || ip.address.includes('%')) {
    return new Rejection(`${quote(string.slice(0, slash))} is not an IP address`);
  }
  const bits = ip.family === 4 ? 32 : 128;
  const prefixText = string.slice(slash + 1);
  const prefixLength = /^[1-9]\d{0,2}$/.test(prefixText) ? Number(prefixText) : 0;
  if (prefixLength < 1 || prefixLength > bits) {
    return new Rejection(`the prefix length of an IPv${ip.family} address is 1..${bits}`);
  }
  // With 2 or more host bits, host part all zeros is the network address (in IPv6 the subnet-router anycast
  // address) and all ones the IPv4 broadcast; /31 and /32 (/127 and /128) have neither (RFC 3021, RFC 6164).
  const hostBits = BigInt(bits - prefixLength);
  const hostMask = (1n << hostBits) - 1n;
  const host = addressBits(ip) & hostMask;
  if (hostBits >= 2n && host === 0n) {
    return new Rejection(`${ip.address} is the network address of its /${prefixLength}; use a host address`);
  }
  if (ip.family === 4 && hostBits >= 2n && host === hostMask) {
    return new Rejection(`${ip.address} is the broadcast address of its /${prefixLength}; use a host address`);
  }
  return {address: ip.address, prefixLength, family: ip.family, cidr: `${ip.address}/${prefixLength}`};
}

function parseIp(value: string): IpAddress | undefined {
  const family = isIP(value);
  if (family === 4) return {address: value, family};
  if (family !== 6) return undefined;
  // Canonical form (lowercase, longest zero run compressed), so that one address written two ways compares equal
  // and matches the sender addresses the kernel reports. A zone (fe80::1%eth0) is kept as written.
  const zoneAt = value.indexOf('%');
  const bare = zoneAt === -1 ? value : value.slice(0, zoneAt);
  const zone = zoneAt === -1 ? '' : value.slice(zoneAt);
  return {address: new URL(`http://[${bare}]/`).hostname.slice(1, -1) + zone, family};
}

/** The address as an integer; IPv6 in the canonical form of parseIp, which has no dotted IPv4 tail. */
function addressBits(ip: IpAddress): bigint {
  if (ip.family === 4) return ip.address.split('.').reduce((bits, octet) => (bits << 8n) | BigInt(octet), 0n);
  const [head = '', tail] = ip.address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined
    ? headGroups
    : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(`0x${group}`), 0n);
}
