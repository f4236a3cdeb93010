// Part "load": switchover and switchback back to back, hundreds of times, while a client requests the service IP
// every 20 ms. After every switch: exactly one kernel holds the IP, neither journal is left behind, and the epoch
// has risen. Prints the cycles, the failures and the distribution of the longest gap the client saw per switch.

import {join} from 'node:path';
import {percentile} from '../agent/timers.js';
import type {Lab} from '../cli/lab/lab.js';
import {describeHoldings, holdingsOf, soleHolder} from '../cli/lab/observe.js';
import {summarizeStreams} from '../cli/lab/probe-report.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {checkJournals, describeSwitch, requestSwitch, settle, startLabProbers, withCampaignLab} from './lab.js';

const PROBE_INTERVAL_MS = 20;
// Bounds the whole part whatever happens. 500 cycles took about 6 minutes here before the drain; with it (a switch
// and its checks take ~1.6 s) they took 27 minutes on 2026-12-06 on a quiet machine.
const TIME_LIMIT_MS = 45 * 60 * 1000;
// The client outlives the loop's own bound, however long each switch takes: a client that stops first makes every
// later switch fail its confirmation (a full run once lost its last 80 switches that way).
const PROBER_SLACK_S = 60;

interface SwitchRecord {
  readonly from: number;
  readonly to: number;
  readonly problem: string | undefined;
}

async function cycles(context: CampaignContext, lab: Lab, count: number): Promise<CaseResult> {
  const switchesWanted = count * 2;
  const proberS = TIME_LIMIT_MS / 1000 + PROBER_SLACK_S;
  const prober = await startLabProbers(lab, {intervalMs: PROBE_INTERVAL_MS, timeoutMs: 200,
    durationS: proberS, maxProbes: Math.ceil((proberS * 1000) / PROBE_INTERVAL_MS), out: join(context.dir, 'load-probes.jsonl')});
  const records: SwitchRecord[] = [];
  const started = Date.now();
  let lastEpoch = 0;
  let holder = 'primary';
  try {
    for (let i = 0; i < switchesWanted && Date.now() - started < TIME_LIMIT_MS; i += 1) {
      const from = Date.now();
      // Asked of the primary every time: it moves the IP to whichever host does not hold it.
      const result = await requestSwitch(lab.hosts.primary);
      const to = Date.now();
      const problems: string[] = [];
      if ('error' in result || result.outcome !== 'done') problems.push(describeSwitch(result));
      const unsettled = await settle(lab, 15_000);
      if (unsettled !== undefined) problems.push(unsettled);
      const holdings = await holdingsOf(lab);
      const expected = holder === 'primary' ? 'backup' : 'primary';
      if (soleHolder(holdings) !== expected) problems.push(`the IP is on ${describeHoldings(holdings)}, expected the ${expected}`);
      // The next switch starts from wherever the IP is now, so one failure is counted once.
      holder = soleHolder(holdings) ?? holder;
      const journals = await checkJournals(lab);
      problems.push(...journals.problems);
      const epoch = Math.max(...Object.values(journals.epochs).map((e) => e ?? 0));
      if (epoch <= lastEpoch) problems.push(`epoch ${epoch} after the switch, ${lastEpoch} before it`);
      lastEpoch = epoch;
      records.push({from, to, problem: problems.length === 0 ? undefined : problems.join('; ')});
      if (problems.length > 0) context.say(`switch ${i + 1}: ${problems.join('; ')}`);
      if ((i + 1) % 100 === 0) context.say(`${i + 1} of ${switchesWanted} switches, ${records.filter((r) => r.problem !== undefined).length} failed`);
    }
  } finally {
    await prober.stop();
  }
  const probes = await prober.read();
  // Each switch's window runs from the request to 300 ms after its answer: the client's first requests to the
  // new host may still be in flight when the agent reports the switch done.
  const gaps = records.map((r) => Math.round(summarizeStreams(probes, r.from, r.to + 300).longestGapMs)).sort((a, b) => a - b);
  const failed = probes.filter((p) => !p.ok).length;
  const failures = records.filter((r) => r.problem !== undefined);
  const buckets = [50, 100, 200, 500, 1000];
  const histogram = buckets.map((limit, index) => {
    const low = index === 0 ? 0 : buckets[index - 1] ?? 0;
    return `${low}-${limit} ms: ${gaps.filter((g) => g >= low && g < limit).length}`;
  }).join(', ') + `, >= 1000 ms: ${gaps.filter((g) => g >= 1000).length}`;
  const seconds = (Date.now() - started) / 1000;
  const done = records.length / 2;
  const ok = failures.length === 0 && records.length === switchesWanted;
  return {
    group: 'load',
    name: `${count} switchover/switchback cycles back to back`,
    ok,
    figures: `${Math.floor(done)} cycles (${records.length} switches) in ${seconds.toFixed(0)} s, ${failures.length} failed; ` +
      `longest client gap per switch p50 ${percentile(gaps, 50)} ms, p90 ${percentile(gaps, 90)} ms, p99 ${percentile(gaps, 99)} ms, max ${gaps.at(-1) ?? 0} ms ` +
      `(${histogram}); ${failed} of ${probes.length} client requests failed`,
    ...(ok ? {} : {detail: (records.length < switchesWanted ? `stopped at the ${TIME_LIMIT_MS / 60_000}-minute limit after ${records.length} switches; ` : '') +
      failures.slice(0, 5).map((f) => f.problem).join(' | ')}),
  };
}

export const loadPart: CampaignPart = {
  name: 'load',
  about: 'switchover and switchback back to back, one holder and clean journals after each',
  async run(context) {
    return [await withCampaignLab(context, {}, (lab) => cycles(context, lab, context.fast ? 10 : 500))];
  },
};
