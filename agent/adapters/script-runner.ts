// The CommandRunner for the programs the config names (the hook, command health checks), run the way keepalived's
// enable_script_security runs scripts: as script_user, without the agent's capabilities, with an allow-listed
// environment, and under a supervisor that ends the program's whole process tree, `setsid` or not.
//
// The user: setpriv (util-linux, Essential in Debian) sets the real, effective and saved ids and the groups of
// script_user, empties the inheritable set and sets no_new_privs. Changing every uid from 0 to another clears the
// permitted, effective and ambient capability sets (capabilities(7)), and with no_new_privs neither a setuid
// program nor file capabilities can give any back, so the bounding set does not matter (dropping it would need
// CAP_SETPCAP). The agent needs CAP_SETUID and CAP_SETGID for this; see systemd/baton-agent.service.
//
// The tree: a child that calls setsid() leaves the process group that a timeout signals, and a double fork leaves
// the parent chain (its orphans go to PID 1). A PID namespace needs CAP_SYS_ADMIN, a cgroup of its own needs
// delegation; what any process may do is make itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER, Linux 3.4):
// every orphan below it is then reparented to it, not to PID 1, so every descendant, however it detached, stays
// below it in /proc. The supervisor is a Perl program (perl-base is Essential; Node has no prctl) that does this,
// runs the program, and when the program exits, or at the timeout, signals every process whose parent chain reaches
// it: SIGTERM, then after KILL_GRACE_MS SIGKILL, again until none is left. It runs as script_user, so it may signal
// them; the agent, root without CAP_KILL, may not.

import {performance} from 'node:perf_hooks';
import type {ScriptUser} from '../config/script-user.js';
import {BatonError, isBatonError} from '../errors.js';
import type {CommandOptions, CommandRunner} from '../ports.js';
import {formatCommandLine, KILL_GRACE_MS} from './execa-runner.js';

/** The PATH the programs get: the system's directories, none a user can write (Debian's default for root). */
export const SCRIPT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Variables a caller may add to the allow-list; everything else of the agent's environment stays with it. */
const CALLER_VARIABLE = /^BATON_[A-Z0-9_]+$/;
// The supervisor's exit status when it stopped the program at the timeout (as timeout(1) does).
const TIMED_OUT_STATUS = 124;
// The supervisor signals the tree at the timeout and SIGKILLs it KILL_GRACE_MS later; the agent waits this much
// longer before it stops waiting (it cannot signal another user's processes itself).
const SUPERVISOR_SLACK_MS = 1000;

// PR_SET_CHILD_SUBREAPER = 36 (include/uapi/linux/prctl.h). prctl's system call number differs per architecture
// (asm/unistd.h), and syscall.ph is not in perl-base, so the numbers are here. On another architecture the
// supervisor refuses to run the program rather than run it without the guarantee.
// /proc/PID/stat: "pid (comm) state ppid …"; comm may hold ") ", so the last ") " ends it.
// POSIX::times's first value is the monotonic clock in ticks (times(2)); Time::HiRes is not in perl-base.
export const SUPERVISOR = String.raw`
use strict; use warnings; use POSIX ();
my ($timeout_ms, $grace_ms, @command) = @ARGV;
my %prctl = (x86_64 => 157, aarch64 => 167, riscv64 => 167, i386 => 172, i486 => 172, i586 => 172, i686 => 172,
  armv6l => 172, armv7l => 172, armv8l => 172, s390x => 172, ppc64le => 171, ppc64 => 171);
my $machine = (POSIX::uname())[4];
my $nr = $prctl{$machine};
die "baton: cannot supervise a program on $machine: prctl's system call number is unknown\n" unless defined $nr;
syscall($nr, 36, 1, 0, 0, 0) == 0 or die "baton: cannot become a child subreaper: $!\n";
my $tick = POSIX::sysconf(POSIX::_SC_CLK_TCK());
sub now_ms { return (POSIX::times())[0] * 1000 / $tick }
sub pause { select(undef, undef, undef, $_[0]) }
sub reap { 1 while waitpid(-1, POSIX::WNOHANG()) > 0 }
sub descendants {
  my %parent;
  opendir(my $proc, '/proc') or die "baton: cannot list /proc: $!\n";
  for my $pid (grep { /^\d+$/ } readdir $proc) {
    open(my $fh, '<', "/proc/$pid/stat") or next;
    my $stat = <$fh>;
    $parent{$pid} = $1 if defined $stat && $stat =~ /.*\) \S+ (\d+)/s;
  }
  my %ours = ($$ => 1);
  for (my $grew = 1; $grew;) {
    $grew = 0;
    for my $pid (keys %parent) {
      next if $ours{$pid} || !$ours{$parent{$pid}};
      $ours{$pid} = 1;
      $grew = 1;
    }
  }
  delete $ours{$$};
  return keys %ours;
}
my $start = now_ms();
my $child = fork;
die "baton: cannot fork: $!\n" unless defined $child;
if ($child == 0) {
  { no warnings 'exec'; exec { $command[0] } @command; }
  print STDERR "cannot run $command[0]: $!\n";
  POSIX::_exit($!{ENOENT} ? 127 : 126);
}
my ($status, $timed_out) = (undef, 0);
for (my $wait = 0.001;; $wait = $wait < 0.02 ? $wait * 2 : 0.02) {
  my $pid = waitpid(-1, POSIX::WNOHANG());
  if ($pid == $child) { $status = $?; last }
  next if $pid > 0;
  if (now_ms() - $start >= $timeout_ms) { $timed_out = 1; last }
  pause($wait);
}
reap();
my @left = descendants();
if (@left) {
  kill 'TERM', @left;
  my $until = now_ms() + $grace_ms;
  while (now_ms() < $until) { reap(); @left = descendants(); last unless @left; pause(0.01) }
  while (1) { reap(); @left = descendants(); last unless @left; kill 'KILL', @left; pause(0.001) }
}
exit ${TIMED_OUT_STATUS} if $timed_out;
if (POSIX::WIFSIGNALED($status)) { my $signal = POSIX::WTERMSIG($status); kill $signal, $$; exit 128 + $signal }
exit POSIX::WEXITSTATUS($status);
`;

export interface ScriptRunnerOptions {
  /** Runs setpriv; the real one is the execa runner. */
  readonly runner: CommandRunner;
  /** Who the programs run as; undefined when the agent is not root and cannot change user (they run as it). */
  readonly user: ScriptUser | undefined;
  /** The agent's LANG, passed on so a program speaks the host's language; undefined: not set. */
  readonly lang?: string | undefined;
  /** Monotonic ms, to tell a timeout from a program that exits 124 by itself. */
  readonly now?: () => number;
}

export function createScriptRunner(options: ScriptRunnerOptions): CommandRunner {
  const {runner, user, lang} = options;
  const now = options.now ?? (() => performance.now());
  return {
    async run(file, args, runOptions?: CommandOptions) {
      const timeoutMs = runOptions?.timeoutMs;
      if (timeoutMs === undefined) throw new BatonError('COMMAND_FAILED', `\`${formatCommandLine(file, args)}\` ` +
        'was given no timeout: a configured program always runs under one');
      const env: Record<string, string> = {PATH: SCRIPT_PATH, ...(lang === undefined ? {} : {LANG: lang})};
      for (const [name, value] of Object.entries(runOptions?.env ?? {})) {
        if (!CALLER_VARIABLE.test(name)) {
          throw new BatonError('COMMAND_FAILED', `${name} is not a BATON_ variable: only those are passed to ${file}`);
        }
        env[name] = value;
      }
      const identity = user === undefined ? [] : [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups'];
      const argv = [...identity, '--inh-caps=-all', '--ambient-caps=-all', '--no-new-privs', '--',
        'perl', '-e', SUPERVISOR, '--', String(timeoutMs), String(KILL_GRACE_MS), file, ...args];
      const started = now();
      try {
        return await runner.run('setpriv', argv, {timeoutMs: timeoutMs + KILL_GRACE_MS + SUPERVISOR_SLACK_MS, env});
      } catch (error) {
        throw restate(error, file, args, timeoutMs, now() - started >= timeoutMs);
      }
    },
  };
}

/** The inner runner names setpriv and the supervisor; the operator configured `file args`, so messages name that. */
function restate(error: unknown, file: string, args: readonly string[], timeoutMs: number, late: boolean): unknown {
  if (!isBatonError(error)) return error;
  const line = formatCommandLine(file, args);
  const details = error.details;
  if (error.code === 'COMMAND_TIMEOUT' || (late && details?.exitCode === TIMED_OUT_STATUS)) {
    return new BatonError('COMMAND_TIMEOUT', `\`${line}\` did not finish within ${timeoutMs} ms and was stopped ` +
      'with everything it started', {cause: error, ...(details === undefined ? {} : {details})});
  }
  const message = error.message.replace(/^`setpriv [^`]*`/, `\`${line}\``).replace(/^cannot run `setpriv[^`]*`/, `cannot run \`${line}\``);
  return new BatonError(error.code, message, {cause: error, ...(details === undefined ? {} : {details})});
}
