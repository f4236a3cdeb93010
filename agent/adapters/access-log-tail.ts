// AccessLogWatcher on the web server's log file: follows appends by polling, survives rename and copytruncate
// rotation, and judges each new line that parses and is recent enough: evidence of a client, or excluded with a
// reason (request-evidence.ts). At preflight it reads the log's last lines to check that they are in its format.

import {statSync, type BigIntStats} from 'node:fs';
import {constants, open, stat, type FileHandle} from 'node:fs/promises';
import {performance} from 'node:perf_hooks';
import {setTimeout as delay} from 'node:timers/promises';
import {COMBINED, describeLogFormat, guessLogFormat, type LogFormat, parseAccessLogLine} from '../access-log.js';
import {BatonError, describeError} from '../errors.js';
import type {AccessLogCheck, AccessLogWatcher} from '../ports.js';
import {addToTally, createJudge, emptyTally, type EvidenceRules, type RequestTally} from '../request-evidence.js';

export interface AccessLogTailOptions {
  /** confirm.access_log */
  readonly file: string;
  /** confirm.log_format; combined (which reads common too) by default. */
  readonly format?: LogFormat;
  /** What counts as evidence, read at each countRequests (this host's addresses may have changed). */
  readonly rules: () => EvidenceRules;
  readonly pollMs?: number;
  /** How long the log may be missing (between rename and re-creation) before countRequests throws. */
  readonly rotationGraceMs?: number;
  /** Wall clock, only to tell the operator when the log vanished; durations use the monotonic clock. */
  readonly wallNow?: () => number;
}

// 50 ms: confirmation latency adds directly to the switch time shown to the operator, and a poll costs one
// fstat and one stat (40 pairs of syscalls a second, negligible); a line is seen at most 50 ms after it is written.
const DEFAULT_POLL_MS = 50;
// 5 s: logrotate renames, creates the new file and signals the server within milliseconds; 5 s also covers a
// slow postrotate (apache2ctl graceful), and still fails well inside confirm.timeout_s (30 s in the example).
const DEFAULT_ROTATION_GRACE_MS = 5000;
const READ_CHUNK_BYTES = 64 * 1024;
// nginx and Apache cap the request line and each header near 8 KiB and escaping at most quadruples them, so a
// real combined line stays far below this; longer "lines" are dropped instead of growing the buffer forever.
const MAX_LINE_BYTES = 256 * 1024;
const NEWLINE = 0x0a;
// Preflight reads this much of the log's end, and judges its format by the last lines in it.
const SAMPLE_BYTES = 64 * 1024;
const SAMPLE_LINES = 20;
const EMPTY = Buffer.alloc(0);

const FIX_PATH =
  'set confirm.access_log to the log your web server writes (nginx: /var/log/nginx/access.log, Apache on Debian: /var/log/apache2/access.log)';
const FIX_PERMISSION = 'let the user baton-agent runs as read it (on Debian the logs belong to group adm: add the user to it)';

/** One open generation of the log (the file at the path now, or the one rotation moved away). */
interface LogReader {
  readonly handle: FileHandle;
  readonly dev: bigint;
  readonly ino: bigint;
  position: number;
  /** Bytes after the last newline: a line the server has not finished writing yet. */
  partial: Buffer;
  /** Inside an overlong line: drop everything up to the next newline. */
  discarding: boolean;
  /** Monotonic ms of the last growth; only for a reader being drained after a rename. */
  quietSince: number;
}

export function createAccessLogTail(options: AccessLogTailOptions): AccessLogWatcher {
  const {file} = options;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const rotationGraceMs = options.rotationGraceMs ?? DEFAULT_ROTATION_GRACE_MS;
  const wallNow = options.wallNow ?? Date.now;
  const format = options.format ?? COMBINED;

  async function* follow(mark: EndMark, afterWallMs: number, signal: AbortSignal, peerAddresses: readonly string[]): AsyncGenerator<RequestTally> {
    // The log has second resolution: a request at 13:45:02.900, after an `afterWallMs` of 13:45:02.300, is
    // logged as 13:45:02, so only rounding down keeps it. Lines of that second written before the call are
    // still left out, by position.
    const afterMs = Math.floor(afterWallMs / 1000) * 1000;
    const chunk = Buffer.alloc(READ_CHUNK_BYTES);
    const rules = options.rules();
    const judge = createJudge({...rules, ownAddresses: [...rules.ownAddresses, ...peerAddresses]});
    let tally = emptyTally();
    let judged = 0;
    let yielded = 0;
    let current: LogReader | undefined;
    let draining: LogReader | undefined;
    let missingSince: {monotonicMs: number; wallMs: number} | undefined;

    const countLine = (line: string): void => {
      const entry = parseAccessLogLine(line, format);
      if (entry === undefined || entry.timeMs < afterMs) return;
      tally = addToTally(tally, judge(entry));
      judged += 1;
    };

    /** Reads what was appended since the last call; true when the file grew. */
    const readAppended = async (reader: LogReader): Promise<boolean> => {
      const {size} = await reader.handle.stat();
      // copytruncate: the server keeps its descriptor (O_APPEND) and goes on writing from 0. A truncation followed
      // within one poll by more bytes than we had read looks like growth; at 50 ms that takes a burst larger than
      // the whole old log, and logrotate already loses the lines between its copy and its truncate anyway.
      if (size < reader.position) {
        reader.position = 0;
        reader.partial = EMPTY;
        reader.discarding = false;
      }
      let grew = false;
      while (reader.position < size) {
        const {bytesRead} = await reader.handle.read(chunk, 0, Math.min(READ_CHUNK_BYTES, size - reader.position), reader.position);
        if (bytesRead === 0) break; // truncated between the fstat and the read; the next poll sees it
        reader.position += bytesRead;
        grew = true;
        splitLines(reader, chunk.subarray(0, bytesRead), countLine);
      }
      return grew;
    };

    const closeReader = async (reader: LogReader): Promise<void> => {
      await readAppended(reader);
      await reader.handle.close();
    };

    const poll = async (): Promise<void> => {
      if (current !== undefined) await readAppended(current);
      if (draining !== undefined) {
        // After a rename the server writes to the old file until it reopens (nginx on USR1, Apache on graceful),
        // which logrotate triggers after creating the new one; once the old file has been quiet for the grace
        // period, every writer has moved on.
        if (await readAppended(draining)) draining.quietSince = performance.now();
        else if (performance.now() - draining.quietSince >= rotationGraceMs) {
          await draining.handle.close();
          draining = undefined;
        }
      }
      const atPath = await statLog(file);
      if (atPath === undefined) {
        missingSince ??= {monotonicMs: performance.now(), wallMs: wallNow()};
        const missingMs = Math.round(performance.now() - missingSince.monotonicMs);
        if (missingMs >= rotationGraceMs) {
          throw new BatonError(
            'ACCESS_LOG_UNREADABLE',
            `access log ${file} has been missing since ${new Date(missingSince.wallMs).toISOString()} (${missingMs} ms, ` +
              `longer than a rotation takes); make log rotation re-create it (logrotate: create, and reopen the log ` +
              `in postrotate) or ${FIX_PATH}`,
          );
        }
        return;
      }
      missingSince = undefined;
      if (current !== undefined && atPath.ino === current.ino && atPath.dev === current.dev) return;
      // A new file at the path: rotation by rename (or the log appeared after the call). Everything in it is new.
      const next = await openLog(file);
      if (next === undefined) return; // renamed away again between stat and open; the next poll looks again
      if (current !== undefined) {
        if (draining !== undefined) await closeReader(draining);
        draining = current;
        draining.quietSince = performance.now();
      }
      current = next;
      await readAppended(current);
    };

    try {
      if (mark.kind === 'failed') throw mark.error;
      if (mark.kind === 'found') {
        current = await openLog(file);
        // Rotated between the call and the first iteration: the file at the path is then new in its entirety.
        if (current !== undefined && current.ino === mark.ino && current.dev === mark.dev) current.position = mark.size;
      }
      while (!signal.aborted) {
        await poll();
        if (signal.aborted) return;
        if (judged > yielded) {
          yielded = judged;
          yield tally;
        }
        try {
          await delay(pollMs, undefined, {signal});
        } catch (error) {
          if (signal.aborted) return;
          throw error;
        }
      }
    } finally {
      // Both closes start even if one fails; each generation's descriptor is closed exactly once here.
      await Promise.all([current?.handle.close(), draining?.handle.close()]);
    }
  }

  return {
    async check() {
      const reader = await openLog(file);
      if (reader === undefined) throw unreadable(file, 'is missing', FIX_PATH);
      let lines: string[];
      try {
        lines = await lastLines(reader.handle);
      } catch (error) {
        throw describeOpenFailure(file, error);
      } finally {
        await reader.handle.close();
      }
      return judgeSample(file, format, lines);
    },
    countRequests(afterWallMs, signal, peerAddresses = []) {
      return follow(markEnd(file), afterWallMs, signal, peerAddresses);
    },
  };
}

/** The last complete, non-empty lines of a log, as preflight judges them (the host check reads the same). Throws
 *  the file system's error. */
export async function readLastLines(file: string): Promise<string[]> {
  const reader = await openLog(file);
  if (reader === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${file}'`), {code: 'ENOENT'});
  try {
    return await lastLines(reader.handle);
  } finally {
    await reader.handle.close();
  }
}

/** The last SAMPLE_LINES complete, non-empty lines in the last SAMPLE_BYTES of the log. */
async function lastLines(handle: FileHandle): Promise<string[]> {
  const {size} = await handle.stat();
  const start = Math.max(0, size - SAMPLE_BYTES);
  const buffer = Buffer.alloc(size - start);
  const {bytesRead} = await handle.read(buffer, 0, buffer.length, start);
  const lines = buffer.toString('utf8', 0, bytesRead).split('\n');
  // The first piece may be the end of a line cut by the window; the last is a line not finished yet (or '').
  if (start > 0) lines.shift();
  lines.pop();
  return lines.filter((line) => line.trim() !== '').slice(-SAMPLE_LINES);
}

/**
 * Whether recent lines are in the configured format. None of them: the switch would pay the service gap and
 * then roll back on a log it cannot read, so this refuses it, naming the format the lines look like. An empty log
 * proves nothing either way and is allowed (a new server may not have logged yet).
 */
export function judgeSample(file: string, format: LogFormat, lines: readonly string[]): AccessLogCheck {
  const entries = lines.map((line) => parseAccessLogLine(line, format));
  const parsed = entries.filter((entry) => entry !== undefined);
  if (lines.length > 0 && parsed.length === 0) {
    const sample = (lines.at(-1) ?? '').slice(0, 160);
    throw new BatonError('ACCESS_LOG_UNREADABLE',
      `access log ${file}: none of its last ${lines.length} line(s) is in the format confirm.log_format says ` +
      `(${describeLogFormat(format)}); they look like ${guessLogFormat(lines)}, e.g. ${JSON.stringify(sample)}. ` +
      'Set confirm.log_format to the format the server writes (docs/configuration.md, "The access log")');
  }
  return {sampled: lines.length, parsed: parsed.length, showsLocalAddress: parsed.some((entry) => entry.local !== undefined)};
}

type EndMark =
  | {readonly kind: 'found'; readonly dev: bigint; readonly ino: bigint; readonly size: number}
  | {readonly kind: 'missing'}
  | {readonly kind: 'failed'; readonly error: unknown};

/**
 * Where the log ends at the moment of the call, not at the first next(): lines written in between are new.
 * Synchronous on purpose: it is one stat of a local file, and an awaited stat would race the very appends it
 * must precede. A failure is kept as a value and thrown by the iteration, where the caller awaits it.
 */
function markEnd(file: string): EndMark {
  try {
    const stats = statSync(file, {bigint: true});
    return {kind: 'found', dev: stats.dev, ino: stats.ino, size: Number(stats.size)};
  } catch (error) {
    // Mid-rotation at the call: whatever appears at the path later is new.
    if (isMissing(error)) return {kind: 'missing'};
    return {kind: 'failed', error: describeOpenFailure(file, error)};
  }
}

/** The log's identity at its path, undefined when nothing is there. Throws ACCESS_LOG_UNREADABLE. */
async function statLog(file: string): Promise<BigIntStats | undefined> {
  let stats: BigIntStats;
  try {
    stats = await stat(file, {bigint: true});
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw describeOpenFailure(file, error);
  }
  if (!stats.isFile()) throw notRegularFile(file);
  return stats;
}

/** Opens the file at the path, positioned at its start; undefined when nothing is there. Throws ACCESS_LOG_UNREADABLE. */
async function openLog(file: string): Promise<LogReader | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise block a libuv thread until a writer appears.
    // It changes nothing for regular files.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw describeOpenFailure(file, error);
  }
  try {
    const stats = await handle.stat({bigint: true});
    if (!stats.isFile()) throw notRegularFile(file);
    return {handle, dev: stats.dev, ino: stats.ino, position: 0, partial: EMPTY, discarding: false, quietSince: 0};
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Feeds every complete line of `bytes` to `onLine`; keeps an unfinished last line for the next read. */
function splitLines(reader: LogReader, bytes: Buffer, onLine: (line: string) => void): void {
  const data = reader.partial.length > 0 ? Buffer.concat([reader.partial, bytes]) : bytes;
  let start = 0;
  for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
    if (reader.discarding) reader.discarding = false;
    else onLine(data.toString('utf8', start, newline));
    start = newline + 1;
  }
  const rest = data.subarray(start);
  if (rest.length > MAX_LINE_BYTES) {
    reader.partial = EMPTY;
    reader.discarding = true;
  } else {
    // A copy: `bytes` is the caller's reusable read buffer.
    reader.partial = Buffer.from(rest);
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unreadable(file: string, problem: string, fix: string, cause?: unknown): BatonError {
  return new BatonError('ACCESS_LOG_UNREADABLE', `access log ${file} ${problem}; ${fix}`, cause === undefined ? undefined : {cause});
}

function notRegularFile(file: string): BatonError {
  return unreadable(file, 'is not a regular file', FIX_PATH);
}

function describeOpenFailure(file: string, error: unknown): BatonError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (isMissing(error)) return unreadable(file, 'is missing', FIX_PATH, error);
  if (code === 'EACCES' || code === 'EPERM') return unreadable(file, 'is not readable (permission denied)', FIX_PERMISSION, error);
  if (code === 'EISDIR') return unreadable(file, 'is not a regular file', FIX_PATH, error);
  return unreadable(file, `cannot be read: ${describeError(error)}`, FIX_PATH, error);
}
