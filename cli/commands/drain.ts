// `baton drain HOST` (etcd mode): HOST no longer takes the service, and gives it to another host if it holds it.

import type {DrainResult} from '../../agent/control-protocol.js';
import {callAgent} from '../control-client.js';
import {EXIT_OK, EXIT_ROLLED_BACK} from '../exit-codes.js';
import {formatProgress, formatSwitchResult} from '../format.js';
import type {Output} from '../output.js';
import {resolveSocket} from './status.js';

// As switchover's: the agent reports progress at least every phase; silence this long means it is stuck or gone.
const IDLE_TIMEOUT_MS = 60_000;

export async function run(out: Output, command: {readonly config: string; readonly socket: string | undefined; readonly json: boolean;
  readonly host: string}): Promise<number> {
  const socket = await resolveSocket(command.config, command.socket, (note) => out.stderr(`baton: ${note}\n`));
  const result = await callAgent(socket, {id: 'drain', type: 'drain', host: command.host}, IDLE_TIMEOUT_MS, (progress) => {
    if (!command.json && progress.kind !== 'waiting') out.stdout(formatProgress(progress));
  }) as DrainResult;
  if (command.json) out.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else out.stdout(`${result.moved === undefined ? '' : formatSwitchResult(result.moved)}${result.text}\n`);
  // Drained, but the service is still on it: the operator must not take the host down.
  const stuck = (result.stuck ?? []).length > 0 || (result.moved !== undefined && result.moved.outcome !== 'done');
  return stuck ? EXIT_ROLLED_BACK : EXIT_OK;
}
