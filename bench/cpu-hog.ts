// A bounded CPU hog for the bench's "loaded" condition: one busy-loop shell per core, each under `timeout` so it
// ends by itself even if the bench is killed, and ended by PID (the `timeout` and its shell) when the bench is done
// with it, also when it fails. Every hog still running is ended when this process exits.

import {spawn} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {setTimeout as sleep} from 'node:timers/promises';
import {isProcessAlive} from '../cli/lab/web.js';

export interface CpuHog {
  /** The PIDs of the `timeout` processes and of their busy shells. */
  readonly pids: readonly number[];
  /** Whether every busy shell is still running (a hog that died early would leave the "loaded" figures idle). */
  allAlive(): boolean;
  /** Ends them (SIGTERM, then SIGKILL), by PID. Idempotent. */
  stop(): Promise<void>;
}

// Hogs nobody stopped yet: the exit handler ends them.
const running = new Set<number>();
process.on('exit', () => {
  for (const pid of running) signal(pid, 'SIGKILL');
});

const BUSY_LOOP = 'while :; do :; done';
const START_TIMEOUT_MS = 5000;
const STOP_GRACE_MS = 2000;

/** Starts `count` busy loops, each bounded by `boundS` seconds; resolves once each has its shell running. */
export async function startCpuHog(count: number, boundS: number): Promise<CpuHog> {
  const timeouts: number[] = [];
  const shells: number[] = [];
  const hog: CpuHog = {
    get pids() {
      return [...timeouts, ...shells];
    },
    allAlive: () => shells.length === count && shells.every((pid) => isProcessAlive(pid)),
    async stop() {
      const targets = [...shells, ...timeouts];
      for (const pid of targets) signal(pid, 'SIGTERM');
      const deadline = Date.now() + STOP_GRACE_MS;
      while (targets.some((pid) => isProcessAlive(pid)) && Date.now() < deadline) await sleep(20);
      for (const pid of targets) {
        if (isProcessAlive(pid)) signal(pid, 'SIGKILL');
        running.delete(pid);
      }
    },
  };
  try {
    for (let i = 0; i < count; i += 1) {
      const child = spawn('timeout', [String(Math.round(boundS)), 'sh', '-c', BUSY_LOOP], {stdio: 'ignore'});
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.unref();
      if (child.pid === undefined) throw new Error('the CPU hog started without a PID');
      timeouts.push(child.pid);
      running.add(child.pid);
      const shell = await childOf(child.pid);
      shells.push(shell);
      running.add(shell);
    }
    return hog;
  } catch (error) {
    await hog.stop();
    throw error;
  }
}

/** The one child of `timeout` (its shell), read from /proc. */
async function childOf(pid: number): Promise<number> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    } catch {
      // not there yet, or gone: decided below
    }
    const child = Number(children.split(/\s+/)[0]);
    if (Number.isInteger(child) && child > 0) return child;
    if (Date.now() > deadline) throw new Error(`the CPU hog's \`timeout\` (pid ${pid}) started no shell within ${START_TIMEOUT_MS} ms`);
    await sleep(10);
  }
}

/** Signals `pid` only while it is still one of ours (its command line holds the busy loop): a PID the kernel gave to
 *  something else after the hog's bound ran out is left alone. */
function signal(pid: number, name: NodeJS.Signals): void {
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(BUSY_LOOP)) return;
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
