// The real NetworkDriver: the service address and link through `ip` (iproute2), announcements and duplicate
// address probes through `arping` (iputils), all as argument arrays through a CommandRunner. Where the agent's
// long-lived Perl helpers run (they do on every Debian host), the IPv4 address changes, the announcements and the
// probes go through them instead (netlink-address.ts, garp-sender.ts, arp-probe.ts), and arping is the fallback.
// An IPv6 service address is added with `nodad` (usable at once: the prober has already asked the LAN), probed with
// a neighbour solicitation from :: and announced with unsolicited neighbour advertisements, Override flag set. Only
// the helpers do that: arping is IPv4 only, Debian has no ndsend, and the kernel announces nothing for a nodad
// address even with ndisc_notify=1 (test/integration/namespaces.test.ts captures it); without perl, IPv6 fails.
//
// iputils-arping 20221126, measured in network namespaces on a bridge (test/integration/namespaces.test.ts logs them):
// - `-U`/`-A` (gratuitous request/reply) exit 0 after sending, although nobody answers them. Older iputils exited 1
//   when nothing was received, which is normal here, so exit 1 counts as success when stdout says probes were sent.
//   Each run lasts count × interval: arping waits one interval after the last packet.
// - `-D` (duplicate address detection) exits 0 when no reply came (free), 1 as soon as one reply arrives (in use,
//   12–40 ms after start), 2 on errors ("Interface "eth0" is down", "Device eth9 not available"). Exit 1 also means
//   "invalid argument", so "in use" additionally needs "Received N response(s)" with N ≥ 1 in stdout.
// - `-w` and `-i` take whole seconds only ("invalid argument: '0.3'"); `-i 0` never ends. Left alone, a free address
//   costs ≥ 1 s to probe (1.01–1.02 s measured with `-D -c 1 -w 1`), whatever `-c` and `-w` say, and every run
//   idles one interval after its last packet.
// - On SIGINT arping stops at once, prints its summary and exits with its usual status (0 free / 1 reply in -D mode,
//   0 in -U/-A mode), so we interrupt it (CommandOptions.interruptAfterMs) to listen less than a second and to skip
//   the idle interval. A run interrupted before its first packet says "Sent 0 probes": that is a failure, never "free".
// - The long-lived prober (arp-probe.ts) sends arping -D's frame byte for byte and answers the same; with the agent's
//   150 ms, start to answer, 10 each in the lab at idle priority on 2 shared cores: taken 3.5 ms median (5.5 max)
//   against arping's 36.4 (86.1), free 157.6 (162.7) against 186.5 (196.3): no process start, and no wait for
//   arping to act on SIGINT.

import {readFile} from 'node:fs/promises';
import {networkInterfaces} from 'node:os';
import {setTimeout as sleep} from 'node:timers/promises';
import {BatonError, isBatonError} from '../errors.js';
import type {ArpProber} from './arp-probe.js';
import type {GarpSender} from './garp-sender.js';
import {INTERFACE_NAME} from './helper-process.js';
import type {IpBatch} from './ip-batch.js';
import type {NetlinkAddresses} from './netlink-address.js';
import {canonicalIpText} from '../net/ip-address.js';
import type {CommandOptions, CommandRunner, NetworkDriver} from '../ports.js';
import type {ServiceIp} from '../state-machine.js';

export interface IpNetworkDriverOptions {
  /** The service interface, e.g. eth0. */
  readonly interface: string;
  /** Gratuitous ARP burst: `count` packets of each form, `intervalMs` apart (whole seconds: iputils' -i).
   *  announce() resolves once the last packet has left: (count - 1) × intervalMs, + 100 ms through arping. */
  readonly announce?: {readonly count: number; readonly intervalMs: number};
  /** How long the duplicate address probe listens for an answer (≥ 100 ms); a free address costs this long. */
  readonly probe?: {readonly timeoutMs: number};
  /** A long-lived `ip -batch` for the changes (address add/del, link up/down): no process start on the critical
   *  path. Without it each change spawns `ip`. */
  readonly batch?: IpBatch;
  /** A long-lived gratuitous ARP sender: the announcement leaves without a process start. Without it, or where it
   *  cannot run (no perl), each announcement spawns arping. */
  readonly garp?: GarpPort;
  /** A long-lived netlink helper for adding and removing an IPv4 service address: one netlink round trip after a
   *  write to a pipe. Without it, or where it cannot run (no perl), the changes go through the batch (or `ip`). */
  readonly netlink?: NetlinkPort;
  /** A long-lived duplicate-address prober: the probe needs no process start, and no arping (whose capset and setuid
   *  the unit's system-call filter then need not allow). Without it, or where it cannot run (no perl), arping -D. */
  readonly prober?: ProberPort;
}

/** What the driver needs of the duplicate-address prober (ArpProber; a recording one for --dry-run). */
export type ProberPort = Pick<ArpProber, 'unusable' | 'probe'>;

/** A prober that sends nothing, records the request and finds the address free, for --dry-run. */
export function recordingProber(recorder: {note(text: string): void}): ProberPort {
  return {
    unusable: undefined,
    probe: async (iface, address, listenMs) => {
      recorder.note(`duplicate-address probe for ${address} on ${iface}, listening ${listenMs} ms (the agent's long-lived prober)`);
      return {inUse: false};
    },
  };
}

/** What the driver needs of the netlink address helper (NetlinkAddresses). */
export type NetlinkPort = Pick<NetlinkAddresses, 'unusable' | 'change'>;

/** What the driver needs of the gratuitous ARP sender (GarpSender; a recording one for --dry-run). */
export type GarpPort = Pick<GarpSender, 'unusable' | 'send'>;

/** A sender that sends nothing and records the request, for --dry-run. */
export function recordingGarp(recorder: {note(text: string): void}): GarpPort {
  return {
    unusable: undefined,
    send: async (iface, address) => {
      recorder.note(`gratuitous ARP request and reply for ${address} on ${iface} (the agent's long-lived sender)`);
      return '00:00:00:00:00:00';
    },
  };
}

// 2 packets 1 s apart per form: the first one moves the traffic, the second covers a switch port or a neighbour
// that missed it (DESIGN: "more than once"); arping's minimum spacing is 1 s. Further repeats "after a delay" are
// the caller's: another announce(). Resolves after ~1.1 s.
const DEFAULT_ANNOUNCE = {count: 2, intervalMs: 1000};
// A reply to the probe came back 12–40 ms after arping started (process start included) in the lab, 0 wrong answers
// in 30 probes each at 100, 200 and 300 ms; 300 ms is ~10× the worst reply and a third of what arping alone allows. Every takeover of a free address pays this time.
const DEFAULT_PROBE = {timeoutMs: 300};
// Below this arping may be interrupted before it has sent its probe (process start alone is ~5 ms).
const MIN_PROBE_MS = 100;
// After the last gratuitous packet has left, stop arping instead of letting it idle another interval.
const ANNOUNCE_TAIL_MS = 100;
// An arping run ends by its own deadline or our interrupt; the runner's timeout only catches a hung one.
const ARPING_SLACK_MS = 3000;

const MS_PER_S = 1000;

export function createIpNetworkDriver(runner: CommandRunner, options: IpNetworkDriverOptions): NetworkDriver {
  const iface = options.interface;
  const announceCount = options.announce?.count ?? DEFAULT_ANNOUNCE.count;
  const announceIntervalMs = options.announce?.intervalMs ?? DEFAULT_ANNOUNCE.intervalMs;
  const probeTimeoutMs = options.probe?.timeoutMs ?? DEFAULT_PROBE.timeoutMs;
  if (!Number.isInteger(announceCount) || announceCount < 1) {
    throw new BatonError('CONFIG_INVALID', `announce.count: expected an integer ≥ 1, got ${announceCount}`);
  }
  if (!Number.isInteger(announceIntervalMs / MS_PER_S) || announceIntervalMs < MS_PER_S) {
    throw new BatonError('CONFIG_INVALID',
      `announce.intervalMs: expected whole seconds (1000, 2000, …) because arping's -i takes whole seconds, got ${announceIntervalMs}`);
  }
  if (!Number.isInteger(probeTimeoutMs) || probeTimeoutMs < MIN_PROBE_MS) {
    throw new BatonError('CONFIG_INVALID',
      `probe.timeoutMs: expected an integer ≥ ${MIN_PROBE_MS} (arping must have time to send its probe), got ${probeTimeoutMs}`);
  }
  const announceIntervalS = announceIntervalMs / MS_PER_S;
  const announceLastPacketMs = (announceCount - 1) * announceIntervalMs;
  // arping's own deadline in whole seconds; a shorter probe interrupts it (probeTimeoutMs < probeS s).
  const probeS = Math.ceil(probeTimeoutMs / MS_PER_S);
  const probeInterruptMs = probeTimeoutMs < probeS * MS_PER_S ? probeTimeoutMs : undefined;

  const ip = async (args: readonly string[], linkName: string = iface): Promise<string> => {
    try {
      return await runner.run('ip', args);
    } catch (error) {
      throw await explainFailure(runner, error, linkName);
    }
  };
  // The changes go through the batch when there is one; what they print is never needed.
  const change = async (args: readonly string[], linkName: string = iface): Promise<void> => {
    if (options.batch === undefined) {
      await ip(args, linkName);
      return;
    }
    try {
      await options.batch.run(args);
    } catch (error) {
      throw await explainFailure(runner, error, linkName);
    }
  };
  // The address through the netlink helper when it can run (an IPv6 one with nodad); otherwise `ip address ARGS`.
  const changeAddress = async (verb: 'add' | 'del', serviceIp: ServiceIp, args: readonly string[]): Promise<void> => {
    const netlink = options.netlink;
    if (netlink !== undefined && netlink.unusable === undefined) {
      try {
        await netlink.change(verb, iface, serviceIp.address, serviceIp.prefixLength);
        return;
      } catch (error) {
        // The helper cannot run on this host: ip below. Any other failure is the interface's or the kernel's.
        if (netlink.unusable === undefined) throw await explainFailure(runner, error, iface);
      }
    }
    await change(args);
  };
  const arping = async (args: readonly string[], options: CommandOptions): Promise<string> => {
    try {
      return await runner.run('arping', args, options);
    } catch (error) {
      throw await explainFailure(runner, error, iface);
    }
  };

  return {
    async hasAddress(serviceIp) {
      const stdout = await ip(['-j', familyFlag(serviceIp), 'addr', 'show', 'dev', iface]);
      const wanted = canonicalAddress(serviceIp);
      // The kernel's identity of an address is (address, prefix length): 192.0.2.100/24 and /25 can coexist, and
      // `ip addr del 192.0.2.100/24` does not remove the /25. Matching both keeps has/add/remove consistent.
      return parseIpJson<IpAddrEntry>(stdout, 'ip -j addr show').some((link) => (link.addr_info ?? []).some((info) =>
        info.local !== undefined && canonicalAddress({...serviceIp, address: info.local}) === wanted &&
        info.prefixlen === serviceIp.prefixLength));
    },

    async addAddress(serviceIp) {
      // nodad: an IPv6 address is otherwise "tentative" (unusable) for ~1 s of kernel DAD; we probe before taking it.
      const args = serviceIp.family === 6
        ? ['addr', 'add', serviceIp.cidr, 'dev', iface, 'nodad']
        : ['addr', 'add', serviceIp.cidr, 'dev', iface];
      try {
        await changeAddress('add', serviceIp, args);
      } catch (error) {
        // The one swallowed error: the address is already there, which is what we wanted (keepalived ignores
        // EEXIST the same way). iproute2 6.x says "Address already assigned", older ones "File exists".
        if (stderrMatches(error, /File exists|address already assigned/i)) return;
        throw error;
      }
    },

    async removeAddress(serviceIp) {
      try {
        await changeAddress('del', serviceIp, ['addr', 'del', serviceIp.cidr, 'dev', iface]);
      } catch (error) {
        // The one swallowed error: the address is already gone. iproute2 6.x says "Address not found",
        // older ones and the kernel itself (through the netlink helper) "Cannot assign requested address" (EADDRNOTAVAIL).
        if (stderrMatches(error, /Cannot assign requested address|address not found/i)) return;
        throw error;
      }
    },

    async setLink(linkName, up) {
      await change(['link', 'set', 'dev', linkName, up ? 'up' : 'down'], linkName);
    },

    async isLinkUp(linkName) {
      const stdout = await ip(['-j', 'link', 'show', 'dev', linkName], linkName);
      return parseIpJson<IpLinkEntry>(stdout, 'ip -j link show').some((link) => (link.flags ?? []).includes('UP'));
    },

    async announce(serviceIp) {
      const garp = options.garp;
      // IPv6: unsolicited neighbour advertisements from the helper, which nothing else here can send (arping is
      // IPv4 only, Debian ships no ndsend, and the kernel sends none for a nodad address: see its options above).
      if (serviceIp.family === 6 && (garp === undefined || garp.unusable !== undefined)) throw withoutPacketHelper('announce', serviceIp, garp);
      if (garp !== undefined && garp.unusable === undefined) {
        try {
          for (let packet = 1; packet <= announceCount; packet++) {
            if (packet > 1) await sleep(announceIntervalMs);
            await garp.send(iface, serviceIp.address);
          }
          return;
        } catch (error) {
          // The helper cannot run on this host: arping below. Any other failure is the interface's or the kernel's.
          if (garp.unusable === undefined) throw await explainFailure(runner, error, iface);
          if (serviceIp.family === 6) throw withoutPacketHelper('announce', serviceIp, garp);
        }
      }
      const args = (form: '-U' | '-A'): string[] =>
        [form, '-c', String(announceCount), '-i', String(announceIntervalS), '-I', iface, serviceIp.address];
      const burst = async (form: '-U' | '-A'): Promise<void> => {
        let stdout: string;
        try {
          stdout = await arping(args(form), {
            interruptAfterMs: announceLastPacketMs + ANNOUNCE_TAIL_MS,
            timeoutMs: announceLastPacketMs + ANNOUNCE_TAIL_MS + ARPING_SLACK_MS,
          });
        } catch (error) {
          // Older iputils exit 1 when nobody answered a gratuitous ARP, which is the normal case.
          if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === 1 && sentProbes(error.details.stdout) > 0) return;
          throw error;
        }
        // Observed, not commanded: at least the first packet, the one that moves the traffic, has left.
        if (sentProbes(stdout) === 0) {
          throw new BatonError('COMMAND_FAILED', `\`arping ${args(form).join(' ')}\` sent no packet: ${stdout.trim()}`);
        }
      };
      // Both forms at once: some switches and hosts learn only from requests, others only from replies, and the
      // first packet of each is what moves the traffic; running them in parallel does not delay either.
      const results = await Promise.allSettled([burst('-U'), burst('-A')]);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },

    async isServing(serviceIp) {
      // libuv's interface list (getifaddrs) holds only interfaces that are up and running, with every address
      // on them, secondaries included: exactly "answers for the address", at the cost of one netlink dump.
      const wanted = canonicalAddress(serviceIp);
      return (networkInterfaces()[iface] ?? []).some((entry) =>
        canonicalAddress({...serviceIp, address: entry.address}) === wanted && entry.cidr === `${entry.address}/${serviceIp.prefixLength}`);
    },

    async isRunning(linkName) {
      // libuv's list has only interfaces that are up and running, with an address of either family. One that runs
      // with no address at all (no IPv4, IPv6 off) is found by the kernel's operational state instead.
      if (networkInterfaces()[linkName] !== undefined) return true;
      if (!INTERFACE_NAME.test(linkName) || linkName === '.' || linkName === '..') return false;
      const state = await readFile(`/sys/class/net/${linkName}/operstate`, 'utf8').catch(() => '');
      return state.trim() === 'up';
    },

    async isAddressInUse(serviceIp) {
      const prober = options.prober;
      if (serviceIp.family === 6 && (prober === undefined || prober.unusable !== undefined)) throw withoutPacketHelper('probe', serviceIp, prober);
      if (prober !== undefined && prober.unusable === undefined) {
        try {
          return (await prober.probe(iface, serviceIp.address, probeTimeoutMs)).inUse;
        } catch (error) {
          // The helper cannot run on this host: arping below. Any other failure is the interface's or the kernel's,
          // and a failed probe is never "free".
          if (prober.unusable === undefined) throw await explainFailure(runner, error, iface);
          if (serviceIp.family === 6) throw withoutPacketHelper('probe', serviceIp, prober);
        }
      }
      const args = ['-D', '-c', String(probeS), '-w', String(probeS), '-I', iface, serviceIp.address];
      let stdout: string;
      try {
        stdout = await arping(args, {interruptAfterMs: probeInterruptMs, timeoutMs: probeS * MS_PER_S + ARPING_SLACK_MS});
      } catch (error) {
        // Exit 1 with a reply counted = somebody answers for the address. Anything else (exit 2, exit 1 without a
        // reply, a timeout) is a failed probe and is never reported as "free".
        if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === 1 && receivedReplies(error.details.stdout) > 0) {
          return true;
        }
        throw error;
      }
      if (sentProbes(stdout) === 0) {
        throw new BatonError('COMMAND_FAILED',
          `\`arping ${args.join(' ')}\` exited 0 but sent no probe, so nothing is known about ${serviceIp.address}: ${stdout.trim()}`);
      }
      return false;
    },
  };
}

interface IpAddrEntry {
  readonly ifname?: string;
  readonly addr_info?: ReadonlyArray<{readonly local?: string; readonly prefixlen?: number}>;
}

interface IpLinkEntry {
  readonly ifname?: string;
  readonly flags?: readonly string[];
}

/** INTERFACE_MISSING naming what exists instead; a permission hint on EPERM; anything else unchanged. */
async function explainFailure(runner: CommandRunner, error: unknown, linkName: string): Promise<unknown> {
  // iproute2: `Device "eth9" does not exist.` (show), `Cannot find device "eth9"` (set, addr add/del);
  // arping: `arping: Device eth9 not available.`; the gratuitous ARP helper: the kernel's `No such device`.
  if (!stderrMatches(error, /Device "[^"]*" does not exist|Cannot find device|Device \S+ not available|: No such device$/m)) {
    return withPermissionHint(error);
  }
  let known = '';
  try {
    const names = parseIpJson<IpLinkEntry>(await runner.run('ip', ['-j', 'link', 'show']), 'ip -j link show')
      .map((link) => link.ifname).filter((name): name is string => name !== undefined);
    known = `: \`ip link\` lists ${names.join(', ')}`;
  } catch {
    // The listing only decorates the message; the missing interface is the error to report.
  }
  return new BatonError('INTERFACE_MISSING', `interface ${linkName} does not exist${known}`, {cause: error});
}

/** Why an IPv6 address cannot be announced or probed: only the agent's packet helpers (perl) do that here. */
function withoutPacketHelper(what: 'announce' | 'probe', serviceIp: ServiceIp, helper: {readonly unusable: string | undefined} | undefined): BatonError {
  const why = helper?.unusable ?? 'the driver was made without one';
  return new BatonError('COMMAND_FAILED', `cannot ${what} ${serviceIp.address}: for IPv6 only the agent's packet helper ` +
    `(perl) sends neighbour discovery, and it cannot run here (${why}); arping is IPv4 only. Make perl runnable (Debian package perl-base)`);
}

function withPermissionHint(error: unknown): unknown {
  if (!isBatonError(error, 'COMMAND_FAILED') || !stderrMatches(error, /Operation not permitted|not permitted|Permission denied/i)) return error;
  // arping: `cap_set_proc: Operation not permitted` (or setuid) where the unit's system-call filter has no capset
  // or setuid, as the drop-in for a config without hooks and command checks has it.
  if (stderrMatches(error, /\b(cap_set_proc|capset|setuid)\b/)) {
    return new BatonError('COMMAND_FAILED',
      `${error.message}. arping cannot drop its privileges under this system-call filter (the unit's drop-in leaves out ` +
      'capset and setuid where nothing runs as script_user); the agent runs arping only where its own packet helpers ' +
      '(perl) cannot run: make perl runnable (Debian package perl-base)',
      {cause: error, details: error.details});
  }
  return new BatonError('COMMAND_FAILED',
    `${error.message}. baton-agent needs CAP_NET_ADMIN (for ip) and CAP_NET_RAW (for arping): run it as root or from its systemd unit`,
    {cause: error, details: error.details});
}

function stderrMatches(error: unknown, pattern: RegExp): boolean {
  return error instanceof BatonError && error.details !== undefined && pattern.test(error.details.stderr);
}

function familyFlag(serviceIp: ServiceIp): '-4' | '-6' {
  return serviceIp.family === 6 ? '-6' : '-4';
}

/** `ip` prints IPv6 compressed and lowercase; the configured spelling may differ (2001:DB8:0::100). */
function canonicalAddress(serviceIp: ServiceIp): string {
  return canonicalIpText(serviceIp.address);
}

function parseIpJson<T>(stdout: string, what: string): T[] {
  if (stdout.trim() === '') return [];
  try {
    const parsed: unknown = JSON.parse(stdout);
    if (Array.isArray(parsed)) return parsed as T[];
  } catch (error) {
    throw new BatonError('COMMAND_FAILED', `\`${what}\` printed something that is not JSON: ${stdout.slice(0, 120)}`, {cause: error});
  }
  throw new BatonError('COMMAND_FAILED', `\`${what}\` printed JSON that is not a list: ${stdout.slice(0, 120)}`);
}

// arping's summary lines on stdout: "Sent 1 probes (1 broadcast(s))", "Received 1 response(s)".
function sentProbes(stdout: string): number {
  return Number(/Sent (\d+) probe/.exec(stdout)?.[1] ?? 0);
}

function receivedReplies(stdout: string): number {
  return Number(/Received (\d+) response/.exec(stdout)?.[1] ?? 0);
}
