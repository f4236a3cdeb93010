// `baton check-config [FILE]`: validates a configuration and its secret file without starting anything.

import {loadConfig} from '../../agent/config/schema.js';
import type {Output} from '../output.js';

export async function run(out: Output, options: {readonly file: string}): Promise<number> {
  const config = await loadConfig(options.file);
  out.stdout(`${config.file}: valid\n` +
    `  ${config.node} of pair ${config.pair}; beacons ${config.listen.address}:${config.listen.port} -> ${config.peer.address}:${config.peer.port}\n` +
    `  service IP ${config.service.ip.cidr} on ${config.service.interface} (${config.service.mode} mode)\n` +
    `  heartbeat every ${config.heartbeat.intervalMs} ms, peer dead after ${config.heartbeat.deadAfterMs} ms; key id ${config.keyring.signing.id}\n`);
  return 0;
}
