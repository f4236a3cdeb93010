// Which process built a lab, so that `baton lab down` removes what is left over (a `baton lab up`, an interrupted
// drill, a crashed run) and leaves alone the labs of runs still going beside it: a campaign, another drill, a test.
// One small file per lab prefix, outside every lab's own directory (the campaign and the tests keep theirs
// elsewhere): the builder's PID and its start time, so a PID reused by another process is not taken for the owner.

import {readFileSync} from 'node:fs';
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

export const LAB_OWNERS_DIR = join(tmpdir(), 'baton-lab-owners');

export interface LabOwner {
  readonly pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): with the PID, names one process for good. */
  readonly startTicks: number;
  /** The owner's command line, for the operator. */
  readonly command: string;
}

/** The process's start time from /proc, or undefined when it does not exist (or is a zombie). */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may itself contain ") ": state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return undefined;
  const ticks = Number(fields[19]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

/** Records this process as the builder of lab `prefix`. */
export async function claimLab(prefix: string, dir = LAB_OWNERS_DIR): Promise<void> {
  const owner: LabOwner = {pid: process.pid, startTicks: processStartTicks(process.pid) ?? 0, command: process.argv.slice(1).join(' ')};
  await mkdir(dir, {recursive: true, mode: 0o700});
  await writeFile(join(dir, prefix), `${JSON.stringify(owner)}\n`, {mode: 0o600});
}

/** Forgets lab `prefix`'s builder. Idempotent. */
export async function releaseLab(prefix: string, dir = LAB_OWNERS_DIR): Promise<void> {
  await rm(join(dir, prefix), {force: true});
}

/**
 * The process that built lab `prefix`, if it is still running: then the lab is in use. Undefined for a lab whose
 * builder has exited (`baton lab up` exits once the lab is up), crashed, or is unknown (a lab from before owners).
 */
export async function liveOwner(prefix: string, dir = LAB_OWNERS_DIR): Promise<LabOwner | undefined> {
  const text = await readFile(join(dir, prefix), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let owner: LabOwner;
  try {
    owner = JSON.parse(text) as LabOwner;
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(owner.pid) || owner.pid <= 0) return undefined;
  const started = processStartTicks(owner.pid);
  return started !== undefined && started === owner.startTicks ? owner : undefined;
}
