// The agent at rest: resident memory and CPU of each agent over a quiet interval, read from /proc.

import {readFile} from 'node:fs/promises';
import type {Lab} from '../cli/lab/lab.js';

export interface RestSample {
  readonly role: string;
  readonly rssMb: number;
  readonly cpuPercent: number;
}

// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every mainstream architecture.
export const TICKS_PER_S = 100;

/** CPU time (user + system) a process has used, in clock ticks. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A process's resident memory. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

export async function measureRest(lab: Lab, seconds: number): Promise<RestSample[]> {
  const hosts = [lab.hosts.primary, lab.hosts.backup];
  const before = await Promise.all(hosts.map((h) => cpuTicks(h.pid)));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = await Promise.all(hosts.map((h) => cpuTicks(h.pid)));
  return Promise.all(hosts.map(async (h, i) => ({
    role: h.role,
    rssMb: await rssMb(h.pid),
    cpuPercent: ((after[i] ?? 0) - (before[i] ?? 0)) / TICKS_PER_S / seconds * 100,
  })));
}
