// The real ServiceManager: systemd's notify protocol (sd_notify(3)) spoken through `systemd-notify`, and the
// watchdog's ping rate derived from WATCHDOG_USEC/WATCHDOG_PID.
//
// Why a child process: the notify socket is an AF_UNIX SOCK_DGRAM socket, and Node can neither create nor
// write one (node:dgram is UDP only, node:net stream only), and native addons are out. So each message runs
// `systemd-notify`, which ships with systemd itself. Its sender is then that child, not the main PID, and systemd
// accepts a child's message only with NotifyAccess=all (with main or exec, PID 1 drops it: "Got notification
// message from PID …, but reception only permitted for main PID").
// `systemd-notify --pid=` cannot help: it can only claim our PID in SCM_CREDENTIALS with CAP_SYS_ADMIN, which the
// unit does not grant (it then falls back to its own PID). See systemd/baton-agent.service for the trade-off.
//
// Delivery is synchronous: systemd-notify (systemd 246 and later; seen with 252) follows each message with BARRIER=1 carrying a pipe
// and waits until PID 1 has read it and closed the pipe. Without that (--no-block) the child may exit before
// PID 1 looks up its cgroup, and PID 1 then drops the message as coming from an unknown process.

import {BatonError} from '../errors.js';
import type {Clock, CommandRunner, ServiceManager} from '../ports.js';

// systemd-notify waits up to 5 s for PID 1 to take the barrier (its own fixed timeout), then fails by itself;
// 1 s more lets it say so instead of being killed.
const NOTIFY_TIMEOUT_MS = 6000;
const USEC_PER_MS = 1000;
// sd_watchdog_enabled(3): ping at half the timeout, so one late or lost ping never costs a restart.
const PINGS_PER_TIMEOUT = 2;

export interface SystemdNotifierOptions {
  readonly runner: CommandRunner;
  /** $NOTIFY_SOCKET as systemd set it; undefined when not started by systemd as Type=notify: then every method
   *  does nothing. Passed to the child explicitly, so main can unset it and hooks do not inherit it. */
  readonly notifySocket: string | undefined;
}

export function createSystemdNotifier(options: SystemdNotifierOptions): ServiceManager {
  const {runner, notifySocket} = options;
  const send = async (assignments: readonly string[]): Promise<void> => {
    if (notifySocket === undefined || notifySocket === '') return;
    // `env` puts the socket into the child's environment only; systemd-notify reads nothing else.
    await runner.run('env', [`NOTIFY_SOCKET=${notifySocket}`, 'systemd-notify', ...assignments], {timeoutMs: NOTIFY_TIMEOUT_MS});
  };
  return {
    ready: (status) => send(['READY=1', `STATUS=${oneLine(status)}`]),
    watchdog: () => send(['WATCHDOG=1']),
    status: (text) => send([`STATUS=${oneLine(text)}`]),
    stopping: () => send(['STOPPING=1', 'STATUS=stopping']),
  };
}

// The protocol is newline-separated VAR=value lines: a newline inside the status would start a new assignment.
function oneLine(text: string): string {
  return text.replaceAll(/[\r\n]+/g, ' ');
}

export interface WatchdogEnvironment {
  /** $WATCHDOG_USEC: the unit's WatchdogSec= in µs, set by systemd only when the watchdog is on. */
  readonly watchdogUsec: string | undefined;
  /** $WATCHDOG_PID: the process the watchdog is meant for; unset means "the main process". */
  readonly watchdogPid: string | undefined;
  /** This process. */
  readonly pid: number;
}

/**
 * How often to send WATCHDOG=1, in ms, or undefined when systemd watches nothing here (sd_watchdog_enabled(3)):
 * no WATCHDOG_USEC, or a WATCHDOG_PID of another process (a parent that exec'd us without fixing it up).
 * Throws CONFIG_INVALID when the variables are set but malformed: silently not pinging would mean a restart loop.
 */
export function watchdogPingIntervalMs(env: WatchdogEnvironment): number | undefined {
  if (env.watchdogUsec === undefined || env.watchdogUsec === '') return undefined;
  if (env.watchdogPid !== undefined && env.watchdogPid !== '') {
    if (!/^[1-9]\d*$/.test(env.watchdogPid)) {
      throw new BatonError('CONFIG_INVALID', `WATCHDOG_PID from the service manager is '${env.watchdogPid}', expected a process id`);
    }
    if (Number(env.watchdogPid) !== env.pid) return undefined;
  }
  if (!/^[1-9]\d*$/.test(env.watchdogUsec)) {
    throw new BatonError('CONFIG_INVALID', `WATCHDOG_USEC from the service manager is '${env.watchdogUsec}', expected a positive integer of µs`);
  }
  return Number(env.watchdogUsec) / USEC_PER_MS / PINGS_PER_TIMEOUT;
}

export interface WatchdogOptions {
  readonly manager: ServiceManager;
  readonly everyMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Called after each ping with its error, or undefined when it got through; the loop goes on either way. */
  readonly onPing: (error: unknown) => void;
}

/**
 * Pings the watchdog every `everyMs` until `signal` aborts; resolves then. The timer lives on the agent's own
 * event loop on purpose: a loop that is stuck (a blocking call, a runaway microtask chain) stops the pings, and
 * systemd restarts the agent after WatchdogSec. Fixed-rate: a slow ping delays the next one, never adds up.
 */
export async function runWatchdog(options: WatchdogOptions): Promise<void> {
  const {manager, everyMs, clock, signal, onPing} = options;
  let due = clock.now();
  while (!signal.aborted) {
    let failure: unknown;
    try {
      await manager.watchdog();
    } catch (error) {
      failure = error;
    }
    onPing(failure);
    // The next slot after now: pings missed while one hung are skipped, not sent in a burst.
    due += everyMs * Math.max(1, Math.ceil((clock.now() - due) / everyMs));
    try {
      await clock.sleep(due - clock.now(), signal);
    } catch {
      // Aborted: the loop condition ends it.
    }
  }
}
