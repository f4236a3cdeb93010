// The campaign's lab: one throw-away pair per part (or per case), the switch asked for over the control socket as
// `baton switchover` does, and the checks every case ends with: exactly one host's kernel holds the IP, the
// client is served by that host, and neither journal is left half-written.

import {copyFile, mkdir, readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import type {StatusReport, SwitchoverOptions, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {addressBitsOf, canonicalIpText, parseIpAddress} from '../agent/net/ip-address.js';
import {callAgent} from '../cli/control-client.js';
import {labDown, labStatus, labUp, waitForSettledPair, type Lab, type LabHost, type LabOptions} from '../cli/lab/lab.js';
import {describeHoldings, holdingsOf, soleHolder, whoServes, type Holding} from '../cli/lab/observe.js';
import {startProber, startServiceProbers, type ServiceProbers} from '../cli/lab/probe-control.js';
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
  const lab = await labUp({runner: context.runner, baseDir: context.dir, prefix: context.newLabPrefix(), ...options, web});
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
  /** Each host with any service address up, and which (a dual-stack service: both, or a part). */
  readonly holdings: readonly Holding[];
  /** The host holding every service address while the other holds none (soleHolder), else undefined. */
  readonly holder: string | undefined;
  readonly servedBy: string | undefined;
  /** Why not ok, in words. */
  readonly problem: string;
}

/**
 * Exactly one kernel holds the IP (every service address, and the other host none of them) and the client is
 * answered by that host at each. Reads the kernel, not the agents.
 */
export async function checkOneHolder(lab: Lab): Promise<PairCheck> {
  const holdings = await holdingsOf(lab);
  const servedBy = await whoServes(lab).catch(() => undefined);
  const holder = soleHolder(holdings);
  const problems: string[] = [];
  if (holder === undefined) problems.push(`${holdings.length} hosts hold the IP (${describeHoldings(holdings)})`);
  if (holder !== undefined && servedBy !== holder) problems.push(`the client was answered by ${servedBy ?? 'nobody'}, the IP is on the ${holder}`);
  return {ok: problems.length === 0, holdings, holder, servedBy, problem: problems.join('; ')};
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
    const lo = await execa('ip', ['-n', host.namespace, '-j', 'addr', 'show', 'dev', 'lo'], {reject: false});
    const onLo = lab.serviceAddresses.filter((address) => isOnLo(String(lo.stdout), address));
    if (onLo.length > 0) problems.push(`${host.role}: the service IP is left on lo (${onLo.join(', ')})`);
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

/** Whether `ip -j addr show dev lo` lists `address` as a drain's hold leaves it: a /32 (IPv6: a /128). */
function isOnLo(json: string, address: string): boolean {
  const wanted = parseIpAddress(address);
  if (wanted === undefined) return false;
  const links = JSON.parse(json || '[]') as Array<{addr_info?: Array<{local: string; prefixlen: number}>}>;
  return links.some((link) => (link.addr_info ?? []).some((a) => canonicalIpText(a.local) === wanted.address && a.prefixlen === addressBitsOf(wanted.family)));
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

/**
 * The lab's client probing every service address (a dual-stack lab: both, each a stream of its own, as the drill
 * does), from the client's namespace. `out` is the record file; a second address's records go beside it, named by
 * family (`probes-ipv6.jsonl`).
 */
export async function startLabProbers(lab: Lab, options: {intervalMs: number; timeoutMs: number; durationS: number; maxProbes: number; out: string}): Promise<ServiceProbers> {
  const {out, ...bounds} = options;
  return await startServiceProbers({urls: lab.serviceUrls, families: lab.serviceFamilies}, {namespace: lab.client.namespace, ...bounds,
    out: (stream) => (stream === undefined ? out : out.replace(/(\.jsonl)?$/, `-${stream.toLowerCase()}$1`))});
}

// A client every 20 ms: ~200 requests in a 4 s confirmation, far more than min_requests (3). The prober outlives
// any one switch (the steps, the confirmation, a rollback) and is stopped when `work` ends.
const CLIENT_INTERVAL_MS = 20;
const CLIENT_TIMEOUT_MS = 200;
const CLIENT_DURATION_S = 120;

/**
 * Runs `work` while a prober in `namespace` (the lab's client when omitted) requests `url` every 20 ms; without a
 * `url`, one prober per service address (a dual-stack service has clients of both families).
 */
export async function withClients<T>(lab: Lab, name: string, work: () => Promise<T>,
  where: {namespace?: string; url?: string} = {}): Promise<T> {
  const bounds = {namespace: where.namespace ?? lab.client.namespace, intervalMs: CLIENT_INTERVAL_MS, timeoutMs: CLIENT_TIMEOUT_MS,
    durationS: CLIENT_DURATION_S, maxProbes: CLIENT_DURATION_S * (1000 / CLIENT_INTERVAL_MS)};
  const out = (stream: string | undefined): string => join(lab.dir, `probes-${name}${stream === undefined ? '' : `-${stream}`}.jsonl`);
  const probers = where.url === undefined
    ? await startServiceProbers({urls: lab.serviceUrls, families: lab.serviceFamilies}, {...bounds, out})
    : await startProber({...bounds, url: where.url, out: out(undefined)});
  try {
    return await work();
  } finally {
    await probers.stop().catch(() => undefined);
  }
}
