// The lab's client prober, a standalone script run inside the client namespace: one HTTP GET per interval on a fixed
// schedule, each on a new connection with its own timeout, each result appended to --out as one JSON line.
//
//   ip netns exec NS node dist/cli/lab/probe.js --url http://192.0.2.100/ --out FILE
//     [--interval-ms 50] [--timeout-ms 200] [--duration-s 10] [--max-probes 10000]
//
// Probes go out on a fixed schedule (start + k × interval), whether or not the previous one has answered: a stalled
// probe must not delay the next, or a 200 ms timeout would hide how soon the service came back and gaps would be
// measured in timeouts, not in intervals. So up to ceil(timeout / interval) + 1 probes are in flight. A slot missed
// because the event loop was late is skipped, never caught up with a burst.
//
// Ends at --duration-s, after --max-probes, or on SIGTERM/SIGINT: no new probe, the ones in flight settle (each
// within --timeout-ms), then exit 0. A second signal exits at once. Node built-ins only, so it starts fast.

import {closeSync, openSync, writeSync} from 'node:fs';
import {type ClientRequest, request} from 'node:http';
import {performance} from 'node:perf_hooks';
import {parseArgs} from 'node:util';
import type {ProbeRecord} from './probe-report.js';

const USAGE = 'usage: probe.js --url http://HOST[:PORT]/PATH --out FILE [--interval-ms 50] [--timeout-ms 200] ' +
  '[--duration-s 10] [--max-probes 10000]';
// Bounds that keep a mistyped option from probing forever or flooding: an hour and a million probes are far beyond
// any drill (the benchmark runs seconds at 20–50 ms).
const MAX_DURATION_S = 3600;
const MAX_PROBES = 1_000_000;
const MAX_INTERVAL_MS = 60_000;
const MAX_TIMEOUT_MS = 60_000;
// The lab page is one short line; a real site's page is read to its end but only this much is kept to find the host.
const BODY_KEEP_BYTES = 4096;
// After stopping, in-flight probes settle within their timeout; this much more is the hard bound on exiting.
const EXIT_SLACK_MS = 1000;
const HOST_IN_PAGE = /served by (\S+)/;

interface Options {
  readonly url: URL;
  readonly out: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly durationS: number;
  readonly maxProbes: number;
}

function readOptions(argv: readonly string[]): Options {
  const {values} = parseArgs({
    args: [...argv],
    options: {
      url: {type: 'string'},
      out: {type: 'string'},
      'interval-ms': {type: 'string', default: '50'},
      'timeout-ms': {type: 'string', default: '200'},
      'duration-s': {type: 'string', default: '10'},
      'max-probes': {type: 'string', default: '10000'},
    },
    strict: true,
    allowPositionals: false,
  });
  const problems: string[] = [];
  const number = (name: string, text: string, min: number, max: number, integer: boolean): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(`--${name}: expected ${integer ? 'an integer' : 'a number'} ${min}..${max}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
  const intervalMs = number('interval-ms', values['interval-ms'], 1, MAX_INTERVAL_MS, true);
  const timeoutMs = number('timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS, true);
  const durationS = number('duration-s', values['duration-s'], 0.001, MAX_DURATION_S, false);
  const maxProbes = number('max-probes', values['max-probes'], 1, MAX_PROBES, true);
  let url: URL | undefined;
  if (values.url === undefined) {
    problems.push('--url is required, e.g. --url http://192.0.2.100/');
  } else if (!URL.canParse(values.url) || new URL(values.url).protocol !== 'http:') {
    problems.push(`--url: expected an http:// URL, got ${JSON.stringify(values.url)}`);
  } else {
    url = new URL(values.url);
  }
  if (values.out === undefined) problems.push('--out FILE is required (probe records are appended to it)');
  if (problems.length > 0 || url === undefined || values.out === undefined) throw new Error(`${problems.join('; ')}\n${USAGE}`);
  return {url, out: values.out, intervalMs, timeoutMs, durationS, maxProbes};
}

function describeFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}

function run(options: Options): void {
  const fd = openSync(options.out, 'a', 0o644);
  const startedAt = performance.now();
  const deadline = startedAt + options.durationS * 1000;
  let sent = 0;
  let slot = 0;
  let inFlight = 0;
  let failed = 0;
  let stopping = false;
  let closed = false;
  let next: NodeJS.Timeout | undefined;

  const close = (): void => {
    if (closed) return;
    closed = true;
    closeSync(fd);
    process.stdout.write(`probe: ${sent} probes, ${failed} failed, to ${options.url.href}\n`);
  };
  // One write(2) per record, no userland buffer: a reader following the file sees each probe as soon as it settles,
  // and a line this short is appended atomically.
  const record = (entry: ProbeRecord): void => {
    if (!entry.ok) failed += 1;
    if (!closed) writeSync(fd, `${JSON.stringify(entry)}\n`);
  };
  const settled = (): void => {
    inFlight -= 1;
    if (stopping && inFlight === 0) close();
  };
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    clearTimeout(next);
    if (inFlight === 0) close();
    // Never reached in normal runs (every probe ends within its timeout); unref'd so it cannot itself hold the process.
    setTimeout(() => {
      close();
      process.exit(0);
    }, options.timeoutMs + EXIT_SLACK_MS).unref();
  };

  const probe = (seq: number): void => {
    const sentAt = Date.now();
    const started = performance.now();
    inFlight += 1;
    let done = false;
    let req: ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (ok: boolean, host: string | null, error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req?.destroy();
      record({seq, sentAt, rttMs: Math.round((performance.now() - started) * 100) / 100, ok, host, error});
      settled();
    };
    // agent: false and Connection: close: a new TCP connection per probe, so each one finds the service IP afresh
    // (ARP included) instead of riding a connection that outlives the switch.
    try {
      req = request(options.url, {agent: false, headers: {Connection: 'close'}}, (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept < BODY_KEEP_BYTES) {
            chunks.push(chunk);
            kept += chunk.length;
          }
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const host = HOST_IN_PAGE.exec(Buffer.concat(chunks).toString('utf8'))?.[1] ?? null;
          const ok = status >= 200 && status < 300;
          finish(ok, host, ok ? null : `HTTP ${status}`);
        });
        res.on('error', (error) => finish(false, null, describeFailure(error)));
      });
      req.on('error', (error) => finish(false, null, describeFailure(error)));
      timer = setTimeout(() => finish(false, null, `timeout after ${options.timeoutMs} ms`), options.timeoutMs);
      req.end();
    } catch (error) {
      finish(false, null, describeFailure(error));
    }
  };

  const tick = (): void => {
    if (stopping) return;
    const now = performance.now();
    if (sent >= options.maxProbes || now >= deadline) {
      stop();
      return;
    }
    probe(sent);
    sent += 1;
    slot = Math.max(slot + 1, Math.floor((performance.now() - startedAt) / options.intervalMs) + 1);
    next = setTimeout(tick, Math.max(0, startedAt + slot * options.intervalMs - performance.now()));
  };

  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (signals > 1) {
      close();
      process.exit(0);
    }
    stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  tick();
}

try {
  run(readOptions(process.argv.slice(2)));
} catch (error) {
  process.stderr.write(`probe: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
