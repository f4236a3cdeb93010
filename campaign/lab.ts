// The campaign's lab: one throw-away pair per part (or per case), the switch asked for over the control socket as
// `baton switchover` does, and the checks every case ends with: exactly one host's kernel holds the IP, the
// client is served by that host, and neither journal is left half-written.

import {copyFile, mkdir, readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import type {StatusReport, SwitchoverOptions, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {callAgent} from '../cli/control-client.js';
import {labDown, labStatus, labUp, waitForSettledPair, type Lab, type LabHost, type LabOptions} from '../cli/lab/lab.js';
import {holdersOf, whoServes} from '../cli/lab/observe.js';
import {isNginxInstalled} from '../cli/lab/web.js';
import type {CampaignContext, CaseResult} from './case.js';

/**
 * Builds a lab (nginx when installed, else the built-in server), waits for it to settle, runs `work`, removes it.
 * When `work` returns a failed case or throws, both agents' logs are kept first (CampaignContext.keptLogs) and
 * named in the failed rows, since the lab and its logs go with it.
 */
export async function withCampaignLab<T>(
  context: CampaignContext, options: Omit<LabOptions, 'runner' | 'baseDir'>, work: (lab: Lab) => Promise<T>,
): Promise<T> {
  const web = options.web ?? (await isNginxInstalled() ? 'nginx' : 'builtin');
  const lab = await labUp({runner: context.runner, baseDir: context.dir, prefix: context.newPrefix(), ...options, web});
  try {
    await waitForSettledPair(lab, 20_000);
    const result = await work(lab);
    const rows = (Array.isArray(result) ? result : [result]) as unknown[];
    if (!rows.some((row) => isFailedRow(row))) return result;
    const kept = await keepLogs(context, lab);
    const named = rows.map((row) => (isFailedRow(row) ? {...row, detail: `${row.detail ?? row.figures} (agent logs: ${kept})`} : row));
    return (Array.isArray(result) ? named : named[0]) as T;
  } catch (error) {
    context.say(`agent logs of lab ${lab.prefix} kept in ${await keepLogs(context, lab)}`);
    throw error;
  } finally {
    await labDown(context.runner, lab.prefix, context.dir);
  }
}

function isFailedRow(value: unknown): value is CaseResult {
  return typeof value === 'object' && value !== null && (value as Partial<CaseResult>).ok === false &&
    typeof (value as Partial<CaseResult>).group === 'string';
}

/** Copies both agents' logs of `lab` to keptLogs/PREFIX and returns that directory. */
async function keepLogs(context: CampaignContext, lab: Lab): Promise<string> {
  const dir = join(context.keptLogs, lab.prefix);
  await mkdir(dir, {recursive: true});
  for (const host of [lab.hosts.primary, lab.hosts.backup]) {
    await copyFile(host.logFile, join(dir, `${host.role}.log`)).catch(() => undefined);
  }
  return dir;
}

export const SWITCH_DEFAULTS: SwitchoverOptions = {dryRun: false, strict: false, minRequests: 3, confirmTimeoutS: 10, pauseAfter: undefined};

/** A planned switch asked of `host`'s agent; resolves with its result, or with the error the agent answered. */
export async function requestSwitch(host: LabHost, options: Partial<SwitchoverOptions> = {}, timeoutMs = 60_000): Promise<SwitchResult | {error: string}> {
  try {
    return await callAgent(host.socket, {id: 'campaign', type: 'switchover', options: {...SWITCH_DEFAULTS, ...options}}, timeoutMs) as SwitchResult;
  } catch (error) {
    return {error: describeError(error)};
  }
}

export function describeSwitch(result: SwitchResult | {error: string}): string {
  if ('error' in result) return `error: ${result.error}`;
  return result.outcome === 'done' ? `done in ${result.totalMs} ms` : `${result.outcome} at ${result.failedStep ?? '?'}: ${result.reason ?? ''}`;
}

export interface PairCheck {
  readonly ok: boolean;
  readonly holders: readonly string[];
  readonly servedBy: string | undefined;
  /** Why not ok, in words. */
  readonly problem: string;
}

/** Exactly one kernel holds the IP and the client is answered by that host. Reads the kernel, not the agents. */
export async function checkOneHolder(lab: Lab): Promise<PairCheck> {
  const holders = await holdersOf(lab);
  const servedBy = await whoServes(lab).catch(() => undefined);
  const problems: string[] = [];
  if (holders.length !== 1) problems.push(`${holders.length} hosts hold the IP (${holders.join(', ') || 'none'})`);
  if (holders.length === 1 && servedBy !== holders[0]) problems.push(`the client was answered by ${servedBy ?? 'nobody'}, the IP is on the ${holders[0]}`);
  return {ok: problems.length === 0, holders, servedBy, problem: problems.join('; ')};
}

/**
 * The journals at rest: no switch.json left on either host, no temp file from a torn write, and the state files
 * readable. Returns the problems found (empty when consistent) and the epoch in each host's state.json.
 */
export async function checkJournals(lab: Lab): Promise<{problems: string[]; epochs: Record<string, number | undefined>}> {
  const problems: string[] = [];
  const epochs: Record<string, number | undefined> = {};
  for (const host of [lab.hosts.primary, lab.hosts.backup]) {
    const stateDir = join(host.dir, 'state');
    const files = await readdir(stateDir).catch(() => [] as string[]);
    if (files.includes('switch.json')) problems.push(`${host.role}: switch.json left after the switch ended`);
    const temps = files.filter((f) => f.endsWith('.tmp'));
    if (temps.length > 0) problems.push(`${host.role}: temp files ${temps.join(', ')}`);
    // Nothing of a switch may outlive it: the drain's nftables tables, the confirmation's counter, the service IP on lo.
    const tables = await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', 'list', 'tables'], {reject: false});
    if (/baton_(drain|confirm)/.test(String(tables.stdout))) problems.push(`${host.role}: switch tables left: ${String(tables.stdout).trim().replaceAll('\n', ', ')}`);
    const lo = await execa('ip', ['-n', host.namespace, '-4', '-o', 'addr', 'show', 'dev', 'lo'], {reject: false});
    if (/ 192\.0\.2\.100\/32 /.test(String(lo.stdout))) problems.push(`${host.role}: the service IP is left on lo`);
    if (files.includes('state.json')) {
      try {
        const state = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')) as {epoch?: unknown};
        epochs[host.role] = typeof state.epoch === 'number' ? state.epoch : undefined;
        if (typeof state.epoch !== 'number') problems.push(`${host.role}: state.json has no epoch`);
      } catch (error) {
        problems.push(`${host.role}: state.json unreadable: ${describeError(error)}`);
      }
    }
  }
  return {problems, epochs};
}

/** Both agents' status, or the error that came instead. */
export async function pairStatus(lab: Lab): Promise<{primary: StatusReport; backup: StatusReport} | {error: string}> {
  try {
    return await labStatus(lab);
  } catch (error) {
    return {error: describeError(error)};
  }
}

/** Settles the pair (both alive, one holder); the error text when it does not within `timeoutMs`. */
export async function settle(lab: Lab, timeoutMs = 20_000): Promise<string | undefined> {
  try {
    await waitForSettledPair(lab, timeoutMs);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}
