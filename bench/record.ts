// The bench's figures on record: `npm run bench -- --record docs/bench-figures.json` writes what each part measured
// into that file, by figure id, with the run it came from (date, commit, command). The docs quote figures from it,
// and test/docs.test.ts checks each quote against it: one figure per fact, the latest measured.
//
// A part replaces only its own figures; figures of parts not run stay, with their own runs.

import {readFile, rename, writeFile} from 'node:fs/promises';

/** How one bench run was made: enough to run it again and to judge its figures. */
export interface BenchRun {
  /** Day of the run, YYYY-MM-DD (UTC). */
  readonly date: string;
  /** The checkout's commit (git rev-parse --short HEAD), with "+changes" when its tree differed. */
  readonly commit: string;
  readonly command: string;
  /** What else the machine was doing, as the operator says (--machine); the bench cannot know. */
  readonly machine: string;
}

export interface RecordedFigure {
  readonly value: number;
  /** A key of `runs`. */
  readonly run: string;
}

export interface FigureRecord {
  readonly about: string;
  readonly runs: Readonly<Record<string, BenchRun>>;
  readonly figures: Readonly<Record<string, RecordedFigure>>;
}

const ABOUT = 'The bench figures the docs quote (test/docs.test.ts checks each quote). Written by `npm run bench -- --record FILE`; ' +
  'a part replaces only its own figures. Ids: part.condition.what; times in ms.';

/** Reads a record; a missing file is an empty one, anything else that is not a record is an error. */
export async function readFigureRecord(file: string): Promise<FigureRecord> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {about: ABOUT, runs: {}, figures: {}};
    throw error;
  }
  const record = JSON.parse(text) as Partial<FigureRecord>;
  if (typeof record.runs !== 'object' || typeof record.figures !== 'object' || record.runs === null || record.figures === null) {
    throw new Error(`${file}: not a bench figure record (no "runs" and "figures")`);
  }
  return {about: ABOUT, runs: record.runs, figures: record.figures};
}

/**
 * The record with `measured` in place of every figure whose id starts with one of `replaces` (the part's
 * prefixes: a figure the part no longer measures goes too), under run `runId`; runs no figure names are dropped.
 */
export function mergeFigures(record: FigureRecord, replaces: readonly string[], runId: string, run: BenchRun,
  measured: Readonly<Record<string, number>>): FigureRecord {
  const figures: Record<string, RecordedFigure> = {};
  for (const [id, figure] of Object.entries(record.figures)) {
    if (!replaces.some((prefix) => id.startsWith(prefix))) figures[id] = figure;
  }
  for (const [id, value] of Object.entries(measured)) {
    if (!Number.isFinite(value)) continue;
    figures[id] = {value: Math.round(value * 10) / 10, run: runId};
  }
  const used = new Set(Object.values(figures).map((figure) => figure.run));
  const runs = Object.fromEntries(Object.entries({...record.runs, [runId]: run}).filter(([id]) => used.has(id)));
  const sorted = Object.fromEntries(Object.entries(figures).sort(([a], [b]) => a.localeCompare(b)));
  return {about: ABOUT, runs, figures: sorted};
}

/** Merges and writes (through a temporary file, so an interrupted write leaves the old record). */
export async function recordFigures(file: string, replaces: readonly string[], runId: string, run: BenchRun,
  measured: Readonly<Record<string, number>>): Promise<void> {
  const next = mergeFigures(await readFigureRecord(file), replaces, runId, run, measured);
  await writeFile(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** The median of `values` (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1 ? sorted[Math.floor(mid)] ?? Number.NaN : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
