// The drill report as one self-contained HTML page: verdict, summary table, an inline-SVG timeline of every probe
// (who answered, the longest gap per phase, response times, the phase steps) and per-phase detail. Pure rendering
// plus writeDrillReport, the only effect. No script: tooltips are SVG <title>s, so the picture needs no JavaScript.

import {mkdir, writeFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import type {ProbeRecord} from '../lab/probe-report.js';
import type {DrillReport, PhaseReport, PhaseStep} from './report.js';

/** Who a probe's mark stands for; the class names are the page's stable DOM contract (tests, screenshots). */
type ProbeKind = 'ok-primary' | 'ok-backup' | 'ok-other' | 'failed';

interface NumberedStep {
  /** 1, 2, … over the whole drill: the timeline labels steps by number when their names do not fit. */
  readonly number: number;
  readonly phase: PhaseReport;
  readonly step: PhaseStep;
}

interface GapSpan {
  readonly phase: PhaseReport;
  readonly fromMs: number;
  readonly toMs: number;
  /** The report's own figure: the label must agree with the summary table. */
  readonly gapMs: number;
}

interface TimelineSpec {
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

// Geometry of every timeline, in viewBox units (CSS pixels at the natural 1200 px width).
const VIEW_WIDTH = 1200;
const PLOT_LEFT = 120; // room for the lane names
const PLOT_RIGHT = 1176;
const PLOT_WIDTH = PLOT_RIGHT - PLOT_LEFT;
const FONT_PX = 11;
// Width of one character of the 11 px sans-serif labels, a little generous so packed labels never touch.
const CHAR_PX = FONT_PX * 0.6;
const PHASE_LABEL_ROWS = 3;
const PHASE_ROW_PX = 15;
const PROBE_LANE_PX = 56;
const GAP_LANE_PX = 20;
const RTT_LANE_PX = 60;
const STEP_ROWS = 4;
const STEP_ROW_PX = 16;
const LANE_SPACING_PX = 10;
// Step dots closer than this share one label: at 11 px a number ("12") plus its dot needs about 20 px.
const STEP_CLUSTER_PX = 10;
// More probes than PLOT_WIDTH / 2 would put marks closer than 2 px apart: they merge, so draw buckets instead.
// 3 px buckets keep about 350 columns per timeline, each at most 6 elements (group, tooltip, one rect per kind):
// a bounded DOM whatever the number of probes.
const MAX_SINGLE_PROBES = Math.floor(PLOT_WIDTH / 2);
const BUCKET_PX = 3;
// The client probes every interval, so the longest gap of a healthy phase is about one to two intervals.
const MINOR_GAP_INTERVALS = 3;
// The response-time lane is logarithmic from 1 ms: lab round trips are ~1 ms, timeouts hundreds of ms.
const RTT_FLOOR_MS = 1;
const RTT_MIN_CEILING_MS = 100;
// About 12 tick labels across the plot: one every ~90 px leaves room for "120.5 s".
const TARGET_TICKS = 12;
const NICE_TICK_STEPS_S = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/**
 * The report as a complete HTML5 document. Pure; never throws on odd data (no probes, no phases, non-finite times).
 * Stable DOM for tests: `svg#timeline`, `g.phase[data-phase]`, `rect.probe.ok-primary|ok-backup|ok-other|failed`
 * (one per probe) or `g.bucket[data-probes][data-primary][data-backup][data-other][data-failed]` (aggregated),
 * `g.gap[data-phase][data-gap-ms]`, `g.step[data-step][data-phase]`, `tr[data-phase]`, `section#phase-<name>`.
 */
export function renderDrillHtml(report: DrillReport): string {
  const probes = report.probes.filter((p) => Number.isFinite(p.sentAt)).toSorted((a, b) => a.sentAt - b.sentAt);
  const steps = numberSteps(report.phases);
  const gaps = report.phases.flatMap((phase) => {
    const span = locateLongestGap(probes, phase);
    return span === undefined ? [] : [span];
  });
  const [fromMs, toMs] = drillExtent(report, probes);
  const overview: TimelineSpec = {
    id: 'timeline', className: 'timeline', ariaLabel: 'timeline of the whole drill',
    fromMs, toMs, originMs: report.startedAtWallMs, phases: report.phases, probes, steps, gaps, withLegend: true, pair: report.pair,
    probeIntervalMs: report.probeIntervalMs,
  };
  const verdict = report.ok ? 'PASSED' : 'FAILED';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(`${report.title}: ${verdict}`)}</title>
<style>${STYLESHEET}</style>
</head>
<body>
<main>
${renderHeader(report)}
<section id="summary">
<h2>Summary</h2>
${renderSummaryTable(report)}
</section>
<section id="timeline-section">
<h2>Timeline</h2>
<figure>
${renderTimeline(overview)}
<figcaption>t = 0 s at ${escapeHtml(formatWallTime(report.startedAtWallMs))}. Each mark is one probe of the service IP at the time it was sent,
coloured by the host that answered${probes.length > MAX_SINGLE_PROBES ? `; ${probes.length} probes are drawn as ${BUCKET_PX} px columns showing the share of each kind` : ''}.
Hover a mark, a gap or a step for its details.</figcaption>
</figure>
</section>
<section id="phases">
<h2>Phases</h2>
${report.phases.map((phase) => renderPhaseDetail(report, phase, probes, steps, gaps)).join('\n')}
</section>
<footer>baton drill report · ${report.probes.length} probes · drill ended ${escapeHtml(formatWallTime(report.endedAtWallMs))}</footer>
</main>
</body>
</html>
`;
}

/** Writes the HTML page (and the report as JSON when jsonPath is given), creating their directories. */
export async function writeDrillReport(report: DrillReport, htmlPath: string, jsonPath?: string): Promise<void> {
  await mkdir(dirname(htmlPath), {recursive: true});
  await writeFile(htmlPath, renderDrillHtml(report));
  if (jsonPath !== undefined) {
    await mkdir(dirname(jsonPath), {recursive: true});
    await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTML parts

function renderHeader(report: DrillReport): string {
  const verdict = report.ok ? 'PASSED' : 'FAILED';
  const durationS = (report.endedAtWallMs - report.startedAtWallMs) / 1000;
  const interrupted = report.interrupted === undefined ? ''
    : `<p class="interrupted" id="interrupted">Interrupted before the end: ${escapeHtml(report.interrupted)}</p>`;
  const failed = report.phases.filter((p) => !p.ok);
  // One line saying why, so the reader knows where to look before reading the table.
  const why = failed.length === 0
    ? `<p class="why" id="why">All ${report.phases.length} phases passed${report.interrupted === undefined ? '' : ' before the interruption'}.</p>`
    : `<p class="why" id="why">${failed.length} of ${report.phases.length} phases failed: ${failed.map((p) =>
      `<a href="#phase-${escapeHtml(p.name)}">${escapeHtml(p.name)}</a>${p.problem === undefined ? '' : ` — ${withCode(escapeHtml(p.problem))}`}`).join('; ')}</p>`;
  return `<header>
<div class="title-row"><h1>${escapeHtml(report.title)}</h1><span id="verdict" class="verdict ${report.ok ? 'passed' : 'failed'}">${verdict}</span></div>
${why}
${interrupted}
<dl class="pair" id="pair">
<div><dt>primary</dt><dd class="host-primary">${escapeHtml(report.pair.primary)}</dd></div>
<div><dt>backup</dt><dd class="host-backup">${escapeHtml(report.pair.backup)}</dd></div>
<div><dt>service IP</dt><dd>${escapeHtml(report.pair.serviceIp)}</dd></div>
<div><dt>mode</dt><dd>${escapeHtml(report.pair.mode)}</dd></div>
<div><dt>ran</dt><dd>${escapeHtml(formatWallTime(report.startedAtWallMs))} · ${formatNumber(durationS, 1)} s</dd></div>
<div><dt>client</dt><dd>a probe every ${formatNumber(report.probeIntervalMs, 0)} ms · ${report.probes.length} probes</dd></div>
</dl>
</header>`;
}

function renderSummaryTable(report: DrillReport): string {
  const rows = report.phases.map((phase) => {
    const target = phase.target === undefined ? '<span class="muted">no target</span>'
      : `<span class="badge ${phase.target.met ? 'ok' : 'failed'}">${phase.target.met ? 'met' : 'missed'}</span> ${escapeHtml(phase.target.text)}`;
    return `<tr data-phase="${escapeHtml(phase.name)}" class="${phase.ok ? 'ok' : 'failed'}">` +
      `<th scope="row"><a href="#phase-${escapeHtml(phase.name)}">${escapeHtml(phase.name)}</a><div class="muted">${escapeHtml(phase.title)}</div></th>` +
      `<td class="result"><span class="badge ${phase.ok ? 'ok' : 'failed'}">${phase.ok ? 'ok' : 'FAILED'}</span></td>` +
      `<td class="num duration">${formatNumber((phase.endedAtWallMs - phase.startedAtWallMs) / 1000, 1)} s</td>` +
      `<td class="num gap">${phase.longestGapMs === undefined ? '–' : `${formatNumber(phase.longestGapMs, 0)} ms`}</td>` +
      `<td class="num probes">${formatCount(phase.probes)}</td>` +
      `<td class="num failed-probes${phase.failedProbes > 0 ? ' nonzero' : ''}">${formatCount(phase.failedProbes)}</td>` +
      `<td class="target">${target}</td></tr>`;
  });
  return `<table class="summary">
<thead><tr><th scope="col">phase</th><th scope="col">result</th><th scope="col" class="num">duration</th><th scope="col" class="num">longest gap</th>` +
    `<th scope="col" class="num">probes</th><th scope="col" class="num">failed probes</th><th scope="col">target</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function renderPhaseDetail(report: DrillReport, phase: PhaseReport, probes: readonly ProbeRecord[],
  steps: readonly NumberedStep[], gaps: readonly GapSpan[]): string {
  const name = escapeHtml(phase.name);
  const inPhase = sliceByTime(probes, phase.startedAtWallMs, phase.endedAtWallMs);
  const counts = countKinds(inPhase, report);
  const phaseSteps = steps.filter((s) => s.phase === phase);
  const durationMs = phase.endedAtWallMs - phase.startedAtWallMs;
  // 3 % padding each side, so a step at the very start or end of the phase is not drawn on the plot's edge.
  const padMs = Math.max(durationMs * 0.03, report.probeIntervalMs);
  const zoom = durationMs > 0 && Number.isFinite(durationMs) ? renderTimeline({
    id: `timeline-${phase.name}`, className: 'timeline phase-timeline', ariaLabel: `timeline of the ${phase.name} phase`,
    fromMs: phase.startedAtWallMs - padMs, toMs: phase.endedAtWallMs + padMs, originMs: report.startedAtWallMs,
    phases: report.phases, probes: sliceByTime(probes, phase.startedAtWallMs - padMs, phase.endedAtWallMs + padMs),
    steps: phaseSteps, gaps: gaps.filter((g) => g.phase === phase), withLegend: false, pair: report.pair, probeIntervalMs: report.probeIntervalMs,
  }) : '';
  const stepRows = phaseSteps.map(({number, step}) =>
    `<tr class="step-row ${step.status === 'ok' ? 'ok' : 'failed'}" data-step="${number}">` +
    `<td class="num">${number}</td><td class="step-name">${escapeHtml(step.name)}</td><td>${escapeHtml(step.host)}</td>` +
    `<td><span class="badge ${step.status === 'ok' ? 'ok' : 'failed'}">${step.status === 'ok' ? 'ok' : 'FAILED'}</span></td>` +
    `<td class="num">${formatNumber(step.elapsedMs, 0)} ms</td>` +
    `<td class="num">${formatRelativeS(step.atWallMs - report.startedAtWallMs)}</td>` +
    `<td class="detail">${step.detail === undefined ? '' : withCode(escapeHtml(step.detail))}</td></tr>`);
  const stepsTable = phaseSteps.length === 0 ? '<p class="muted">No steps recorded.</p>'
    : `<table class="steps"><thead><tr><th class="num">#</th><th>step</th><th>on</th><th>result</th><th class="num">took</th>` +
      `<th class="num">finished at</th><th>detail</th></tr></thead><tbody>\n${stepRows.join('\n')}\n</tbody></table>`;
  const problem = phase.problem === undefined && phase.fix === undefined ? '' : `<div class="problem">
${phase.problem === undefined ? '' : `<p><strong>Problem:</strong> ${withCode(escapeHtml(phase.problem))}</p>`}
${phase.fix === undefined ? '' : `<p class="fix"><strong>Fix:</strong> ${withCode(escapeHtml(phase.fix))}</p>`}
</div>`;
  return `<section class="phase-detail ${phase.ok ? 'ok' : 'failed'}" id="phase-${name}" data-phase="${name}">
<h3><span class="badge ${phase.ok ? 'ok' : 'failed'}">${phase.ok ? 'ok' : 'FAILED'}</span> ${name} <span class="muted">— ${escapeHtml(phase.title)}</span></h3>
<p class="phase-facts">${formatRelativeS(phase.startedAtWallMs - report.startedAtWallMs)} → ${formatRelativeS(phase.endedAtWallMs - report.startedAtWallMs)}
(${formatNumber(durationMs / 1000, 2)} s) · ${inPhase.length} probes: <span class="k-primary">${counts['ok-primary']} primary</span>,
<span class="k-backup">${counts['ok-backup']} backup</span>,${counts['ok-other'] > 0 ? ` <span class="k-other">${counts['ok-other']} unnamed</span>,` : ''}
<span class="k-failed">${counts.failed} failed</span> · longest gap ${phase.longestGapMs === undefined ? '–' : `${formatNumber(phase.longestGapMs, 0)} ms`}</p>
${problem}
${zoom}
${stepsTable}
</section>`;
}

// ---------------------------------------------------------------------------------------------------------------
// The timeline SVG

function renderTimeline(spec: TimelineSpec): string {
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

function renderStepLines(spec: TimelineSpec, x: (ms: number) => number, top: number, stepTop: number): string {
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

function layoutSteps(spec: TimelineSpec, x: (ms: number) => number): StepCluster[] {
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

function renderStepMarkers(spec: TimelineSpec, clusters: readonly StepCluster[], top: number): string {
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

// ---------------------------------------------------------------------------------------------------------------
// Pure helpers

function numberSteps(phases: readonly PhaseReport[]): NumberedStep[] {
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
function locateLongestGap(sorted: readonly ProbeRecord[], phase: PhaseReport): GapSpan | undefined {
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

function drillExtent(report: DrillReport, sorted: readonly ProbeRecord[]): [number, number] {
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
function sliceByTime(sorted: readonly ProbeRecord[], fromMs: number, toMs: number): readonly ProbeRecord[] {
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

function probeKind(probe: ProbeRecord, pair: DrillReport['pair']): ProbeKind {
  if (!probe.ok) return 'failed';
  // Lab web servers say "served by primary"; a real pair's pages may name the host instead.
  if (probe.host === 'primary' || probe.host === pair.primary) return 'ok-primary';
  if (probe.host === 'backup' || probe.host === pair.backup) return 'ok-backup';
  return 'ok-other';
}

function countKinds(probes: readonly ProbeRecord[], report: DrillReport): Record<ProbeKind, number> {
  const counts: Record<ProbeKind, number> = {'ok-primary': 0, 'ok-backup': 0, 'ok-other': 0, failed: 0};
  for (const probe of probes) counts[probeKind(probe, report.pair)] += 1;
  return counts;
}

function medianInterval(sorted: readonly ProbeRecord[]): number {
  const intervals: number[] = [];
  for (let i = 1; i < sorted.length; i += 1) intervals.push((sorted[i]?.sentAt ?? 0) - (sorted[i - 1]?.sentAt ?? 0));
  intervals.sort((a, b) => a - b);
  return intervals[Math.floor(intervals.length / 2)] ?? Infinity; // a lone probe: as wide a mark as allowed
}

function inRange(ms: number, spec: TimelineSpec): boolean {
  return Number.isFinite(ms) && ms >= spec.fromMs && ms <= spec.toMs;
}

/** The first row whose last label ends before `from`, taking it up to `to`; rows fill top to bottom. */
function packRow(rows: number[], from: number, to: number): number {
  const row = freeRow(rows, from) ?? leastBusyRow(rows);
  rows[row] = to;
  return row;
}

function freeRow(rows: readonly number[], from: number): number | undefined {
  const index = rows.findIndex((end) => end <= from);
  return index === -1 ? undefined : index;
}

function leastBusyRow(rows: readonly number[]): number {
  let best = 0;
  rows.forEach((end, index) => {
    if (end < (rows[best] ?? Infinity)) best = index;
  });
  return best;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Coordinates with at most 2 decimals: sub-pixel enough, and keeps a 20 000-probe page small. */
function fmt(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function formatNumber(value: number, decimals: number): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : '?';
}

/** A count from the report, which a report read back from JSON could have turned into anything. */
function formatCount(value: number): string {
  return Number.isFinite(value) ? String(value) : '?';
}

function formatRelativeS(ms: number): string {
  return `${formatNumber(ms / 1000, 3)} s`;
}

function formatWallTime(ms: number): string {
  // Date's range is ±8.64e15 ms; beyond it toISOString throws.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return 'unknown time';
  return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

/**
 * Everything from the report came from hosts or their config: escape it for text and for quoted attributes.
 * String(): a report read back from JSON is not type-checked, and a number where a name belongs must not throw.
 */
function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;'};

/** `backquoted` runs as <code>, as the CLI's fixes write commands. Safe only on already escaped text. */
function withCode(escaped: string): string {
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}

const STYLESHEET = `
:root { --primary: #2f6fdf; --backup: #17a589; --failed: #d7263d; --other: #9aa3ae; --gap: #f0a202;
  --ink: #1d2430; --muted: #6b7480; --line: #e3e7ee; --ok-bg: #e7f6ee; --ok-ink: #17794a; --bad-bg: #fde8ea; --bad-ink: #b3172c;
  color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fa; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1260px; margin: 0 auto; padding: 24px 24px 40px; }
header, section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 0 0 6px; }
.title-row { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.verdict { font-weight: 700; letter-spacing: .06em; padding: 4px 12px; border-radius: 6px; font-size: 15px; }
.verdict.passed { background: var(--ok-bg); color: var(--ok-ink); border: 1px solid #9ed8b8; }
.verdict.failed { background: var(--bad-bg); color: var(--bad-ink); border: 1px solid #f2a5af; }
.why { margin: 8px 0 0; }
.why a { color: var(--bad-ink); font-weight: 600; }
.interrupted { background: #fff4d6; border: 1px solid #f0cf72; padding: 6px 10px; border-radius: 6px; margin: 10px 0 0; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0 0; }
.pair div { min-width: 0; }
.pair dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.pair dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.pair dd.host-primary { color: var(--primary); }
.pair dd.host-backup { color: var(--backup); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.summary th[scope=row] a { color: var(--ink); font-weight: 600; text-decoration: none; }
.summary th[scope=row] .muted { font-weight: 400; font-size: 12px; }
.summary tr.failed { background: #fff7f8; }
.failed-probes.nonzero { color: var(--bad-ink); font-weight: 600; }
.muted { color: var(--muted); }
.badge { display: inline-block; font-size: 12px; font-weight: 700; padding: 1px 7px; border-radius: 4px; }
.badge.ok { background: var(--ok-bg); color: var(--ok-ink); }
.badge.failed { background: var(--bad-bg); color: var(--bad-ink); }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
.phase-detail { margin: 0 0 14px; padding: 14px 16px; border-left: 4px solid #9ed8b8; background: #fcfdfe; }
.phase-detail.failed { border-left-color: var(--failed); }
.phase-facts { margin: 0 0 8px; color: var(--muted); }
.k-primary { color: var(--primary); } .k-backup { color: var(--backup); } .k-failed { color: var(--failed); } .k-other { color: var(--muted); }
.problem { background: var(--bad-bg); border: 1px solid #f2a5af; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.problem p { margin: 4px 0; overflow-wrap: anywhere; }
.steps { font-size: 13px; margin-top: 8px; }
.steps .detail { color: var(--muted); overflow-wrap: anywhere; }
.step-row.failed td { background: #fff7f8; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: #eef1f5; padding: 0 4px; border-radius: 3px; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
svg.timeline { display: block; width: 100%; height: auto; font-family: inherit; }
svg.phase-timeline { margin: 6px 0; }
.plot-bg { fill: #fbfcfd; }
.phase .band { fill: #eef2f8; }
.phase.odd .band { fill: #f7f9fc; }
.phase.failed .band { fill: #fdecee; }
.band-edge { stroke: #c9d2df; stroke-width: 1; }
.phase-label { fill: #3b4656; font-weight: 600; }
.phase.failed .phase-label { fill: var(--bad-ink); }
.grid { stroke: #dfe4ec; stroke-width: .6; stroke-dasharray: 2 3; }
.tick, .axis-line { stroke: #8b95a3; stroke-width: 1; }
.tick-label, .axis-title, .lane-note, .rtt-label { fill: var(--muted); }
.lane-name { fill: var(--ink); font-weight: 600; }
.lane-note { font-size: 10px; }
.rtt-label { font-size: 9px; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.probe.ok-primary, .share.ok-primary, .legend-swatch.ok-primary { fill: var(--primary); }
.probe.ok-backup, .share.ok-backup, .legend-swatch.ok-backup { fill: var(--backup); }
.probe.ok-other, .share.ok-other, .legend-swatch.ok-other { fill: var(--other); }
.probe.failed, .share.failed, .legend-swatch.failed { fill: var(--failed); }
.rtt-grid { stroke: #e6eaf0; stroke-width: .6; }
.rtt-ok { stroke: #56657a; stroke-width: 1.2; fill: none; }
.rtt-failed { stroke: var(--failed); stroke-width: 1.6; fill: none; }
.gap-shade { fill: var(--gap); fill-opacity: .16; stroke: var(--gap); stroke-opacity: .7; stroke-width: .8; }
.gap-bar, .legend-swatch.gap-bar { fill: var(--gap); }
.gap.missed .gap-bar { fill: var(--failed); }
.gap.missed .gap-shade { fill: var(--failed); stroke: var(--failed); }
.gap-label { fill: #8a5a00; font-weight: 700; }
.gap.minor .gap-bar { fill: #b7bec9; }
.gap.minor .gap-shade { fill: #b7bec9; stroke: #9aa3ae; }
.gap.minor .gap-label { fill: var(--muted); font-weight: 400; }
.gap.missed .gap-label { fill: var(--bad-ink); }
.step-line { stroke: #7d8796; stroke-width: .8; stroke-dasharray: 3 2; opacity: .55; }
.step-line.failed { stroke: var(--failed); opacity: .9; }
.step-dot, .legend-swatch.step-dot-ok { fill: #fff; stroke: #3b4656; stroke-width: 1.6; }
.step.failed .step-dot, .legend-swatch.step-dot-failed { fill: var(--failed); stroke: var(--bad-ink); stroke-width: 1.6; }
.step-span { fill: #b9c2cf; }
.step.failed .step-span { fill: #f2a5af; }
.step-label { fill: #2b3442; paint-order: stroke; stroke: #fbfcfd; stroke-width: 3px; stroke-linejoin: round; }
.step.failed .step-label { fill: var(--bad-ink); font-weight: 700; }
.legend-label { fill: var(--ink); }
@media print { body { background: #fff; } header, section { border: none; } }
`;
