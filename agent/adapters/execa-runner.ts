// The real CommandRunner: runs a program with an argument array through execa (never a shell) and turns every
// way it can fail into a BatonError that names the command line, the exit code and the first line of stderr.

import {execa} from 'execa';
import {BatonError, type CommandFailureDetails} from '../errors.js';
import type {CommandRunner} from '../ports.js';

// `ip` and `arping` answer in well under a second; 10 s only catches a wedged kernel call or a hung program.
const DEFAULT_TIMEOUT_MS = 10_000;
// After SIGTERM on a timeout, the group gets this long to exit before SIGKILL: a shell script's trap has time
// to clean up, a hung one does not hold the agent. The script runner's supervisor uses the same grace, and
// docs/security.md and docs/configuration.md state it (test/docs.test.ts keeps them equal).
export const KILL_GRACE_MS = 1000;

// Where the programs baton runs come from, for the "not installed" message (Debian 12 package names).
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  arping: 'iputils-arping',
  ping: 'iputils-ping',
  nft: 'nftables',
  sysctl: 'procps',
};

export interface ExecaRunnerOptions {
  /** Used when a call passes no timeoutMs. */
  readonly defaultTimeoutMs?: number;
}

export function createExecaRunner(options: ExecaRunnerOptions = {}): CommandRunner {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    async run(file, args, runOptions) {
      const timeoutMs = runOptions?.timeoutMs ?? defaultTimeoutMs;
      const subprocess = execa(file, args, {
        stdin: 'ignore',
        // Messages we branch on ("File exists", "Address not found") are the untranslated ones.
        ...(runOptions?.env === undefined ? {env: {LC_ALL: 'C'}} : {env: {...runOptions.env}, extendEnv: false}),
        // Its own process group: on a timeout the whole group is stopped, so a hook script's children (a `sleep`
        // holding its stdout open) die with it instead of outliving it and keeping this call waiting.
        detached: true,
      });
      // Killing through the subprocess (not execa's cancelSignal) keeps a normal exit after SIGINT a normal result.
      const interruptAfterMs = runOptions?.interruptAfterMs;
      const interrupt = interruptAfterMs === undefined ? undefined : setTimeout(() => subprocess.kill('SIGINT'), interruptAfterMs);
      let timedOut = false;
      const deadline = setTimeout(() => {
        timedOut = true;
        signalGroup(subprocess.pid, 'SIGTERM');
        setTimeout(() => signalGroup(subprocess.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
      }, timeoutMs);
      try {
        const result = await subprocess;
        return result.stdout;
      } catch (error) {
        throw toBatonError(error, file, args, timeoutMs, timedOut);
      } finally {
        clearTimeout(interrupt);
        clearTimeout(deadline);
      }
    },
  };
}

/** The command as a person would type it, for messages: `ip addr add 192.0.2.100/24 dev eth0`. */
export function formatCommandLine(file: string, args: readonly string[]): string {
  return [file, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** "`arping` is not installed: install the Debian package iputils-arping (apt-get install iputils-arping)". */
export function describeMissingProgram(file: string): string {
  const name = file.split('/').at(-1) ?? file;
  const pkg = DEBIAN_PACKAGES[name];
  return pkg === undefined
    ? `\`${file}\` is not installed or not on PATH`
    : `\`${file}\` is not installed: install the Debian package ${pkg} (apt-get install ${pkg})`;
}

/**
 * The COMMAND_FAILED error of a command that ran and exited non-zero, worded like every other one:
 * "`ip addr add 192.0.2.100/24 dev eth0` exited 2: RTNETLINK answers: Operation not permitted".
 * Exported so fakes raise exactly what the real runner raises.
 */
export function createCommandFailedError(
  command: {file: string; args: readonly string[]},
  details: CommandFailureDetails,
  cause?: unknown,
): BatonError {
  const line = formatCommandLine(command.file, command.args);
  const said = firstLine(details.stderr) ?? lastLine(details.stdout);
  const how = details.exitCode === undefined ? 'failed' : `exited ${details.exitCode}`;
  const message = said === undefined ? `\`${line}\` ${how} with no output` : `\`${line}\` ${how}: ${said}`;
  return new BatonError('COMMAND_FAILED', message, {cause, details});
}

/**
 * Signals a whole process group; one that has already exited (ESRCH) is what we wanted. EPERM: the group runs as
 * another user (the script runner's programs), which the agent, without CAP_KILL, may not signal; their
 * supervisor ends them itself at its own deadline, before this one. Thrown from a timer, either would end the agent.
 */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH' && code !== 'EPERM') throw error;
  }
}

function toBatonError(error: unknown, file: string, args: readonly string[], timeoutMs: number, timedOut: boolean): BatonError {
  const failure = error as Partial<{
    timedOut: boolean; code: string; exitCode: number; signal: string; originalMessage: string; stdout: unknown; stderr: unknown;
  }>;
  const details: CommandFailureDetails = {
    exitCode: typeof failure.exitCode === 'number' ? failure.exitCode : undefined,
    stdout: typeof failure.stdout === 'string' ? failure.stdout : '',
    stderr: typeof failure.stderr === 'string' ? failure.stderr : '',
  };
  const line = formatCommandLine(file, args);
  if (timedOut) {
    return new BatonError('COMMAND_TIMEOUT', `\`${line}\` did not finish within ${timeoutMs} ms and was stopped`,
      {cause: error, details});
  }
  if (failure.code === 'ENOENT') {
    return new BatonError('COMMAND_FAILED', `cannot run \`${line}\`: ${describeMissingProgram(file)}`, {cause: error, details});
  }
  if (details.exitCode === undefined && typeof failure.signal === 'string') {
    return new BatonError('COMMAND_FAILED', `\`${line}\` was killed by ${failure.signal}`, {cause: error, details});
  }
  if (details.exitCode === undefined) {
    // The program never ran (EACCES on the binary, …): keep the system's own words.
    const reason = typeof failure.originalMessage === 'string' ? failure.originalMessage
      : error instanceof Error ? error.message : String(error);
    return new BatonError('COMMAND_FAILED', `cannot run \`${line}\`: ${firstLine(reason) ?? reason}`, {cause: error, details});
  }
  return createCommandFailedError({file, args}, details, error);
}

function firstLine(text: string): string | undefined {
  return text.split('\n').map((l) => l.trim()).find((l) => l !== '');
}

function lastLine(text: string): string | undefined {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').at(-1);
}
