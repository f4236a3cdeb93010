// `baton resume`: a released host becomes standby again.

import type {ResumeResult} from '../../agent/control-protocol.js';
import {callAgent} from '../control-client.js';
import type {Output} from '../output.js';
import {resolveSocket} from './status.js';

export async function run(out: Output, command: {readonly config: string; readonly socket: string | undefined; readonly json: boolean}): Promise<number> {
  const socket = await resolveSocket(command.config, command.socket, (note) => out.stderr(`baton: ${note}\n`));
  const result = await callAgent(socket, {id: 'resume', type: 'resume', peer: false}) as ResumeResult;
  out.stdout(command.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.state}: ${result.reason}\n`);
  return 0;
}
