// What every part of the campaign produces: rows of a table, one per case, each passed or failed with the figures
// that were measured. A part is a function of the campaign context; it throws only when it could not run at all.

import type {CommandRunner} from '../agent/ports.js';

export interface CaseResult {
  /** The part: fuzz, flood, forged, crash, faults, input, load. */
  readonly group: string;
  readonly name: string;
  readonly ok: boolean;
  /** What was measured, short enough for a table cell: "sent 300000, rejected 300000, RSS max 64 MB". */
  readonly figures: string;
  /** Why it failed, or what the agent said; printed under the table. */
  readonly detail?: string;
}

export interface CampaignContext {
  /** The fast subset (CI): fewer inputs, shorter floods, a sample of the crash matrix, fewer cycles. */
  readonly fast: boolean;
  readonly runner: CommandRunner;
  /** A scratch directory for this run's labs and files; removed at the end. */
  readonly dir: string;
  /** Where the agents' logs of failed cases are kept after the run (made only when a case fails). */
  readonly keptLogs: string;
  /** Progress for the operator watching the run. */
  say(line: string): void;
  /** A fresh lab prefix: --prefix (default `bl`), then random characters up to the 8 a lab's names take. */
  newPrefix(): string;
}

export interface CampaignPart {
  readonly name: string;
  /** One line on what the part does, printed before it runs. */
  readonly about: string;
  run(context: CampaignContext): Promise<CaseResult[]>;
}
