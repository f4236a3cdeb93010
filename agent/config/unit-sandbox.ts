// The part of the systemd sandbox that depends on the config (the drop-in `baton install` writes beside the unit), and
// the agent's check, at start and on SIGHUP, that the sandbox it runs in allows what its config needs.
//
// The unit cannot list the peer's address or the beacon port itself: they are in the config, and a list that guessed
// (private ranges, port 7411) would cut the beacons of a pair it did not guess, without a word. So `baton install`
// derives the lists from the config (planUnitSandbox), writes them with the environment variables below, and the
// agent compares a config with those variables (sandboxProblems): a config that needs more than the drop-in allows
// is refused, with the command that rewrites the drop-in, instead of running with beacons that cannot get through.

import {addressBitsOf, isInSubnet, parseIpAddress, parseSubnet, unmapIpv4, type Subnet} from '../net/ip-address.js';
import type {CommonConfig, Config, EtcdConfig} from './schema.js';

/** The drop-in on the target system; rewritten by each `baton install`, removed by `baton uninstall`. */
export const SANDBOX_DROP_IN = '/etc/systemd/system/baton-agent.service.d/50-baton-config.conf';
/** The drop-in's IPAddressAllow= entries (comma-separated), or `any` when it has no IP allow-list. */
export const IP_ALLOW_VARIABLE = 'BATON_IP_ALLOW';
/** The drop-in's SocketBindAllow= entries (comma-separated). */
export const BIND_ALLOW_VARIABLE = 'BATON_BIND_ALLOW';
/**
 * The first systemd with SocketBindAllow= (systemd.resource-control(5): "Added in version 249"). It enforces it only
 * when built with its BPF framework (`systemctl --version`: +BPF_FRAMEWORK); Debian 12's 252 is not, and ignores it.
 * baton then has no port allow-list, and writes no firewall rule instead (docs/security.md says why).
 */
export const SOCKET_BIND_MIN_SYSTEMD = 249;

/**
 * Why the systemd whose `systemctl --version` printed `text` does not enforce SocketBindAllow= (too old, or built
 * without the BPF framework), or undefined when it does. Text it cannot read is said to be unreadable, never "fine".
 */
export function socketBindUnsupported(text: string): string | undefined {
  const version = Number(/^systemd (\d+)\b/m.exec(text)?.[1] ?? Number.NaN);
  const framework = /(^|\s)([+-])BPF_FRAMEWORK\b/.exec(text)?.[2];
  if (Number.isNaN(version) || framework === undefined) {
    return `\`systemctl --version\` did not say which systemd this is and whether it has its BPF framework: ` +
      `${JSON.stringify(text.trim().split('\n')[0] ?? '')}`;
  }
  if (version < SOCKET_BIND_MIN_SYSTEMD) return `systemd ${version} predates SocketBindAllow= (${SOCKET_BIND_MIN_SYSTEMD})`;
  if (framework === '-') return `systemd ${version} is built without its BPF framework (-BPF_FRAMEWORK)`;
  return undefined;
}
// systemd's name for 127.0.0.0/8 and ::1 (systemd.resource-control(5)).
export const LOCALHOST = 'localhost';
const ANY = 'any';
// What systemd's `localhost` covers.
const LOOPBACK = [parseSubnet('127.0.0.0', 8), parseSubnet('::1', 128)];
/**
 * The system calls systemd/baton-agent.service allows back from `~@privileged`: setpriv's (setgid, setresuid,
 * setresgid, setgroups, and capset for --inh-caps) to run a hook or command check as script_user, and arping's
 * (capset, setuid: it drops its privileges at start and exits if it cannot), the fallback of the agent's packet
 * helpers where perl cannot run. The drop-in takes them out again when nothing runs as script_user.
 */
export const PRIVILEGED_EXCEPTIONS = ['capset', 'setuid', 'setgid', 'setresuid', 'setresgid', 'setgroups'] as const;
// Linux capability numbers (linux/capability.h): what setpriv needs to run a program as script_user.
const CAP_SETGID = 6n;
const CAP_SETUID = 7n;

/** One IPAddressAllow= entry and the config keys that need it. */
export interface AllowedAddress {
  /** Canonical address without a zone (systemd takes none), or `localhost`. */
  readonly address: string;
  readonly keys: readonly string[];
}

/** The sandbox a config needs beyond the unit itself. */
export interface UnitSandbox {
  /** IPAddressAllow= with IPAddressDeny=any; undefined when a host is named by name (`namedHosts`): no IP list. */
  readonly ipAllow: readonly AllowedAddress[] | undefined;
  /** Health-check URLs that name their host: its addresses can change under a fixed list, and a name needs DNS. */
  readonly namedHosts: readonly {readonly key: string; readonly host: string}[];
  /** SocketBindAllow= with SocketBindDeny=any: the beacon port (listen.port), and metrics.listen's when metrics are on. */
  readonly bindAllow: readonly string[];
  /** Whether a program (hook, command check) runs as script_user, for which setpriv needs CAP_SETUID, CAP_SETGID and
   *  the PRIVILEGED_EXCEPTIONS system calls. */
  readonly changesUser: boolean;
}

/** What the sandbox of the running agent allows, as the drop-in's variables and the kernel say. */
export interface RunningSandbox {
  /** BATON_IP_ALLOW as set; undefined when unset (no drop-in of ours: nothing to compare with). */
  readonly ipAllow: string | undefined;
  /** BATON_BIND_ALLOW as set; undefined when unset. */
  readonly bindAllow: string | undefined;
  /** Whether CAP_SETUID and CAP_SETGID are in the bounding set; undefined when the agent would not change user
   *  anyway (it is not root) or the set could not be read. */
  readonly canChangeUser: boolean | undefined;
}

type SandboxConfig = Pick<CommonConfig, 'health' | 'scriptUser' | 'metrics'> &
  (Pick<Config, 'listen' | 'peer' | 'coordination'> | Pick<EtcdConfig, 'coordination'>);

/**
 * What the config needs from the sandbox. IP traffic: loopback (HTTP checks of this host, programs that ask its
 * services), this host's beacon address, the peer's, and the host of each HTTP check. Not the service IP: clients
 * talk to the web server, not to the agent, and the arrival counter of a switch is the kernel's (nft). With metrics on,
 * the scrapers of metrics.allow_from: a scrape is ingress, which IPAddressDeny=any drops unless its source is allowed. ARP and
 * neighbour advertisements (packet sockets), `ip` and `nft` (netlink) are not IP traffic, so no list applies to them.
 */
export function planUnitSandbox(config: SandboxConfig): UnitSandbox {
  const byAddress = new Map<string, string[]>([[LOCALHOST, ['loopback']]]);
  const need = (address: string, key: string): void => {
    const keys = byAddress.get(address) ?? [];
    keys.push(key);
    byAddress.set(address, keys);
  };
  const namedHosts: {key: string; host: string}[] = [];
  /** The host of a URL: an address is allowed; a name cannot be (an allow-list holds addresses only). */
  const needHost = (url: string, key: string): void => {
    // URL.hostname keeps an IPv6 address in brackets.
    const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
    if (host !== LOCALHOST && parseIpAddress(host) === undefined) namedHosts.push({key, host});
    else need(allowEntry(host), key);
  };
  if ('listen' in config) {
    need(allowEntry(config.listen.address), 'listen.address');
    need(allowEntry(config.peer.address), 'peer.address');
  } else if (config.coordination.mode === 'etcd') {
    // In etcd mode the agent talks to the etcd members instead of a peer.
    config.coordination.endpoints.forEach((url, index) => {
      const key = `coordination.endpoints[${index}]`;
      needHost(url, key);
    });
    // keep-while-peers-agree: the hosts' beacons to one another, from this host's address to each other's.
    const beacons = config.coordination.beacons;
    if (beacons !== undefined) {
      for (const [host, address] of Object.entries(beacons.addresses)) need(allowEntry(address), `coordination.beacons.addresses.${host}`);
    }
  }
  config.health.checks.forEach((check, index) => {
    if (check.kind !== 'http') return;
    needHost(check.url, `health.checks[${index}].http.url`);
  });
  if (config.metrics.enabled) {
    config.metrics.allowFrom.forEach((subnet, index) => need(subnetEntry(subnet), `metrics.allow_from[${index}]`));
  }
  return {
    ipAllow: namedHosts.length > 0 ? undefined : [...byAddress].map(([address, keys]) => ({address, keys})),
    namedHosts,
    // In etcd mode the agent binds a beacon port only with keep-while-peers-agree (coordination.beacons.port).
    bindAllow: [...'listen' in config ? [`udp:${config.listen.port}`] : [],
      ...'listen' in config || config.coordination.mode !== 'etcd' || config.coordination.beacons === undefined ? [] : [`udp:${config.coordination.beacons.port}`],
      ...config.metrics.enabled ? [`tcp:${config.metrics.listen.port}`] : []],
    changesUser: config.scriptUser !== undefined,
  };
}

/** The value of BATON_IP_ALLOW for a sandbox. */
export function ipAllowValue(sandbox: UnitSandbox): string {
  return sandbox.ipAllow === undefined ? ANY : sandbox.ipAllow.map(({address}) => address).join(',');
}

/** The value of BATON_BIND_ALLOW for a sandbox. */
export function bindAllowValue(sandbox: UnitSandbox): string {
  return sandbox.bindAllow.join(',');
}

/**
 * What `config` needs that the running sandbox does not allow, one line each, naming the key and the value; empty
 * when it fits (or when there is no drop-in of ours to compare with).
 */
export function sandboxProblems(config: SandboxConfig, running: RunningSandbox): string[] {
  const needed = planUnitSandbox(config);
  const problems: string[] = [];
  if (running.ipAllow !== undefined && running.ipAllow !== ANY) {
    const allowed = new Set(running.ipAllow.split(',').filter((entry) => entry !== ''));
    const shown = [...allowed].join(' ');
    for (const {key, host} of needed.namedHosts) {
      problems.push(`${key} names the host ${host}, which an IP allow-list cannot follow; the drop-in allows IP ` +
        `traffic with ${shown} only`);
    }
    for (const {address, keys} of needed.ipAllow ?? []) {
      if (allowed.has(address)) continue;
      problems.push(`${keys.join(', ')} ${address}: not in IPAddressAllow= (${shown})`);
    }
  }
  if (running.bindAllow !== undefined) {
    const allowed = running.bindAllow.split(',').filter((entry) => entry !== '');
    for (const entry of needed.bindAllow) {
      if (!allowed.includes(entry)) {
        const key = entry.startsWith('tcp:') ? `metrics.listen port ${config.metrics.listen.port}` : `${'listen' in config ? 'listen.port' : 'coordination.beacons.port'} ${entry.slice('udp:'.length)}`;
        problems.push(`${key}: not in SocketBindAllow= (${allowed.join(' ')})`);
      }
    }
  }
  if (needed.changesUser && running.canChangeUser === false) {
    problems.push('hooks.on_state_change or a command check runs as script_user, which needs CAP_SETUID and ' +
      `CAP_SETGID and the system calls ${PRIVILEGED_EXCEPTIONS.join(' ')}; the drop-in took them out because the config ` +
      'had neither when it was written');
  }
  return problems;
}

/** The whole refusal: the problems, where the sandbox comes from, and the commands that make it fit again. */
export function describeSandboxProblems(file: string, problems: readonly string[]): string {
  return `${file} needs what this agent's systemd sandbox does not allow:\n  - ${problems.join('\n  - ')}\n` +
    `The sandbox's lists come from ${SANDBOX_DROP_IN}, which \`baton install\` writes from the config: run ` +
    '`baton install --keep-config` to write it for this config, then `systemctl restart baton-agent`';
}

/**
 * The sandbox a drop-in's text gives, for `baton check-config` (which runs outside the unit): its variables, and no
 * change of user when it takes CAP_SETUID and CAP_SETGID out.
 */
export function parseSandboxDropIn(text: string): RunningSandbox {
  const variables = new Map([...text.matchAll(/^Environment=(.*)$/gm)]
    .flatMap((match) => (match[1] ?? '').split(/\s+/))
    .map((assignment) => [assignment.slice(0, assignment.indexOf('=')), assignment.slice(assignment.indexOf('=') + 1)]));
  const dropsSetUid = /^CapabilityBoundingSet=~.*\bCAP_SETUID\b/m.test(text);
  return {ipAllow: variables.get(IP_ALLOW_VARIABLE), bindAllow: variables.get(BIND_ALLOW_VARIABLE),
    canChangeUser: dropsSetUid ? false : undefined};
}

/**
 * Whether the bounding set in /proc/self/status text holds CAP_SETUID and CAP_SETGID; undefined when the text has no
 * CapBnd line.
 */
export function boundingSetChangesUser(procStatus: string): boolean | undefined {
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(procStatus)?.[1];
  if (hex === undefined) return undefined;
  const set = BigInt(`0x${hex}`);
  return ((set >> CAP_SETUID) & 1n) === 1n && ((set >> CAP_SETGID) & 1n) === 1n;
}

/** A subnet as IPAddressAllow= takes it: one address as allowEntry writes it, a wider subnet as network/length. */
function subnetEntry(subnet: Subnet): string {
  return subnet.prefixLength === addressBitsOf(subnet.network.family) ? allowEntry(subnet.network.address)
    : `${subnet.network.address}/${subnet.prefixLength}`;
}

/**
 * An address as IPAddressAllow= takes it: loopback ones (127.0.0.0/8, ::1) as `localhost`, no zone (fe80::1%eth0),
 * an IPv4-mapped IPv6 address as the IPv4 one the kernel sees on the wire.
 */
function allowEntry(address: string): string {
  const parsed = parseIpAddress(address);
  if (parsed === undefined) return address;
  const ip = unmapIpv4(parseIpAddress(parsed.address.split('%')[0] ?? '') ?? parsed);
  return LOOPBACK.some((subnet) => subnet !== undefined && isInSubnet(ip, subnet)) ? LOCALHOST : ip.address;
}
