// The real HostInfoSource: this host's OS, the versions of the programs a web service runs on, load and memory,
// read through systeminformation and node:os.

import {fork} from 'node:child_process';
import {readdir, readFile} from 'node:fs/promises';
import {arch, availableParallelism, hostname as osHostname, loadavg, release as kernelRelease} from 'node:os';
import {fileURLToPath} from 'node:url';
import {BatonError} from '../errors.js';
import type {HostInfo, HostInfoSource} from '../ports.js';

// What a web service's behaviour depends on. Not git, npm, gcc, docker…: they build or ship the service, they do
// not serve it, and each one costs a process spawn. systeminformation runs `<program> -v` (or -V) for each, in
// parallel; a name it does not know is ignored by it, so this list is the whole cost.
//
// node: systeminformation runs `node -v` through PATH, not process.version. Under the systemd unit (default
// PATH, baton started by the absolute path of its own bundled Node) that is the system's Node, the one a Node
// web application started by systemd would use, so it is compared. Under `npm run` or the tests, PATH starts
// with node_modules/.bin and it reports baton's own Node: equal on both hosts of a pair installed alike.
//
// openssl: systeminformation's `openssl` is process.versions.openssl, the library compiled into Node; the
// `openssl version` of the system, which nginx, Apache and PHP link against, is its `systemOpenssl`. We report
// the latter under the name openssl.
//
// mysql and postgresql are what `mysql -V` and `postgres -V` (or pg_config, psql) on PATH print: the installed
// packages, not a server running on another host.
export const VERSION_PROGRAMS = ['nginx', 'apache', 'mysql', 'postgresql', 'redis', 'php', 'perl', 'python3', 'node', 'openssl'] as const;

// Measured here: about 100 ms in all, the slowest probes (postgres -V, a pyenv python3 shim) about 60 ms each,
// in parallel; about 330 ms for the agent's first collection (--jitless, systeminformation loaded on first use),
// and over 1.5 s on a 2-core host at load 8, where the faults campaign saw switchovers refused as "a probe hangs".
// A host is often switched away from because it is overloaded, so 5 s: 15× the idle cost, and well inside the
// peer request's deadline (switch-runner: step deadline 10 s + 2 s of retries). systeminformation gives its
// children no timeout, so a hung one is left behind and this call fails instead of hanging the switchover.
export const COLLECT_TIMEOUT_MS = 5000;

// What systeminformation runs for VERSION_PROGRAMS (lib/osinfo.js), for the operator hunting a hung one.
const PROBE_COMMANDS = 'nginx -v, apachectl -v, mysql -V, postgres -V, redis-server --version, php -v, perl -v, '
  + 'python3 -V, node -v, openssl version';

/** `timeoutMs`: the deadline of the version probes (default COLLECT_TIMEOUT_MS); the tests of what is collected
 *  give a longer one, so that a machine busy with other work does not fail them. */
export function createSystemHostInfo(options?: {hostname?: string; timeoutMs?: number}): HostInfoSource {
  return {
    collect: async () => {
      // Not si.osInfo(): it runs `hostname -f` with execSync, which blocks the event loop, beacons included, for as
      // long as the resolver takes: 1-2 s measured with an unreachable name server, up to 10 s with Debian's
      // default resolver options, so a preflight on a host with broken DNS made the peer see it dead.
      const [os, {found, memory}] = await Promise.all([readOsInfo(), probeInChild(options?.timeoutMs ?? COLLECT_TIMEOUT_MS)]);
      const reported: Record<string, string | undefined> = {...found, openssl: found.systemOpenssl};
      const installed: Record<string, string> = {};
      for (const program of VERSION_PROGRAMS) {
        // '' (or missing) from systeminformation means the program was not found or printed nothing usable.
        const version = reported[program]?.trim();
        if (version) installed[program] = version;
      }
      const info: HostInfo = {
        hostname: options?.hostname ?? osHostname(),
        os: {distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch},
        versions: installed,
        // The 1-minute load average, not si.currentLoad(): that one samples CPU time for ~0.5 s and measures
        // utilisation, not the run queue. availableParallelism(): os.cpus() can be empty where /proc is limited.
        loadPerCore: (loadavg()[0] ?? 0) / availableParallelism(),
        // `available` (MemAvailable), not `free`: page cache is reclaimable and counts as room.
        memory: {totalBytes: Math.floor(memory.total), availableBytes: Math.floor(memory.available)},
      };
      return info;
    },
  };
}

/**
 * The distribution and its release as systeminformation's osInfo() names them (so that a pair where one host
 * runs an older baton compares alike), read without a child process: the keys of /etc/*-release, then
 * /usr/lib/os-release, later ones winning; the name is DISTRIB_ID or NAME, the release PRETTY_NAME less the
 * name and the codename, else VERSION, DISTRIB_RELEASE or VERSION_ID.
 */
export async function readOsInfo(): Promise<HostInfo['os']> {
  const etc = (await readdir('/etc').catch(() => [] as string[])).filter((name) => name.endsWith('-release')).sort();
  const texts = await Promise.all([...etc.map((name) => `/etc/${name}`), '/usr/lib/os-release']
    .map((file) => readFile(file, 'utf8').catch(() => '')));
  return {...parseOsRelease(texts.join('\n')), kernel: kernelRelease(), arch: arch()};
}

/** parseOsRelease's half of readOsInfo: the text of the release files, concatenated in order. */
export function parseOsRelease(text: string): {distro: string; release: string} {
  const keys = new Map<string, string>();
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals === -1) continue;
    // Up to a second '=', as systeminformation reads it.
    keys.set(line.slice(0, equals).trim().toUpperCase(), (line.slice(equals + 1).split('=')[0] ?? '').trim().replaceAll('"', ''));
  }
  const distro = keys.get('DISTRIB_ID') || keys.get('NAME') || 'unknown';
  let release = keys.get('VERSION') ?? '';
  const pretty = keys.get('PRETTY_NAME') ?? '';
  if (pretty.startsWith(`${distro} `)) release = pretty.slice(distro.length + 1).trim();
  if (release.includes('(')) release = (release.split('(')[0] ?? '').trim();
  return {distro, release: release || keys.get('DISTRIB_RELEASE') || keys.get('VERSION_ID') || 'unknown'};
}

export interface ProbeAnswer {
  readonly found: Record<string, string | undefined> & {readonly systemOpenssl?: string};
  readonly memory: {readonly total: number; readonly available: number};
}

// SIGKILL ends a process in milliseconds; one still there after this is stuck in the kernel (an uninterruptible
// read), and waiting longer for it would turn the collection's deadline into a hang.
const REAP_WAIT_MS = 1000;

/**
 * The version probes and the memory figures, from a child process (host-info-child.ts) that loads systeminformation
 * and ends: the agent at rest carries neither the module nor the memory its probes used (DESIGN: RSS <= 64 MB), and
 * its event loop waits for one process start, not ten. The child runs this process's Node with its flags
 * (process.execArgv: --jitless, which MemoryDenyWriteExecute= needs) and its environment (PATH: `node -v` above).
 * When this settles, with an answer, past the deadline or on an error, the child has been killed and reaped; a
 * version probe it had started and that hangs is left behind, as systeminformation gives them no timeout.
 * `script` and `spawned` (told the child's PID) are for the tests.
 */
export async function probeInChild(ms: number, options?: {script?: string; spawned?: (pid: number) => void}): Promise<ProbeAnswer> {
  const script = options?.script ?? fileURLToPath(new URL('./host-info-child.js', import.meta.url));
  const child = fork(script, [VERSION_PROGRAMS.join(',')], {stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json'});
  // Its last words, for the error when it dies without an answer (an uncaught exception's text is on stderr).
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4096);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid !== undefined) options?.spawned?.(child.pid);
  try {
    return await withDeadline(new Promise<ProbeAnswer>((resolve, reject) => {
      child.once('message', (answer: ProbeAnswer) => resolve(answer));
      child.on('error', (error) => reject(new BatonError('COMMAND_FAILED', `collecting host info failed: its child process: ${error.message}`, {cause: error})));
      // 'close', not 'exit': it comes after the IPC channel is drained, so an answer sent just before the exit counts.
      child.once('close', (code, signal) => reject(new BatonError('COMMAND_FAILED',
        `collecting host info failed: its child process (${process.execPath} ${script}) exited `
        + `${signal === null ? `with code ${code}` : `on ${signal}`} without an answer${lastError(stderr)}`)));
    }), ms);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => {
      timer = setTimeout(resolve, REAP_WAIT_MS);
    })]);
    clearTimeout(timer);
  }
}

/**
 * ": <why>" from a dead Node's stderr, or '': an uncaught exception's `Error: …` line, else V8's fatal error
 * (its `# Fatal error …` and `# Check failed: …` lines, e.g. a Node without --jitless under MemoryDenyWriteExecute=),
 * else the last line.
 */
function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const v8Fatal = lines.filter((line) => /^# \S/.test(line)).map((line) => line.slice(2)).join(' ');
  const line = lines.find((candidate) => /^[A-Za-z]*Error\b/.test(candidate)) ?? (v8Fatal || lines.at(-1));
  return line === undefined ? '' : `: ${line}`;
}

/** `work`, or COMMAND_TIMEOUT after `ms` naming the probes to run by hand and the host's load. */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BatonError('COMMAND_TIMEOUT',
      `collecting host info took more than ${ms} ms (load average ${(loadavg()[0] ?? 0).toFixed(1)} on ${availableParallelism()} cores): `
      + `one of the version probes hangs, or the host is badly overloaded (${PROBE_COMMANDS}). Run them by hand to find it.`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
