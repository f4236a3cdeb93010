// The real ArrivalCounter: new TCP connections to the service IP that arrive on the service interface from another
// host, counted by the kernel in an nftables table of their own, and read with `nft -j`.
//
// Why: the common and combined access-log formats do not show the address a request was sent to, so a request that
// reached the new host on one of its own addresses (a monitoring check, a client with a stale DNS entry) looks like
// one that came through the service IP. A SYN to the service IP, from a host that is neither of the pair, on the
// service interface, is proof that a client reached the service IP here; confirm-traffic asks for one besides the
// log's requests (request-evidence.ts says which of those count).
//
// The rule counts SYNs without ACK (connection openings, not retransmitted data) in the input hook: a packet the
// drain's `dup … drop` took in prerouting never gets here, and it is not a SYN anyway.

import {BatonError, isBatonError} from '../errors.js';
import {canonicalIpText, parseIpAddress} from '../net/ip-address.js';
import type {ArrivalCounter, CommandRunner} from '../ports.js';
import type {ServiceIp} from '../state-machine.js';
import {dropTable, listTable, systemNft} from './nft.js';

/** The table the counter adds; removing it takes the counter back. */
export const ARRIVALS_TABLE = 'inet baton_confirm';

export interface NftArrivalCounterOptions {
  /** The service interface, e.g. eth0. */
  readonly interface: string;
  /** The nft program; default the system's, found by path. */
  readonly nft?: string;
}

export function createNftArrivalCounter(runner: CommandRunner, options: NftArrivalCounterOptions): ArrivalCounter {
  const nftProgram = options.nft ?? systemNft();
  // One rule per service address (a dual-stack service has two, one per family), each with its own counter;
  // count() adds them up: the confirmation is one count over either address's clients.
  const rule = (ip: ServiceIp, excluded: readonly string[]): string => {
    const family = ip.family === 6 ? 'ip6' : 'ip';
    const others = [...new Set(excluded.filter((address) => parseIpAddress(address)?.family === ip.family).map(canonicalIpText))]
      .filter((address) => address !== canonicalIpText(ip.address));
    const notFrom = others.length === 0 ? '' : ` ${family} saddr != { ${others.join(', ')} }`;
    return `    iifname "${options.interface}" ${family} daddr ${ip.address}${notFrom} tcp flags & (syn | ack) == syn counter`;
  };
  const rules = (ips: readonly ServiceIp[], excluded: readonly string[]): string => [
    dropTable(ARRIVALS_TABLE),
    `table ${ARRIVALS_TABLE} {`,
    '  chain arrivals {',
    '    type filter hook input priority filter; policy accept;',
    ...ips.map((ip) => rule(ip, excluded)),
    '  }',
    '}',
  ].join('\n');
  return {
    async start(ips, excluded) {
      await runner.run(nftProgram, [rules(ips, excluded)]);
    },

    async count() {
      const stdout = await listTable(runner, nftProgram, ARRIVALS_TABLE, true);
      if (stdout === undefined) throw new BatonError('COMMAND_FAILED', `the arrival counter (nftables table ${ARRIVALS_TABLE}) is gone`);
      return readCounter(stdout);
    },

    async stop() {
      await runner.run(nftProgram, [dropTable(ARRIVALS_TABLE)]);
    },

    async removeLeftovers() {
      // No such table, or no nft on the host (then no counter can have been left): nothing to remove.
      const listing = await listTable(runner, nftProgram, ARRIVALS_TABLE).catch((error: unknown) => {
        if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === undefined) return undefined;
        throw error;
      });
      if (listing === undefined) return false;
      await runner.run(nftProgram, [dropTable(ARRIVALS_TABLE)]);
      return true;
    },
  };
}

/** The packets of the table's counters, added up, in `nft -j list table` output. */
export function readCounter(stdout: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new BatonError('COMMAND_FAILED', `\`nft -j list table ${ARRIVALS_TABLE}\` printed something that is not JSON: ${stdout.slice(0, 120)}`, {cause: error});
  }
  const items = (parsed as {nftables?: unknown[]}).nftables ?? [];
  let total: number | undefined;
  for (const item of items) {
    const expressions = (item as {rule?: {expr?: unknown[]}}).rule?.expr ?? [];
    for (const expression of expressions) {
      const packets = (expression as {counter?: {packets?: unknown}}).counter?.packets;
      if (typeof packets === 'number' && Number.isSafeInteger(packets) && packets >= 0) total = (total ?? 0) + packets;
    }
  }
  if (total !== undefined) return total;
  throw new BatonError('COMMAND_FAILED', `\`nft -j list table ${ARRIVALS_TABLE}\` shows no counter: ${stdout.slice(0, 160)}`);
}
