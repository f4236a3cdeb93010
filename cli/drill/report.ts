// The drill's report: what each phase did, what the client saw, and whether the targets were met. Pure data and
// its text form; the HTML timeline is in report-html.ts.

import type {ClassSummary, ClientClass} from '../lab/clients.js';
import type {ProbeRecord} from '../lab/probe-report.js';

export type PhaseName = 'preflight' | 'status' | 'switchover' | 'switchback' | 'failure' | 'return';

export interface PhaseStep {
  readonly name: string;
  /** Where it ran: "primary", "backup", or "lab" for the drill's own actions (e.g. cutting a link). */
  readonly host: string;
  readonly status: 'ok' | 'failed';
  /** Wall-clock ms when the step finished (the drill saw it), and how long it took. */
  readonly atWallMs: number;
  readonly elapsedMs: number;
  readonly detail: string | undefined;
}

export interface PhaseReport {
  readonly name: PhaseName;
  readonly title: string;
  readonly ok: boolean;
  readonly startedAtWallMs: number;
  readonly endedAtWallMs: number;
  readonly steps: readonly PhaseStep[];
  /** What the client saw during the phase: longest time between two successful responses, failed probes. */
  readonly longestGapMs: number | undefined;
  readonly probes: number;
  readonly failedProbes: number;
  /** The target for this phase and whether it was met (undefined: no target applies). */
  readonly target: {readonly text: string; readonly met: boolean} | undefined;
  /** Why it failed, and what to do about it. */
  readonly problem: string | undefined;
  readonly fix: string | undefined;
  /** A planned switch: what keep-alive clients, downloads and uploads in flight saw (besides the probes). */
  readonly clients?: Readonly<Record<ClientClass, ClassSummary>> | undefined;
  /** A planned switch: the giver's connections over time while it drained, as the switch reported them. */
  readonly drain?: PhaseDrain | undefined;
}

export interface PhaseDrain {
  /** Connections still open on the giver, as counted while the drain waited (empty when the peer counted). */
  readonly samples: ReadonlyArray<{readonly atWallMs: number; readonly left: number}>;
  /** Left at the end (0: all finished), undefined when not counted; how long the drain took. */
  readonly left: number | undefined;
  readonly ms: number;
}

export interface DrillReport {
  readonly title: string;
  readonly ok: boolean;
  readonly startedAtWallMs: number;
  readonly endedAtWallMs: number;
  readonly pair: {readonly primary: string; readonly backup: string; readonly serviceIp: string; readonly mode: string};
  readonly probeIntervalMs: number;
  readonly phases: readonly PhaseReport[];
  /** Every probe of the drill, for the timeline. */
  readonly probes: readonly ProbeRecord[];
  /** Set when the drill was stopped (Ctrl-C) before its end. */
  readonly interrupted: string | undefined;
}

export function formatDrillReport(report: DrillReport): string {
  const lines: string[] = [];
  lines.push(`${report.title}: ${report.ok ? 'PASSED' : 'FAILED'}${report.interrupted === undefined ? '' : ` (interrupted: ${report.interrupted})`}`);
  lines.push(`  pair: primary ${report.pair.primary}, backup ${report.pair.backup}, service IP ${report.pair.serviceIp}, ${report.pair.mode} mode; ` +
    `client probing every ${report.probeIntervalMs} ms, ${report.probes.length} probes in all`);
  lines.push('');
  lines.push('  phase        result  longest gap  failed probes  target');
  for (const phase of report.phases) {
    const gap = phase.longestGapMs === undefined ? '-' : `${Math.round(phase.longestGapMs)} ms`;
    const target = phase.target === undefined ? '' : `${phase.target.met ? 'met' : 'MISSED'}: ${phase.target.text}`;
    lines.push(`  ${phase.name.padEnd(12)} ${(phase.ok ? 'ok' : 'FAILED').padEnd(7)} ${gap.padStart(11)}  ${String(phase.failedProbes).padStart(13)}  ${target}`);
  }
  for (const phase of report.phases) {
    lines.push('');
    lines.push(`  ${phase.title} (${phase.ok ? 'ok' : 'FAILED'}, ${formatSeconds(phase.endedAtWallMs - phase.startedAtWallMs)})`);
    for (const step of phase.steps) {
      lines.push(`    ${step.name.padEnd(24)} on ${step.host.padEnd(8)} ${step.status === 'ok' ? 'ok    ' : 'FAILED'} ${String(Math.round(step.elapsedMs)).padStart(6)} ms${step.detail === undefined ? '' : `  ${step.detail}`}`);
    }
    if (phase.drain !== undefined) lines.push(`    ${drainLine(phase.drain)}`);
    if (phase.clients !== undefined) lines.push(`    ${clientsLine(phase.clients)}`);
    if (phase.problem !== undefined) lines.push(`    problem: ${phase.problem}`);
    if (phase.fix !== undefined) lines.push(`    fix: ${phase.fix}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The drain in one line: how many connections the giver had, and when the last one finished. */
export function drainLine(drain: PhaseDrain): string {
  // Counted by the giver while it waited; a giver that was the coordinator's peer reports only the end.
  const most = Math.max(0, ...drain.samples.map((s) => s.left));
  const start = drain.samples.length === 0 ? '' : `up to ${most} connection(s) on the giver, `;
  const end = drain.left === undefined ? 'not counted' : drain.left === 0 ? `all finished in ${formatSeconds(drain.ms)}` : `${drain.left} cut after ${formatSeconds(drain.ms)}`;
  return `drain: ${start}${end}`;
}

/** The keep-alive clients, the downloads and the uploads in one line. */
export function clientsLine(clients: Readonly<Record<ClientClass, ClassSummary>>): string {
  const one = (name: string, c: ClassSummary): string => `${name} ${c.ok}/${c.attempts} ok${c.failed > 0 ? `, ${c.failed} FAILED` : ''}`;
  return `clients: ${one('keep-alive requests', clients.keepAlive)}; ${one('downloads', clients.downloads)}; ${one('uploads', clients.uploads)}`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
