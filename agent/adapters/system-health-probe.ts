// The real HealthProbe: link state from sysfs (or from `ip -j link` when sysfs shows another network namespace),
// HTTP checks with node:http, command checks through the script runner (argument array, never a shell).

import {readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import type {HealthCheckSpec} from '../config/health-checks.js';
import {assertNever, describeError, isBatonError} from '../errors.js';
import type {HealthProbe, HealthResult} from '../health.js';
import type {CommandRunner} from '../ports.js';
import {HEALTH_CHECK_USER_AGENT} from '../request-evidence.js';

// `ip link show` answers in milliseconds; 1 s only catches a wedged netlink call (the monitor's own deadline, one
// health interval, usually ends the wait first).
const IP_LINK_TIMEOUT_MS = 1_000;
// include/uapi/linux/if.h
const IFF_UP = 0x1;
// Kernel operstates (RFC 2863) under which a link with carrier carries traffic. Drivers that do not report an
// operstate (lo, dummy, some tun) say "unknown" while working.
const WORKING_OPERSTATES: ReadonlySet<string> = new Set(['up', 'unknown']);
// node:http and node:https are fetched with process.getBuiltinModule when an HTTP check runs, not imported: an ESM
// import of a built-in reads every export, and node:http's include WebSocket, CloseEvent and MessageEvent, getters
// that load undici with http2, zlib and tls. That import alone put 7 MB on the agent at rest (51 → 58 MB RSS for a
// bare `node --jitless --max-semi-space-size=1`, measured), most hosts have no HTTP check, and the target is 64 MB.

export interface SystemHealthProbeOptions {
  /** Where sysfs lists the links; tests point it at a fake tree. */
  readonly sysClassNet?: string;
  /** The calling process's own view of its network namespace's links (always right, unlike a stale /sys). */
  readonly procNetDev?: string;
  /** Runs the `command:` checks (the script runner: as script_user, tree ended at the timeout); default `runner`. */
  readonly commandRunner?: CommandRunner;
}

export function createSystemHealthProbe(runner: CommandRunner, options: SystemHealthProbeOptions = {}): HealthProbe {
  const sysClassNet = options.sysClassNet ?? '/sys/class/net';
  const procNetDev = options.procNetDev ?? '/proc/self/net/dev';
  const commandRunner = options.commandRunner ?? runner;
  return {
    async run(check, signal) {
      try {
        switch (check.kind) {
          case 'interface':
            return await checkInterface(check.interface, runner, sysClassNet, procNetDev);
          case 'http':
            return await checkHttp(check, signal);
          case 'command':
            return await checkCommand(check, commandRunner, signal);
          default:
            return assertNever(check);
        }
      } catch (error) {
        // Each check turns its expected failures into results; this is the unexpected rest (the port never throws).
        return fail(`the ${check.kind} check failed unexpectedly: ${describeError(error)}`);
      }
    },
  };
}

// ---- interface ----

// /sys/class/net lists the links of the network namespace sysfs was mounted in, not necessarily the caller's:
// `ip netns exec` mounts a fresh sysfs (verified with a veth in a temporary namespace), but a process that entered
// a namespace otherwise (nsenter, setns) still sees the host's links there, and would judge the host's eth0.
// /proc/self/net/dev always lists the caller's own links, so when the two lists differ, sysfs is not ours and
// netlink (`ip -j link`), which always answers for the caller's namespace, decides instead. Reading two small
// files each round costs far less than starting `ip`.
async function checkInterface(name: string, runner: CommandRunner, sysClassNet: string,
  procNetDev: string): Promise<HealthResult> {
  const [own, sysfs] = await Promise.all([readLinkNames(procNetDev), readdir(sysClassNet).catch(() => undefined)]);
  if (own !== undefined && !own.has(name)) return fail(`${name} does not exist in this network namespace`);
  if (own === undefined || sysfs === undefined || !sameNames(own, sysfs)) return checkInterfaceByIp(name, runner);
  const read = (file: string) => readFile(join(sysClassNet, name, file), 'utf8').then((text) => text.trim());
  let flags: number;
  try {
    flags = Number.parseInt(await read('flags'), 16);
  } catch (error) {
    // Gone between the listing and now.
    if (errorCode(error) === 'ENOENT') return fail(`${name} does not exist in this network namespace`);
    throw error;
  }
  if ((flags & IFF_UP) === 0) return fail(`${name} is administratively down`);
  // carrier reads EINVAL while the link is down; it was up a moment ago, so that is a race with `ip link set down`.
  const carrier = await read('carrier')
    .catch((error: unknown) => errorCode(error) === 'EINVAL' ? '0' : Promise.reject(error));
  if (carrier !== '1') return fail(`${name} has no carrier`);
  const operstate = await read('operstate');
  if (!WORKING_OPERSTATES.has(operstate)) return fail(`${name} is ${operstate}`);
  return pass(`${name} is up with carrier`);
}

/** Names in /proc/net/dev: two header lines, then one `  name: counters…` line per link. */
async function readLinkNames(procNetDev: string): Promise<Set<string> | undefined> {
  let text: string;
  try {
    text = await readFile(procNetDev, 'utf8');
  } catch {
    return undefined; // no /proc: netlink decides
  }
  return new Set(text.split('\n').slice(2).map((line) => line.split(':')[0]?.trim() ?? '').filter((n) => n !== ''));
}

function sameNames(own: ReadonlySet<string>, sysfs: readonly string[]): boolean {
  return sysfs.length === own.size && sysfs.every((name) => own.has(name));
}

interface IpLink {
  readonly flags?: readonly string[];
  readonly operstate?: string;
}

async function checkInterfaceByIp(name: string, runner: CommandRunner): Promise<HealthResult> {
  let stdout: string;
  try {
    stdout = await runner.run('ip', ['-j', 'link', 'show', 'dev', name], {timeoutMs: IP_LINK_TIMEOUT_MS});
  } catch (error) {
    if (isBatonError(error) && /does not exist/.test(error.details?.stderr ?? '')) {
      return fail(`${name} does not exist in this network namespace`);
    }
    return fail(`cannot read the state of ${name}: ${describeError(error)}`);
  }
  const [link] = JSON.parse(stdout) as IpLink[];
  const flags = link?.flags ?? [];
  // UP is the administrative state; LOWER_UP is the driver's carrier (IFF_LOWER_UP).
  if (!flags.includes('UP')) return fail(`${name} is administratively down`);
  if (!flags.includes('LOWER_UP')) return fail(`${name} has no carrier`);
  const operstate = (link?.operstate ?? 'unknown').toLowerCase();
  if (!WORKING_OPERSTATES.has(operstate)) return fail(`${name} is ${operstate}`);
  return pass(`${name} is up with carrier`);
}

// ---- http ----

async function checkHttp(check: Extract<HealthCheckSpec, {kind: 'http'}>, signal: AbortSignal): Promise<HealthResult> {
  const timeout = AbortSignal.timeout(check.timeoutMs);
  try {
    const status = await httpStatus(check.url, AbortSignal.any([signal, timeout]));
    return status === check.expectStatus
      ? pass(`${check.url} answered ${status}`)
      : fail(`${check.url} answered ${status}, expected ${check.expectStatus}`);
  } catch (error) {
    if (timeout.aborted) return fail(`timed out after ${check.timeoutMs} ms`);
    if (signal.aborted) return fail('stopped');
    return fail(`${check.url}: ${describeError(error)}`);
  }
}

/**
 * The status of one GET, through node:http(s), not fetch: fetch's HTTP parser is WebAssembly, which the agent's
 * --jitless V8 does not have ("WebAssembly is not defined": every HTTP check failed under the unit and in the lab).
 * No redirect is followed (the status the service itself gives is the one judged: a 301 to a login page is no 200),
 * no connection is kept, and the body is not read.
 */
function httpStatus(url: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const {request: send} = process.getBuiltinModule(target.protocol === 'https:' ? 'node:https' : 'node:http');
    const request = send(target, {method: 'GET', agent: false, signal, headers: {'user-agent': HEALTH_CHECK_USER_AGENT}}, (response) => {
      resolve(response.statusCode ?? 0);
      response.destroy();
    });
    request.once('error', reject);
    request.end();
  });
}

// ---- command ----

async function checkCommand(check: Extract<HealthCheckSpec, {kind: 'command'}>, runner: CommandRunner,
  signal: AbortSignal): Promise<HealthResult> {
  const running = runner.run(check.path, check.args, {timeoutMs: check.timeoutMs});
  // The runner stops the program at the timeout, but its promise settles only once the program's output closes,
  // which a child it left running (a `sleep` in a script) can hold open far longer: stop waiting at the timeout.
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(check.timeoutMs)]);
  const result = await Promise.race([
    running.then(() => pass(`${check.path} exited 0`), (error: unknown) => commandFailure(check, error)),
    aborted(deadline).then(() => signal.aborted ? fail('stopped') : fail(`timed out after ${check.timeoutMs} ms`)),
  ]);
  running.catch(() => undefined); // settles later when abandoned; its failure was already judged or is moot
  return result;
}

function commandFailure(check: {path: string; timeoutMs: number}, error: unknown): HealthResult {
  if (isBatonError(error, 'COMMAND_TIMEOUT')) return fail(`timed out after ${check.timeoutMs} ms`);
  const details = isBatonError(error) ? error.details : undefined;
  // Killed by a signal, or could not start: the runner's message says which and how to fix it.
  if (details?.exitCode === undefined) return fail(describeError(error));
  const said = firstLine(details.stderr);
  return fail(`${check.path} exited ${details.exitCode}${said === undefined ? '' : `: ${said}`}`);
}

// ---- helpers ----

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}));
}

function pass(detail: string): HealthResult {
  return {ok: true, detail};
}

function fail(detail: string): HealthResult {
  return {ok: false, detail};
}

function firstLine(text: string): string | undefined {
  return text.split('\n').map((line) => line.trim()).find((line) => line !== '');
}

function errorCode(error: unknown): string | undefined {
  const code = (error as {code?: unknown} | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
