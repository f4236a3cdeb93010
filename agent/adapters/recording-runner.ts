// A CommandRunner that runs nothing: it records each command line and answers as the real programs would when
// all goes well. Behind `baton switchover --dry-run`, so the printed commands are exactly those the real ip
// driver would run.

import type {CommandRunner} from '../ports.js';
import {formatCommandLine} from './execa-runner.js';

export interface RecordingCommandRunner extends CommandRunner {
  commands(): string[];
  /** Records what a long-lived helper would be asked to do, in the place a command would have. */
  note(text: string): void;
}

export function createRecordingRunner(): RecordingCommandRunner {
  const lines: string[] = [];
  return {
    async run(file, args) {
      lines.push(formatCommandLine(file, args));
      // arping's summary is what the driver reads to know a packet left; `ip -j` answers JSON.
      if (file === 'arping') return 'Sent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n';
      return args.includes('-j') ? '[]' : '';
    },
    commands: () => [...lines],
    note: (text) => {
      lines.push(text);
    },
  };
}
