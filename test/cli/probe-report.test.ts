// Unit tests of the prober's pure report helpers: parsing probe logs and summarising a window of probes.

import test from 'ava';
import {clientsLine, drainLine} from '../../cli/drill/report.js';
import {BatonError} from '../../agent/errors.js';
import {longestUnanswered, parseProbeLog, type ProbeRecord, type ProbeSummary, summarizeProbes, summarizeStreams} from '../../cli/lab/probe-report.js';

/** A successful probe sent at `sentAt` whose response ended `rttMs` later. */
function ok(seq: number, sentAt: number, rttMs: number, host: string | null = 'primary'): ProbeRecord {
  return {seq, sentAt, rttMs, ok: true, host, error: null};
}

function failed(seq: number, sentAt: number, rttMs = 200, error = 'timeout after 200 ms'): ProbeRecord {
  return {seq, sentAt, rttMs, ok: false, host: null, error};
}

// The prober's own stalls have tests of their own below.
const summarizes = test.macro({
  exec(t, records: readonly ProbeRecord[], window: [number?, number?], expected: Omit<ProbeSummary, 'proberStallMs'>) {
    const {proberStallMs: _stall, ...summary} = summarizeProbes(records, ...window);
    t.deepEqual(summary, expected);
  },
  title: (note = '') => `summarizeProbes: ${note}`,
});

test('no probes and no window: nothing observed', summarizes, [], [], {probes: 0, failed: 0, longestGapMs: 0, hosts: {}});
test('no probes in a given window: the whole window is a gap', summarizes, [ok(0, 5000, 1)], [1000, 1500],
  {probes: 0, failed: 0, longestGapMs: 500, hosts: {}});
test('all successes every 50 ms: the gap is the interval (first edge: the first rtt)', summarizes,
  [ok(0, 1000, 2), ok(1, 1050, 2), ok(2, 1100, 2)], [],
  {probes: 3, failed: 0, longestGapMs: 50, hosts: {primary: 3}});
test('no success at all: the gap is from the first send to the last settle', summarizes,
  [failed(0, 1000), failed(1, 1050), failed(2, 1100, 150, 'ECONNREFUSED')], [],
  {probes: 3, failed: 3, longestGapMs: 250, hosts: {}});
test('no success in a given window: the gap is the window', summarizes,
  [failed(0, 1000), failed(1, 1050)], [900, 1400],
  {probes: 2, failed: 2, longestGapMs: 500, hosts: {}});
test('failures in the middle: gap between the successes around them', summarizes,
  [ok(0, 1000, 1), failed(1, 1050), failed(2, 1100), ok(3, 1150, 1), ok(4, 1200, 1)], [],
  {probes: 5, failed: 2, longestGapMs: 150, hosts: {primary: 3}});
test('records out of order (completion order) are ordered by response time', summarizes,
  [ok(1, 1050, 1), ok(0, 1000, 120), ok(2, 1100, 1)], [],
  // responses at 1051, 1101, 1120: edge 1000→1051 is the longest
  {probes: 3, failed: 0, longestGapMs: 51, hosts: {primary: 3}});
test('a gap at the start of the window counts from the window start', summarizes,
  [ok(0, 1000, 1), ok(1, 1300, 1), ok(2, 1350, 1)], [900, 1400],
  // window start 900 → 1001 is 101; 1001 → 1301 is 300
  {probes: 3, failed: 0, longestGapMs: 300, hosts: {primary: 3}});
test('an outage at the end of the window counts up to the window end', summarizes,
  [ok(0, 1000, 1), ok(1, 1050, 1), failed(2, 1100), failed(3, 1150)], [1000, 2000],
  {probes: 4, failed: 2, longestGapMs: 949, hosts: {primary: 2}});
test('probes sent outside the window are left out', summarizes,
  [failed(0, 500), ok(1, 1000, 1), ok(2, 1050, 1), failed(3, 2500)], [1000, 1100],
  {probes: 2, failed: 0, longestGapMs: 50, hosts: {primary: 2}});
test('a response after the window end counts as arriving at the end', summarizes,
  [ok(0, 1000, 1), ok(1, 1090, 50)], [1000, 1100],
  {probes: 2, failed: 0, longestGapMs: 99, hosts: {primary: 2}});
test('a host change is counted per host, the switch gap between them', summarizes,
  [ok(0, 1000, 1), ok(1, 1050, 1), failed(2, 1100), ok(3, 1150, 3, 'backup'), ok(4, 1200, 1, 'backup')], [],
  {probes: 5, failed: 1, longestGapMs: 102, hosts: {primary: 2, backup: 2}});
test('a page that names no host is counted under "-"', summarizes,
  [ok(0, 1000, 1, null), ok(1, 1050, 1)], [],
  {probes: 2, failed: 0, longestGapMs: 50, hosts: {'-': 1, primary: 1}});
test('a single success: only the edges', summarizes, [ok(0, 1000, 7)], [],
  {probes: 1, failed: 0, longestGapMs: 7, hosts: {primary: 1}});

const line = (record: ProbeRecord): string => JSON.stringify(record);

const parses = test.macro({
  exec(t, text: string, expected: readonly ProbeRecord[]) {
    t.deepEqual(parseProbeLog(text), expected);
  },
  title: (note = '') => `parseProbeLog: ${note}`,
});

test('an empty file', parses, '', []);
test('records in file order, blank lines skipped', parses,
  `${line(ok(1, 1050, 1))}\n\n${line(failed(0, 1000, 200, 'EHOSTUNREACH'))}\n`,
  [ok(1, 1050, 1), failed(0, 1000, 200, 'EHOSTUNREACH')]);
test('a last line still being written is skipped', parses,
  `${line(ok(0, 1000, 1))}\n{"seq":1,"sentAt":10`, [ok(0, 1000, 1)]);
test('a complete last line without its newline is kept', parses,
  `${line(ok(0, 1000, 1))}\n${line(ok(1, 1050, 1, 'backup'))}`, [ok(0, 1000, 1), ok(1, 1050, 1, 'backup')]);

const rejects = test.macro({
  exec(t, text: string, message: RegExp) {
    const error = t.throws(() => parseProbeLog(text), {instanceOf: BatonError});
    t.is(error?.code, 'LAB_FAILED');
    t.regex(error?.message ?? '', message);
  },
  title: (note = '') => `parseProbeLog rejects ${note}`,
});

test('a line that is not JSON, naming its number', rejects, `${line(ok(0, 1000, 1))}\nhello\n${line(ok(1, 1050, 1))}\n`,
  /^probe log line 2 is not a probe record: "hello"; /);
test('a record with a missing field', rejects, '{"seq":0,"sentAt":1000,"rttMs":1,"ok":true,"host":"primary"}\n', /line 1/);
test('a record with a wrongly typed field', rejects, '{"seq":0,"sentAt":1000,"rttMs":1,"ok":"yes","host":null,"error":null}\n', /line 1/);
test('a record with a negative rtt', rejects, '{"seq":0,"sentAt":1000,"rttMs":-1,"ok":true,"host":null,"error":null}\n', /line 1/);
test('a JSON value that is not an object', rejects, '[1,2]\n', /line 1/);

test('the drill\'s text report gives a switch\'s drain and clients in one line each', (t) => {
  t.is(drainLine({samples: [{atWallMs: 0, left: 7}, {atWallMs: 100, left: 3}], left: 0, ms: 3500}), 'drain: up to 7 connection(s) on the giver, all finished in 3.5 s');
  t.is(drainLine({samples: [], left: 2, ms: 60_000}), 'drain: 2 cut after 60.0 s', 'counted by the peer: the end only');
  t.is(drainLine({samples: [], left: undefined, ms: 0}), 'drain: not counted');
  const c = (attempts: number, failed: number) => ({attempts, ok: attempts - failed, failed, failures: [], servedBy: {}, longestGapMs: 0});
  t.is(clientsLine({fresh: c(0, 0), keepAlive: c(500, 0), downloads: c(14, 2), uploads: c(14, 1)}),
    'clients: keep-alive requests 500/500 ok; downloads 12/14 ok, 2 FAILED; uploads 13/14 ok, 1 FAILED');
});

/** Successful probes every `every` ms from `from` to `to` (exclusive), each answered after `rtt`. */
function steady(from: number, to: number, every: number, rtt = 2, firstSeq = 0): ProbeRecord[] {
  const records: ProbeRecord[] = [];
  for (let at = from, seq = firstSeq; at < to; at += every, seq++) records.push(ok(seq, at, rtt));
  return records;
}

test('summarizeProbes: a stretch in which the prober itself sent nothing is not a gap of the service', (t) => {
  // Every 20 ms, but nothing sent from 1260 to 1372: the prober's process did not run (a busy host).
  const records = [...steady(1000, 1261, 20), ...steady(1372, 1600, 20, 2, 100)];
  const summary = summarizeProbes(records);
  t.is(summary.proberStallMs, 1372 - 1280, 'from one usual interval after the last send to the next send');
  t.true(summary.longestGapMs <= 25, `gap ${summary.longestGapMs} ms: the service answered every probe that was sent`);
});

test('summarizeProbes: an outage while the prober keeps sending is still the whole gap', (t) => {
  const records = [...steady(1000, 1200, 20), ...[1200, 1220, 1240, 1260, 1280].map((at, i) => failed(50 + i, at)),
    ...steady(1300, 1500, 20, 2, 100)];
  const summary = summarizeProbes(records);
  t.is(summary.proberStallMs, 0);
  t.is(summary.longestGapMs, 1302 - 1182);
});

test('summarizeProbes: a stall inside an outage leaves the part that was observed', (t) => {
  // Failing from 1200, nothing sent from 1240 to 1400, answered again from 1400: observed outage 1182→1240+20, then 1400→1402.
  const records = [...steady(1000, 1200, 20), failed(50, 1200), failed(51, 1220), failed(52, 1240), ...steady(1400, 1500, 20, 2, 100)];
  const summary = summarizeProbes(records);
  t.is(summary.proberStallMs, 1400 - 1260);
  t.is(summary.longestGapMs, 1402 - 1182 - (1400 - 1260));
});

test('longestUnanswered: the window\'s edges count as answers, answers outside it do not', (t) => {
  t.is(longestUnanswered([50, 1100], 100, 1000), 900, 'no answer inside: the whole window');
  t.is(longestUnanswered([100, 200, 900], 100, 1000), 700);
  t.is(longestUnanswered([300, 400], 100, 1000), 600, 'an outage at the end is not hidden');
});

test('longestUnanswered: the sender\'s stalls are left out, only where they overlap the gap', (t) => {
  t.is(longestUnanswered([100, 200, 900], 100, 1000, [[300, 500]]), 500);
  t.is(longestUnanswered([100, 200, 900], 100, 1000, [[850, 950]]), 650, 'a stall across an answer splits between two gaps');
});

test('summarizeStreams: a dual-stack drill\'s IPv6 outage is not hidden by its IPv4 answers', (t) => {
  const every50 = (from: number, to: number, stream: string, make = ok): ProbeRecord[] =>
    Array.from({length: (to - from) / 50}, (_, i) => ({...make(i, from + i * 50, 2), stream}));
  const v4 = every50(1000, 3000, 'IPv4');
  // IPv6 answers until 1500, fails until 2500, answers again.
  const v6 = [...every50(1000, 1500, 'IPv6'), ...every50(1500, 2500, 'IPv6', (seq, sentAt) => failed(seq, sentAt)), ...every50(2500, 3000, 'IPv6')];
  const both = summarizeStreams([...v4, ...v6], 1000, 3000);
  t.is(both.longestGapMs, summarizeProbes(v6, 1000, 3000).longestGapMs, 'the IPv6 stream\'s gap');
  t.true(both.longestGapMs >= 1000);
  t.true(summarizeProbes([...v4, ...v6], 1000, 3000).longestGapMs <= 52, 'merged as one stream, the outage would not show');
  t.is(both.probes, v4.length + v6.length);
  t.is(both.failed, 20);
  t.deepEqual(both, {...both, hosts: {primary: v4.length + v6.length - 20}});
  const {stream: _unused, ...plain} = v4[0] ?? ok(0, 0, 0);
  t.deepEqual(summarizeStreams([plain]), summarizeProbes([plain]), 'one stream: as summarizeProbes');
});
