// Where the service address was, over time, as each host's kernel announced it: `ip -ts monitor address link` in
// every host namespace, read as timestamped events. "Never two holders" is judged from these, not from polling
// the hosts one after the other: a poll of one host and then the other misses an overlap shorter than the poll,
// and sees one that never was when the first host changes between the two reads. A dual-stack service's two
// addresses are watched together: a host holds the service when it has both, and counts as a holder for "never two
// holders" when it has either.
//
// `ip -ts` stamps an event when it reads it, not when the kernel made it, so a monitor that waits for a core stamps
// late: with two hosts' monitors, a removal read 10 ms late beside an addition read at once looks like two holders
// for a moment that never was (seen once on a busy machine, with the switch's unowned window down to ~6 ms). So the
// monitors run under SCHED_FIFO (`chrt -f`): woken by the kernel's message, they run at once and stamp it within
// microseconds, whatever else the machine is doing.

//
// An IPv6 address added without `nodad` shows twice: first "tentative" (duplicate address detection running; the
// host answers no neighbour solicitation for it yet), then again without the flag once DAD is done, or with
// "dadfailed". Only the usable one makes a holder. One added with `nodad` shows once, flagged "nodad" (iproute2 6.1).

import {execa, type ResultPromise} from 'execa';
import {addressBitsOf, canonicalIpText, parseIpAddress} from '../../agent/net/ip-address.js';
import type {Lab} from './lab.js';

/**
 * hold-added/-removed: the service address as a /32 (IPv6: /128) on lo, which a drain's giver has while it keeps accepting the
 * address's packets without answering ARP for it (hold-connections .. end-hold): the agent adds it after the nftables
 * rules that silence ARP and removes it before them, so while it is on lo the host does not claim the address.
 */
export type AddressChange = 'address-added' | 'address-removed' | 'link-up' | 'link-down' | 'hold-added' | 'hold-removed';

export interface AddressEvent {
  /** Wall-clock ms (with µs fraction) at which `ip monitor` received the kernel's message. */
  readonly atMs: number;
  readonly host: string;
  readonly change: AddressChange;
  /** Which watched address (canonical text) an address-* or hold-* change is about; absent for a link's. */
  readonly address?: string;
}

export interface HostAddressState {
  /** The watched addresses (canonical text) usable on the service interface. */
  readonly addresses: readonly string[];
  readonly linkUp: boolean;
  /** The watched addresses also on lo: a drain's hold, in which the host answers no ARP for them. */
  readonly held: readonly string[];
}

export interface AddressHistory {
  /** The addresses watched (canonical text): the service's, both of a dual-stack one. */
  readonly addresses: readonly string[];
  /** Each host's state once the watch was listening, and every change after it, in time order. */
  readonly initial: Readonly<Record<string, HostAddressState>>;
  readonly events: readonly AddressEvent[];
}

export interface AddressWatch {
  /** Waits until every monitor has read all the kernel said up to now, stops them, and returns what they saw. Once. */
  stop(): Promise<AddressHistory>;
}

/**
 * The hosts that held the whole service at the end, those that held only part of it then, and every interval in
 * which more than one host held any of it (an address on two hosts, or the two addresses on two hosts).
 */
export interface HolderJudgement {
  readonly final: readonly string[];
  readonly partly: ReadonlyArray<{readonly host: string; readonly held: readonly string[]; readonly missing: readonly string[]}>;
  readonly overlaps: ReadonlyArray<{readonly fromMs: number; readonly toMs: number | undefined; readonly hosts: readonly string[]}>;
}

// A marker address on lo, added and removed in each namespace: seeing it in a monitor's output proves the monitor
// is subscribed (at start) and has read everything the kernel sent before it (at stop). 127/8 is lo's already.
const MARKER_NETWORK = '127.77.0';
// Real-time, above every normal task; below the kernel's own threads (threaded IRQs run at 50).
const MONITOR_PRIORITY = 40;
// How long a monitor may take to show its marker: generous, since a busy machine delays only this wait.
const MARKER_TIMEOUT_MS = 20_000;

/** One line of `ip -ts monitor address link` as a change to `iface` or one of `addresses`; undefined for anything else. */
export function parseMonitorLine(line: string, iface: string, addresses: readonly string[]): {atMs: number; change: AddressChange; address?: string} | undefined {
  const stamped = /^\[(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})\] (Deleted )?(.*)$/.exec(line);
  if (stamped === null) return undefined;
  const [, y, mo, d, h, mi, s, us, deleted, rest = ''] = stamped;
  // `ip -ts` prints local time without a zone, as `new Date(y, m, …)` reads it.
  const atMs = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime() + Number(us) / 1000;
  const addressLine = /^\d+: (\S+)\s+inet6? ([0-9A-Fa-f.:]+)\/(\d+)(.*)$/.exec(rest);
  if (addressLine !== null) {
    const [, dev, local = '', prefixLength, flags = ''] = addressLine;
    const wanted = addresses.map(parseIpAddress).find((ip) => ip !== undefined && canonicalIpText(local) === ip.address);
    if (wanted === undefined) return undefined;
    // Not usable yet (or never): no change to who holds it. Its removal is still one (of nothing held).
    if (deleted === undefined && /\b(?:tentative|dadfailed)\b/.test(flags)) return undefined;
    if (dev === 'lo' && prefixLength === String(addressBitsOf(wanted.family))) {
      return {atMs, change: deleted === undefined ? 'hold-added' : 'hold-removed', address: wanted.address};
    }
    if (dev !== iface) return undefined;
    return {atMs, change: deleted === undefined ? 'address-added' : 'address-removed', address: wanted.address};
  }
  const linkLine = /^\d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)>/.exec(rest);
  if (linkLine !== null && linkLine[1] === iface && deleted === undefined) {
    return {atMs, change: (linkLine[2] ?? '').split(',').includes('UP') ? 'link-up' : 'link-down'};
  }
  return undefined;
}

/**
 * Replays the history: who held the service at the end, who held part of it, and when more than one host held any
 * of it. A host holds an address when it is on its interface with the link up and not in a drain's hold: a host in
 * hold answers no ARP for the address and sends none that names it, so clients cannot learn it as the address's
 * owner (a giver killed between hold-connections and primary-net-down stays so until its agent restarts, while the
 * taker may take over). With two addresses, a host with one of them is a holder too for the overlaps: its clients
 * of that family reach it while the other host serves the rest.
 */
export function judgeHolders(history: AddressHistory): HolderJudgement {
  const state = initialState(history);
  const heldBy = (host: HostLinkState): string[] =>
    host.linkUp ? history.addresses.filter((a) => host.addresses.has(a) && !host.held.has(a)) : [];
  const holders = (): string[] => [...state].filter(([, s]) => heldBy(s).length > 0).map(([host]) => host).sort();
  const overlaps: Array<{fromMs: number; toMs: number | undefined; hosts: string[]}> = [];
  let open: {fromMs: number; toMs: number | undefined; hosts: string[]} | undefined;
  if (holders().length > 1) overlaps.push(open = {fromMs: history.events[0]?.atMs ?? 0, toMs: undefined, hosts: holders()});
  for (const event of history.events) {
    applyEvent(state, event);
    const now = holders();
    if (now.length > 1 && open === undefined) overlaps.push(open = {fromMs: event.atMs, toMs: undefined, hosts: now});
    else if (now.length <= 1 && open !== undefined) {
      open.toMs = event.atMs;
      open = undefined;
    }
  }
  const ends = [...state].map(([host, s]) => ({host, held: heldBy(s), missing: history.addresses.filter((a) => !heldBy(s).includes(a))}))
    .filter((e) => e.held.length > 0).sort((a, b) => a.host.localeCompare(b.host));
  return {
    final: ends.filter((e) => e.missing.length === 0).map((e) => e.host),
    partly: ends.filter((e) => e.missing.length > 0),
    overlaps,
  };
}

/**
 * The longest time within [fromMs, toMs] in which no host held the service (all of its addresses on no host's
 * interface with the link up, as judgeHolders counts a holder): a switch's unowned window, or a failover's, as the
 * kernels saw it. A host with part of a dual-stack service counts as holding. Replays the history from its start.
 */
export function longestUnheld(history: AddressHistory, fromMs: number, toMs: number): number {
  const state = initialState(history);
  const anyHolder = (): boolean => [...state.values()].some((s) => s.linkUp && history.addresses.some((a) => s.addresses.has(a) && !s.held.has(a)));
  let longest = 0;
  let unheldSince: number | undefined = anyHolder() ? undefined : fromMs;
  const close = (at: number): void => {
    if (unheldSince === undefined) return;
    longest = Math.max(longest, Math.min(at, toMs) - Math.max(unheldSince, fromMs));
    unheldSince = undefined;
  };
  for (const event of history.events) {
    if (event.atMs > toMs) break;
    applyEvent(state, event);
    if (anyHolder()) close(event.atMs);
    else unheldSince ??= Math.max(event.atMs, fromMs);
  }
  close(toMs);
  return Math.max(0, longest);
}

interface Monitor {
  readonly host: string;
  readonly namespace: string;
  readonly process: ResultPromise<{buffer: false; reject: false}>;
  readonly events: AddressEvent[];
  readonly lines: string[];
  readonly waiters: Array<() => void>;
  exited: string | undefined;
}

/**
 * Starts a monitor in each host namespace of the lab, and returns once all are listening. It watches every service
 * address of the lab (both of a dual-stack one), or `address` alone. Start it on a pair at rest: a change in the
 * moment between a monitor subscribing and the first read of the state may be counted twice.
 */
export async function watchServiceAddress(lab: Lab, options: {iface?: string; address?: string} = {}): Promise<AddressWatch> {
  return watchAddress([lab.hosts.primary, lab.hosts.backup].map((host) => ({name: host.role, namespace: host.namespace})),
    options.iface ?? 'eth0', options.address === undefined ? lab.serviceAddresses : [options.address]);
}

/** watchServiceAddress on any hosts: `addresses` on `iface` in each one's namespace, the events named by host. */
export async function watchAddress(hosts: ReadonlyArray<{readonly name: string; readonly namespace: string}>, iface: string,
  watched: readonly string[]): Promise<AddressWatch> {
  const addresses = watched.map(canonicalIpText);
  const monitors = hosts.map((host): Monitor => {
    const monitor: Monitor = {
      host: host.name, namespace: host.namespace, events: [], lines: [], waiters: [], exited: undefined,
      process: execa('chrt', ['-f', String(MONITOR_PRIORITY), 'ip', '-n', host.namespace, '-ts', 'monitor', 'address', 'link'], {buffer: false, reject: false}),
    };
    void monitor.process.then((result) => {
      monitor.exited = `exited ${String(result.exitCode ?? result.signal)}: ${String(result.stderr)}`;
    });
    let pending = '';
    monitor.process.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        monitor.lines.push(line);
        const parsed = parseMonitorLine(line, iface, addresses);
        if (parsed !== undefined) monitor.events.push({...parsed, host: monitor.host});
      }
      for (const wake of monitor.waiters.splice(0)) wake();
    });
    return monitor;
  });
  const stopAll = (): void => {
    for (const monitor of monitors) monitor.process.kill();
  };
  try {
    await syncAll(monitors, 1);
    const initial: Record<string, HostAddressState> = {};
    for (const monitor of monitors) initial[monitor.host] = await readState(monitor.namespace, iface, addresses);
    let stopped: Promise<AddressHistory> | undefined;
    const stop = async (): Promise<AddressHistory> => {
      try {
        await syncAll(monitors, 2);
      } finally {
        stopAll();
        await Promise.all(monitors.map((m) => m.process));
      }
      return {addresses, initial, events: monitors.flatMap((m) => m.events).sort((a, b) => a.atMs - b.atMs)};
    };
    return {stop: () => (stopped ??= stop())};
  } catch (error) {
    stopAll();
    throw error;
  }
}

/** Adds marker `n` in every namespace, waits until each monitor printed it, removes it again. */
async function syncAll(monitors: readonly Monitor[], n: number): Promise<void> {
  const marker = `${MARKER_NETWORK}.${n}`;
  await Promise.all(monitors.map(async (monitor) => {
    await execa('ip', ['-n', monitor.namespace, 'addr', 'add', `${marker}/32`, 'dev', 'lo']);
    try {
      const seen = (): boolean => monitor.lines.some((line) => !line.includes('Deleted') && line.includes(` inet ${marker}/32 `));
      const deadline = Date.now() + MARKER_TIMEOUT_MS;
      while (!seen()) {
        if (Date.now() > deadline) throw new Error(`ip monitor in ${monitor.namespace} did not show marker ${marker} within ${MARKER_TIMEOUT_MS} ms`);
        if (monitor.exited !== undefined) throw new Error(`ip monitor in ${monitor.namespace} ${monitor.exited}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          monitor.waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    } finally {
      await execa('ip', ['-n', monitor.namespace, 'addr', 'del', `${marker}/32`, 'dev', 'lo'], {reject: false});
    }
  }));
}

interface AddressInfo {local: string; prefixlen: number; tentative?: boolean; dadfailed?: boolean}

async function readState(namespace: string, iface: string, addresses: readonly string[]): Promise<HostAddressState> {
  const read = async (dev: string): Promise<Array<{flags: string[]; addr_info: AddressInfo[]}>> =>
    JSON.parse((await execa('ip', ['-n', namespace, '-j', 'addr', 'show', 'dev', dev], {timeout: 10_000})).stdout) as
      Array<{flags: string[]; addr_info: AddressInfo[]}>;
  const wanted = addresses.map(parseIpAddress).filter((ip) => ip !== undefined);
  // Usable only, as parseMonitorLine counts them: a tentative or dadfailed IPv6 address is no holder's.
  const found = (links: Array<{addr_info: AddressInfo[]}>, onLo: boolean): string[] => wanted.filter((ip) => links.some((link) =>
    link.addr_info.some((a) => canonicalIpText(a.local) === ip.address && a.tentative !== true && a.dadfailed !== true &&
      (!onLo || a.prefixlen === addressBitsOf(ip.family))))).map((ip) => ip.address);
  const links = await read(iface);
  return {addresses: found(links, false), linkUp: links.some((link) => link.flags.includes('UP')), held: found(await read('lo'), true)};
}

/** A host's state as the events change it. */
interface HostLinkState {
  linkUp: boolean;
  readonly addresses: Set<string>;
  readonly held: Set<string>;
}

/** Each host's state when the watch began. */
function initialState(history: AddressHistory): Map<string, HostLinkState> {
  return new Map(Object.entries(history.initial).map(([host, s]) => [host, {linkUp: s.linkUp, addresses: new Set(s.addresses), held: new Set(s.held)}]));
}

/** One kernel event applied to the hosts' state as it was before it. */
function applyEvent(state: Map<string, HostLinkState>, event: AddressEvent): void {
  const host = state.get(event.host) ?? {linkUp: false, addresses: new Set<string>(), held: new Set<string>()};
  const address = event.address ?? '';
  if (event.change === 'address-added') host.addresses.add(address);
  else if (event.change === 'address-removed') host.addresses.delete(address);
  else if (event.change === 'hold-added') host.held.add(address);
  else if (event.change === 'hold-removed') host.held.delete(address);
  else host.linkUp = event.change === 'link-up';
  state.set(event.host, host);
}
