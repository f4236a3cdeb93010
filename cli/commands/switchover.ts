// `baton switchover`: asks the local agent to move the service IP to the other host and prints its progress live.

import type {SwitchoverOptions, SwitchProgress, SwitchResult} from '../../agent/control-protocol.js';
import {callAgent} from '../control-client.js';
import {EXIT_OK, EXIT_ROLLED_BACK} from '../exit-codes.js';
import {formatProgress, formatSwitchResult} from '../format.js';
import type {Output} from '../output.js';
import {resolveSocket} from './status.js';

export interface SwitchoverCommand {
  readonly config: string;
  readonly socket: string | undefined;
  readonly json: boolean;
  readonly options: SwitchoverOptions;
}

// The agent reports progress at least every second during the long waits (preflight, confirmation); silence
// for this long means it is stuck or gone.
const IDLE_TIMEOUT_MS = 60_000;

export async function run(out: Output, command: SwitchoverCommand): Promise<number> {
  const socket = await resolveSocket(command.config, command.socket, (note) => out.stderr(`baton: ${note}\n`));
  const printer = createProgressPrinter();
  const result = await callAgent(socket, {id: 'switchover', type: 'switchover', options: command.options}, IDLE_TIMEOUT_MS,
    (progress) => {
      if (command.json) return;
      const line = printer(progress);
      if (line !== undefined) out.stdout(line);
    }) as SwitchResult;
  out.stdout(command.json ? `${JSON.stringify(result, null, 2)}\n` : formatSwitchResult(result));
  return result.outcome === 'rolled-back' ? EXIT_ROLLED_BACK : EXIT_OK;
}

// While confirmation waits, a line is printed when the count changes, and otherwise every few seconds, so the
// operator sees it is alive without a screenful of identical lines.
const WAITING_REPEAT_MS = 5000;

function createProgressPrinter(): (progress: SwitchProgress) => string | undefined {
  let lastCount = -2;
  let lastPrintedAt = -Infinity;
  return (progress) => {
    if (progress.kind === 'waiting') {
      if (progress.count === lastCount && progress.elapsedMs - lastPrintedAt < WAITING_REPEAT_MS) return undefined;
      lastCount = progress.count;
      lastPrintedAt = progress.elapsedMs;
    }
    return formatProgress(progress);
  };
}
