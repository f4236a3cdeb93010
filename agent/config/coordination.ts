// The coordination section: `pair` (two agents and their beacons, the default) or `etcd` (the holder of a service is
// the host holding its key under an etcd lease), its keys, their defaults and the rules between them.

import {ABSOLUTE_PATH, ETCD_ENDPOINT, ETCD_PREFIX, HOST_NAME, integer, oneOf} from './value-specs.js';
import type {Field, Reader} from './yaml-reader.js';
import type {SecretReader} from './secret-files.js';
import {readEtcdBeacons, type EtcdBeacons} from './etcd-beacons.js';

export type CoordinationMode = 'pair' | 'etcd';
export const COORDINATION_MODES: readonly CoordinationMode[] = ['pair', 'etcd'];
/**
 * What a holder does when it cannot renew its lease (etcd unreachable from it). `drop`: give the address up before
 * the lease can expire, the only choice that can never leave two holders. `keep-while-peers-agree`: keep it while the
 * other hosts' beacons say none of them holds it (a service that stays up through an etcd outage, at the risk that
 * a host which hears no beacons either takes it too).
 */
export type OnEtcdLoss = 'drop' | 'keep-while-peers-agree';
export const ON_ETCD_LOSS: readonly OnEtcdLoss[] = ['drop', 'keep-while-peers-agree'];

export interface EtcdTls {
  /** The CA that signed the members' certificates; absent: the system's CAs. */
  readonly caFile: string | undefined;
  /** The client certificate and its key, both or neither (members run with --client-cert-auth). */
  readonly client: {readonly certFile: string; readonly keyFile: string} | undefined;
}

export type Coordination =
  | {readonly mode: 'pair'}
  | {
    readonly mode: 'etcd';
    /** Client URLs of the etcd members (origin only, as URL.origin writes it). */
    readonly endpoints: readonly string[];
    /** Absent: no TLS options (http:// endpoints, or https:// checked against the system's CAs). */
    readonly tls: EtcdTls | undefined;
    /** Where baton's keys live, `/baton/`: begins and ends with `/`. */
    readonly prefix: string;
    readonly leaseTtlS: number;
    /** The holder drops the address this long before its lease could expire, counted from the send time of its last
     *  successful renewal (lease-holder.ts). */
    readonly renewMarginMs: number;
    readonly onEtcdLoss: OnEtcdLoss;
    /** This host's name: the service key's value while it holds the service. */
    readonly host: string;
    /** Every host that may hold the service, in preference order (this one among them): a host of rank k waits k
     *  campaign staggers after the key went before it campaigns (service-claim.ts). */
    readonly hosts: readonly string[];
    /** The hosts' beacons to one another: with keep-while-peers-agree only (etcd-beacons.ts). */
    readonly beacons: EtcdBeacons | undefined;
  };

export type EtcdCoordination = Extract<Coordination, {mode: 'etcd'}>;

export const DEFAULT_COORDINATION_MODE: CoordinationMode = 'pair';
export const DEFAULT_ETCD_PREFIX = '/baton/';
// 10 s: Patroni's and vip-manager's default TTL is 30 s; baton renews every TTL/3, so 10 s renews every 3.3 s and a
// dead holder's key is free 10 s after its last renewal, the failover bound of etcd mode.
export const DEFAULT_LEASE_TTL_S = 10;
// etcd refuses a TTL below its minimum (1.5 × its election timeout, 1.5 s with the defaults) by raising it: 2 s is
// the least that means what it says. An hour is long past any sensible failover time.
export const MIN_LEASE_TTL_S = 2;
export const MAX_LEASE_TTL_S = 3600;
// renew_margin_ms default = lease_ttl_s × 1000 / 5 (2000 ms for 10 s): the drop must be done before the lease can
// expire, so the margin covers removing the address (an `ip addr del`, tens of ms), an event loop late by a busy
// host (hundreds of ms at worst in the bench) and the rate difference of two monotonic clocks (far below 0.1 % of
// the TTL), with room to spare; a fifth of the TTL keeps it proportionate for long TTLs.
export const DEFAULT_RENEW_MARGIN_DIVISOR = 5;
// At least 100 ms: less does not cover removing the address.
export const MIN_RENEW_MARGIN_MS = 100;
// At most half the TTL: renewals go out every TTL/3, so with a margin above TTL/2 one slow renewal would already reach
// the deadline and drop a healthy holder.
export const MAX_RENEW_MARGIN_FRACTION = 0.5;
export const DEFAULT_ON_ETCD_LOSS: OnEtcdLoss = 'drop';

const COORDINATION_KEYS = ['mode', 'endpoints', 'tls', 'prefix', 'lease_ttl_s', 'renew_margin_ms', 'on_etcd_loss', 'host', 'hosts', 'beacons'] as const;
const ETCD_ONLY_KEYS = COORDINATION_KEYS.filter((key) => key !== 'mode');
const TLS_KEYS = ['ca_file', 'cert_file', 'key_file'] as const;

/** The key of a service in etcd, under the config's prefix: its value is the holder's name, its revision the epoch. */
export function serviceKey(prefix: string, service: string): string {
  return `${prefix}services/${service}/holder`;
}

/** Where the hosts' presence keys live: `<prefix>hosts/<name>` (coordination/presence.ts). */
export function presencePrefix(prefix: string): string {
  return `${prefix}hosts/`;
}

/** A host's presence key in etcd: there while its agent runs and reaches etcd, under a lease of its own. */
export function presenceKey(prefix: string, host: string): string {
  return `${presencePrefix(prefix)}${host}`;
}

/** The default renew_margin_ms of a TTL (see DEFAULT_RENEW_MARGIN_DIVISOR). */
export function defaultRenewMarginMs(leaseTtlS: number): number {
  return Math.round((leaseTtlS * 1000) / DEFAULT_RENEW_MARGIN_DIVISOR);
}

/** Reads the coordination section; every problem goes to the reader. A value that could not be read is undefined. */
export function readCoordination(reader: Reader, field: Field, readSecret: SecretReader) {
  const section = reader.section(field, COORDINATION_KEYS, 'a mapping like {mode: etcd, endpoints: [http://192.0.2.31:2379]}', false);
  const mode = reader.optional(section.field('mode'), oneOf(COORDINATION_MODES), DEFAULT_COORDINATION_MODE);
  if (mode !== 'etcd') {
    // Silently ignoring them would let an operator believe etcd decides who holds the address.
    for (const key of ETCD_ONLY_KEYS) {
      const given = section.field(key);
      if (mode === 'pair' && given.value !== undefined && given.value !== null) {
        reader.expected(given, 'nothing', 'read only with coordination.mode: etcd');
      }
    }
    return mode === undefined ? undefined : {mode};
  }
  const endpoints = readEndpoints(reader, section.field('endpoints'));
  const tls = readTls(reader, section.field('tls'), endpoints);
  const prefix = reader.optional(section.field('prefix'), ETCD_PREFIX, DEFAULT_ETCD_PREFIX);
  const leaseTtlS = reader.optional(section.field('lease_ttl_s'), integer(MIN_LEASE_TTL_S, MAX_LEASE_TTL_S), DEFAULT_LEASE_TTL_S);
  const marginField = section.field('renew_margin_ms');
  const maxMarginMs = Math.floor((MAX_LEASE_TTL_S * 1000) * MAX_RENEW_MARGIN_FRACTION);
  const renewMarginMs = reader.optional(marginField, integer(MIN_RENEW_MARGIN_MS, maxMarginMs),
    leaseTtlS === undefined ? undefined : defaultRenewMarginMs(leaseTtlS));
  if (leaseTtlS !== undefined && renewMarginMs !== undefined && renewMarginMs > leaseTtlS * 1000 * MAX_RENEW_MARGIN_FRACTION) {
    const most = Math.floor(leaseTtlS * 1000 * MAX_RENEW_MARGIN_FRACTION);
    reader.expected(marginField, `an integer ${MIN_RENEW_MARGIN_MS}..${most}`,
      `half of coordination.lease_ttl_s ${leaseTtlS}: renewals go out every third of the TTL, and a larger margin would drop a healthy holder after one slow renewal`);
  }
  const onEtcdLoss = reader.optional(section.field('on_etcd_loss'), oneOf(ON_ETCD_LOSS), DEFAULT_ON_ETCD_LOSS);
  const hosts = readHosts(reader, section.field('host'), section.field('hosts'));
  return {
    mode,
    endpoints,
    tls,
    prefix,
    leaseTtlS,
    renewMarginMs,
    onEtcdLoss,
    ...hosts,
    beacons: readEtcdBeacons(reader, section.field('beacons'), onEtcdLoss === 'keep-while-peers-agree', hosts.hosts,
      {leaseTtlS, renewMarginMs}, readSecret),
  };
}

const HOSTS_WHAT = 'a list of the host names that may hold the service, in preference order, like [web-a, web-b, web-c]';

/** coordination.host and coordination.hosts: this host's name, and every host's in preference order (this one
 *  among them, each once, at least two: one host alone has nobody to fail over to). */
function readHosts(reader: Reader, hostField: Field, hostsField: Field): {host: string | undefined; hosts: string[] | undefined} {
  const host = reader.required(hostField, HOST_NAME);
  if (hostsField.value === undefined || hostsField.value === null) {
    reader.expected(hostsField, HOSTS_WHAT, 'coordination.mode is etcd');
    return {host, hosts: undefined};
  }
  const items = reader.list(hostsField, HOST_NAME, HOSTS_WHAT);
  if (items === undefined) return {host, hosts: undefined};
  const good: string[] = [];
  for (const {field: item, value} of items) {
    if (value === undefined) continue;
    if (good.includes(value)) {
      reader.expected(item, 'each host once', `${value} is already in the list`);
      continue;
    }
    good.push(value);
  }
  if (good.length !== items.length) return {host, hosts: undefined};
  if (good.length < 2) {
    reader.expected(hostsField, HOSTS_WHAT, `${good.length} host${good.length === 1 ? '' : 's'}: a service needs a second host to fail over to`);
    return {host, hosts: undefined};
  }
  if (host !== undefined && !good.includes(host)) {
    reader.expected(hostsField, `a list with coordination.host ${host} in it`, 'this host must be one of the hosts that may hold the service');
    return {host, hosts: undefined};
  }
  return {host, hosts: good};
}

const SERVICE_HOSTS_WHAT = 'a list of the hosts that may hold this service, in preference order, from coordination.hosts, like [web-b, web-a]';

/**
 * A service's own `hosts` in etcd mode: the hosts that may hold it, in its order of preference (absent:
 * coordination.hosts). Each is one of coordination.hosts, once; this host is among them (a host that may not hold a
 * service leaves it out of its file), and so is a second one to fail over to.
 */
export function readServiceHosts(reader: Reader, field: Field, host: string | undefined, allHosts: readonly string[] | undefined):
  readonly string[] | undefined {
  if (field.value === undefined || field.value === null) return allHosts;
  const items = reader.list(field, HOST_NAME, SERVICE_HOSTS_WHAT);
  if (items === undefined) return undefined;
  const good: string[] = [];
  for (const {field: item, value} of items) {
    if (value === undefined) continue;
    if (good.includes(value)) reader.expected(item, 'each host once', `${value} is already in the list`);
    else if (allHosts !== undefined && !allHosts.includes(value)) {
      reader.expected(item, `one of coordination.hosts (${allHosts.join(', ')})`, `${value} is not among them`);
    } else good.push(value);
  }
  if (good.length !== items.length) return undefined;
  if (good.length < 2) {
    reader.expected(field, SERVICE_HOSTS_WHAT, `${good.length} host${good.length === 1 ? '' : 's'}: a service needs a second host to fail over to`);
    return undefined;
  }
  if (host !== undefined && !good.includes(host)) {
    reader.expected(field, `a list with coordination.host ${host} in it`, 'a host whose file lists a service must be one that may hold it; ' +
      'leave the service out of this host\'s file instead');
    return undefined;
  }
  return good;
}

const ENDPOINTS_WHAT = 'a list of etcd client URLs like [http://192.0.2.31:2379, http://192.0.2.32:2379, http://192.0.2.33:2379]';

function readEndpoints(reader: Reader, field: Field): string[] | undefined {
  if (field.value === undefined || field.value === null) {
    reader.expected(field, ENDPOINTS_WHAT, 'coordination.mode is etcd');
    return undefined;
  }
  const items = reader.list(field, ETCD_ENDPOINT, ENDPOINTS_WHAT);
  if (items === undefined) return undefined;
  if (items.length === 0) {
    reader.expected(field, ENDPOINTS_WHAT, 'an empty list');
    return undefined;
  }
  const good: string[] = [];
  for (const {field: item, value} of items) {
    if (value === undefined) continue;
    if (good.includes(value)) {
      reader.expected(item, 'each member once', `${value} is already in the list`);
      continue;
    }
    good.push(value);
  }
  const schemes = new Set(good.map((url) => url.slice(0, url.indexOf(':'))));
  if (schemes.size > 1) {
    reader.expected(field, 'URLs of one scheme, all http:// or all https://', 'a cluster serves its clients one way');
    return undefined;
  }
  return good.length === items.length ? good : undefined;
}

function readTls(reader: Reader, field: Field, endpoints: readonly string[] | undefined): EtcdTls | undefined {
  if (field.value === undefined || field.value === null) return undefined;
  const tls = reader.section(field, TLS_KEYS, 'a mapping like {ca_file: /etc/baton/etcd-ca.pem, cert_file: …, key_file: …}');
  const caFile = reader.optional(tls.field('ca_file'), ABSOLUTE_PATH, undefined);
  const certField = tls.field('cert_file');
  const keyField = tls.field('key_file');
  const certFile = reader.optional(certField, ABSOLUTE_PATH, undefined);
  const keyFile = reader.optional(keyField, ABSOLUTE_PATH, undefined);
  const certGiven = certField.value !== undefined && certField.value !== null;
  const keyGiven = keyField.value !== undefined && keyField.value !== null;
  if (certGiven && !keyGiven) reader.expected(keyField, 'the client key\'s path', 'coordination.tls.cert_file is set: a certificate is used with its key');
  if (keyGiven && !certGiven) reader.expected(certField, 'the client certificate\'s path', 'coordination.tls.key_file is set: a key is used with its certificate');
  if (endpoints !== undefined && endpoints.some((url) => url.startsWith('http:'))) {
    reader.expected(field, 'nothing', 'the endpoints are http://, which carries no TLS; write them https://');
  }
  return {caFile, client: certFile !== undefined && keyFile !== undefined ? {certFile, keyFile} : undefined};
}
