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

/** The service's addresses as the client probes them: a URL each, and each one's family, in the same order. */
export interface ProbedService {
  readonly urls: readonly string[];
  readonly families: readonly number[];
}

/**
 * One prober per service URL (a dual-stack service has two), each its own stream named by its family ("IPv4",
 * "IPv6"), so that one family's outage shows. `start` starts one prober where the caller probes from (a namespace,
 * this machine, a client over ssh), with `stream` undefined when it is the only one. When one cannot start, those
 * that did are stopped before the failure is thrown: none is left probing for its whole duration.
 */
export async function startStreams(service: ProbedService,
  start: (url: string, stream: string | undefined) => Promise<ServiceProbers>): Promise<ServiceProbers> {
  const several = service.urls.length > 1;
  const streams = service.urls.map((url, index) => ({url, stream: several ? `IPv${service.families[index] ?? 4}` : undefined}));
  const started = await Promise.allSettled(streams.map(({url, stream}) => start(url, stream)));
  const probers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.allSettled(probers.map((prober) => prober.stop()));
    throw failed.reason;
  }
  const label = (records: ProbeRecord[], index: number): ProbeRecord[] => {
    const stream = streams[index]?.stream;
    return stream === undefined ? records : records.map((r) => ({...r, stream}));
  };
  return {
    read: async () => (await Promise.all(probers.map(async (p, index) => label(await p.read(), index)))).flat(),
    stop: async () => (await Promise.all(probers.map(async (p, index) => label(await p.stop(), index)))).flat(),
  };
}

/** startStreams with the lab's (or this machine's) own prober; `out(stream)` names each prober's record file. */
export async function startServiceProbers(service: ProbedService,
  options: Omit<ProberOptions, 'url' | 'out'> & {readonly out: (stream: string | undefined) => string}): Promise<ServiceProbers> {
  return await startStreams(service, (url, stream) => startProber({...options, url, out: options.out(stream)}));
}
