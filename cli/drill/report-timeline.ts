// The drill report's timeline as inline SVG: phase bands and axis, who answered each probe (one mark per probe or
// aggregated columns), the longest gap of each phase, response times, the step lane (report-timeline-steps.ts) and
// the legend.

import type {PhaseReport} from './report.js';
import {escapeHtml, fmt, formatCount, formatNumber, formatRelativeS} from './report-html-text.js';
import {medianInterval, type ProbeKind, probeKind} from './report-probes.js';
import {CHAR_PX, clamp, FONT_PX, packRow, PLOT_LEFT, PLOT_RIGHT, PLOT_WIDTH, type TimelineSpec, VIEW_WIDTH} from './report-timeline-layout.js';
import {layoutSteps, renderStepLines, renderStepMarkers, STEP_ROW_PX} from './report-timeline-steps.js';

// Heights of the lanes above the steps, in viewBox units.
const PHASE_LABEL_ROWS = 3;
const PHASE_ROW_PX = 15;
const PROBE_LANE_PX = 56;
const GAP_LANE_PX = 20;
const RTT_LANE_PX = 60;
const LANE_SPACING_PX = 10;
// More probes than PLOT_WIDTH / 2 would put marks closer than 2 px apart: they merge, so draw buckets instead.
// 3 px buckets keep about 350 columns per timeline, each at most 6 elements (group, tooltip, one rect per kind):
// a bounded DOM whatever the number of probes.
export const MAX_SINGLE_PROBES = Math.floor(PLOT_WIDTH / 2);
export const BUCKET_PX = 3;
// The client probes every interval, so the longest gap of a healthy phase is about one to two intervals.
const MINOR_GAP_INTERVALS = 3;
// The response-time lane is logarithmic from 1 ms: lab round trips are ~1 ms, timeouts hundreds of ms.
const RTT_FLOOR_MS = 1;
const RTT_MIN_CEILING_MS = 100;
// About 12 tick labels across the plot: one every ~90 px leaves room for "120.5 s".
const TARGET_TICKS = 12;
const NICE_TICK_STEPS_S = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

export function renderTimeline(spec: TimelineSpec): string {
  const spanMs = Math.max(spec.toMs - spec.fromMs, 1);
  const x = (ms: number): number => PLOT_LEFT + clamp((ms - spec.fromMs) / spanMs, 0, 1) * PLOT_WIDTH;
  // Labels are laid out first: the lanes take only the label rows they need (a zoom has one phase, few steps).
  const phaseLabels = layoutPhaseLabels(spec, x);
  const stepClusters = layoutSteps(spec, x);
  const phaseRows = Math.max(1, ...[...phaseLabels.values()].map((row) => row + 1));
  const stepRows = Math.max(2, ...stepClusters.map((c) => c.row + 1));
  const probeTop = 6 + phaseRows * PHASE_ROW_PX + 4;
  const gapTop = probeTop + PROBE_LANE_PX + LANE_SPACING_PX / 2;
  const rttTop = gapTop + GAP_LANE_PX + LANE_SPACING_PX;
  const stepTop = rttTop + RTT_LANE_PX + LANE_SPACING_PX;
  const plotBottom = stepTop + stepRows * STEP_ROW_PX + 4;
  const legendTop = plotBottom + 34;
  const height = spec.withLegend ? legendTop + 26 : plotBottom + 30;

  const parts: string[] = [];
  parts.push(`<svg id="${escapeHtml(spec.id)}" class="${spec.className}" viewBox="0 0 ${VIEW_WIDTH} ${height}" ` +
    `width="100%" role="img" aria-label="${escapeHtml(spec.ariaLabel)}" font-size="${FONT_PX}">`);
  parts.push(`<rect class="plot-bg" x="${PLOT_LEFT}" y="${probeTop}" width="${PLOT_WIDTH}" height="${plotBottom - probeTop}"/>`);
  parts.push(renderPhaseBands(spec, x, phaseLabels, plotBottom));
  parts.push(renderAxis(spec, x, probeTop, plotBottom));
  // Lane names, vertically centred on their lanes.
  const laneName = (y: number, text: string): string => `<text class="lane-name" x="${PLOT_LEFT - 10}" y="${fmt(y)}" text-anchor="end" dominant-baseline="middle">${text}</text>`;
  parts.push(laneName(probeTop + PROBE_LANE_PX / 2 - 7, 'answered by'));
  parts.push(`<text class="lane-note" x="${PLOT_LEFT - 10}" y="${fmt(probeTop + PROBE_LANE_PX / 2 + 7)}" text-anchor="end" dominant-baseline="middle">each probe</text>`);
  parts.push(laneName(gapTop + GAP_LANE_PX / 2, 'longest gap'));
  parts.push(laneName(rttTop + RTT_LANE_PX / 2, 'response time'));
  parts.push(laneName(stepTop + (stepRows * STEP_ROW_PX) / 2, 'steps'));
  parts.push(renderStepLines(spec, x, probeTop, stepTop));
  const buckets = spec.probes.length > MAX_SINGLE_PROBES ? bucketize(spec) : undefined;
  parts.push(buckets === undefined ? renderSingleProbes(spec, x, probeTop) : renderProbeBuckets(spec, buckets, probeTop));
  parts.push(renderRtt(spec, buckets, x, rttTop));
  parts.push(renderGaps(spec, x, probeTop, gapTop));
  parts.push(renderStepMarkers(spec, stepClusters, stepTop));
  if (spec.withLegend) parts.push(renderLegend(legendTop));
  parts.push('</svg>');
  return parts.join('\n');
}

/** The label row of each phase drawn in the timeline; a phase without an entry is drawn without a label. */
function layoutPhaseLabels(spec: TimelineSpec, x: (ms: number) => number): Map<PhaseReport, number> {
  const rows: number[] = Array.from({length: PHASE_LABEL_ROWS}, () => -Infinity);
  const placed = new Map<PhaseReport, number>();
  for (const phase of spec.phases) {
    if (phase.endedAtWallMs < spec.fromMs || phase.startedAtWallMs > spec.toMs) continue;
    const left = x(phase.startedAtWallMs) + 3;
    const width = phaseLabel(phase).length * CHAR_PX;
    // A neighbour phase cut by a zoomed timeline's edge keeps its band but not a label that would spill out.
    const cut = phase.startedAtWallMs < spec.fromMs || phase.endedAtWallMs > spec.toMs;
    if (cut && x(phase.endedAtWallMs) - left < width + 3) continue;
    placed.set(phase, packRow(rows, left, left + width + 8));
  }
  return placed;
}

function phaseLabel(phase: PhaseReport): string {
  return `${phase.ok ? '' : '✗ '}${phase.name}`;
}

function renderPhaseBands(spec: TimelineSpec, x: (ms: number) => number, labels: ReadonlyMap<PhaseReport, number>, bottom: number): string {
  const out: string[] = [];
  spec.phases.forEach((phase, index) => {
    if (phase.endedAtWallMs < spec.fromMs || phase.startedAtWallMs > spec.toMs) return;
    const left = x(phase.startedAtWallMs);
    const width = Math.max(x(phase.endedAtWallMs) - left, 1);
    const row = labels.get(phase);
    const text = row === undefined ? ''
      : `<text class="phase-label" x="${fmt(left + 3)}" y="${6 + row * PHASE_ROW_PX + 11}">${escapeHtml(phaseLabel(phase))}</text>`;
    out.push(`<g class="phase ${phase.ok ? 'ok' : 'failed'} ${index % 2 === 0 ? 'even' : 'odd'}" data-phase="${escapeHtml(phase.name)}">` +
      `<title>${escapeHtml(`${phase.name}: ${phase.title} (${phase.ok ? 'ok' : 'FAILED'}), ` +
        `${formatRelativeS(phase.startedAtWallMs - spec.originMs)} → ${formatRelativeS(phase.endedAtWallMs - spec.originMs)}`)}</title>` +
      `<rect class="band" x="${fmt(left)}" y="6" width="${fmt(width)}" height="${fmt(bottom - 6)}"/>` +
      `<line class="band-edge" x1="${fmt(left)}" x2="${fmt(left)}" y1="6" y2="${fmt(bottom)}"/>${text}</g>`);
  });
  return out.join('\n');
}

function renderAxis(spec: TimelineSpec, x: (ms: number) => number, top: number, bottom: number): string {
  const spanS = Math.max(spec.toMs - spec.fromMs, 1) / 1000;
  const stepS = NICE_TICK_STEPS_S.find((s) => spanS / s <= TARGET_TICKS) ?? Math.ceil(spanS / TARGET_TICKS / 3600) * 3600;
  const decimals = Math.max(0, -Math.floor(Math.log10(stepS) + 1e-9));
  const firstS = Math.ceil((spec.fromMs - spec.originMs) / 1000 / stepS) * stepS;
  const out: string[] = [`<g class="axis">`];
  out.push(`<line class="axis-line" x1="${PLOT_LEFT}" x2="${PLOT_RIGHT}" y1="${fmt(bottom)}" y2="${fmt(bottom)}"/>`);
  // Bounded: non-finite times in a damaged report must not loop forever (NaN > x is false).
  for (let i = 0; Number.isFinite(firstS) && i <= TARGET_TICKS + 1; i += 1) {
    const s = firstS + i * stepS;
    const ms = spec.originMs + s * 1000;
    if (ms > spec.toMs + 1e-6) break;
    const tx = x(ms);
    out.push(`<line class="grid" x1="${fmt(tx)}" x2="${fmt(tx)}" y1="${fmt(top)}" y2="${fmt(bottom)}"/>` +
      `<line class="tick" x1="${fmt(tx)}" x2="${fmt(tx)}" y1="${fmt(bottom)}" y2="${fmt(bottom + 5)}"/>` +
      `<text class="tick-label" x="${fmt(tx)}" y="${fmt(bottom + 17)}" text-anchor="middle">${s.toFixed(decimals)} s</text>`);
  }
  out.push(`<text class="axis-title" x="${PLOT_LEFT - 24}" y="${fmt(bottom + 17)}" text-anchor="end">since start</text>`);
  out.push('</g>');
  return out.join('\n');
}

function renderSingleProbes(spec: TimelineSpec, x: (ms: number) => number, top: number): string {
  const spanMs = Math.max(spec.toMs - spec.fromMs, 1);
  // Marks as wide as the spacing of the probes allows (one probe interval), between 1 and 4 px.
  const medianIntervalMs = medianInterval(spec.probes);
  const width = clamp((medianIntervalMs / spanMs) * PLOT_WIDTH * 0.7, 1, 4);
  const out: string[] = ['<g class="probes">'];
  for (const probe of spec.probes) {
    const kind = probeKind(probe, spec.pair);
    const title = `#${probe.seq} at ${formatRelativeS(probe.sentAt - spec.originMs)}: ` +
      (probe.ok ? `${probe.host ?? 'unnamed host'} answered in ${formatNumber(probe.rttMs, 1)} ms` : `failed after ${formatNumber(probe.rttMs, 0)} ms: ${probe.error ?? 'no reason given'}`);
    out.push(`<rect class="probe ${kind}" data-seq="${formatCount(probe.seq)}" x="${fmt(x(probe.sentAt) - width / 2)}" y="${top}" width="${fmt(width)}" ` +
      `height="${PROBE_LANE_PX}"><title>${escapeHtml(title)}</title></rect>`);
  }
  out.push('</g>');
  return out.join('\n');
}

interface Bucket {
  fromMs: number;
  toMs: number;
  counts: Record<ProbeKind, number>;
  maxRttMs: number;
  maxRttFailed: boolean;
}

function bucketize(spec: TimelineSpec): Bucket[] {
  const columns = Math.ceil(PLOT_WIDTH / BUCKET_PX);
  const msPerBucket = Math.max(spec.toMs - spec.fromMs, 1) / columns;
  const buckets: Bucket[] = Array.from({length: columns}, (_, i) => ({
    fromMs: spec.fromMs + i * msPerBucket, toMs: spec.fromMs + (i + 1) * msPerBucket,
    counts: {'ok-primary': 0, 'ok-backup': 0, 'ok-other': 0, failed: 0}, maxRttMs: -1, maxRttFailed: false,
  }));
  for (const probe of spec.probes) {
    const bucket = buckets[clamp(Math.floor((probe.sentAt - spec.fromMs) / msPerBucket), 0, columns - 1)];
    if (bucket === undefined) continue;
    bucket.counts[probeKind(probe, spec.pair)] += 1;
    if (probe.rttMs > bucket.maxRttMs) {
      bucket.maxRttMs = probe.rttMs;
      bucket.maxRttFailed = !probe.ok;
    }
  }
  return buckets;
}

// Stacking order, bottom to top: failures sit on top, where the eye meets them first.
const STACK_ORDER: readonly ProbeKind[] = ['ok-primary', 'ok-backup', 'ok-other', 'failed'];

function renderProbeBuckets(spec: TimelineSpec, buckets: readonly Bucket[], top: number): string {
  const out: string[] = ['<g class="probes buckets">'];
  buckets.forEach((bucket, index) => {
    const total = STACK_ORDER.reduce((sum, kind) => sum + bucket.counts[kind], 0);
    if (total === 0) return; // no probe sent: the blank column says so
    const left = PLOT_LEFT + index * BUCKET_PX;
    // A hair wider than the column: adjacent columns overlap instead of leaving anti-aliased seams between them.
    const width = Math.min(BUCKET_PX + 0.5, PLOT_RIGHT - left);
    let y = top + PROBE_LANE_PX;
    const rects: string[] = [];
    for (const kind of STACK_ORDER) {
      const count = bucket.counts[kind];
      if (count === 0) continue;
      const h = (count / total) * PROBE_LANE_PX;
      y -= h;
      rects.push(`<rect class="share ${kind}" x="${fmt(left)}" y="${fmt(y)}" width="${fmt(width)}" height="${fmt(h)}"/>`);
    }
    const c = bucket.counts;
    const title = `${formatRelativeS(bucket.fromMs - spec.originMs)} – ${formatRelativeS(bucket.toMs - spec.originMs)}: ${total} probes: ` +
      `${c['ok-primary']} primary, ${c['ok-backup']} backup, ${c['ok-other'] > 0 ? `${c['ok-other']} unnamed, ` : ''}${c.failed} failed`;
    out.push(`<g class="bucket" data-probes="${total}" data-primary="${c['ok-primary']}" data-backup="${c['ok-backup']}" ` +
      `data-other="${c['ok-other']}" data-failed="${c.failed}"><title>${escapeHtml(title)}</title>${rects.join('')}</g>`);
  });
  out.push('</g>');
  return out.join('\n');
}

/** Response times, one bar per probe, or per column (its slowest probe) when `buckets` aggregate them. */
function renderRtt(spec: TimelineSpec, buckets: readonly Bucket[] | undefined, x: (ms: number) => number, top: number): string {
  const maxRttMs = spec.probes.reduce((max, p) => Math.max(max, Number.isFinite(p.rttMs) ? p.rttMs : 0), 0);
  const ceilingMs = Math.max(RTT_MIN_CEILING_MS, 10 ** Math.ceil(Math.log10(Math.max(maxRttMs, 1))));
  const decades = Math.log10(ceilingMs / RTT_FLOOR_MS);
  const y = (ms: number): number => top + RTT_LANE_PX - (Math.log10(clamp(ms, RTT_FLOOR_MS, ceilingMs) / RTT_FLOOR_MS) / decades) * RTT_LANE_PX;
  const out: string[] = ['<g class="rtt">'];
  const labels: string[] = []; // after the bars, so a tall bar never hides its scale
  for (let ms = RTT_FLOOR_MS; ms <= ceilingMs; ms *= 10) {
    out.push(`<line class="rtt-grid" x1="${PLOT_LEFT}" x2="${PLOT_RIGHT}" y1="${fmt(y(ms))}" y2="${fmt(y(ms))}"/>`);
    labels.push(`<text class="rtt-label" x="${PLOT_LEFT + 3}" y="${fmt(y(ms) - 2)}">${ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`}</text>`);
  }
  // One path per colour, a vertical bar per column: two elements whatever the number of probes.
  const okBars: string[] = [];
  const failedBars: string[] = [];
  const base = top + RTT_LANE_PX;
  if (buckets === undefined) {
    for (const probe of spec.probes) {
      if (!Number.isFinite(probe.rttMs)) continue;
      (probe.ok ? okBars : failedBars).push(`M${fmt(x(probe.sentAt))} ${fmt(base)}V${fmt(y(probe.rttMs))}`);
    }
  } else {
    buckets.forEach((bucket, index) => {
      if (bucket.maxRttMs < 0) return;
      const cx = PLOT_LEFT + index * BUCKET_PX + BUCKET_PX / 2;
      (bucket.maxRttFailed ? failedBars : okBars).push(`M${fmt(cx)} ${fmt(base)}V${fmt(y(bucket.maxRttMs))}`);
    });
  }
  if (okBars.length > 0) out.push(`<path class="rtt-ok" d="${okBars.join('')}"/>`);
  if (failedBars.length > 0) out.push(`<path class="rtt-failed" d="${failedBars.join('')}"/>`);
  out.push(...labels, '</g>');
  return out.join('\n');
}

function renderGaps(spec: TimelineSpec, x: (ms: number) => number, probeTop: number, gapTop: number): string {
  const out: string[] = ['<g class="gaps">'];
  for (const gap of spec.gaps) {
    if (gap.toMs < spec.fromMs || gap.fromMs > spec.toMs) continue;
    const left = x(gap.fromMs);
    const width = Math.max(x(gap.toMs) - left, 2); // a 50 ms gap in a minute is under a pixel: keep it visible
    const missed = gap.phase.target !== undefined && !gap.phase.target.met;
    // A gap of a few probe intervals is just the probing rhythm: drawn, but quietly, so real outages stand out.
    const minor = !missed && gap.gapMs <= MINOR_GAP_INTERVALS * spec.probeIntervalMs;
    const label = `${formatNumber(gap.gapMs, 0)} ms`;
    const labelWidth = label.length * CHAR_PX;
    // Label to the right of the bar, or to its left when it would leave the plot.
    const labelX = left + width + 4 + labelWidth <= PLOT_RIGHT ? left + width + 4 : left - 4;
    const anchor = labelX < left ? 'end' : 'start';
    const title = `${gap.phase.name}: longest time without a successful response ${formatNumber(gap.gapMs, 0)} ms, ` +
      `${formatRelativeS(gap.fromMs - spec.originMs)} → ${formatRelativeS(gap.toMs - spec.originMs)}` +
      (gap.phase.target === undefined ? '' : ` (target ${gap.phase.target.met ? 'met' : 'MISSED'}: ${gap.phase.target.text})`);
    out.push(`<g class="gap${missed ? ' missed' : minor ? ' minor' : ''}" data-phase="${escapeHtml(gap.phase.name)}" data-gap-ms="${Math.round(gap.gapMs)}">` +
      `<title>${escapeHtml(title)}</title>` +
      (minor ? '' : `<rect class="gap-shade" x="${fmt(left)}" y="${probeTop}" width="${fmt(width)}" height="${PROBE_LANE_PX}"/>`) +
      `<rect class="gap-bar" x="${fmt(left)}" y="${fmt(gapTop + 4)}" width="${fmt(width)}" height="${GAP_LANE_PX - 8}" rx="2"/>` +
      `<text class="gap-label" x="${fmt(labelX)}" y="${fmt(gapTop + GAP_LANE_PX / 2)}" dominant-baseline="middle" text-anchor="${anchor}">${escapeHtml(label)}</text></g>`);
  }
  out.push('</g>');
  return out.join('\n');
}

function renderLegend(top: number): string {
  const items: [string, string][] = [
    ['legend-swatch ok-primary', 'answered by the primary'],
    ['legend-swatch ok-backup', 'answered by the backup'],
    ['legend-swatch failed', 'failed probe'],
    ['legend-swatch ok-other', 'answered, host not named'],
    ['legend-swatch gap-bar', 'longest gap of a phase'],
    ['legend-swatch step-dot-ok', 'step (ok)'],
    ['legend-swatch step-dot-failed', 'step (failed)'],
  ];
  const out: string[] = ['<g class="legend">'];
  let lx = PLOT_LEFT;
  for (const [className, text] of items) {
    out.push(`<rect class="${className}" x="${lx}" y="${top}" width="12" height="12" rx="2"/>` +
      `<text class="legend-label" x="${lx + 17}" y="${top + 6}" dominant-baseline="middle">${text}</text>`);
    lx += 17 + text.length * CHAR_PX + 20;
  }
  out.push('</g>');
  return out.join('\n');
}
