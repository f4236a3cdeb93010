// What the switch and failover integration tests do to a lab: run the real CLI, ask the client who serves,
// see where the address is, and wait for the pair to settle.

import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa, type ResultPromise} from 'execa';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import type {StatusReport} from '../../agent/control-protocol.js';
import type {StatusJson} from '../../cli/commands/status.js';
import {labDown, labUp, type Lab, type LabHost, type LabOptions} from '../../cli/lab/lab.js';
import {watchServiceAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {until, whoServes} from '../../cli/lab/observe.js';
import {startProber, type Prober} from '../../cli/lab/probe-control.js';
export {servesAddress, until, whoServes} from '../../cli/lab/observe.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';

export const runner = createExecaRunner();

export interface LabFixture {
  /** The lab; throws when it could not be built (the before hook failed or the tests are skipped). */
  lab(): Lab;
  prober(): Prober | undefined;
  baseDir(): string;
  /** Date.now() when the agents had been started. */
  upAt(): number;
}

/**
 * One lab for the test file: built in test.before (settled, and with a client probing the service IP every
 * 20 ms when `probe` is set, bounded in time and count), removed in test.after.always even when tests fail.
 */
export function useLab(options: Omit<LabOptions, 'runner' | 'prefix' | 'baseDir'>, fixture: {probe?: boolean; settle?: boolean} = {}): LabFixture {
  let lab: Lab | undefined;
  let prober: Prober | undefined;
  let baseDir = '';
  let upAt = 0;
  test.before(async (t) => {
    if (!(await skipUnlessIntegration(t))) return;
    baseDir = await mkdtemp(join(tmpdir(), 'baton-it-'));
    lab = await labUp({runner, prefix: integrationPrefix(), baseDir, ...options});
    upAt = Date.now();
    if (fixture.settle !== false) await settled(lab);
    if (fixture.probe === true) {
      prober = await startProber({namespace: lab.client.namespace, url: lab.serviceUrl, intervalMs: 20, timeoutMs: 200,
        durationS: 300, maxProbes: 15_000, out: join(baseDir, 'probes.jsonl')});
    }
  });
  test.after.always(async () => {
    await prober?.stop().catch(() => undefined);
    if (lab !== undefined) await labDown(runner, lab.prefix, baseDir);
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  });
  return {
    lab: () => {
      if (lab === undefined) throw new Error('the lab was not built');
      return lab;
    },
    prober: () => prober,
    baseDir: () => baseDir,
    upAt: () => upAt,
  };
}

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** `baton ARGS --socket HOST` for real; resolves with exit code and output, never throws on a non-zero exit. */
export function baton(host: Pick<LabHost, 'socket'>, ...args: string[]): ResultPromise<{reject: false; timeout: number}> {
  return execa(process.execPath, [CLI, ...args, '--socket', host.socket], {reject: false, timeout: 120_000});
}

/** The agent's report through `baton status --json`, whatever its verdict; throws when the agent did not answer. */
export async function statusOf(host: LabHost): Promise<StatusReport> {
  const result = await baton(host, 'status', '--json');
  const json = JSON.parse(String(result.stdout || '{}')) as Partial<StatusJson>;
  if (json.error !== undefined || json.self === undefined) {
    throw new Error(`baton status on the ${host.role} failed (exit ${result.exitCode}): ${json.error?.message ?? String(result.stderr)}`);
  }
  return json as StatusReport;
}

/** Both agents alive, neither starting or switching, exactly one holding the IP, and no part of it on the other: returns both statuses. */
export function settled(lab: Lab, timeoutMs = 15_000): Promise<{primary: StatusReport; backup: StatusReport}> {
  return until('the pair settles', timeoutMs, async () => {
    const primary = await statusOf(lab.hosts.primary);
    const backup = await statusOf(lab.hosts.backup);
    const busy = (s: StatusReport): boolean => s.self.state === 'starting' || s.self.state === 'switching' || !s.peer.alive;
    const holders = [primary, backup].filter((s) => s.self.holdsIp === true).length;
    const partly = [primary, backup].some((s) => s.self.holdsIp !== true && (s.self.held?.length ?? 0) > 0);
    return busy(primary) || busy(backup) || holders !== 1 || partly ? undefined : {primary, backup};
  });
}

// A client's ARP cache follows a move within about a second of the announcement, and on a loaded machine one
// fetch (a Node start and a 1 s timeout) can miss: 15 s bounds a wait for an outcome, it is not a target.
const SERVED_BY_TIMEOUT_MS = 15_000;

/**
 * Who serves the client, once it is `expected` or the bound ran out: the last answer seen (undefined when the
 * client got none), for `t.is(await servedBy(lab, 'backup'), 'backup')`.
 */
export async function servedBy(lab: Lab, expected: string): Promise<string | undefined> {
  let last: string | undefined;
  await until(`the client is served by the ${expected}`, SERVED_BY_TIMEOUT_MS, async () => {
    last = await whoServes(lab);
    return last === expected ? true : undefined;
  }).catch(() => undefined);
  return last;
}

/** Runs `work` with the kernels' address events recorded; returns its result and the history. */
export async function watched<T>(l: Lab, work: () => Promise<T>): Promise<{result: T; history: AddressHistory}> {
  const watch = await watchServiceAddress(l);
  try {
    const result = await work();
    return {result, history: await watch.stop()};
  } finally {
    await watch.stop(); // once: stops the monitors when `work` threw
  }
}
