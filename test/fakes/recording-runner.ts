// A CommandRunner that records every command in order and answers from a script instead of running anything.

import {createCommandFailedError, formatCommandLine} from '../../agent/adapters/execa-runner.js';
import {BatonError} from '../../agent/errors.js';
import type {CommandOptions, CommandRunner} from '../../agent/ports.js';

export interface RecordedCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly timeoutMs: number | undefined;
  readonly interruptAfterMs: number | undefined;
  /** Recorded only when the caller gave one. */
  readonly env?: Readonly<Record<string, string>>;
}

/** What a scripted command does: print stdout, or throw (a BatonError as the real runner would). */
export type ScriptedReply = string | BatonError | ((command: RecordedCommand) => string);

interface Script {
  readonly matches: (line: string) => boolean;
  readonly describe: string;
  readonly reply: ScriptedReply;
  /** undefined = answers every time; otherwise consumed after that many calls. */
  remaining: number | undefined;
}

export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCommand[] = [];
  readonly #scripts: Script[] = [];

  /**
   * Scripts the reply to a command line (`ip -j link show`, exact, or a RegExp over it). Earlier scripts win;
   * `times` makes a reply one-shot (or n-shot). Unscripted commands print nothing and succeed.
   */
  on(commandLine: string | RegExp, reply: ScriptedReply, options: {times?: number} = {}): this {
    this.#scripts.push({
      matches: typeof commandLine === 'string' ? (line) => line === commandLine : (line) => commandLine.test(line),
      describe: String(commandLine),
      reply,
      remaining: options.times,
    });
    return this;
  }

  async run(file: string, args: readonly string[], options?: CommandOptions): Promise<string> {
    const command: RecordedCommand = {file, args: [...args], timeoutMs: options?.timeoutMs, interruptAfterMs: options?.interruptAfterMs,
      ...(options?.env === undefined ? {} : {env: options.env})};
    this.calls.push(command);
    const line = formatCommandLine(file, args);
    const script = this.#scripts.find((s) => s.remaining !== 0 && s.matches(line));
    if (script === undefined) return '';
    if (script.remaining !== undefined) script.remaining -= 1;
    const {reply} = script;
    if (reply instanceof BatonError) throw reply;
    return typeof reply === 'function' ? reply(command) : reply;
  }

  /** Every recorded command as a command line, in order. */
  commandLines(): string[] {
    return this.calls.map((c) => formatCommandLine(c.file, c.args));
  }

  /** Throws when a one-shot script was never used: the code under test skipped a command the test expected. */
  assertNothingPending(): void {
    const pending = this.#scripts.filter((s) => s.remaining !== undefined && s.remaining > 0).map((s) => s.describe);
    if (pending.length > 0) throw new Error(`scripted commands never run: ${pending.join(', ')}`);
  }
}

/** The COMMAND_FAILED error the real runner raises when `commandLine` exits `exitCode` (words split on spaces). */
export function commandFailure(commandLine: string, exitCode: number, stderr: string, stdout = ''): BatonError {
  const [file = '', ...args] = commandLine.split(' ');
  return createCommandFailedError({file, args}, {exitCode, stdout, stderr});
}
