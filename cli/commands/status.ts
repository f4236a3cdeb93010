// `baton status [--json]`: asks the local agent and prints both hosts as it sees them.

import {loadConfig} from '../../agent/config/schema.js';
import type {StatusReport} from '../../agent/control-protocol.js';
import {BatonError, describeError} from '../../agent/errors.js';
import {callAgent} from '../control-client.js';
import {formatStatus} from '../format.js';
import type {Output} from '../output.js';

export interface StatusOptions {
  readonly config: string;
  readonly socket: string | undefined;
  readonly json: boolean;
}

export async function run(out: Output, options: StatusOptions): Promise<number> {
  const socket = await resolveSocket(options.config, options.socket);
  const status = await callAgent(socket, {id: 'status', type: 'status'}) as StatusReport;
  out.stdout(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

/** The control socket: --socket if given, else the one the config names. */
export async function resolveSocket(configFile: string, socket: string | undefined): Promise<string> {
  if (socket !== undefined) return socket;
  try {
    return (await loadConfig(configFile)).controlSocket;
  } catch (error) {
    throw new BatonError('CONFIG_INVALID', `cannot find the control socket from ${configFile}: ${describeError(error)}\n(pass --socket PATH to reach an agent directly)`, {cause: error});
  }
}
