// The step lane of the report's timeline: a dot per step where it finished and a bar for how long it took, steps a
// few pixels apart clustered under one label, labels packed into rows; and the dashed line from each step up
// through the probe lanes.

import {escapeHtml, fmt, formatNumber, formatRelativeS} from './report-html-text.js';
import type {NumberedStep} from './report-probes.js';
import {CHAR_PX, freeRow, inRange, leastBusyRow, type TimelineSpec, VIEW_WIDTH} from './report-timeline-layout.js';

// The step lane: up to 4 rows of labels.
const STEP_ROWS = 4;
export const STEP_ROW_PX = 16;
// Step dots closer than this share one label: at 11 px a number ("12") plus its dot needs about 20 px.
const STEP_CLUSTER_PX = 10;

export function renderStepLines(spec: TimelineSpec, x: (ms: number) => number, top: number, stepTop: number): string {
  const lines = spec.steps.filter(({step}) => inRange(step.atWallMs, spec)).map(({number, step}) =>
    `<line class="step-line ${step.status === 'ok' ? 'ok' : 'failed'}" data-step="${number}" x1="${fmt(x(step.atWallMs))}" x2="${fmt(x(step.atWallMs))}" ` +
    `y1="${top}" y2="${fmt(stepTop)}"/>`);
  return `<g class="step-lines">${lines.join('')}</g>`;
}

interface PlacedStep extends NumberedStep {
  /** x of the dot (when the step finished) and of the start of its duration bar. */
  readonly end: number;
  readonly start: number;
}

interface StepCluster {
  /** One step, or several whose dots fall within STEP_CLUSTER_PX: they share a row and one label. */
  readonly members: readonly PlacedStep[];
  readonly row: number;
  readonly label: string;
  /** The label is left of the dot (near the right edge) rather than right of it. */
  readonly labelLeft: boolean;
  /** x of the dot the label belongs to (the cluster's last). */
  readonly anchor: number;
}

export function layoutSteps(spec: TimelineSpec, x: (ms: number) => number): StepCluster[] {
  const visible: PlacedStep[] = spec.steps.filter(({step}) => inRange(step.atWallMs, spec)).map((numbered) => {
    const end = x(numbered.step.atWallMs);
    return {...numbered, end, start: Math.min(end, x(numbered.step.atWallMs - Math.max(numbered.step.elapsedMs, 0)))};
  }).sort((a, b) => a.end - b.end);
  // Steps whose dots fall within a few pixels (a switchover's steps are ms apart) share one row and one label,
  // "3–7": separate numbers would pile up on each other.
  const groups: PlacedStep[][] = [];
  for (const placed of visible) {
    const group = groups.at(-1);
    const first = group?.[0];
    if (group !== undefined && first !== undefined && placed.end - first.end < STEP_CLUSTER_PX) group.push(placed);
    else groups.push([placed]);
  }
  const startOf = (members: readonly PlacedStep[]): number => members.reduce((min, m) => Math.min(min, m.start), Infinity);
  // Greedy interval packing, left to right: each cluster takes the first row free at its start.
  const rows: number[] = Array.from({length: STEP_ROWS}, () => -Infinity);
  const clusters: StepCluster[] = [];
  groups.forEach((members, index) => {
    const first = members[0];
    const last = members.at(-1);
    if (first === undefined || last === undefined) return;
    const start = startOf(members);
    const anchor = last.end;
    const numbers = members.map((m) => m.number).sort((a, b) => a - b);
    const short = numbers.length === 1 ? String(numbers[0]) : `${numbers[0]}–${numbers.at(-1)}`;
    // A lone step gets its name only when the clusters starting under the name still find free rows; else the
    // number alone (the phase's table below has the name). Near the right edge the label goes left of the dot.
    const place = (text: string): {text: string; left: boolean; from: number; to: number} => {
      const width = text.length * CHAR_PX;
      const left = anchor + 7 + width > VIEW_WIDTH - 4;
      return left ? {text, left, from: Math.min(start, anchor - 7 - width), to: anchor + 6}
        : {text, left, from: start, to: anchor + 7 + width + 6};
    };
    const named = place(`${short} ${first.step.name}`);
    const freeRows = rows.filter((rowEnd) => rowEnd <= named.from).length;
    const underIt = groups.slice(index + 1).filter((other) => startOf(other) < named.to).length;
    const label = members.length === 1 && underIt < freeRows ? named : place(short);
    const row = freeRow(rows, label.from) ?? leastBusyRow(rows);
    rows[row] = label.to;
    clusters.push({members, row, label: label.text, labelLeft: label.left, anchor});
  });
  return clusters;
}

export function renderStepMarkers(spec: TimelineSpec, clusters: readonly StepCluster[], top: number): string {
  const out: string[] = ['<g class="steps">'];
  for (const {members, row, label, labelLeft, anchor} of clusters) {
    const cy = top + row * STEP_ROW_PX + STEP_ROW_PX / 2;
    for (const member of members) {
      const {number, phase, step, start, end} = member;
      const state = step.status === 'ok' ? 'ok' : 'failed';
      const title = `${number}. ${step.name} on ${step.host}: ${step.status === 'ok' ? 'ok' : 'FAILED'}, took ${formatNumber(step.elapsedMs, 0)} ms, ` +
        `finished at ${formatRelativeS(step.atWallMs - spec.originMs)}${step.detail === undefined ? '' : ` — ${step.detail}`}`;
      const text = member === members.at(-1) ? `<text class="step-label" x="${fmt(labelLeft ? anchor - 7 : anchor + 7)}" y="${fmt(cy)}" ` +
        `dominant-baseline="middle"${labelLeft ? ' text-anchor="end"' : ''}>${escapeHtml(label)}</text>` : '';
      out.push(`<g class="step ${state}" data-step="${number}" data-phase="${escapeHtml(phase.name)}"><title>${escapeHtml(title)}</title>` +
        (end - start >= 1 ? `<rect class="step-span" x="${fmt(start)}" y="${fmt(cy - 2)}" width="${fmt(end - start)}" height="4" rx="2"/>` : '') +
        `<circle class="step-dot" cx="${fmt(end)}" cy="${fmt(cy)}" r="4"/>${text}</g>`);
    }
  }
  out.push('</g>');
  return out.join('\n');
}
