// coordination.beacons: the etcd hosts' beacons to one another, read only with `on_etcd_loss: keep-while-peers-agree`
// (coordination/host-beacons.ts says what they carry and the timing rule). Each host's address, one UDP port for all,
// and the shared secret that signs them.

import {ABSOLUTE_PATH, BEACON_ADDRESS, integer, PORT} from './value-specs.js';
import type {Field, Reader} from './yaml-reader.js';
import {readKey, type Keyring, type SecretReader} from './secret-files.js';

export interface EtcdBeacons {
  /** Every host's beacon port (the same on all). */
  readonly port: number;
  readonly secretFile: string;
  readonly keyring: Keyring;
  /** Each host in coordination.hosts, by name, and the address its beacons leave from and go to. */
  readonly addresses: Readonly<Record<string, string>>;
  readonly intervalMs: number;
  /** D: a host says it hears another only while the other's newest beacon is younger than this. */
  readonly heardWithinMs: number;
}

export const DEFAULT_BEACON_PORT = 7411;
export const DEFAULT_BEACON_SECRET_FILE = '/etc/baton/secret';
// A pair's heartbeat interval.
export const DEFAULT_BEACON_INTERVAL_MS = 200;
// heard_within_ms default = 5 × interval_ms (1000 ms): four beacons in a row may be lost before a host stops saying
// it hears another, as a pair's dead_after_ms.
export const DEFAULT_HEARD_WITHIN_INTERVALS = 5;
// At least two intervals: one lost beacon must not end the agreement.
const MIN_HEARD_WITHIN_INTERVALS = 2;

const BEACON_KEYS = ['port', 'secret_file', 'interval_ms', 'heard_within_ms', 'addresses'] as const;
const BEACONS_WHAT = 'a mapping like {port: 7411, secret_file: /etc/baton/secret, addresses: {web-a: 192.0.2.11, web-b: 192.0.2.12}}';

/**
 * Reads coordination.beacons. With `drop` it must be absent (it would do nothing); with keep-while-peers-agree it is
 * required and names every host. `limits`: the lease's TTL and margin, for heard_within_ms < TTL − margin (the rule's
 * condition, host-beacons.ts).
 */
export function readEtcdBeacons(reader: Reader, field: Field, keep: boolean, hosts: readonly string[] | undefined,
  limits: {readonly leaseTtlS: number | undefined; readonly renewMarginMs: number | undefined}, readSecret: SecretReader): EtcdBeacons | undefined {
  const given = field.value !== undefined && field.value !== null;
  if (!keep) {
    if (given) reader.expected(field, 'nothing', 'read only with coordination.on_etcd_loss: keep-while-peers-agree; with drop a holder that cannot reach etcd gives the address up and needs no beacons');
    return undefined;
  }
  if (!given) {
    reader.expected(field, BEACONS_WHAT, 'coordination.on_etcd_loss is keep-while-peers-agree: a holder keeps the service only while the other hosts\' beacons agree');
    return undefined;
  }
  const section = reader.section(field, BEACON_KEYS, BEACONS_WHAT);
  const port = reader.optional(section.field('port'), PORT, DEFAULT_BEACON_PORT);
  const secretField = section.field('secret_file');
  const secretFile = reader.optional(secretField, ABSOLUTE_PATH, DEFAULT_BEACON_SECRET_FILE);
  const signing = secretFile === undefined ? undefined : readKey(reader, secretField, secretFile, readSecret);
  const intervalMs = reader.optional(section.field('interval_ms'), integer(10, 10_000), DEFAULT_BEACON_INTERVAL_MS);
  const heardField = section.field('heard_within_ms');
  const heardWithinMs = reader.optional(heardField, integer(20, 60_000),
    intervalMs === undefined ? undefined : intervalMs * DEFAULT_HEARD_WITHIN_INTERVALS);
  if (intervalMs !== undefined && heardWithinMs !== undefined && heardWithinMs < intervalMs * MIN_HEARD_WITHIN_INTERVALS) {
    reader.expected(heardField, `at least ${intervalMs * MIN_HEARD_WITHIN_INTERVALS}`, `two of interval_ms ${intervalMs}: one lost beacon must not end the agreement`);
  }
  const {leaseTtlS, renewMarginMs} = limits;
  if (heardWithinMs !== undefined && leaseTtlS !== undefined && renewMarginMs !== undefined && heardWithinMs >= leaseTtlS * 1000 - renewMarginMs) {
    reader.expected(heardField, `less than ${leaseTtlS * 1000 - renewMarginMs}`, `coordination.lease_ttl_s ${leaseTtlS} less renew_margin_ms ${renewMarginMs}: ` +
      'a beacon a host echoes at the lease\'s deadline must have been sent while the holder held the service');
  }
  const addresses = readAddresses(reader, section.field('addresses'), hosts);
  if (port === undefined || secretFile === undefined || signing === undefined || intervalMs === undefined || heardWithinMs === undefined || addresses === undefined) return undefined;
  return {port, secretFile, keyring: {signing, accepted: [signing]}, addresses, intervalMs, heardWithinMs};
}

function readAddresses(reader: Reader, field: Field, hosts: readonly string[] | undefined): Record<string, string> | undefined {
  const what = `a mapping of each host in coordination.hosts to its beacon address, like {${(hosts ?? ['web-a', 'web-b']).map((h, i) => `${h}: 192.0.2.${11 + i}`).join(', ')}}`;
  if (field.value === undefined || field.value === null) {
    reader.expected(field, what);
    return undefined;
  }
  if (hosts === undefined) return undefined;
  const section = reader.section(field, hosts, what);
  const addresses: Record<string, string> = {};
  const families = new Set<number>();
  let ok = true;
  for (const host of hosts) {
    const hostField = section.field(host);
    const address = reader.required(hostField, BEACON_ADDRESS);
    if (address === undefined) {
      ok = false;
      continue;
    }
    const taken = Object.entries(addresses).find(([, a]) => a === address.address);
    if (taken !== undefined) {
      reader.expected(hostField, 'an address of its own', `${taken[0]} has ${address.address} already`);
      ok = false;
      continue;
    }
    families.add(address.family);
    addresses[host] = address.address;
  }
  if (ok && families.size > 1) {
    reader.expected(field, 'addresses of one family, all IPv4 or all IPv6', 'each host sends to every other from one socket');
    ok = false;
  }
  return ok ? addresses : undefined;
}
