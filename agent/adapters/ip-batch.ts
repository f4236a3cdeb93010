// One long-lived `ip -force -batch -` for the steps that change the interface, so that adding or removing the service
// IP during a switch or a takeover costs a write to a pipe, not a process start: measured in the lab, 0.2–2 ms from
// the write to the kernel's change against 5–15 ms for a spawned `ip` at idle, and far more on a busy host, where
// fork, exec and dynamic linking wait for a core.
//
// iproute2 reads one command per line and, with -force, goes on after a failure; a failed command prints its error
// and then `Command failed -:N` (N: the line number) on stderr, which is unbuffered. To know that command N is done
// and whether it failed, each command is followed by a sentinel that always fails (`link show dev` of a name no
// interface has): once the sentinel's `Command failed -:N+1` is read, everything command N printed is in.

import type {ChildProcessWithoutNullStreams} from 'node:child_process';
import {BatonError} from '../errors.js';
import {HelperChild, spawnHelper} from './helper-process.js';

// Interface names may not hold '/', ':' or whitespace; '!' is allowed but no one names an interface this way.
const SENTINEL = 'link show dev baton!sync';
const FAILED_LINE = /^Command failed -:(\d+)$/;
// A batch command is one netlink round trip; this long means the helper is stuck, and it is replaced.
const DEFAULT_TIMEOUT_MS = 5000;
// ip exits within a millisecond of its stdin closing; a stop or an exec in place waits this long at most.
const CLOSE_WAIT_MS = 500;

interface Pending {
  readonly line: number;
  readonly sentinel: number;
  readonly text: string;
  readonly errors: string[];
  readonly settle: (error: BatonError | undefined) => void;
}

export interface IpBatchOptions {
  /** The ip program; default `ip` from PATH. */
  readonly program?: string;
  readonly timeoutMs?: number;
}

export class IpBatch {
  readonly #program: string;
  readonly #helper: HelperChild<void, Pending>;
  #lines = 0;
  #stderr = '';

  constructor(options: IpBatchOptions = {}) {
    this.#program = options.program ?? 'ip';
    this.#helper = new HelperChild(() => this.#start(), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** Starts the helper now, so the first switch does not pay for it. Idempotent; never throws (run() reports). */
  warm(): void {
    try {
      this.#helper.ensure();
    } catch {
      // run() starts it again and reports why it cannot.
    }
  }

  /**
   * Runs one ip command (words as in `ip WORDS`, e.g. ['address', 'add', '192.0.2.100/24', 'dev', 'eth0']). Resolves
   * when ip has done it; throws BatonError COMMAND_FAILED with ip's own message (details.stderr) when it failed.
   */
  run(words: readonly string[]): Promise<void> {
    if (words.some((word) => word === '' || /[\s"'\\#]/.test(word))) {
      return Promise.reject(new BatonError('COMMAND_FAILED', `not a batch command: ${JSON.stringify(words)}`));
    }
    const text = words.join(' ');
    try {
      this.#helper.ensure();
    } catch (error) {
      return Promise.reject(error);
    }
    const line = ++this.#lines;
    const sentinel = ++this.#lines;
    return this.#helper.request({line, sentinel, text, errors: []}, `${text}\n${SENTINEL}\n`,
      () => new BatonError('COMMAND_TIMEOUT', `\`ip ${text}\` (batch) did not finish within ${this.#helper.timeoutMs} ms; the helper is restarted`));
  }

  /** Ends the helper (its stdin closes, it exits) and waits, at most `waitMs`, for it to be gone; the next run()
   *  starts a new one. */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    await this.#helper.close(waitMs);
  }

  #start(): ChildProcessWithoutNullStreams {
    const child: ChildProcessWithoutNullStreams = spawnHelper([this.#program, '-force', '-batch', '-'], `${this.#program} -batch`, (why) => {
      if (this.#helper.isCurrent(child)) this.#helper.fail(new BatonError('COMMAND_FAILED', why));
    });
    this.#lines = 0;
    this.#stderr = '';
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.#read(chunk));
    return child;
  }

  #read(chunk: string): void {
    this.#stderr += chunk;
    const lines = this.#stderr.split('\n');
    this.#stderr = lines.pop() ?? '';
    for (const text of lines) {
      const failed = FAILED_LINE.exec(text.trim());
      const head = this.#helper.pending[0];
      if (head === undefined) continue;
      if (failed === null) {
        head.errors.push(text.trim());
        continue;
      }
      const number = Number(failed[1]);
      if (number === head.line) {
        // The command's own error lines came first; the sentinel's follow, then its Command failed.
        head.errors.push(`(failed)`);
      } else if (number === head.sentinel) {
        this.#helper.pending.shift();
        const failedAt = head.errors.indexOf('(failed)');
        if (failedAt === -1) {
          head.settle(undefined);
        } else {
          const stderr = head.errors.slice(0, failedAt).join('\n');
          head.settle(new BatonError('COMMAND_FAILED', `\`ip ${head.text}\` failed: ${stderr || 'no message'}`,
            {details: {exitCode: 1, stdout: '', stderr}}));
        }
      }
    }
  }
}
