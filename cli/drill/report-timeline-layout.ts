// What every lane of the report's timeline SVG shares: the timeline's spec, the plot's geometry, and packing labels
// into rows.

import type {ProbeRecord} from '../lab/probe-report.js';
import type {DrillReport, PhaseReport} from './report.js';
import type {GapSpan, NumberedStep} from './report-probes.js';

export interface TimelineSpec {
  readonly id: string;
  readonly className: string;
  readonly ariaLabel: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** t = 0 of the tick labels: the drill's start, in every timeline, so the times read the same everywhere. */
  readonly originMs: number;
  readonly phases: readonly PhaseReport[];
  /** Sorted by sentAt, already cut to [fromMs, toMs]. */
  readonly probes: readonly ProbeRecord[];
  readonly steps: readonly NumberedStep[];
  readonly gaps: readonly GapSpan[];
  readonly withLegend: boolean;
  readonly probeIntervalMs: number;
  /** To colour probes whose page names the host itself rather than its role. */
  readonly pair: DrillReport['pair'];
}

// Geometry every lane shares, in viewBox units (CSS pixels at the natural 1200 px width).
export const VIEW_WIDTH = 1200;
export const PLOT_LEFT = 120; // room for the lane names
export const PLOT_RIGHT = 1176;
export const PLOT_WIDTH = PLOT_RIGHT - PLOT_LEFT;
export const FONT_PX = 11;
// Width of one character of the 11 px sans-serif labels, a little generous so packed labels never touch.
export const CHAR_PX = FONT_PX * 0.6;

export function inRange(ms: number, spec: TimelineSpec): boolean {
  return Number.isFinite(ms) && ms >= spec.fromMs && ms <= spec.toMs;
}

/** The first row whose last label ends before `from`, taking it up to `to`; rows fill top to bottom. */
export function packRow(rows: number[], from: number, to: number): number {
  const row = freeRow(rows, from) ?? leastBusyRow(rows);
  rows[row] = to;
  return row;
}

export function freeRow(rows: readonly number[], from: number): number | undefined {
  const index = rows.findIndex((end) => end <= from);
  return index === -1 ? undefined : index;
}

export function leastBusyRow(rows: readonly number[]): number {
  let best = 0;
  rows.forEach((end, index) => {
    if (end < (rows[best] ?? Infinity)) best = index;
  });
  return best;
}

export function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}
