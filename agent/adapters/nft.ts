// What the nftables adapters (the drain's tables, the confirmation's arrival counter) share: which nft to run, and
// how to replace or remove a table in one idempotent transaction.

import {existsSync} from 'node:fs';
import {BatonError} from '../errors.js';
import type {CommandRunner} from '../ports.js';

// By path, not through PATH: npm puts node_modules/.bin first, and a JavaScript tool of the same name (ava brings
// @vercel/nft) would run instead, slowly and doing nothing, when an agent is started from an npm script.
const NFT_PATHS = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'];

export function systemNft(): string {
  return NFT_PATHS.find((path) => existsSync(path)) ?? 'nft';
}

/** Declaring a table and then deleting it succeeds whether or not it existed: one transaction, idempotent. */
export function dropTable(table: string): string {
  return `table ${table} {}\ndelete table ${table}`;
}

/** What a failed command printed on stderr ('' for any other error). */
export function stderrOf(error: unknown): string {
  return error instanceof BatonError && error.details !== undefined ? error.details.stderr : '';
}

/** `nft list table` of `table` (family and name, e.g. "inet baton_confirm"), as JSON with `json`: the listing, or
 *  undefined when there is no such table. Any other failure is thrown as the runner raised it. */
export async function listTable(runner: CommandRunner, nft: string, table: string, json = false): Promise<string | undefined> {
  try {
    return await runner.run(nft, [...(json ? ['-j'] : []), 'list', 'table', ...table.split(' ')]);
  } catch (error) {
    if (stderrOf(error).includes('No such file or directory')) return undefined;
    throw error;
  }
}
