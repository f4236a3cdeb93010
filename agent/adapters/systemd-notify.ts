// The real ServiceManager: systemd's notify protocol (sd_notify(3)) sent by the agent's own process, and the
// watchdog's ping rate derived from WATCHDOG_USEC/WATCHDOG_PID.
//
// The notify socket is an AF_UNIX SOCK_DGRAM socket, and Node can neither create nor connect one (node:dgram is UDP
// only, node:net stream only), and native addons are out. But Node can write(2) to a file descriptor it inherits,
// and a write on a connected datagram socket sends one datagram, which the kernel stamps (SCM_CREDENTIALS, which PID
// 1 asks for) with the writer's PID: ours. So the agent starts through a launcher (LAUNCHER below, Perl: perl-base
// is Essential) that connects a socket to $NOTIFY_SOCKET, keeps it open across exec and execs Node again in the
// same process, naming the descriptor in BATON_NOTIFY_FD. Every message then comes from the main PID, and the unit
// can say NotifyAccess=main: a child (a hook, `ip`) that writes to the descriptor it inherited is refused by PID 1.
// Node marks the descriptor close-on-exec once it runs, so a restart in place (SIGHUP) goes through the launcher
// again (agent/main.ts), which connects a new one.
//
// Where the launcher could not connect (no perl), the messages go through `systemd-notify` children, as before:
// PID 1 takes those only with NotifyAccess=all ("Got notification message from PID …, but reception only
// permitted for main PID"); `systemd-notify --pid=` can only claim our PID with CAP_SYS_ADMIN, which the unit does
// not grant. systemd-notify (systemd 246 and later; seen with 252) follows each message with BARRIER=1 carrying a
// pipe and waits until PID 1 has read it, so the child cannot exit before PID 1 looks up its cgroup.

import {writeSync} from 'node:fs';
import {BatonError} from '../errors.js';
import type {Clock, CommandRunner, ServiceManager} from '../ports.js';

// systemd-notify waits up to 5 s for PID 1 to take the barrier (its own fixed timeout), then fails by itself;
// 1 s more lets it say so instead of being killed.
const NOTIFY_TIMEOUT_MS = 6000;
const USEC_PER_MS = 1000;
// sd_watchdog_enabled(3): ping at half the timeout, so one late or lost ping never costs a restart.
const PINGS_PER_TIMEOUT = 2;

/**
 * Run as `perl -e LAUNCHER -- NODE ARGS…` by the agent itself, in its own process (execve): connects to
 * $NOTIFY_SOCKET ('@' = abstract), clears close-on-exec, and execs NODE ARGS… with BATON_NOTIFY_FD set to the
 * descriptor, or to `none: why` when it could not connect (so the agent knows, and does not launch itself again).
 */
export const LAUNCHER = String.raw`
use strict; use warnings; use Socket; use Fcntl;
my $path = $ENV{NOTIFY_SOCKET} // '';
my $socket;
$ENV{BATON_NOTIFY_FD} = 'none: NOTIFY_SOCKET is not set';
if ($path ne '') {
  $path =~ s/^@/\0/;
  if (!socket($socket, AF_UNIX, SOCK_DGRAM, 0)) { $ENV{BATON_NOTIFY_FD} = "none: socket: $!" }
  elsif (!connect($socket, pack_sockaddr_un($path))) { $ENV{BATON_NOTIFY_FD} = "none: connect to $ENV{NOTIFY_SOCKET}: $!" }
  else {
    fcntl($socket, F_SETFD, fcntl($socket, F_GETFD, 0) & ~FD_CLOEXEC) or die "fcntl: $!
";
    $ENV{BATON_NOTIFY_FD} = fileno($socket);
  }
}
exec { $ARGV[0] } @ARGV or die "cannot start $ARGV[0]: $!
";
`;

/** What BATON_NOTIFY_FD says: the descriptor, or why there is none. */
export function parseNotifyFd(value: string | undefined): number | {readonly why: string} | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  return {why: value.replace(/^none: /, '')};
}

export interface SystemdNotifierOptions {
  readonly runner: CommandRunner;
  /** The launcher's descriptor connected to the notify socket: messages are written to it by this process. */
  readonly notifyFd?: number | undefined;
  /** $NOTIFY_SOCKET as systemd set it; undefined when not started by systemd as Type=notify: then every method
   *  does nothing. Passed to the child explicitly, so main can unset it and hooks do not inherit it. */
  readonly notifySocket: string | undefined;
}

export function createSystemdNotifier(options: SystemdNotifierOptions): ServiceManager {
  const {runner, notifySocket, notifyFd} = options;
  const send = async (assignments: readonly string[]): Promise<void> => {
    if (notifyFd !== undefined) {
      // One write, one datagram; a failure (PID 1 gone: ECONNREFUSED) is thrown like systemd-notify's exit.
      writeSync(notifyFd, assignments.join('\n'));
      return;
    }
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
