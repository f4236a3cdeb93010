// What a lab is before anything is built: LANs and hosts with their documentation addresses, namespace, bridge and
// port names, the default plans, and the checks that keep every address inside TEST-NET and 2001:db8::/32. Pure:
// namespaces.ts builds it.
//
//   ${prefix}-primary      ${prefix}-sw (the switch)             ${prefix}-client
//   eth0 192.0.2.11/25 ─── primary-svc ┐
//   eth0 192.0.2.12/25 ─── backup-svc ─┼─ br-svc ─ client-svc ─── eth0 192.0.2.20/25
//   (${prefix}-backup)                 │
//   eth1 (mgmt LAN, link mode only) ── primary-mgmt / backup-mgmt ── br-mgmt
//
// Every LAN is dual-stack: beside its TEST-NET-1 subnet it has a /64 of 2001:db8::/32 (RFC 3849), and each host
// interface an address in both (svc 2001:db8:0:1::11, ::12, ::20; mgmt 2001:db8:0:2::141, ::142), so one lab serves
// an IPv4 or an IPv6 service and carries beacons over either family.
//
// No sysctl is changed: bridges have STP off (ports forward at once), each LAN is its own bridge so ARP and neighbour
// discovery stay on it, and hosts reach each other on-link without routes.

import {customAlphabet} from 'nanoid';
import {BatonError} from '../../agent/errors.js';
import {isHostOf, isInSubnet, parseIpAddress, parseSubnet, type IpFamily, type Subnet} from '../../agent/net/ip-address.js';

export interface LanSpec {
  /** Short name: the bridge is br-<name>, switch ports <host>-<name>. */
  readonly name: string;
  /** Network address, e.g. 192.0.2.0. */
  readonly network: string;
  readonly prefixLength: number;
  /** The LAN's IPv6 subnet, e.g. 2001:db8:0:1:: and 64: every lab LAN is dual-stack. */
  readonly ipv6: {readonly network: string; readonly prefixLength: number};
}

export interface HostInterfaceSpec {
  readonly lan: string;
  /** The interface name inside the host namespace, e.g. eth0. */
  readonly name: string;
  /** IPv4 address inside the LAN (the LAN's prefix length applies). */
  readonly address: string;
  /** IPv6 address inside the LAN's IPv6 subnet. */
  readonly address6: string;
}

export interface HostSpec {
  /** Short name: the namespace is ${prefix}-${name}. */
  readonly name: string;
  readonly interfaces: readonly HostInterfaceSpec[];
}

export interface TopologySpec {
  readonly prefix: string;
  readonly lans: readonly LanSpec[];
  readonly hosts: readonly HostSpec[];
}

export interface TopologyInterface {
  readonly lan: string;
  readonly name: string;
  readonly address: string;
  readonly prefixLength: number;
  /** address/prefixLength. */
  readonly cidr: string;
  readonly address6: string;
  /** address6/the LAN's IPv6 prefix length. */
  readonly cidr6: string;
  /** The veth peer in the switch namespace. */
  readonly switchPort: string;
  readonly bridge: string;
}

export interface TopologyHost {
  readonly name: string;
  readonly namespace: string;
  readonly interfaces: readonly TopologyInterface[];
}

export interface Topology {
  readonly prefix: string;
  readonly switchNamespace: string;
  readonly hosts: readonly TopologyHost[];
  /** The namespace of a host. Throws LAB_FAILED for an unknown host. */
  namespace(host: string): string;
  /** A host's address of `family` (default 4) on a LAN (no prefix). Throws LAB_FAILED when the host has no interface there. */
  address(host: string, lan: string, family?: IpFamily): string;
  /** A host's interface name on a LAN, e.g. eth0. Throws LAB_FAILED when the host has no interface there. */
  interfaceName(host: string, lan: string): string;
}

// All lab addresses come from TEST-NET-1 (RFC 5737) and the IPv6 documentation prefix 2001:db8::/32 (RFC 3849): they
// can never leak to or collide with a real network.
export const SERVICE_LAN = {
  name: 'svc', network: '192.0.2.0', prefixLength: 25, serviceAddress: '192.0.2.100',
  ipv6: {network: '2001:db8:0:1::', prefixLength: 64, serviceAddress: '2001:db8:0:1::100'},
} as const;
/** The separate heartbeat network of `link` mode. */
export const MANAGEMENT_LAN = {name: 'mgmt', network: '192.0.2.128', prefixLength: 25, ipv6: {network: '2001:db8:0:2::', prefixLength: 64}} as const;

export const LAB_ADDRESSES = {
  primary: {svc: '192.0.2.11', mgmt: '192.0.2.141'},
  backup: {svc: '192.0.2.12', mgmt: '192.0.2.142'},
  client: {svc: '192.0.2.20'},
} as const;
/** The same hosts' IPv6 addresses: the same host number in each LAN's /64. */
export const LAB_ADDRESSES6 = {
  primary: {svc: '2001:db8:0:1::11', mgmt: '2001:db8:0:2::141'},
  backup: {svc: '2001:db8:0:1::12', mgmt: '2001:db8:0:2::142'},
  client: {svc: '2001:db8:0:1::20'},
} as const;

/** The service address of the lab's service LAN in `family`, without its prefix length. */
export function labServiceAddress(family: IpFamily): string {
  return family === 4 ? SERVICE_LAN.serviceAddress : SERVICE_LAN.ipv6.serviceAddress;
}

/** The same with the service LAN's prefix length, as a config's service.address: 192.0.2.100/25, 2001:db8:0:1::100/64. */
export function labServiceCidr(family: IpFamily): string {
  return `${labServiceAddress(family)}/${family === 4 ? SERVICE_LAN.prefixLength : SERVICE_LAN.ipv6.prefixLength}`;
}

/** An http:// URL of an address of either family: http://192.0.2.100/, http://[2001:db8:0:1::100]/. */
export function httpUrl(address: string): string {
  return address.includes(':') ? `http://[${address}]/` : `http://${address}/`;
}

/** Primary, backup and client on the service LAN, each on eth0. The service IP is left to the agents. */
export const DEFAULT_LAB_TOPOLOGY: Omit<TopologySpec, 'prefix'> = {
  lans: [SERVICE_LAN],
  hosts: [
    {name: 'primary', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.primary.svc, address6: LAB_ADDRESSES6.primary.svc}]},
    {name: 'backup', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.backup.svc, address6: LAB_ADDRESSES6.backup.svc}]},
    {name: 'client', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.client.svc, address6: LAB_ADDRESSES6.client.svc}]},
  ],
};

/** The default topology plus the management LAN on eth1 of primary and backup, for `link` mode. */
export const LINK_MODE_LAB_TOPOLOGY: Omit<TopologySpec, 'prefix'> = {
  lans: [SERVICE_LAN, MANAGEMENT_LAN],
  hosts: [
    {name: 'primary', interfaces: [
      {lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.primary.svc, address6: LAB_ADDRESSES6.primary.svc},
      {lan: 'mgmt', name: 'eth1', address: LAB_ADDRESSES.primary.mgmt, address6: LAB_ADDRESSES6.primary.mgmt},
    ]},
    {name: 'backup', interfaces: [
      {lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.backup.svc, address6: LAB_ADDRESSES6.backup.svc},
      {lan: 'mgmt', name: 'eth1', address: LAB_ADDRESSES.backup.mgmt, address6: LAB_ADDRESSES6.backup.mgmt},
    ]},
    {name: 'client', interfaces: [{lan: 'svc', name: 'eth0', address: LAB_ADDRESSES.client.svc, address6: LAB_ADDRESSES6.client.svc}]},
  ],
};

/** "bl" + 6 lowercase alphanumerics, e.g. blk3f9x2: short enough for namespace and log names, easy to grep. */
export const LAB_PREFIX_PATTERN = /^bl[0-9a-z]{6}$/;
/** The start of a lab's name that `baton lab --prefix` and the campaign's --prefix fix: the rest is random. */
export const LAB_PREFIX_STEM = /^bl[0-9a-z]{0,5}$/;
const SWITCH_HOST = 'sw';
// Linux interface names hold at most 15 characters (IFNAMSIZ 16 with the NUL).
const MAX_IFNAME_LENGTH = 15;

const newLabId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 6);

/** A fresh lab name, starting with `stem` (LAB_PREFIX_STEM) when given. */
export function newLabPrefix(stem = 'bl'): string {
  return `${stem}${newLabId().slice(0, 8 - stem.length)}`;
}

export function namespaceName(prefix: string, host: string): string {
  return `${prefix}-${host}`;
}

/** Checks the spec (names, and every address inside its LAN and the LANs inside TEST-NET) and names every part. */
export function planTopology(spec: TopologySpec): Topology {
  checkPrefix(spec.prefix);
  const problems: string[] = [];
  const lans = new Map<string, LanSpec>();
  for (const lan of spec.lans) {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(lan.name)) problems.push(`LAN name ${JSON.stringify(lan.name)}: expected 1–12 of a-z0-9`);
    if (lans.has(lan.name)) problems.push(`LAN ${lan.name} is declared twice`);
    if (!isDocumentationNetwork(lan)) {
      problems.push(`LAN ${lan.name} ${lan.network}/${lan.prefixLength}: expected a subnet of a TEST-NET range ` +
        '(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), so the lab can never touch a real network');
    }
    if (!isDocumentationNetwork6(lan.ipv6)) {
      problems.push(`LAN ${lan.name} ${lan.ipv6.network}/${lan.ipv6.prefixLength}: expected a subnet of the IPv6 documentation ` +
        'prefix 2001:db8::/32, /32 to /126, so the lab can never touch a real network');
    }
    lans.set(lan.name, lan);
  }
  const sw = namespaceName(spec.prefix, SWITCH_HOST);
  const ports = new Set<string>();
  const hosts: TopologyHost[] = [];
  for (const host of spec.hosts) {
    if (!/^[a-z][a-z0-9]{0,15}$/.test(host.name) || host.name === SWITCH_HOST) {
      problems.push(`host name ${JSON.stringify(host.name)}: expected 1–16 of a-z0-9, not "${SWITCH_HOST}"`);
    }
    const interfaces: TopologyInterface[] = [];
    for (const iface of host.interfaces) {
      const lan = lans.get(iface.lan);
      if (lan === undefined) {
        problems.push(`host ${host.name} ${iface.name}: no LAN named ${iface.lan}`);
        continue;
      }
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface.name) || iface.name === 'lo') {
        problems.push(`host ${host.name} interface ${JSON.stringify(iface.name)}: expected a Linux interface name`);
      }
      if (!isHostOnLan(iface.address, lan)) {
        problems.push(`host ${host.name} ${iface.name} ${iface.address}: not in LAN ${lan.name} ${lan.network}/${lan.prefixLength}`);
      }
      if (!isHostOnLan(iface.address6, lan.ipv6)) {
        problems.push(`host ${host.name} ${iface.name} ${iface.address6}: not in LAN ${lan.name} ${lan.ipv6.network}/${lan.ipv6.prefixLength}`);
      }
      const switchPort = `${host.name}-${lan.name}`.slice(0, MAX_IFNAME_LENGTH);
      if (ports.has(switchPort)) problems.push(`switch port ${switchPort} (host ${host.name}, LAN ${lan.name}) is not unique`);
      ports.add(switchPort);
      interfaces.push({
        lan: lan.name, name: iface.name, address: iface.address, prefixLength: lan.prefixLength,
        cidr: `${iface.address}/${lan.prefixLength}`, address6: iface.address6, cidr6: `${iface.address6}/${lan.ipv6.prefixLength}`,
        switchPort, bridge: bridgeName(lan.name),
      });
    }
    hosts.push({name: host.name, namespace: namespaceName(spec.prefix, host.name), interfaces});
  }
  if (new Set(spec.hosts.map((h) => h.name)).size !== spec.hosts.length) problems.push('host names are not unique');
  if (problems.length > 0) throw new BatonError('LAB_FAILED', `invalid lab topology:\n  - ${problems.join('\n  - ')}`);

  const hostNamed = (name: string): TopologyHost => {
    const host = hosts.find((h) => h.name === name);
    if (host === undefined) throw new BatonError('LAB_FAILED', `the lab has no host ${name} (hosts: ${hosts.map((h) => h.name).join(', ')})`);
    return host;
  };
  const interfaceOn = (name: string, lan: string): TopologyInterface => {
    const iface = hostNamed(name).interfaces.find((i) => i.lan === lan);
    if (iface === undefined) throw new BatonError('LAB_FAILED', `lab host ${name} has no interface on LAN ${lan}`);
    return iface;
  };
  return {
    prefix: spec.prefix,
    switchNamespace: sw,
    hosts,
    namespace: (name) => hostNamed(name).namespace,
    address: (name, lan, family = 4) => (family === 4 ? interfaceOn(name, lan).address : interfaceOn(name, lan).address6),
    interfaceName: (name, lan) => interfaceOn(name, lan).name,
  };
}

export function checkPrefix(prefix: string): void {
  // A loose prefix ("", "b") would match other people's namespaces in destroyTopology.
  if (!/^[a-z][a-z0-9]{3,15}$/.test(prefix)) {
    throw new BatonError('LAB_FAILED', `lab prefix ${JSON.stringify(prefix)}: expected 4–16 of a-z0-9 starting with a letter, e.g. ${newLabPrefix()}`);
  }
}

export function bridgeName(lan: string): string {
  return `br-${lan}`;
}

// TEST-NET-1, -2 and -3 (RFC 5737): reserved for documentation, routed nowhere.
const DOCUMENTATION_NETWORKS: readonly Subnet[] = ['192.0.2.0', '198.51.100.0', '203.0.113.0']
  .map((address) => ({network: {address, family: 4}, prefixLength: 24}));

/** An IPv4 LAN, /30 or larger, whose network address lies in a TEST-NET range. */
function isDocumentationNetwork(lan: {network: string; prefixLength: number}): boolean {
  const network = parseIpAddress(lan.network);
  return network?.family === 4 && Number.isInteger(lan.prefixLength) && lan.prefixLength <= 30 &&
    DOCUMENTATION_NETWORKS.some((doc) => lan.prefixLength >= doc.prefixLength && isInSubnet(network, doc));
}

// The IPv6 documentation prefix (RFC 3849): reserved for examples, routed nowhere.
const DOCUMENTATION_NETWORK6: Subnet = {network: {address: '2001:db8::', family: 6}, prefixLength: 32};

/** An IPv6 LAN, /126 or larger (two hosts beside the subnet-router anycast address), inside 2001:db8::/32. */
function isDocumentationNetwork6(lan: {network: string; prefixLength: number}): boolean {
  const network = parseIpAddress(lan.network);
  return network?.family === 6 && Number.isInteger(lan.prefixLength) && lan.prefixLength >= DOCUMENTATION_NETWORK6.prefixLength &&
    lan.prefixLength <= 126 && isInSubnet(network, DOCUMENTATION_NETWORK6);
}

/** A usable host address of the LAN: inside it, not its network or broadcast address; none in an unaligned LAN. */
function isHostOnLan(address: string, lan: {network: string; prefixLength: number}): boolean {
  const ip = parseIpAddress(address);
  const subnet = parseSubnet(lan.network, lan.prefixLength);
  return ip !== undefined && subnet !== undefined && isHostOf(ip, subnet);
}
