// `baton rehearse`: the drill on the pair configured on these hosts, with this machine as the client.

import type {StatusReport} from '../../agent/control-protocol.js';
import {callAgent} from '../control-client.js';
import {runDrill} from '../drill/drill.js';
import {createAgentTarget, requireRehearsalAids} from '../drill/agent-target.js';
import {formatDrillReport} from '../drill/report.js';
import {writeDrillReport} from '../drill/report-html.js';
import {EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK} from '../exit-codes.js';
import type {Output} from '../output.js';
import {resolveSocket} from './status.js';

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
  // Refused before the first step rather than at the failure phase, after two switches.
  if (command.withFailure) requireRehearsalAids(await callAgent(socket, {id: 'rehearse', type: 'status'}) as StatusReport);
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
