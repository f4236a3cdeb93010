// The client prober's record format (one JSON line per probe) and the pure reading of it: parsing a probe log and
// summarising a window of it into what a client saw (probes, failures, the longest gap, who answered).

import {BatonError} from '../../agent/errors.js';

/** One probe, as cli/lab/probe.ts writes it: one JSON object per line, in completion order (not seq order). */
export interface ProbeRecord {
  /** 0, 1, 2, … in sending order. */
  readonly seq: number;
  /** Wall-clock ms (Date.now()) when the request was sent. */
  readonly sentAt: number;
  /** Ms from sending to the end of the response body, or to the failure (timeout, refused, reset). */
  readonly rttMs: number;
  /** A complete response with a 2xx status arrived within the probe's timeout. */
  readonly ok: boolean;
  /** Who answered, from the page's "served by <host>" (lab web servers); null when the page does not say. */
  readonly host: string | null;
  /** Why the probe failed (e.g. "timeout after 200 ms", "ECONNREFUSED", "HTTP 503"); null when ok. */
  readonly error: string | null;
  /** Which of several probers sent it (a dual-stack drill probes each service address: "IPv4", "IPv6"); set by the
   *  reader, not in the log. Absent: the only prober. */
  readonly stream?: string;
}

export interface ProbeSummary {
  /** Probes sent within the window. */
  readonly probes: number;
  readonly failed: number;
  /**
   * The longest time without a successful response: between two consecutive successful responses (response time
   * = sentAt + rttMs), and also from the window's start to the first one and from the last one to the window's end,
   * so an outage at either edge is not hidden. The window's start defaults to the first probe's sentAt, its end to
   * the last probe's settle time (sentAt + rttMs). Without any success the gap is the whole window.
   * Time in which the prober itself sent nothing (its own process stalled: no probe left for longer than one and a
   * half of its usual interval) is not counted: nothing asked the service then, so it says nothing about it.
   */
  readonly longestGapMs: number;
  /** The longest stretch in which the prober sent nothing beyond its usual interval (its own stall), ms. */
  readonly proberStallMs: number;
  /** Successful probes by the host that answered; "-" when the page did not name one. */
  readonly hosts: Record<string, number>;
}

// What a page without "served by <host>" is counted under, like CLF's "-" for an absent field.
const UNKNOWN_HOST = '-';

/**
 * Parses a probe log. Blank lines are skipped; an unparseable LAST line without its newline is a record still being
 * written (a reader following the file) and is skipped too. Any other bad line throws LAB_FAILED with its number.
 */
export function parseProbeLog(text: string): ProbeRecord[] {
  const lines = text.split('\n');
  const records: ProbeRecord[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const record = parseProbeRecord(line);
    if (record !== undefined) {
      records.push(record);
      continue;
    }
    const isUnfinishedTail = index === lines.length - 1;
    if (isUnfinishedTail) continue;
    throw new BatonError('LAB_FAILED',
      `probe log line ${index + 1} is not a probe record: ${JSON.stringify(line.slice(0, 200))}; ` +
      'the file must hold only lines written by dist/cli/lab/probe.js (use a fresh --out file per run)');
  }
  return records;
}

function parseProbeRecord(line: string): ProbeRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const {seq, sentAt, rttMs, ok, host, error} = value as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return undefined;
  if (typeof sentAt !== 'number' || !Number.isFinite(sentAt)) return undefined;
  if (typeof rttMs !== 'number' || !Number.isFinite(rttMs) || rttMs < 0) return undefined;
  if (typeof ok !== 'boolean') return undefined;
  if (host !== null && typeof host !== 'string') return undefined;
  if (error !== null && typeof error !== 'string') return undefined;
  return {seq: seq as number, sentAt, rttMs, ok, host, error};
}

/**
 * Summarises the probes SENT within [fromWallMs, toWallMs] (both optional, inclusive). See ProbeSummary for how the
 * gap is measured. Responses that land after toWallMs count as arriving at toWallMs: they prove the service was
 * answering by then. With no probe in the window, the gap is the window's length when both edges are given, else 0.
 */
export function summarizeProbes(records: readonly ProbeRecord[], fromWallMs?: number, toWallMs?: number): ProbeSummary {
  const inWindow = records.filter((r) =>
    (fromWallMs === undefined || r.sentAt >= fromWallMs) && (toWallMs === undefined || r.sentAt <= toWallMs));
  const hosts: Record<string, number> = {};
  let failed = 0;
  for (const record of inWindow) {
    if (!record.ok) {
      failed += 1;
      continue;
    }
    const host = record.host ?? UNKNOWN_HOST;
    hosts[host] = (hosts[host] ?? 0) + 1;
  }
  if (inWindow.length === 0) {
    const longestGapMs = fromWallMs !== undefined && toWallMs !== undefined ? Math.max(0, toWallMs - fromWallMs) : 0;
    return {probes: 0, failed: 0, longestGapMs, hosts, proberStallMs: 0};
  }
  // reduce, not Math.min(...spread): a long run's records would exceed the argument limit.
  const start = fromWallMs ?? inWindow.reduce((min, r) => Math.min(min, r.sentAt), Infinity);
  const end = toWallMs ?? inWindow.reduce((max, r) => Math.max(max, r.sentAt + r.rttMs), -Infinity);
  const answers = inWindow.filter((r) => r.ok).map((r) => Math.min(r.sentAt + r.rttMs, end)).sort((a, b) => a - b);
  const stalls = proberStalls(inWindow.map((r) => r.sentAt).sort((a, b) => a - b));
  const longestGapMs = longestUnanswered(answers, start, end, stalls);
  const proberStallMs = stalls.reduce((most, [from, to]) => Math.max(most, to - from), 0);
  return {probes: inWindow.length, failed, longestGapMs, hosts, proberStallMs};
}

/**
 * Probes of several probers at once (a dual-stack drill probes each service address): each stream is summarised on
 * its own, since one family's outage must not hide behind the other's answers; the result has the longest gap and
 * stall of any stream and the probes, failures and hosts of all. One stream: summarizeProbes.
 */
export function summarizeStreams(records: readonly ProbeRecord[], fromWallMs?: number, toWallMs?: number): ProbeSummary {
  const streams = Map.groupBy(records, (r) => r.stream);
  if (streams.size <= 1) return summarizeProbes(records, fromWallMs, toWallMs);
  const parts = [...streams.values()].map((stream) => summarizeProbes(stream, fromWallMs, toWallMs));
  const hosts: Record<string, number> = {};
  for (const part of parts) for (const [host, count] of Object.entries(part.hosts)) hosts[host] = (hosts[host] ?? 0) + count;
  return {
    probes: parts.reduce((sum, p) => sum + p.probes, 0), failed: parts.reduce((sum, p) => sum + p.failed, 0),
    longestGapMs: Math.max(...parts.map((p) => p.longestGapMs)), proberStallMs: Math.max(...parts.map((p) => p.proberStallMs)), hosts,
  };
}

/**
 * Where the prober sent nothing for longer than it should have: between two consecutive sends further apart than
 * 1.5 × the usual (median) spacing, the time after one usual interval. Probes go out on a fixed schedule, so such a
 * hole is the prober's own process not running (a busy host, a preflight's process starts), not the service.
 */
export function proberStalls(sends: readonly number[]): Array<[number, number]> {
  if (sends.length < 3) return [];
  const spacings = sends.slice(1).map((at, i) => at - (sends[i] ?? at)).sort((a, b) => a - b);
  const usual = spacings[Math.floor(spacings.length / 2)] ?? 0;
  if (usual <= 0) return [];
  const stalls: Array<[number, number]> = [];
  for (let i = 1; i < sends.length; i++) {
    const [before, after] = [sends[i - 1] ?? 0, sends[i] ?? 0];
    if (after - before > 1.5 * usual) stalls.push([before + usual, after]);
  }
  return stalls;
}

/**
 * The longest time in [fromMs, toMs] without an answer, less the parts of it the sender spent stalled (see
 * proberStalls). The window's edges count as answers, so that an outage at either edge is not hidden; answers
 * outside the window are ignored. `answers` is sorted.
 */
export function longestUnanswered(answers: readonly number[], fromMs: number, toMs: number, stalls: ReadonlyArray<readonly [number, number]> = []): number {
  let longest = 0;
  let previous = fromMs;
  for (const at of [...answers.filter((a) => a >= fromMs && a <= toMs), toMs]) {
    const unasked = stalls.reduce((sum, [from, to]) => sum + Math.max(0, Math.min(to, at) - Math.max(from, previous)), 0);
    longest = Math.max(longest, at - previous - unasked);
    previous = at;
  }
  return longest;
}
