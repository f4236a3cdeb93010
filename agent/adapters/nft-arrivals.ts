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
  const rules = (ip: ServiceIp, excluded: readonly string[]): string => {
    const family = ip.family === 6 ? 'ip6' : 'ip';
    const others = [...new Set(excluded.filter((address) => parseIpAddress(address)?.family === ip.family).map(canonicalIpText))]
      .filter((address) => address !== canonicalIpText(ip.address));
    const notFrom = others.length === 0 ? '' : ` ${family} saddr != { ${others.join(', ')} }`;
    return [
      dropTable(ARRIVALS_TABLE),
      `table ${ARRIVALS_TABLE} {`,
      '  chain arrivals {',
      '    type filter hook input priority filter; policy accept;',
      `    iifname "${options.interface}" ${family} daddr ${ip.address}${notFrom} tcp flags & (syn | ack) == syn counter`,
      '  }',
      '}',
    ].join('\n');
  };
  return {
    async start(ip, excluded) {
      await runner.run(nftProgram, [rules(ip, excluded)]);
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

/** The packets of the one counter in `nft -j list table` output. */
export function readCounter(stdout: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new BatonError('COMMAND_FAILED', `\`nft -j list table ${ARRIVALS_TABLE}\` printed something that is not JSON: ${stdout.slice(0, 120)}`, {cause: error});
  }
  const items = (parsed as {nftables?: unknown[]}).nftables ?? [];
  for (const item of items) {
    const expressions = (item as {rule?: {expr?: unknown[]}}).rule?.expr ?? [];
    for (const expression of expressions) {
      const packets = (expression as {counter?: {packets?: unknown}}).counter?.packets;
      if (typeof packets === 'number' && Number.isSafeInteger(packets) && packets >= 0) return packets;
    }
  }
  throw new BatonError('COMMAND_FAILED', `\`nft -j list table ${ARRIVALS_TABLE}\` shows no counter: ${stdout.slice(0, 160)}`);
}
