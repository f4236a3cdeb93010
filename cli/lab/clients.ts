// The lab's clients as real sites have them, a standalone script run inside the client namespace: three classes at
// once against the service IP, each result counted, the summary written to --out as JSON when it ends.
//
//   ip netns exec NS node dist/cli/lab/clients.js --url http://192.0.2.100/ --out FILE [--duration-s 10]
//     [--fresh-interval-ms 20] [--fresh-timeout-ms 200] [--keep-alive 4] [--keep-alive-interval-ms 20]
//     [--download-every-ms 500] [--max-downloads 40] [--records FILE]
//
// - fresh: a GET on a new TCP connection every interval, each with its own timeout (what probe.ts does).
// - keep-alive: N connections, each kept open and sending a GET every interval, as a browser or an API client does.
//   A connection the server closes after a response is replaced by a new one; a request that fails is counted, never
//   retried.
// - downloads: GET /download (1 MiB that the lab's servers send at 256 KiB/s, so each lasts ~4 s) started every
//   interval, overlapping; one counts as done only when every byte arrived.
//
// Each response names its host ("served by X" in the page, X-Served-By on downloads), so the summary says who served
// each class. Ends at --duration-s or on SIGTERM/SIGINT: nothing new starts, what is in flight settles (downloads
// within their timeout), the summary is written, exit 0. Node built-ins only.
//
// --records FILE also writes every request, one JSON line each (ClientRecord), before the summary: the summary's one
// longest gap cannot say which of many moves in a run a gap or a failure belongs to; the records can.

import {writeFileSync} from 'node:fs';
import {Agent, get, type IncomingMessage} from 'node:http';
import {performance} from 'node:perf_hooks';
import {parseArgs} from 'node:util';
import type {ProbeRecord} from './probe-report.js';

export type ClientClass = 'fresh' | 'keepAlive' | 'downloads';

export interface ClassSummary {
  readonly attempts: number;
  readonly ok: number;
  readonly failed: number;
  /** The first failures, each with when it was sent (ms after start) and why. */
  readonly failures: ReadonlyArray<{readonly atMs: number; readonly error: string}>;
  /** Who answered the successful ones. */
  readonly servedBy: Readonly<Record<string, number>>;
  /** Longest time between two successful completions, ms. */
  readonly longestGapMs: number;
}

/** One request, as --records writes it: a probe record (probe-report.ts; here `seq` counts per class) and its class. */
export interface ClientRecord extends ProbeRecord {
  readonly class: ClientClass;
}

export interface ClientsSummary {
  readonly durationMs: number;
  readonly classes: Readonly<Record<ClientClass, ClassSummary>>;
}

const USAGE = 'usage: clients.js --url http://HOST/ --out FILE [--duration-s 10] [--fresh-interval-ms 20] [--fresh-timeout-ms 200] ' +
  '[--keep-alive 4] [--keep-alive-interval-ms 20] [--download-every-ms 500] [--max-downloads 40] [--records FILE]';
const MAX_DURATION_S = 600;
// A keep-alive request slower than this is a failure a user would notice; a download gets its 4 s plus slack.
const KEEP_ALIVE_TIMEOUT_MS = 2000;
const DOWNLOAD_TIMEOUT_MS = 15_000;
const DOWNLOAD_BYTES = 1024 * 1024;
const FAILURES_KEPT = 50;
const HOST_IN_PAGE = /served by (\S+)/;

interface Options {
  readonly url: URL;
  readonly out: string;
  readonly records: string | undefined;
  readonly durationMs: number;
  readonly freshIntervalMs: number;
  readonly freshTimeoutMs: number;
  readonly keepAlive: number;
  readonly keepAliveIntervalMs: number;
  readonly downloadEveryMs: number;
  readonly maxDownloads: number;
}

function readOptions(argv: readonly string[]): Options {
  const {values} = parseArgs({
    args: [...argv],
    options: {
      'url': {type: 'string'}, 'out': {type: 'string'}, 'records': {type: 'string'}, 'duration-s': {type: 'string', default: '10'},
      'fresh-interval-ms': {type: 'string', default: '20'}, 'fresh-timeout-ms': {type: 'string', default: '200'},
      'keep-alive': {type: 'string', default: '4'}, 'keep-alive-interval-ms': {type: 'string', default: '20'},
      'download-every-ms': {type: 'string', default: '500'}, 'max-downloads': {type: 'string', default: '40'},
    },
    strict: true, allowPositionals: false,
  });
  const problems: string[] = [];
  const number = (name: keyof typeof values, min: number, max: number): number => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`--${name}: expected an integer ${min}..${max}, got ${String(values[name])}`);
    return value;
  };
  let url: URL | undefined;
  try {
    url = new URL(values.url ?? '');
    if (url.protocol !== 'http:') problems.push(`--url: expected http://, got ${url.protocol}`);
  } catch {
    problems.push(`--url: expected an http:// URL, got ${JSON.stringify(values.url)}`);
  }
  if (values.out === undefined) problems.push('--out FILE is required');
  const options = {
    durationMs: number('duration-s', 1, MAX_DURATION_S) * 1000,
    freshIntervalMs: number('fresh-interval-ms', 0, 60_000), freshTimeoutMs: number('fresh-timeout-ms', 10, 60_000),
    keepAlive: number('keep-alive', 0, 64), keepAliveIntervalMs: number('keep-alive-interval-ms', 5, 60_000),
    downloadEveryMs: number('download-every-ms', 0, 60_000), maxDownloads: number('max-downloads', 0, 1000),
  };
  if (problems.length > 0 || url === undefined || values.out === undefined) throw new Error(`${problems.join('; ')}\n${USAGE}`);
  return {url, out: values.out, records: values.records, ...options};
}

class Tally {
  attempts = 0;
  ok = 0;
  failed = 0;
  readonly failures: {atMs: number; error: string}[] = [];
  readonly servedBy: Record<string, number> = {};
  #lastOkAt: number;
  longestGapMs = 0;

  constructor(startedAt: number) {
    this.#lastOkAt = startedAt;
  }

  succeed(host: string, now: number): void {
    this.ok += 1;
    this.servedBy[host] = (this.servedBy[host] ?? 0) + 1;
    this.longestGapMs = Math.max(this.longestGapMs, now - this.#lastOkAt);
    this.#lastOkAt = now;
  }

  fail(atMs: number, error: string): void {
    this.failed += 1;
    if (this.failures.length < FAILURES_KEPT) this.failures.push({atMs: Math.round(atMs), error});
  }

  summary(): ClassSummary {
    return {attempts: this.attempts, ok: this.ok, failed: this.failed, failures: this.failures, servedBy: this.servedBy, longestGapMs: Math.round(this.longestGapMs)};
  }
}

/** One GET; resolves with the host that answered and the bytes of the body, or rejects with a short reason. */
function fetchOnce(url: URL, agent: Agent | false, timeoutMs: number): Promise<{host: string; bytes: number}> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: string | undefined, value?: {host: string; bytes: number}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined && value !== undefined) resolve(value);
      else reject(new Error(error ?? 'unknown'));
    };
    const request = get(url, {agent}, (response: IncomingMessage) => {
      let bytes = 0;
      let head = '';
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (head.length < 256) head += chunk.subarray(0, 256).toString('latin1');
      });
      response.on('end', () => {
        const header = response.headers['x-served-by'];
        const host = typeof header === 'string' ? header : HOST_IN_PAGE.exec(head)?.[1] ?? 'unknown';
        if (response.statusCode !== 200) finish(`HTTP ${response.statusCode}`);
        else finish(undefined, {host, bytes});
      });
      response.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
      response.on('aborted', () => finish('aborted mid-body'));
    });
    const timer = setTimeout(() => {
      finish(`no answer within ${timeoutMs} ms`);
      request.destroy();
    }, timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
  });
}

async function run(options: Options): Promise<ClientsSummary> {
  const started = performance.now();
  const stop = new AbortController();
  const end = setTimeout(() => stop.abort(), options.durationMs);
  const onSignal = (): void => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const now = (): number => performance.now();
  const since = (): number => now() - started;
  const tallies = {fresh: new Tally(started), keepAlive: new Tally(started), downloads: new Tally(started)};
  const inFlight = new Set<Promise<void>>();
  const track = (work: Promise<void>): void => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  const pageUrl = options.url;
  const downloadUrl = new URL('/download', options.url);

  // Fixed schedules (start + k × interval): a stalled request must not delay the next one.
  const every = async (intervalMs: number, offsetMs: number, act: () => void): Promise<void> => {
    if (intervalMs === 0) return;
    for (let k = 0; !stop.signal.aborted; k += 1) {
      const wait = started + offsetMs + k * intervalMs - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (stop.signal.aborted) break;
      if (wait < -intervalMs) continue; // the loop was late: skip the slot, never catch up with a burst
      act();
    }
  };
  // Every request, when --records asks for them; written once at the end (a long run holds ~250 a second).
  const records: ClientRecord[] | undefined = options.records === undefined ? undefined : [];
  const record = (kind: ClientClass, seq: number, sentAt: number, host: string | null, error: string | null): void => {
    records?.push({class: kind, seq, sentAt: performance.timeOrigin + sentAt, rttMs: now() - sentAt, ok: error === null, host, error});
  };
  const attempt = (kind: ClientClass, work: () => Promise<{host: string; bytes: number}>, check: (bytes: number) => string | undefined): void => {
    const tally = tallies[kind];
    const seq = tally.attempts;
    tally.attempts += 1;
    const sentAt = now();
    const failed = (error: string): void => {
      tally.fail(sentAt - started, error);
      record(kind, seq, sentAt, null, error);
    };
    track(work().then(({host, bytes}) => {
      const wrong = check(bytes);
      if (wrong !== undefined) return failed(wrong);
      tally.succeed(host, now());
      record(kind, seq, sentAt, host, null);
    }, (error: unknown) => failed(error instanceof Error ? error.message : String(error))));
  };
  const anyBytes = (): undefined => undefined;

  const loops: Promise<void>[] = [];
  loops.push(every(options.freshIntervalMs, 0, () => attempt('fresh', () => fetchOnce(pageUrl, false, options.freshTimeoutMs), anyBytes)));
  // Each keep-alive client has its own connection (an agent of one socket) and waits for its answer before the
  // next request, as a client on one connection must.
  for (let i = 0; i < options.keepAlive; i += 1) {
    const agent = new Agent({keepAlive: true, maxSockets: 1});
    let busy = false;
    loops.push(every(options.keepAliveIntervalMs, (i * options.keepAliveIntervalMs) / Math.max(1, options.keepAlive), () => {
      if (busy) return;
      busy = true;
      attempt('keepAlive', () => fetchOnce(pageUrl, agent, KEEP_ALIVE_TIMEOUT_MS).finally(() => {
        busy = false;
      }), anyBytes);
    }).finally(() => agent.destroy()));
  }
  let downloads = 0;
  loops.push(every(options.downloadEveryMs, 0, () => {
    if (downloads >= options.maxDownloads) return;
    downloads += 1;
    attempt('downloads', () => fetchOnce(downloadUrl, false, DOWNLOAD_TIMEOUT_MS),
      (bytes) => (bytes === DOWNLOAD_BYTES ? undefined : `${bytes} of ${DOWNLOAD_BYTES} bytes`));
  }));
  await new Promise<void>((resolve) => (stop.signal.aborted ? resolve() : stop.signal.addEventListener('abort', () => resolve(), {once: true})));
  clearTimeout(end);
  await Promise.all(loops);
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  if (options.records !== undefined && records !== undefined) {
    writeFileSync(options.records, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  return {
    durationMs: Math.round(since()),
    classes: {fresh: tallies.fresh.summary(), keepAlive: tallies.keepAlive.summary(), downloads: tallies.downloads.summary()},
  };
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  let options: Options;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`clients: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  const summary = await run(options);
  writeFileSync(options.out, `${JSON.stringify(summary, null, 2)}\n`);
}
