// The drill report as one self-contained HTML page: verdict, summary table, the timeline (report-timeline.ts) and
// per-phase detail with its step table. Pure rendering plus writeDrillReport, the only effect. No script: tooltips
// are SVG <title>s, so the page needs no JavaScript.

import {mkdir, writeFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import type {ProbeRecord} from '../lab/probe-report.js';
import {drainLine, type DrillReport, type PhaseDrain, type PhaseReport} from './report.js';
import {STYLESHEET} from './report-html-css.js';
import {escapeHtml, formatCount, formatNumber, formatRelativeS, formatWallTime, withCode} from './report-html-text.js';
import {countKinds, drillExtent, type GapSpan, locateLongestGap, type NumberedStep, numberSteps, sliceByTime} from './report-probes.js';
import type {TimelineSpec} from './report-timeline-layout.js';
import {BUCKET_PX, MAX_SINGLE_PROBES, renderTimeline} from './report-timeline.js';

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
${renderClients(phase)}
</section>`;
}

/** Keep-alive requests, downloads and uploads during a switch, and the giver's connections while it drained. */
function renderClients(phase: PhaseReport): string {
  const parts: string[] = [];
  if (phase.clients !== undefined) {
    const rows = ([['keepAlive', 'keep-alive requests (4 connections)'], ['downloads', 'downloads (1 MiB at 256 KiB/s)'],
      ['uploads', 'uploads (1 MiB at 256 KiB/s)']] as const).map(([key, label]) => {
      const c = phase.clients?.[key];
      if (c === undefined) return '';
      const served = Object.entries(c.servedBy).map(([host, n]) => `${escapeHtml(host)} ${formatCount(n)}`).join(', ');
      return `<tr data-class="${key}" class="${c.failed > 0 ? 'failed' : 'ok'}"><th scope="row">${label}</th><td class="num">${formatCount(c.attempts)}</td>` +
        `<td class="num${c.failed > 0 ? ' nonzero' : ''}">${formatCount(c.failed)}</td><td>${served}</td></tr>`;
    });
    parts.push(`<table class="clients"><thead><tr><th scope="col">client</th><th scope="col" class="num">requests</th>` +
      `<th scope="col" class="num">failed</th><th scope="col">served by</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`);
  }
  if (phase.drain !== undefined) parts.push(renderDrain(phase.drain));
  return parts.join('\n');
}

// The drain chart: one bar per sample, at most this many (later samples are skipped evenly).
const MAX_DRAIN_BARS = 60;
const DRAIN_CHART = {width: 600, height: 80, pad: 4};

function renderDrain(drain: PhaseDrain): string {
  const line = `<p class="drain">${escapeHtml(drainLine(drain))}</p>`;
  const samples = drain.samples.filter((s) => Number.isFinite(s.atWallMs) && Number.isFinite(s.left));
  if (samples.length === 0) return line;
  const step = Math.max(1, Math.ceil(samples.length / MAX_DRAIN_BARS));
  const shown = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  const most = Math.max(1, ...shown.map((s) => s.left));
  const from = shown[0]?.atWallMs ?? 0;
  const {width, height, pad} = DRAIN_CHART;
  const barWidth = Math.max(2, (width - 2 * pad) / shown.length - 1);
  const bars = shown.map((s, i) => {
    const h = Math.max(1, ((height - 2 * pad) * s.left) / most);
    const x = pad + i * (barWidth + 1);
    return `<rect class="drain-bar" x="${formatNumber(x, 1)}" y="${formatNumber(height - pad - h, 1)}" width="${formatNumber(barWidth, 1)}" height="${formatNumber(h, 1)}">` +
      `<title>${escapeHtml(`+${formatNumber((s.atWallMs - from) / 1000, 1)} s: ${s.left} connection(s) on the giver`)}</title></rect>`;
  });
  return `${line}\n<svg class="drain-chart" role="img" aria-label="connections on the giver while it drained" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">` +
    `${bars.join('')}</svg>`;
}
