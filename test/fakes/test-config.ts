// Configs for unit tests, built directly (no file): a primary and a backup that point at each other.

import {COMBINED} from '../../agent/access-log.js';
import {type Config, type EtcdConfig, type EtcdService} from '../../agent/config/schema.js';
import {DEFAULT_STATUSES} from '../../agent/request-evidence.js';
import {keyIdOf, type Key, type Keyring} from '../../agent/config/secret-files.js';
import type {Role} from '../../agent/state-machine.js';

export const PRIMARY_ADDRESS = '192.0.2.11';
export const BACKUP_ADDRESS = '192.0.2.12';
/** The hosts' own IPv6 addresses on the service LAN, for a dual-stack service's drain. */
export const PRIMARY_ADDRESS6 = '2001:db8::11';
export const BACKUP_ADDRESS6 = '2001:db8::12';
export const SERVICE_IP = {address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'} as const;
/** The IPv6 address of a dual-stack service, beside SERVICE_IP. */
export const SERVICE_IP6 = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;

export function testKey(text = 'test-secret-0123456789abcdef-0123456789'): Key {
  const secret = new TextEncoder().encode(text);
  return {id: keyIdOf(secret), secret, file: '/etc/baton/secret'};
}

export function testKeyring(signing = testKey(), ...others: Key[]): Keyring {
  return {signing, accepted: [signing, ...others]};
}

export function testConfig(node: Role, overrides: Partial<Config> = {}): Config {
  const self = node === 'primary' ? PRIMARY_ADDRESS : BACKUP_ADDRESS;
  const peer = node === 'primary' ? BACKUP_ADDRESS : PRIMARY_ADDRESS;
  return {
    file: `/etc/baton/${node}.yaml`,
    pair: 'web',
    node,
    listen: {address: self, port: 7411},
    peer: {address: peer, port: 7411},
    secretFile: '/etc/baton/secret',
    acceptSecretFiles: [],
    keyring: testKeyring(),
    service: {ip: SERVICE_IP, ips: [SERVICE_IP], interface: 'eth0', mode: 'address'},
    heartbeat: {intervalMs: 200, deadAfterMs: 1000, replayProtection: 'clock', maxClockSkewMs: 5000},
    confirm: {accessLog: undefined, minRequests: 3, timeoutS: 30, statuses: DEFAULT_STATUSES, logFormat: COMBINED},
    drain: {enabled: true, graceful: undefined, gracefulAfterS: 5, timeoutS: 60},
    onStop: 'keep',
    coordination: {mode: 'pair'},
    stateDir: `/var/lib/baton-${node}`,
    controlSocket: `/run/baton-${node}/control.sock`,
    health: {intervalMs: 1000, fall: 3, rise: 2, checks: []},
    hooks: {onStateChange: undefined, timeoutMs: 5000},
    // Enabled, unlike the schema's default: many tests hold a switch half-way with --pause-after, as a lab does.
    rehearsal: {enabled: true},
    metrics: {enabled: false, listen: {address: '127.0.0.1', port: 7412}, allowFrom: []},
    scriptUser: undefined,
    ...overrides,
  };
}

/** The etcd members of the unit tests' configs. */
export const ETCD_ENDPOINTS = ['http://192.0.2.31:2379', 'http://192.0.2.32:2379', 'http://192.0.2.33:2379'] as const;

/** A host of three in etcd mode: `host` is one of a, b and c, in that preference. */
/** A service of an etcd host: `web` at SERVICE_IP on eth0, held by a, b and c, no access log. */
export function testEtcdService(overrides: Partial<EtcdService> = {}): EtcdService {
  return {
    name: 'web',
    service: {ip: SERVICE_IP, ips: [SERVICE_IP], interface: 'eth0', mode: 'address'},
    confirm: {accessLog: undefined, minRequests: 3, timeoutS: 30, statuses: DEFAULT_STATUSES, logFormat: COMBINED},
    hosts: ['a', 'b', 'c'],
    place: undefined,
    ...overrides,
  };
}

export function testEtcdConfig(host = 'a', overrides: Partial<EtcdConfig> = {}): EtcdConfig {
  return {
    file: `/etc/baton/${host}.yaml`,
    services: [testEtcdService()],
    drain: {enabled: true, graceful: undefined, gracefulAfterS: 5, timeoutS: 60},
    onStop: 'release',
    stateDir: `/var/lib/baton-${host}`,
    controlSocket: `/run/baton-${host}/control.sock`,
    health: {intervalMs: 1000, fall: 3, rise: 2, checks: []},
    hooks: {onStateChange: undefined, timeoutMs: 5000},
    metrics: {enabled: false, listen: {address: '127.0.0.1', port: 7412}, allowFrom: []},
    scriptUser: undefined,
    coordination: {mode: 'etcd', endpoints: [...ETCD_ENDPOINTS], tls: undefined, prefix: '/baton/', leaseTtlS: 10, renewMarginMs: 2000,
      onEtcdLoss: 'drop', host, hosts: ['a', 'b', 'c'], beacons: undefined},
    ...overrides,
  };
}
