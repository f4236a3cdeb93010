// `baton check-config [FILE]`: validates a configuration and its secret file without starting anything, and says
// whether this host can drain a planned switch.

import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createNftDrainDriver} from '../../agent/adapters/nft-drain-driver.js';
import {readFile} from 'node:fs/promises';
import {resolve} from 'node:path';
import {type Config, DEFAULT_CONFIG_FILE, loadConfig} from '../../agent/config/schema.js';
import {parseSandboxDropIn, SANDBOX_DROP_IN, sandboxProblems} from '../../agent/config/unit-sandbox.js';
import {describeError} from '../../agent/errors.js';
import type {DrainDriver} from '../../agent/ports.js';
import type {Output} from '../output.js';

export async function run(out: Output, options: {readonly file: string}): Promise<number> {
  const config = await loadConfig(options.file);
  const drain = await describeDrain(config, createNftDrainDriver(createExecaRunner(), {interface: config.service.interface}));
  out.stdout(`${config.file}: valid\n` +
    `  ${config.node} of pair ${config.pair}; beacons ${config.listen.address}:${config.listen.port} -> ${config.peer.address}:${config.peer.port}\n` +
    `  service IP ${config.service.ip.cidr} on ${config.service.interface} (${config.service.mode} mode)\n` +
    `  heartbeat every ${config.heartbeat.intervalMs} ms, peer dead after ${config.heartbeat.deadAfterMs} ms; key id ${config.keyring.signing.id}\n` +
    `  ${describeReplayProtection(config)}\n` +
    `  ${drain}\n` +
    (resolve(options.file) === DEFAULT_CONFIG_FILE ? await describeSandbox(config, SANDBOX_DROP_IN) : ''));
  return 0;
}

/** How the peer's datagrams are told from recordings, and what that asks of the hosts. */
export function describeReplayProtection(config: Config): string {
  return config.heartbeat.replayProtection === 'clock'
    ? `replay protection: clock (sent-at within ${config.heartbeat.maxClockSkewMs} ms of this host's clock: keep both hosts on NTP)`
    : 'replay protection: acknowledged (the clocks are not compared; beacons must pass both ways, and the peer should say acknowledged too)';
}

/**
 * For the config the unit runs: whether the allow-lists `baton install` wrote still allow it. The agent refuses a
 * config that needs more (at start and on reload), so an edit is checked here before `systemctl reload`.
 */
export async function describeSandbox(config: Config, dropIn: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(dropIn, 'utf8');
  } catch {
    return ''; // Not installed by `baton install` (the lab, a test, a hand-made unit): nothing to compare with.
  }
  const problems = sandboxProblems(config, parseSandboxDropIn(text));
  if (problems.length === 0) return `  sandbox: ${dropIn} allows what this config needs\n`;
  return `  WARNING sandbox: the agent will refuse this config, because ${dropIn} does not allow:\n` +
    problems.map((problem) => `    - ${problem}\n`).join('') +
    '    run `baton install --keep-config` to write it for this config, then `systemctl restart baton-agent`\n';
}

/**
 * Whether a planned switch drains on this host, and why not when it cannot: the same checks as the agent makes
 * before a switch (participant.drainReadiness), run against this host's nftables. A host that cannot drain still
 * switches, cutting the connections open at the move; so this is a warning, not a reason to refuse the file.
 */
export async function describeDrain(config: Config, drain: DrainDriver): Promise<string> {
  if (!config.drain.enabled) return 'drain: off (drain.enabled: false): a planned switch cuts the connections open at the move';
  if (config.service.mode !== 'address') return 'drain: none in link mode (the giver\'s interface goes down): a planned switch cuts the connections open at the move';
  if (config.service.ip.family !== 4) return 'drain: none for an IPv6 service address yet: a planned switch cuts the connections open at the move';
  const why = await drain.unavailable().catch((error: unknown) => describeError(error));
  if (why !== undefined) return `WARNING drain: this host cannot drain: ${why}; a planned switch will cut the connections open at the move`;
  const graceful = config.drain.graceful === undefined ? 'no graceful command (connections must end by themselves)'
    : `then ${[config.drain.graceful.path, ...config.drain.graceful.args].join(' ')}`;
  return `drain: on; connections get ${config.drain.gracefulAfterS} s to end, ${graceful}, ${config.drain.timeoutS} s in all`;
}
