// What a config key may hold (Spec): integers in a range, one of some words, text, paths, names, addresses.

import {isAbsolute} from 'node:path/posix';
import {assertNever} from '../errors.js';
import {
  addressBitsOf, type HostCidrProblem, type IpAddress, isLinkLocal, parseHostCidr, parseIpAddress, parseSubnet, type Subnet,
  unmapIpv4, zoneOf,
} from '../net/ip-address.js';
import {PATTERN_GROUPS} from '../access-log.js';
import type {StatusRange} from '../request-evidence.js';
import type {ServiceIp} from '../state-machine.js';
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

export const BOOLEAN: Spec<boolean> = {what: 'true or false', parse: (value) => {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(yes|no|on|off|true|false)$/i.test(value)) return new Rejection('write true or false, without quotes');
  return new Rejection();
}};

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

// An etcd host's service, named in a `services` list: the same characters as a pair id, since it names a key the same way.
export const SERVICE_NAME = textSpec('a service name of 1..32 characters from A-Z a-z 0-9 . _ -',
  (value) => /^[A-Za-z0-9._-]{1,32}$/.test(value) ? value : new Rejection());

// A host's name in etcd mode, the value of a service's key while it holds it: a DNS label's characters and length,
// so that a hostname fits as it is.
export const HOST_NAME = textSpec('a host name of 1..63 characters from A-Z a-z 0-9 . _ -',
  (value) => /^[A-Za-z0-9._-]{1,63}$/.test(value) ? value : new Rejection());

export const ABSOLUTE_PATH = textSpec('an absolute path', (value) => {
  if (value.includes('\0')) return new Rejection('it contains a NUL character');
  return isAbsolute(value) ? value : new Rejection();
});

// A moment as the config gives it: a UTC date (that day's 00:00 UTC) or a UTC timestamp. Only UTC, so both hosts
// read the same moment whatever their time zones.
const UTC_MOMENT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?Z)?$/;

/** A moment, as ms since the epoch: `2027-01-31` (00:00 UTC that day) or `2027-01-31T12:00:00Z`. */
export const UTC_DATE: Spec<number> = {what: 'a UTC date like 2027-01-31 or 2027-01-31T12:00:00Z', parse: (value) => {
  const string = text(value);
  if (string instanceof Rejection) return string;
  const match = UTC_MOMENT.exec(string);
  if (match === null) return new Rejection();
  const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const back = new Date(ms);
  // Date.UTC rolls 2027-02-30 over into March: a date that does not come back the same does not exist.
  if (back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return new Rejection('no such date or time');
  }
  return ms;
}};

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

export const IP_ADDRESS: Spec<IpAddress> = {
  what: 'an IPv4 or IPv6 address',
  parse: (value) => {
    const string = text(value);
    return string instanceof Rejection ? string : parseIpAddress(string) ?? new Rejection();
  },
};

/**
 * listen.address and peer.address: one unicast address of a host, as the kernel reports the sender of a datagram, so
 * that the peer's beacons are recognised by their source. Not the unspecified address (it is no host's), not a
 * multicast one, not an IPv4-mapped one (the datagrams then travel as IPv4, and say so in their source); a link-local
 * address (fe80::/10) with the name of its interface as the zone (fe80::12%eth0), which the socket needs to know the
 * link and Node takes only as a name.
 */
export const BEACON_ADDRESS: Spec<IpAddress> = {
  what: 'an IPv4 or IPv6 address',
  parse: (value) => {
    const parsed = IP_ADDRESS.parse(value);
    if (parsed instanceof Rejection) return parsed;
    const zone = zoneOf(parsed);
    const bare = parseIpAddress(parsed.address.split('%')[0] ?? '') ?? parsed;
    if (bare.address === '0.0.0.0' || bare.address === '::') {
      return new Rejection('the unspecified address, no host\'s; name the one address beacons leave from and go to');
    }
    if (/^(22[4-9]|23\d)\./.test(bare.address) || bare.address.startsWith('ff')) {
      return new Rejection('a multicast address; beacons go to one host');
    }
    const unmapped = unmapIpv4(bare);
    if (unmapped.family !== bare.family) {
      return new Rejection(`an IPv4-mapped address, which carries IPv4 beacons; write the IPv4 address ${unmapped.address}`);
    }
    if (!isLinkLocal(bare)) {
      return zone === undefined ? parsed : new Rejection(`a zone (%${zone}) belongs only to a link-local address (fe80::/10); write ${bare.address}`);
    }
    if (zone === undefined) {
      return new Rejection(`a link-local address names a host only on one link; add its interface, like ${bare.address}%eth0`);
    }
    if (/^\d+$/.test(zone)) return new Rejection(`the zone %${zone} is an interface index; write the interface's name, like %eth0`);
    const name = INTERFACE_NAME.parse(zone);
    return name instanceof Rejection ? new Rejection(`the zone %${zone} is not an interface name`) : parsed;
  },
};

export const SERVICE_CIDR: Spec<ServiceIp> = {
  what: 'an address with its prefix length, like 192.0.2.100/24',
  parse: (value) => {
    const string = text(value);
    if (string instanceof Rejection) return string;
    const parsed = parseHostCidr(string);
    return 'problem' in parsed ? new Rejection(describeCidrProblem(parsed)) : parsed;
  },
};

function describeCidrProblem(parsed: HostCidrProblem): string {
  switch (parsed.problem) {
    case 'no-prefix-length':
      return 'no prefix length';
    case 'not-an-address':
      return `${quote(parsed.addressText)} is not an IP address`;
    case 'prefix-length-out-of-range':
      return `the prefix length of an IPv${parsed.family} address is 1..${addressBitsOf(parsed.family)}`;
    case 'network-address':
      return `${parsed.address} is the network address of its /${parsed.prefixLength}; use a host address`;
    case 'broadcast-address':
      return `${parsed.address} is the broadcast address of its /${parsed.prefixLength}; use a host address`;
    default:
      return assertNever(parsed);
  }
}

/** An HTTP status class (`2xx`), a range (`200-299`) or one status (`204`), 100..599. */
export const STATUS_RANGE: Spec<StatusRange> = {
  what: 'an HTTP status (204), a class (2xx) or a range (200-299), within 100..599',
  parse: (value) => {
    if (typeof value === 'number') return Number.isInteger(value) && value >= 100 && value <= 599 ? {from: value, to: value} : new Rejection();
    if (typeof value !== 'string') return new Rejection();
    const klass = /^([1-5])xx$/i.exec(value.trim());
    if (klass !== null) return {from: Number(klass[1]) * 100, to: Number(klass[1]) * 100 + 99};
    const range = /^(\d{3})\s*-\s*(\d{3})$/.exec(value.trim());
    if (range === null) return new Rejection();
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (from < 100 || to > 599) return new Rejection();
    return from <= to ? {from, to} : new Rejection(`${from} is above ${to}`);
  },
};

/**
 * confirm.log_pattern: a regular expression whose named groups say where the fields are (access-log.ts,
 * PATTERN_GROUPS); compiled here so that a typo is a config error, not a failed switch.
 */
export const LOG_PATTERN: Spec<RegExp> = {
  what: 'a regular expression with the named groups client, time and status',
  parse: (value) => {
    if (typeof value !== 'string') return new Rejection();
    let pattern: RegExp;
    try {
      pattern = new RegExp(value);
    } catch (error) {
      return new Rejection(`not a regular expression: ${error instanceof Error ? error.message : String(error)}`);
    }
    const groups = new Set([...value.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((match) => match[1]));
    const missing = PATTERN_GROUPS.required.filter((name) => !groups.has(name));
    if (missing.length > 0) return new Rejection(`no group named ${missing.join(', ')}, e.g. (?<client>\\S+)`);
    const known = new Set<string>([...PATTERN_GROUPS.required, ...PATTERN_GROUPS.optional]);
    const unknown = [...groups].filter((name) => name !== undefined && !known.has(name));
    if (unknown.length > 0) return new Rejection(`unknown group ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
    return pattern;
  },
};

/** An address and a port to listen on: `127.0.0.1:7412`, `[::1]:7412`. */
export const LISTEN_ENDPOINT: Spec<{readonly address: string; readonly port: number}> = {
  what: 'an address and a port like 127.0.0.1:7412 or [::1]:7412',
  parse: (value) => {
    const string = text(value);
    if (string instanceof Rejection) return string;
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(string);
    if (match === null) return new Rejection();
    const address = parseIpAddress(match[1] ?? match[2] ?? '');
    if (address === undefined) return new Rejection(`${quote(match[1] ?? match[2] ?? '')} is not an IP address`);
    if (match[2] !== undefined && address.family === 6) return new Rejection('write an IPv6 address in brackets');
    const port = Number(match[3]);
    if (port < 1 || port > 65_535 || /^0\d/.test(match[3] ?? '')) return new Rejection('the port is 1..65535');
    return {address: address.address, port};
  },
};

/** An address (a subnet of one) or a subnet given by its first address: `192.0.2.50`, `198.51.100.0/24`. */
export const ADDRESS_OR_SUBNET: Spec<Subnet> = {
  what: 'an IP address or a subnet like 198.51.100.0/24',
  parse: (value) => {
    const string = text(value);
    if (string instanceof Rejection) return string;
    const [addressText = '', prefixText, ...rest] = string.split('/');
    const address = parseIpAddress(addressText);
    if (address === undefined || address.address.includes('%') || rest.length > 0) return new Rejection();
    if (prefixText === undefined) return {network: address, prefixLength: addressBitsOf(address.family)};
    const prefixLength = /^(0|[1-9]\d{0,2})$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (!(prefixLength >= 0 && prefixLength <= addressBitsOf(address.family))) {
      return new Rejection(`the prefix length of an IPv${address.family} subnet is 0..${addressBitsOf(address.family)}`);
    }
    return parseSubnet(address.address, prefixLength)
      ?? new Rejection(`${address.address} is not the first address of its /${prefixLength}; write the subnet by its first address`);
  },
};

/**
 * coordination.endpoints[i]: an etcd member's client URL, `http://192.0.2.31:2379` or `https://etcd1.example:2379`.
 * Only scheme, host and port: baton adds the gateway's paths (/v3/kv/range…) itself, and credentials in a URL would
 * end up in logs.
 */
export const ETCD_ENDPOINT = textSpec('an etcd client URL like http://192.0.2.31:2379 or https://etcd1.example:2379', (value) => {
  const url = URL.parse(value);
  if (url === null) return new Rejection('not a URL');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return new Rejection(`the scheme ${quote(url.protocol.slice(0, -1))} is neither http nor https`);
  }
  if (url.username !== '' || url.password !== '') return new Rejection('no user or password in the URL; etcd client certificates go in coordination.tls');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return new Rejection('only scheme, host and port: baton adds the paths itself');
  }
  return url.origin;
});

/** coordination.prefix: where baton's keys live in etcd, `/baton/`; one ASCII word path that begins and ends with `/`. */
export const ETCD_PREFIX = textSpec('a key prefix like /baton/ (begins and ends with /, 2..64 of A-Z a-z 0-9 . _ - /)', (value) => {
  if (!/^\/[A-Za-z0-9._/-]*\/$/.test(value) || value.length > 64 || value.length < 2) return new Rejection();
  return value.includes('//') ? new Rejection('an empty path segment (//)') : value;
});
