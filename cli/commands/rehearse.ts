// `baton rehearse`: the drill on the pair configured on these hosts, with this machine as the client.

import type {RehearsalAids} from '../../agent/control-protocol.js';
import {BatonError, isBatonError} from '../../agent/errors.js';
import {REHEARSAL_ASK_DEADLINE_MS} from '../../agent/rehearsal.js';
import {callAgent} from '../control-client.js';
import {runDrill} from '../drill/drill.js';
import {createAgentTarget, requireRehearsalAids} from '../drill/agent-target.js';
import {formatDrillReport} from '../drill/report.js';
import {writeDrillReport} from '../drill/report-html.js';
import {EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK} from '../exit-codes.js';
import type {Output} from '../output.js';
import {resolveSocket} from './status.js';

// Beyond the agent's own wait for the peer's answer: the socket's round trip and an agent busy with beacons.
const ANSWER_MARGIN_MS = 5000;

export interface RehearseCommand {
  readonly config: string;
  readonly socket: string | undefined;
  readonly json: boolean;
  readonly withFailure: boolean;
  readonly report: string;
  readonly url: string | undefined;
  readonly intervalMs: number;
  readonly client: string | undefined;
  readonly sshConfig: string | undefined;
  readonly clientBaton: string;
}

export async function run(out: Output, command: RehearseCommand): Promise<number> {
  const socket = await resolveSocket(command.config, command.socket, (note) => out.stderr(`baton: ${note}\n`));
  // Refused before the first step rather than at the failure phase, after two switches. The agent asks the peer,
  // which may take REHEARSAL_ASK_DEADLINE_MS when it does not answer: the reply is awaited a little longer.
  if (command.withFailure) {
    const aids = await callAgent(socket, {id: 'rehearse', type: 'rehearsal'}, REHEARSAL_ASK_DEADLINE_MS + ANSWER_MARGIN_MS).catch((error: unknown) => {
      if (!isBatonError(error) || error.code === 'AGENT_UNREACHABLE') throw error;
      // The request has no parameters: refused as bad, it is a type the local agent does not know.
      if (error.code === 'BAD_REQUEST') {
        throw new BatonError('BAD_REQUEST', `the local baton-agent does not support the rehearsal request (${error.message}): it runs an older ` +
          'baton than this command; restart it (`systemctl restart baton-agent`) so that it runs the installed one; nothing was done', {cause: error});
      }
      throw new BatonError(error.code, `--with-failure asks both hosts whether they enable the rehearsal aids: ${error.message}; nothing was done`, {cause: error});
    });
    requireRehearsalAids(aids as RehearsalAids);
  }
  const say = (line: string): void => out.stderr(`${line}\n`);
  const abort = new AbortController();
  const onInterrupt = (): void => {
    if (!abort.signal.aborted) say('\nCtrl-C: stopping the rehearsal after the current step');
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  try {
    const target = await createAgentTarget(socket, command.url, command.client === undefined ? {kind: 'here'}
      : {kind: 'ssh', client: command.client, sshConfig: command.sshConfig, batonDir: command.clientBaton});
    const report = await runDrill(target, {
      title: 'baton rehearsal', withFailure: command.withFailure, probeIntervalMs: command.intervalMs, say, signal: abort.signal,
    });
    const jsonPath = `${command.report.replace(/\.html?$/, '')}.json`;
    await writeDrillReport(report, command.report, jsonPath);
    out.stdout(command.json ? `${JSON.stringify(report, null, 2)}\n` : `\n${formatDrillReport(report)}\nreport: ${command.report} (timeline), ${jsonPath}\n`);
    if (report.interrupted !== undefined) return EXIT_INTERRUPTED;
    return report.ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
