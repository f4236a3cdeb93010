// The real DrainDriver: nftables rules and an address on `lo`, through `nft` and `ip` as argument arrays, and the
// kernel's TCP table read from /proc (no process spawned while a drain is waited for).
//
// Measured by hand on kernel 6.18 / nftables 1.0.6 in the lab's namespaces, before this was written: the giver keeps
// the service IP as a /32 on lo and stops answering ARP for it; the taker hands on packets of connections it does
// not own; then keep-alive connections and downloads in flight finished on the giver while new connections went to
// the taker, with no sysctl changed on either host:
// - The giver's `arp` table drops ARP requests for the service IP and rewrites the sender address of its own ARP
//   requests that would name the service IP (the kernel picks the reply's source, the service IP, as sender: a client
//   would then learn the giver's MAC for it again); gratuitous ARP (sender = target) is left alone, so a rollback can
//   announce the IP from here again. This is what arp_ignore=1 / arp_announce=2 do, as two rules that vanish with
//   their table.
// - The taker's `ip` table marks nothing and routes nothing: `dup to GIVER device IFACE` sends a copy of the packet
//   to the giver (the kernel's TEE), and `drop` discards the original. No forwarding sysctl, no policy routing, no
//   ICMP redirect. Only TCP that is not a SYN and whose socket lookup finds the wildcard listener, not a socket of
//   its own (`socket wildcard 1`), is handed on: the taker's own connections and every new one stay here. A
//   TIME-WAIT socket of the taker's would be found instead of the listener, so forward() destroys those first.
// An IPv6 service address drains the same way, with an `ip6` table on the taker and the giver's own IPv6 address as
// the `dup` target. The giver's hold needs no rule at all: the kernel answers a neighbour solicitation only for an
// address on the interface it arrived on (ipv6_get_ifaddr, strict), so the address as a /128 on lo is accepted and
// never advertised on eth0, and a solicitation the giver sends names a source of eth0's own. Measured in the lab: a
// client resolving the address with the giver holding it on lo and the taker on eth0 learnt only the taker's MAC.

import {readFile} from 'node:fs/promises';
import {endianness, networkInterfaces} from 'node:os';
import {BatonError, describeError, isBatonError} from '../errors.js';
import {addressBitsOf, canonicalIpText, isLinkLocal, parseIpAddress} from '../net/ip-address.js';
import type {CommandRunner, DrainDriver} from '../ports.js';
import type {ServiceIp} from '../state-machine.js';
import {dropTable, listTable, stderrOf, systemNft} from './nft.js';

/** The tables a drain adds; removing them takes every rule back. The names say whose they are. */
export const DRAIN_TABLES = {forward: 'ip baton_drain', forward6: 'ip6 baton_drain', hold: 'arp baton_drain'} as const;

// /proc/net/tcp states (include/net/tcp_states.h) in which a connection may still carry data the client waits for:
// ESTABLISHED, SYN_RECV, FIN_WAIT1 (our FIN or data not yet acknowledged), CLOSE_WAIT, LAST_ACK, CLOSING. FIN_WAIT2
// and TIME_WAIT have delivered everything; LISTEN is no connection.
const OPEN_STATES = new Set(['01', '03', '04', '08', '09', '0B']);

export interface NftDrainDriverOptions {
  /** The service interface, e.g. eth0. */
  readonly interface: string;
  /** Where the kernel's TCP tables are; tests point this elsewhere. */
  readonly procNet?: string;
  /** The nft program; default the system's (/usr/sbin/nft), found by path. */
  readonly nft?: string;
}

export function createNftDrainDriver(runner: CommandRunner, options: NftDrainDriverOptions): DrainDriver {
  const iface = options.interface;
  const procNet = options.procNet ?? '/proc/net';
  const nftProgram = options.nft ?? systemNft();

  const nft = (script: string): Promise<string> => runner.run(nftProgram, [script]).catch((error: unknown) => {
    throw explain(error, 'nft');
  });
  const tableExists = async (table: string): Promise<boolean> => await listTable(runner, nftProgram, table).catch((error: unknown) => {
    throw explain(error, 'nft');
  }) !== undefined;
  const forwardTable = (ip: ServiceIp): string => (ip.family === 6 ? DRAIN_TABLES.forward6 : DRAIN_TABLES.forward);
  const forwardRules = (ip: ServiceIp, giver: string): string => [
    dropTable(forwardTable(ip)),
    `table ${forwardTable(ip)} {`,
    '  chain strays {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    ${ip.family === 6 ? 'ip6' : 'ip'} daddr ${ip.address} tcp flags & syn == 0 socket wildcard 1 dup to ${giver} device "${iface}" drop`,
    '  }',
    '}',
  ].join('\n');
  const holdRules = (ip: ServiceIp, own: string): string => [
    dropTable(DRAIN_TABLES.hold),
    `table ${DRAIN_TABLES.hold} {`,
    '  chain in {',
    '    type filter hook input priority filter; policy accept;',
    `    arp operation request arp daddr ip ${ip.address} drop`,
    '  }',
    '  chain out {',
    '    type filter hook output priority filter; policy accept;',
    // Not its own gratuitous ARP (sender = target = the service IP): a rollback announces the IP from here again.
    `    arp saddr ip ${ip.address} arp daddr ip != ${ip.address} arp saddr ip set ${own}`,
    '  }',
    '}',
  ].join('\n');
  const hostBits = (ip: ServiceIp): number => addressBitsOf(ip.family);
  const loCidr = (ip: ServiceIp): string => `${ip.address}/${hostBits(ip)}`;
  const onLo = async (ip: ServiceIp): Promise<boolean> => {
    const stdout = await runner.run('ip', ['-j', ip.family === 6 ? '-6' : '-4', 'addr', 'show', 'dev', 'lo']).catch((error: unknown) => {
      throw explain(error, 'ip');
    });
    const wanted = canonicalIpText(ip.address);
    return parseJsonList<{addr_info?: Array<{local?: string; prefixlen?: number}>}>(stdout)
      .some((link) => (link.addr_info ?? []).some((info) => info.local !== undefined && canonicalIpText(info.local) === wanted && info.prefixlen === hostBits(ip)));
  };
  const removeFromLo = async (ip: ServiceIp): Promise<void> => {
    try {
      await runner.run('ip', ['addr', 'del', loCidr(ip), 'dev', 'lo']);
    } catch (error) {
      if (/Cannot assign requested address|address not found/i.test(stderrOf(error))) return;
      throw explain(error, 'ip');
    }
  };

  return {
    async unavailable() {
      // `nft -c` hands the rules to the kernel without committing them: a missing nft, missing privileges or a
      // kernel without the socket, dup or arp parts all say so here, before a switch depends on them.
      const probe: ServiceIp = {address: '192.0.2.1', prefixLength: 32, family: 4, cidr: '192.0.2.1/32'};
      const probe6: ServiceIp = {address: '2001:db8::1', prefixLength: 128, family: 6, cidr: '2001:db8::1/128'};
      try {
        await runner.run(nftProgram, ['-c', forwardRules(probe, '192.0.2.2')]);
        await runner.run(nftProgram, ['-c', holdRules(probe, '192.0.2.2')]);
        await runner.run(nftProgram, ['-c', forwardRules(probe6, '2001:db8::2')]);
        return undefined;
      } catch (error) {
        return `nftables cannot take the drain's rules here: ${describeError(explain(error, 'nft'))}`;
      }
    },

    async ownAddress(ip) {
      const family = ip.family === 6 ? 'IPv6' : 'IPv4';
      const entries = (networkInterfaces()[iface] ?? []).filter((entry) => entry.family === family && !entry.internal);
      const wanted = canonicalIpText(ip.address);
      // Not a link-local one: a peer could reach it only through its own interface's name, which it does not know.
      const own = entries.filter((entry) => {
        const address = parseIpAddress(entry.address);
        return address !== undefined && address.address !== wanted && !isLinkLocal(address);
      });
      // The address in the service IP's own subnet first: that is the one the taker reaches on-link.
      const sameSubnet = own.find((entry) => entry.cidr !== null && entry.cidr.endsWith(`/${ip.prefixLength}`));
      const chosen = (sameSubnet ?? own[0])?.address;
      return chosen === undefined ? undefined : canonicalIpText(chosen);
    },

    async hold(ip, own) {
      // IPv6 needs no rule: the address on lo is never advertised on eth0 (see the top of this file).
      if (ip.family === 4) await nft(holdRules(ip, own));
      try {
        await runner.run('ip', ['addr', 'add', loCidr(ip), 'dev', 'lo']);
      } catch (error) {
        if (!/File exists|address already assigned/i.test(stderrOf(error))) throw explain(error, 'ip');
      }
    },

    async isHolding(ip) {
      return (ip.family === 6 || await tableExists(DRAIN_TABLES.hold)) && await onLo(ip);
    },

    async unhold(ip) {
      // The address first: once it is gone nothing here accepts the service IP's packets, so no ARP can name it.
      await removeFromLo(ip);
      if (ip.family === 4) await nft(dropTable(DRAIN_TABLES.hold));
    },

    async forward(ip, giver) {
      // TIME-WAIT sockets left on this host from its last turn as holder would take the packets of a giver's
      // connection that reuses their 4-tuple (the rule's socket lookup finds them, not the listener), answer them
      // itself, and stall that connection until the drain cuts it: measured in 16 of 40 moves before this. This
      // host holds no connection on the service IP now, so they are only leftovers: destroyed (sock_diag), best
      // effort, as a kernel without CONFIG_INET_DIAG_DESTROY refuses it.
      // ss reads ADDRESS[:PORT], so an IPv6 address goes in brackets ("2001:db8::100" is refused as a prefix).
      await runner.run('ss', ['-K', '-H', 'state', 'time-wait', 'src', ip.family === 6 ? `[${ip.address}]` : ip.address]).catch(() => '');
      await nft(forwardRules(ip, giver));
    },

    async isForwarding(ip) {
      return await tableExists(forwardTable(ip));
    },

    async unforward() {
      await nft(`${dropTable(DRAIN_TABLES.forward)}\n${dropTable(DRAIN_TABLES.forward6)}`);
    },

    async openConnections(ip) {
      const wanted = canonicalIpText(ip.address);
      let count = 0;
      for (const [file, decode] of [['tcp', decodeV4], ['tcp6', decodeV6]] as const) {
        let text: string;
        try {
          text = await readFile(`${procNet}/${file}`, 'utf8');
        } catch (error) {
          // A kernel without IPv6 has no tcp6; tcp itself is always there.
          if (file === 'tcp6' && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw new BatonError('COMMAND_FAILED', `cannot read ${procNet}/${file} to count the connections left: ${describeError(error)}`, {cause: error});
        }
        for (const line of text.split('\n').slice(1)) {
          const fields = line.trim().split(/\s+/);
          const [local, , state] = [fields[1], fields[2], fields[3]];
          if (local === undefined || state === undefined || !OPEN_STATES.has(state)) continue;
          const address = decode(local.split(':')[0] ?? '');
          if (address !== undefined && address === wanted) count += 1;
        }
      }
      return count;
    },

    async removeLeftovers(ip) {
      const removed: string[] = [];
      for (const table of [DRAIN_TABLES.forward, DRAIN_TABLES.forward6, DRAIN_TABLES.hold]) {
        // Without nft on the host no drain can have run: nothing of its tables to look for.
        const exists = await tableExists(table).catch((error: unknown) => {
          if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === undefined) return false;
          throw error;
        });
        if (!exists) continue;
        await nft(dropTable(table));
        removed.push(`nftables table ${table}`);
      }
      if (await onLo(ip)) {
        await removeFromLo(ip);
        removed.push(`${loCidr(ip)} on lo`);
      }
      return removed;
    },
  };
}

// /proc/net/tcp prints each 32-bit word of an address in the host's byte order, as hex.
function wordBytes(hex: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return endianness() === 'LE' ? bytes.reverse() : bytes;
}

function decodeV4(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  return wordBytes(hex).join('.');
}

/** An IPv6 address in canonical text; an IPv4-mapped one (::ffff:a.b.c.d, as a socket listening on [::] sees IPv4
 *  clients) as the IPv4 address. */
function decodeV6(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join('.');
  const groups = [0, 2, 4, 6, 8, 10, 12, 14].map((i) => (((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return canonicalIpText(groups.join(':'));
}


function explain(error: unknown, program: 'nft' | 'ip'): unknown {
  if (!isBatonError(error, 'COMMAND_FAILED')) return error;
  if (/Operation not permitted|Permission denied/i.test(stderrOf(error))) {
    return new BatonError('COMMAND_FAILED', `${error.message}. The drain needs CAP_NET_ADMIN for ${program}: run baton-agent as root or from its systemd unit`,
      {cause: error, details: error.details});
  }
  return error;
}

function parseJsonList<T>(stdout: string): T[] {
  if (stdout.trim() === '') return [];
  const parsed: unknown = JSON.parse(stdout);
  return Array.isArray(parsed) ? parsed as T[] : [];
}
