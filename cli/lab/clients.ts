// The lab's clients as real sites have them, a standalone script run inside the client namespace: four classes at
// once against the service IP, each result counted, the summary written to --out as JSON when it ends.
//
//   ip netns exec NS node dist/cli/lab/clients.js --url http://192.0.2.100/ --out FILE [--duration-s 10]
//     [--fresh-interval-ms 20] [--fresh-timeout-ms 200] [--keep-alive 4] [--keep-alive-interval-ms 20]
//     [--download-every-ms 500] [--max-downloads 40] [--upload-every-ms 500] [--max-uploads 40] [--records FILE]
//
// - fresh: a GET on a new TCP connection every interval, each with its own timeout (what probe.ts does).
// - keep-alive: N connections, each kept open and sending a GET every interval, as a browser or an API client does.
//   A connection the server closes after a response is replaced by a new one; a request that fails is counted, never
//   retried.
// - downloads: GET /download (1 MiB that the lab's servers send at 256 KiB/s, so each lasts ~4 s) started every
//   interval, overlapping; one counts as done only when every byte arrived.
// - uploads: PUT /upload/NAME with a 1 MiB body sent at 256 KiB/s (~4 s each) on a new connection, started every
//   interval, overlapping; one counts as done only when the server answers 2xx after the last byte was sent and its
//   X-Received-Bytes says it received all of them (transfers.ts): an early answer, e.g. a page served before the
//   body was read, is a failure.
//
// Each response names its host ("served by X" in the page, X-Served-By on transfers), so the summary says who served
// each class. Ends at --duration-s or on SIGTERM/SIGINT: nothing new starts, what is in flight settles (transfers
// within their timeout), the summary is written, exit 0. Node built-ins and transfers.ts only.
//
// --records FILE also writes every request, one JSON line each (ClientRecord), before the summary: the summary's one
// longest gap cannot say which of many moves in a run a gap or a failure belongs to; the records can.

import {randomBytes} from 'node:crypto';
import {writeFileSync} from 'node:fs';
import {Agent, request, type IncomingMessage} from 'node:http';
import {performance} from 'node:perf_hooks';
import {parseArgs} from 'node:util';
import type {ProbeRecord} from './probe-report.js';
import {DOWNLOAD_PATH, RECEIVED_BYTES_HEADER, sendPacedBody, TRANSFER_BYTES, UPLOAD_PREFIX} from './transfers.js';

export type ClientClass = 'fresh' | 'keepAlive' | 'downloads' | 'uploads';
export const CLIENT_CLASSES: readonly ClientClass[] = ['fresh', 'keepAlive', 'downloads', 'uploads'];

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

/** Several clients.js runs as one (a dual-stack drill runs one per service address): counts added, failures kept
 *  in order up to the same limit, the longest gap the longest of any run. */
export function mergeClientsSummaries(summaries: readonly ClientsSummary[]): ClientsSummary {
  const merged = (clientClass: ClientClass): ClassSummary => {
    const parts = summaries.map((summary) => summary.classes[clientClass]);
    const servedBy: Record<string, number> = {};
    for (const part of parts) for (const [host, count] of Object.entries(part.servedBy)) servedBy[host] = (servedBy[host] ?? 0) + count;
    return {
      attempts: parts.reduce((sum, part) => sum + part.attempts, 0),
      ok: parts.reduce((sum, part) => sum + part.ok, 0),
      failed: parts.reduce((sum, part) => sum + part.failed, 0),
      failures: parts.flatMap((part) => part.failures).sort((a, b) => a.atMs - b.atMs).slice(0, FAILURES_KEPT),
      servedBy,
      longestGapMs: Math.max(0, ...parts.map((part) => part.longestGapMs)),
    };
  };
  return {
    durationMs: Math.max(0, ...summaries.map((summary) => summary.durationMs)),
    classes: {fresh: merged('fresh'), keepAlive: merged('keepAlive'), downloads: merged('downloads'), uploads: merged('uploads')},
  };
}

const USAGE = 'usage: clients.js --url http://HOST/ --out FILE [--duration-s 10] [--fresh-interval-ms 20] [--fresh-timeout-ms 200] ' +
  '[--keep-alive 4] [--keep-alive-interval-ms 20] [--download-every-ms 500] [--max-downloads 40] [--upload-every-ms 500] [--max-uploads 40] ' +
  '[--records FILE]';
const MAX_DURATION_S = 600;
// A keep-alive request slower than this is a failure a user would notice; a transfer gets its 4 s plus slack.
const KEEP_ALIVE_TIMEOUT_MS = 2000;
const TRANSFER_TIMEOUT_MS = 15_000;
// Upload bodies are this byte ('u'), downloads 'b': a stored file shows which way it went.
const UPLOAD_FILL = 0x75;
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
  readonly uploadEveryMs: number;
  readonly maxUploads: number;
}

function readOptions(argv: readonly string[]): Options {
  const {values} = parseArgs({
    args: [...argv],
    options: {
      'url': {type: 'string'}, 'out': {type: 'string'}, 'records': {type: 'string'}, 'duration-s': {type: 'string', default: '10'},
      'fresh-interval-ms': {type: 'string', default: '20'}, 'fresh-timeout-ms': {type: 'string', default: '200'},
      'keep-alive': {type: 'string', default: '4'}, 'keep-alive-interval-ms': {type: 'string', default: '20'},
      'download-every-ms': {type: 'string', default: '500'}, 'max-downloads': {type: 'string', default: '40'},
      'upload-every-ms': {type: 'string', default: '500'}, 'max-uploads': {type: 'string', default: '40'},
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
    uploadEveryMs: number('upload-every-ms', 0, 60_000), maxUploads: number('max-uploads', 0, 1000),
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

/** What came back for one request, before it is judged (judgeAnswer). */
export interface Answer {
  readonly status: number;
  /** X-Served-By, else the host named in the page, else 'unknown'. */
  readonly host: string;
  /** Bytes of the response body. */
  readonly bytes: number;
  /** The answer's X-Received-Bytes, when it has one. */
  readonly receivedBytes: string | undefined;
  /** Whether the request body (if any) had been sent in full when the answer began. */
  readonly answeredAfterBody: boolean;
}

/** Pure: why this answer is a failure for its class, or undefined when it counts as a success. */
export function judgeAnswer(kind: ClientClass, answer: Answer): string | undefined {
  if (kind !== 'uploads') {
    if (answer.status !== 200) return `HTTP ${answer.status}`;
    return kind === 'downloads' && answer.bytes !== TRANSFER_BYTES ? `${answer.bytes} of ${TRANSFER_BYTES} bytes` : undefined;
  }
  if (answer.status < 200 || answer.status > 299) return `HTTP ${answer.status}`;
  if (!answer.answeredAfterBody) return `HTTP ${answer.status} before the body was sent`;
  if (answer.receivedBytes === undefined) return `HTTP ${answer.status} without ${RECEIVED_BYTES_HEADER}`;
  return answer.receivedBytes === String(TRANSFER_BYTES) ? undefined : `received ${answer.receivedBytes} of ${TRANSFER_BYTES} bytes`;
}

/**
 * Pure: where upload number `seq` of the run `runId` goes. Names are reused after a bound, so the servers that store
 * uploads hold a bounded number of files; a name comes back only once the upload that used it has ended (its
 * timeout passed: the uploads start `everyMs` apart, never in a burst), so no two in flight share one.
 */
export function uploadPath(runId: string, seq: number, everyMs: number): string {
  const names = Math.ceil(TRANSFER_TIMEOUT_MS / Math.max(1, everyMs)) + 2;
  return `${UPLOAD_PREFIX}${runId}-${seq % names}`;
}

/**
 * One request: a GET, or with `upload` a PUT whose 1 MiB body is sent at the lab's pace. Resolves with the answer,
 * whatever its status, or rejects with a short reason when there is none (reset, refused, timeout, cut mid-body).
 */
function exchange(url: URL, agent: Agent | false, timeoutMs: number, upload = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let stopBody = (): void => undefined;
    const finish = (error: string | undefined, value?: Answer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopBody();
      if (error === undefined && value !== undefined) resolve(value);
      else reject(new Error(error ?? 'unknown'));
    };
    const headers = upload ? {'Content-Type': 'application/octet-stream', 'Content-Length': TRANSFER_BYTES} : {};
    const exchanged = request(url, {agent, method: upload ? 'PUT' : 'GET', headers}, (response: IncomingMessage) => {
      const answeredAfterBody = exchanged.writableFinished;
      let bytes = 0;
      let head = '';
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (head.length < 256) head += chunk.subarray(0, 256).toString('latin1');
      });
      response.on('end', () => {
        const served = response.headers['x-served-by'];
        const received = response.headers[RECEIVED_BYTES_HEADER.toLowerCase()];
        finish(undefined, {
          status: response.statusCode ?? 0, host: typeof served === 'string' ? served : HOST_IN_PAGE.exec(head)?.[1] ?? 'unknown', bytes,
          receivedBytes: typeof received === 'string' ? received : undefined, answeredAfterBody,
        });
        // An answer before the whole body went out leaves the upload unfinished: nothing more is sent on it.
        if (!exchanged.writableFinished) exchanged.destroy();
      });
      response.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
      response.on('aborted', () => finish('aborted mid-body'));
    });
    const timer = setTimeout(() => {
      finish(`no answer within ${timeoutMs} ms`);
      exchanged.destroy();
    }, timeoutMs);
    exchanged.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    if (upload) stopBody = sendPacedBody(exchanged, UPLOAD_FILL);
    else exchanged.end();
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
  const tallies = Object.fromEntries(CLIENT_CLASSES.map((kind) => [kind, new Tally(started)])) as Record<ClientClass, Tally>;
  const inFlight = new Set<Promise<void>>();
  const track = (work: Promise<void>): void => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  const pageUrl = options.url;
  const downloadUrl = new URL(DOWNLOAD_PATH, options.url);
  // Upload names are this run's own: two clients runs against one lab never write the same file.
  const runId = randomBytes(4).toString('hex');

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
  const attempt = (kind: ClientClass, work: () => Promise<Answer>): void => {
    const tally = tallies[kind];
    const seq = tally.attempts;
    tally.attempts += 1;
    const sentAt = now();
    const failed = (error: string): void => {
      tally.fail(sentAt - started, error);
      record(kind, seq, sentAt, null, error);
    };
    track(work().then((answer) => {
      const wrong = judgeAnswer(kind, answer);
      if (wrong !== undefined) return failed(wrong);
      tally.succeed(answer.host, now());
      record(kind, seq, sentAt, answer.host, null);
    }, (error: unknown) => failed(error instanceof Error ? error.message : String(error))));
  };

  const loops: Promise<void>[] = [];
  loops.push(every(options.freshIntervalMs, 0, () => attempt('fresh', () => exchange(pageUrl, false, options.freshTimeoutMs))));
  // Each keep-alive client has its own connection (an agent of one socket) and waits for its answer before the
  // next request, as a client on one connection must.
  for (let i = 0; i < options.keepAlive; i += 1) {
    const agent = new Agent({keepAlive: true, maxSockets: 1});
    let busy = false;
    loops.push(every(options.keepAliveIntervalMs, (i * options.keepAliveIntervalMs) / Math.max(1, options.keepAlive), () => {
      if (busy) return;
      busy = true;
      attempt('keepAlive', () => exchange(pageUrl, agent, KEEP_ALIVE_TIMEOUT_MS).finally(() => {
        busy = false;
      }));
    }).finally(() => agent.destroy()));
  }
  // Transfers in flight: one started every interval on its own connection, whatever the others are doing, up to a
  // count; downloads and uploads alike.
  const transfers = (kind: 'downloads' | 'uploads', everyMs: number, max: number, url: (seq: number) => URL, upload: boolean): Promise<void> =>
    every(everyMs, 0, () => {
      const seq = tallies[kind].attempts;
      if (seq >= max) return;
      attempt(kind, () => exchange(url(seq), false, TRANSFER_TIMEOUT_MS, upload));
    });
  loops.push(transfers('downloads', options.downloadEveryMs, options.maxDownloads, () => downloadUrl, false));
  loops.push(transfers('uploads', options.uploadEveryMs, options.maxUploads,
    (seq) => new URL(uploadPath(runId, seq, options.uploadEveryMs), options.url), true));
  await new Promise<void>((resolve) => (stop.signal.aborted ? resolve() : stop.signal.addEventListener('abort', () => resolve(), {once: true})));
  clearTimeout(end);
  await Promise.all(loops);
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  if (options.records !== undefined && records !== undefined) {
    writeFileSync(options.records, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  return {
    durationMs: Math.round(since()),
    classes: Object.fromEntries(CLIENT_CLASSES.map((kind) => [kind, tallies[kind].summary()])) as Record<ClientClass, ClassSummary>,
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
