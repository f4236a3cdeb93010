// What the drill report reads from the probes and phases before drawing: steps numbered over the drill, where each
// phase's longest gap lies, the drill's time extent, probes sliced by time and sorted by who answered. Pure.

import type {ProbeRecord} from '../lab/probe-report.js';
import type {DrillReport, PhaseReport, PhaseStep} from './report.js';

/** Who a probe's mark stands for; the class names are the page's stable DOM contract (tests, screenshots). */
export type ProbeKind = 'ok-primary' | 'ok-backup' | 'ok-other' | 'failed';

export interface NumberedStep {
  /** 1, 2, … over the whole drill: the timeline labels steps by number when their names do not fit. */
  readonly number: number;
  readonly phase: PhaseReport;
  readonly step: PhaseStep;
}

export interface GapSpan {
  readonly phase: PhaseReport;
  readonly fromMs: number;
  readonly toMs: number;
  /** The report's own figure: the label must agree with the summary table. */
  readonly gapMs: number;
}

export function numberSteps(phases: readonly PhaseReport[]): NumberedStep[] {
  let number = 0;
  return phases.flatMap((phase) => phase.steps.map((step) => {
    number += 1;
    return {number, phase, step};
  }));
}

/**
 * Where the phase's longest gap is. Mirrors summarizeProbes (cli/lab/probe-report.ts), which gives the length but
 * not the place: probes sent within the phase, responses at sentAt + rttMs clamped to the phase end, the phase's
 * edges counting as ends of a gap. The length shown is the report's own longestGapMs.
 */
export function locateLongestGap(sorted: readonly ProbeRecord[], phase: PhaseReport): GapSpan | undefined {
  if (phase.longestGapMs === undefined) return undefined;
  const fromMs = phase.startedAtWallMs;
  const toMs = phase.endedAtWallMs;
  const answers = sliceByTime(sorted, fromMs, toMs).filter((p) => p.ok)
    .map((p) => Math.min(p.sentAt + p.rttMs, toMs)).sort((a, b) => a - b);
  let best = {fromMs, toMs: fromMs};
  let previous = fromMs;
  for (const at of [...answers, toMs]) {
    if (at - previous > best.toMs - best.fromMs) best = {fromMs: previous, toMs: at};
    previous = at;
  }
  return {phase, ...best, gapMs: phase.longestGapMs};
}

export function drillExtent(report: DrillReport, sorted: readonly ProbeRecord[]): [number, number] {
  const times = [report.startedAtWallMs, report.endedAtWallMs,
    ...report.phases.flatMap((p) => [p.startedAtWallMs, p.endedAtWallMs])].filter(Number.isFinite);
  const first = sorted[0];
  const last = sorted.at(-1);
  if (first !== undefined) times.push(first.sentAt);
  if (last !== undefined) times.push(last.sentAt);
  if (times.length === 0) return [0, 1];
  const from = times.reduce((a, b) => Math.min(a, b));
  const to = times.reduce((a, b) => Math.max(a, b));
  return [from, Math.max(to, from + 1)];
}

/** Probes with fromMs <= sentAt <= toMs, from a list sorted by sentAt (binary search: 20 000 probes × 7 timelines). */
export function sliceByTime(sorted: readonly ProbeRecord[], fromMs: number, toMs: number): readonly ProbeRecord[] {
  return sorted.slice(lowerBound(sorted, fromMs), lowerBound(sorted, toMs, true));
}

function lowerBound(sorted: readonly ProbeRecord[], ms: number, inclusive = false): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = sorted[mid]?.sentAt ?? Infinity;
    if (at < ms || (inclusive && at === ms)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function probeKind(probe: ProbeRecord, pair: DrillReport['pair']): ProbeKind {
  if (!probe.ok) return 'failed';
  // Lab web servers say "served by primary"; a real pair's pages may name the host instead.
  if (probe.host === 'primary' || probe.host === pair.primary) return 'ok-primary';
  if (probe.host === 'backup' || probe.host === pair.backup) return 'ok-backup';
  return 'ok-other';
}

export function countKinds(probes: readonly ProbeRecord[], report: DrillReport): Record<ProbeKind, number> {
  const counts: Record<ProbeKind, number> = {'ok-primary': 0, 'ok-backup': 0, 'ok-other': 0, failed: 0};
  for (const probe of probes) counts[probeKind(probe, report.pair)] += 1;
  return counts;
}

export function medianInterval(sorted: readonly ProbeRecord[]): number {
  const intervals: number[] = [];
  for (let i = 1; i < sorted.length; i += 1) intervals.push((sorted[i]?.sentAt ?? 0) - (sorted[i - 1]?.sentAt ?? 0));
  intervals.sort((a, b) => a - b);
  return intervals[Math.floor(intervals.length / 2)] ?? Infinity; // a lone probe: as wide a mark as allowed
}
