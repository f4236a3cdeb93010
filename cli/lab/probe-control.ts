// Running the client prober (dist/cli/lab/probe.js) inside a namespace from the lab, the tests, `baton rehearse`
// and the benchmark: start it, follow its records, wait for it or stop it by PID.

import {readFile, stat} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {BatonError, describeError} from '../../agent/errors.js';
import {spawnInNamespace} from './namespaces.js';
import {parseProbeLog, type ProbeRecord} from './probe-report.js';
import {isProcessAlive, stopProcessByPid} from './web.js';

export interface ProberOptions {
  /** Where the client runs; undefined: right here (baton rehearse on a real host). */
  readonly namespace: string | undefined;
  /** http:// URL, e.g. http://192.0.2.100/. */
  readonly url: string;
  readonly intervalMs: number;
  /** Per probe. */
  readonly timeoutMs: number;
  /** The prober ends by itself after this long (fractions allowed)… */
  readonly durationS: number;
  /** …or after this many probes, whichever comes first. */
  readonly maxProbes: number;
  /** Records, one JSON line per probe; must not exist or be empty. Its output goes to `${out}.log`. */
  readonly out: string;
}

export interface Prober {
  readonly pid: number;
  readonly out: string;
  /** The records written so far (a record being written is skipped). */
  read(): Promise<ProbeRecord[]>;
  /** Waits for the prober to end by itself (duration or max probes), then returns all records. */
  wait(): Promise<ProbeRecord[]>;
  /** Ends it now (SIGTERM: probes in flight settle first), then returns all records. Idempotent. */
  stop(): Promise<ProbeRecord[]>;
}

const PROBE_SCRIPT = fileURLToPath(new URL('./probe.js', import.meta.url));
// Node starts in ~50–100 ms; its first probe then settles within timeoutMs. 5 s is slack for a loaded machine.
const START_SLACK_MS = 5000;
// After its duration the prober waits for the probes in flight (≤ timeoutMs) and exits; beyond this slack it is hung.
const EXIT_SLACK_MS = 2000;
const POLL_MS = 20;

/**
 * Starts the prober in the namespace and resolves once its first probe is recorded, so probing is known to be
 * live. Throws LAB_FAILED (with its output) when it exits without recording or records nothing in time.
 */
export async function startProber(options: ProberOptions): Promise<Prober> {
  const existing = await stat(options.out).catch(() => undefined);
  if (existing !== undefined && existing.size > 0) {
    throw new BatonError('LAB_FAILED', `probe output ${options.out} already holds records: give each run a fresh file`);
  }
  const logFile = `${options.out}.log`;
  const args = [
    PROBE_SCRIPT, '--url', options.url, '--out', options.out,
    '--interval-ms', String(options.intervalMs), '--timeout-ms', String(options.timeoutMs),
    '--duration-s', String(options.durationS), '--max-probes', String(options.maxProbes),
  ];
  const pid = await spawnInNamespace(options.namespace, process.execPath, args, logFile);
  const read = async (): Promise<ProbeRecord[]> => parseProbeLog(await readFile(options.out, 'utf8').catch(() => ''));
  const lifetimeMs = options.durationS * 1000 + options.timeoutMs + EXIT_SLACK_MS;
  const stop = async (): Promise<ProbeRecord[]> => {
    await stopProcessByPid(pid, options.timeoutMs + EXIT_SLACK_MS);
    return read();
  };

  const startDeadline = Date.now() + START_SLACK_MS + options.timeoutMs;
  for (;;) {
    if ((await read()).length > 0) break;
    const alive = isProcessAlive(pid);
    if (!alive || Date.now() > startDeadline) {
      await stopProcessByPid(pid);
      const output = (await readFile(logFile, 'utf8').catch((error: unknown) => `(unreadable: ${describeError(error)})`)).trim();
      throw new BatonError('LAB_FAILED',
        `the prober in ${options.namespace ?? 'this host'} (pid ${pid}) ${alive ? 'recorded nothing in time' : 'exited without a record'}; ` +
        `its output: ${output === '' ? '(none)' : output}. Is dist/ built (npm run build) and the namespace there?`);
    }
    await sleep(POLL_MS);
  }
  const startedAt = Date.now();

  return {
    pid,
    out: options.out,
    read,
    stop,
    async wait() {
      const deadline = startedAt + lifetimeMs;
      while (isProcessAlive(pid) && Date.now() < deadline) await sleep(POLL_MS);
      // Past its own bounds it is hung: end it rather than wait forever.
      if (isProcessAlive(pid)) return stop();
      return read();
    },
  };
}

/** Probers of every service address at once, as one: the records of all, each labelled with its stream when there
 *  are several (summarizeStreams then judges each on its own). */
export interface ServiceProbers {
  read(): Promise<ProbeRecord[]>;
  stop(): Promise<ProbeRecord[]>;
}

/**
 * One prober per service URL (a dual-stack service has two: `urls` and `families` in the same order), each its own
 * stream named by its family ("IPv4", "IPv6"), so that one family's outage shows. `out(stream)` names each prober's
 * record file (stream undefined: the only one).
 */
export async function startServiceProbers(service: {readonly urls: readonly string[]; readonly families: readonly number[]},
  options: Omit<ProberOptions, 'url' | 'out'> & {readonly out: (stream: string | undefined) => string}): Promise<ServiceProbers> {
  const several = service.urls.length > 1;
  const probers = await Promise.all(service.urls.map(async (url, index) => {
    const stream = several ? `IPv${service.families[index] ?? 4}` : undefined;
    const prober = await startProber({...options, url, out: options.out(stream)});
    const label = (records: ProbeRecord[]): ProbeRecord[] => (stream === undefined ? records : records.map((r) => ({...r, stream})));
    return {read: async () => label(await prober.read()), stop: async () => label(await prober.stop())};
  }));
  return {
    read: async () => (await Promise.all(probers.map((p) => p.read()))).flat(),
    stop: async () => (await Promise.all(probers.map((p) => p.stop()))).flat(),
  };
}
