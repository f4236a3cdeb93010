// What the long-lived helpers (`ip -batch`, the gratuitous ARP sender) share: a child started once and kept, that
// must never keep the agent alive, and that is ended by closing its stdin.

import {spawn, type ChildProcessWithoutNullStreams} from 'node:child_process';

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
