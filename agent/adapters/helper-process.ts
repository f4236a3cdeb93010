// What the long-lived helpers (`ip -batch`, the gratuitous ARP sender, the netlink address helper) share: a child
// started once and kept, that must never keep the agent alive, and that is ended by closing its stdin.

import {spawn, type ChildProcessWithoutNullStreams} from 'node:child_process';
import {BatonError} from '../errors.js';

/**
 * Starts `command` with three pipes. `gone` is called once with why, when the program cannot be started or exits;
 * `name` says which helper in that message. Neither the child nor its pipes keep the event loop alive; a dead
 * child's EPIPE on stdin is left to `gone`.
 */
export function spawnHelper(command: readonly [string, ...string[]], name: string, gone: (why: string) => void): ChildProcessWithoutNullStreams {
  const [program, ...args] = command;
  const child = spawn(program, args, {stdio: ['pipe', 'pipe', 'pipe']});
  let reported = false;
  const report = (why: string): void => {
    if (reported) return;
    reported = true;
    gone(why);
  };
  child.on('error', (error) => report(`cannot run \`${name}\`: ${error.message}`));
  child.on('exit', (code, signal) => report(`\`${name}\` exited (${signal ?? code})`));
  child.stdin.on('error', () => undefined);
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as {unref?: () => void}).unref?.();
  return child;
}

/** Closes the helper's stdin, which ends it, and waits at most `waitMs` for it to be gone. */
export async function endHelper(child: ChildProcessWithoutNullStreams | undefined, waitMs: number): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
  })]);
  clearTimeout(timer);
}

/** A request waiting for the helper's answer. */
export interface Waiting<R> {
  readonly settle: (error: BatonError | undefined, result?: R) => void;
}

/**
 * One helper child and the requests waiting for it, answered in order. `start` spawns it (with spawnHelper) and
 * wires its output to the protocol, which takes answered requests from `pending`. A request not answered within
 * `timeoutMs` fails, with every other waiting one, and the helper is killed; the next request starts a new one.
 */
export class HelperChild<R, P extends Waiting<R>> {
  readonly pending: P[] = [];
  readonly timeoutMs: number;
  readonly #start: () => ChildProcessWithoutNullStreams;
  #child: ChildProcessWithoutNullStreams | undefined;

  constructor(start: () => ChildProcessWithoutNullStreams, timeoutMs: number) {
    this.#start = start;
    this.timeoutMs = timeoutMs;
  }

  /** The running child, started if there is none; throws what spawn throws. */
  ensure(): ChildProcessWithoutNullStreams {
    this.#child ??= this.#start();
    return this.#child;
  }

  /** True while `child` is the helper in use (not one already replaced or closed). */
  isCurrent(child: ChildProcessWithoutNullStreams): boolean {
    return this.#child === child;
  }

  /** Writes `text` and waits, `timeoutMs` at most, for the protocol to settle `entry`; `timedOut` is the error when
   *  it does not. */
  request(entry: Omit<P, 'settle'>, text: string, timedOut: () => BatonError, timeoutMs = this.timeoutMs): Promise<R> {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = this.ensure();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(timedOut()), timeoutMs);
      this.pending.push({
        ...entry,
        settle: (error: BatonError | undefined, result?: R) => {
          clearTimeout(timer);
          if (error === undefined) resolve(result as R);
          else reject(error);
        },
      } as unknown as P);
      child.stdin.write(text);
    });
  }

  /** Kills the helper and fails every waiting request with `error`. */
  fail(error: BatonError): void {
    const child = this.#child;
    this.#child = undefined;
    child?.kill('SIGKILL');
    for (const waiting of this.pending.splice(0)) waiting.settle(error);
  }

  /** Ends the helper (its stdin closes, it exits) and waits, at most `waitMs`, for it to be gone. */
  async close(waitMs: number): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    await endHelper(child, waitMs);
  }
}

/**
 * A long-lived Perl program of the agent's own (`perl -e SCRIPT`) that answers each request with one line on stdout,
 * in order: the gratuitous ARP sender and the netlink address helper. `answer` settles the oldest waiting request
 * with its line. Where perl cannot be started at all, `unusable` says why, and callers fall back to a program of
 * their own (arping, ip); a helper that exits or hangs is replaced at the next request.
 */
export class PerlLineHelper<R, P extends Waiting<R>> {
  readonly #helper: HelperChild<R, P>;
  readonly #command: readonly [string, ...string[]];
  readonly #script: string;
  readonly #name: string;
  readonly #answer: (head: P, line: string) => void;
  #stdout = '';
  #unusable: string | undefined;

  /** @param command how to start perl, e.g. ['ip', 'netns', 'exec', 'ns1', 'perl'] in tests */
  constructor(options: {command: readonly [string, ...string[]]; script: string; name: string; timeoutMs: number; answer: (head: P, line: string) => void}) {
    this.#command = options.command;
    this.#script = options.script;
    this.#name = options.name;
    this.#answer = options.answer;
    this.#helper = new HelperChild(() => this.#start(), options.timeoutMs);
  }

  /** Why the helper cannot run on this host (perl is missing or not executable), once that is known. */
  get unusable(): string | undefined {
    return this.#unusable;
  }

  get timeoutMs(): number {
    return this.#helper.timeoutMs;
  }

  /** Starts the helper now, so the first request does not pay for it. Never throws (request() reports). */
  warm(): void {
    if (this.#unusable === undefined) this.#helper.ensure();
  }

  /** Writes `text` (one line) and waits, `timeoutMs` at most (default: the helper's), for its answer; fails at once
   *  when perl cannot run here. */
  request(entry: Omit<P, 'settle'>, text: string, timedOut: () => BatonError, timeoutMs?: number): Promise<R> {
    if (this.#unusable !== undefined) return Promise.reject(new BatonError('COMMAND_FAILED', this.#unusable));
    return this.#helper.request(entry, text, timedOut, timeoutMs);
  }

  /** Ends the helper and waits, at most `waitMs`, for it to be gone; the next request starts a new one. */
  async close(waitMs: number): Promise<void> {
    await this.#helper.close(waitMs);
  }

  #start(): ChildProcessWithoutNullStreams {
    let stderr = '';
    const child: ChildProcessWithoutNullStreams = spawnHelper([...this.#command, '-e', this.#script], this.#name, (why) => {
      if (!this.#helper.isCurrent(child)) return;
      // No program to run: every later request would fail the same way; the caller falls back.
      if (child.pid === undefined) this.#unusable = why;
      this.#helper.fail(new BatonError('COMMAND_FAILED', stderr.trim() === '' ? why : `${why}: ${stderr.trim()}`));
    });
    this.#stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk;
      const lines = this.#stdout.split('\n');
      this.#stdout = lines.pop() ?? '';
      for (const line of lines) {
        const head = this.#helper.pending.shift();
        if (head !== undefined) this.#answer(head, line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    return child;
  }
}

/** A helper's `error WHY` answer to `request` as the error a failed command gives: WHY is the kernel's own words. */
export function helperLineError(what: string, request: string, line: string, exitCode = 1): BatonError {
  const why = line.replace(/^error /, '');
  return new BatonError('COMMAND_FAILED', `${what} (${request}) failed: ${why}`, {details: {exitCode, stdout: '', stderr: why}});
}

/** An interface name a helper or /sys can be asked about: IFNAMSIZ is 16 with the terminating NUL, and a name has
 *  no '/', ':' or whitespace. */
export const INTERFACE_NAME = /^[^\s/:]{1,15}$/;

/**
 * A Perl sub for the helpers that build ICMPv6 by hand (the duplicate-address probe, the neighbour advertisement):
 * `icmp6_checksum(SRC, DST, MESSAGE)`, the RFC 4443 checksum over the IPv6 pseudo-header (addresses, length, next
 * header 58) and MESSAGE with its checksum field zero.
 */
export const ICMP6_CHECKSUM = String.raw`sub icmp6_checksum {
  my ($src, $dst, $message) = @_;
  my $sum = 0;
  $sum += $_ for unpack('n*', $src . $dst . pack('N x3 C', length($message), 58) . $message);
  $sum = ($sum & 0xffff) + ($sum >> 16) while $sum >> 16;
  return ~$sum & 0xffff;
}`;
