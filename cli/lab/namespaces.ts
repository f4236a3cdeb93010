// Network-namespace labs, built from a topology plan (topology-plan.ts) and torn down by their per-run prefix, so
// nothing is created in the root namespace and one prefix removes everything; commands and programs run inside.

import {spawn} from 'node:child_process';
import {open} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {describeMissingProgram} from '../../agent/adapters/execa-runner.js';
import {BatonError, describeError, isBatonError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import {bridgeName, checkPrefix, LAB_PREFIX_PATTERN, planTopology, type Topology, type TopologySpec} from './topology-plan.js';

// Processes left in a namespace get this long after SIGTERM before SIGKILL (agents release and exit well within).
const STOP_GRACE_MS = 2000;
// How often we look whether they are gone: short against the grace time, cheap (`ip netns pids` reads /proc).
const STOP_POLL_MS = 50;

/**
 * Builds the namespaces, the switch with one bridge per LAN, and a veth per host interface, with its IPv4 and IPv6
 * addresses set and every link (and lo) up. Refuses a prefix that is already in use. On failure removes everything it made and throws
 * LAB_FAILED with the failed command as cause.
 */
export async function createTopology(runner: CommandRunner, spec: TopologySpec): Promise<Topology> {
  const topology = planTopology(spec);
  const existing = (await listNamespaces(runner)).filter((ns) => ns.startsWith(`${spec.prefix}-`));
  if (existing.length > 0) {
    throw new BatonError('LAB_FAILED',
      `namespaces with prefix ${spec.prefix} already exist (${existing.join(', ')}): remove them with \`baton lab down\``);
  }
  const sw = topology.switchNamespace;
  try {
    await runner.run('ip', ['netns', 'add', sw]);
    await runner.run('ip', ['-n', sw, 'link', 'set', 'lo', 'up']);
    for (const lan of spec.lans) {
      const bridge = bridgeName(lan.name);
      await runner.run('ip', ['-n', sw, 'link', 'add', bridge, 'type', 'bridge']);
      await runner.run('ip', ['-n', sw, 'link', 'set', bridge, 'up']);
    }
    for (const host of topology.hosts) {
      await runner.run('ip', ['netns', 'add', host.namespace]);
      await runner.run('ip', ['-n', host.namespace, 'link', 'set', 'lo', 'up']);
      for (const iface of host.interfaces) {
        // Both ends are born in their namespaces: nothing ever appears in the root namespace, even briefly.
        await runner.run('ip', ['-n', sw, 'link', 'add', iface.switchPort, 'type', 'veth', 'peer', 'name', iface.name, 'netns', host.namespace]);
        await runner.run('ip', ['-n', sw, 'link', 'set', iface.switchPort, 'master', iface.bridge]);
        await runner.run('ip', ['-n', sw, 'link', 'set', iface.switchPort, 'up']);
        await runner.run('ip', ['-n', host.namespace, 'addr', 'add', iface.cidr, 'dev', iface.name]);
        // nodad: usable at once, not "tentative" for the second of duplicate address detection (no one else is on
        // the LAN); and the lab is up as soon as it is built, in either family.
        await runner.run('ip', ['-n', host.namespace, 'addr', 'add', iface.cidr6, 'dev', iface.name, 'nodad']);
        await runner.run('ip', ['-n', host.namespace, 'link', 'set', iface.name, 'up']);
      }
    }
  } catch (error) {
    await destroyTopology(runner, spec.prefix).catch(() => undefined);
    throw new BatonError('LAB_FAILED', `cannot build the lab topology ${spec.prefix}: ${describeError(error)}`, {cause: error});
  }
  return topology;
}

/**
 * Deletes every namespace named ${prefix}-*, after ending the processes still inside them (SIGTERM, up to 2 s, then
 * SIGKILL: only processes the lab started live there). Veths and bridges die with their namespaces. Idempotent.
 * Throws LAB_FAILED if a namespace survives.
 */
export async function destroyTopology(runner: CommandRunner, prefix: string): Promise<void> {
  checkPrefix(prefix);
  const ours = async (): Promise<string[]> => (await listNamespaces(runner)).filter((ns) => ns.startsWith(`${prefix}-`));
  const namespaces = await ours();
  if (namespaces.length === 0) return;
  await stopNamespaceProcesses(runner, namespaces);
  const failures: string[] = [];
  for (const ns of namespaces) {
    try {
      await runner.run('ip', ['netns', 'del', ns]);
    } catch (error) {
      failures.push(describeError(error));
    }
  }
  const left = await ours();
  if (left.length > 0) {
    throw new BatonError('LAB_FAILED', `namespaces ${left.join(', ')} could not be removed: ${failures.join('; ')}`);
  }
}

/** Prefixes of lab namespaces that exist on this machine (e.g. left by a crashed run), sorted. */
export async function findLeftovers(runner: CommandRunner): Promise<string[]> {
  const prefixes = new Set<string>();
  for (const ns of await listNamespaces(runner)) {
    const prefix = ns.slice(0, ns.indexOf('-'));
    if (LAB_PREFIX_PATTERN.test(prefix)) prefixes.add(prefix);
  }
  return [...prefixes].sort();
}

/** Names of all network namespaces (`ip -j netns list`). */
export async function listNamespaces(runner: CommandRunner): Promise<string[]> {
  const stdout = await runner.run('ip', ['-j', 'netns', 'list']);
  // With no namespace at all, iproute2 prints nothing rather than [].
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as Array<{name?: unknown}>;
  return parsed.map((entry) => entry.name).filter((name): name is string => typeof name === 'string');
}

/** A CommandRunner whose commands run inside `namespace` (`ip netns exec NS file …args`). */
export function createNamespacedRunner(runner: CommandRunner, namespace: string): CommandRunner {
  return {
    run: (file, args, options) => runInNamespace(runner, namespace, file, args, options),
  };
}

/** Runs one command inside a namespace and resolves with its stdout; fails like CommandRunner.run. */
export async function runInNamespace(
  runner: CommandRunner, namespace: string, file: string, args: readonly string[], options?: {timeoutMs?: number},
): Promise<string> {
  try {
    return await runner.run('ip', ['netns', 'exec', namespace, file, ...args], options);
  } catch (error) {
    // `ip netns exec` reports a missing program itself (exit 1): say which package provides it.
    if (isBatonError(error, 'COMMAND_FAILED') && /exec of "[^"]*" failed: No such file or directory/.test(error.details?.stderr ?? '')) {
      throw new BatonError('COMMAND_FAILED', `cannot run \`${file}\` in ${namespace}: ${describeMissingProgram(file)}`,
        {cause: error, details: error.details});
    }
    throw error;
  }
}

/**
 * Whether `address` answers one ping from inside `namespace` within `timeoutS` (ping -c 1 -W). No reply is false;
 * anything else that fails (ping missing, bad address) throws.
 */
export async function isReachable(runner: CommandRunner, namespace: string, address: string, timeoutS = 1): Promise<boolean> {
  try {
    await runInNamespace(runner, namespace, 'ping', ['-n', '-c', '1', '-W', String(timeoutS), address]);
    return true;
  } catch (error) {
    // ping exits 1 with its summary when no reply came; `ip netns exec` also exits 1 when ping is missing.
    if (isBatonError(error, 'COMMAND_FAILED') && error.details?.exitCode === 1 &&
      /packets transmitted/.test(error.details.stdout)) return false;
    throw error;
  }
}

/**
 * Starts a long-running program inside a namespace, detached (its own process group, not waited for), with stdout
 * and stderr appended to `logFile`. Resolves with its PID once it has started; destroyTopology ends it if nobody
 * else does.
 */
export async function spawnInNamespace(
  namespace: string | undefined, file: string, args: readonly string[], logFile: string,
  options: {env?: NodeJS.ProcessEnv; cwd?: string} = {},
): Promise<number> {
  const log = await open(logFile, 'a', 0o600);
  try {
    // `ip netns exec` execs the program in place, so the PID is the program's own.
    // No namespace: right here, in this process's own (baton rehearse on a real host).
    const [command, argv] = namespace === undefined ? [file, [...args]] : ['ip', ['netns', 'exec', namespace, file, ...args]];
    const child = spawn(command, argv, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    if (child.pid === undefined) throw new BatonError('LAB_FAILED', `\`${file}\` in ${namespace ?? 'this namespace'} started without a PID`);
    return child.pid;
  } catch (error) {
    if (isBatonError(error)) throw error;
    throw new BatonError('LAB_FAILED', `cannot start \`${file}\` in ${namespace ?? 'this namespace'}: ${describeError(error)}`, {cause: error});
  } finally {
    await log.close();
  }
}

async function stopNamespaceProcesses(runner: CommandRunner, namespaces: readonly string[]): Promise<void> {
  const pidsIn = async (): Promise<number[]> => {
    const lists = await Promise.all(namespaces.map(async (ns) => {
      try {
        return await runner.run('ip', ['netns', 'pids', ns]);
      } catch {
        return ''; // the namespace vanished meanwhile: nothing left in it
      }
    }));
    return lists.flatMap((list) => list.split(/\s+/)).filter((word) => /^\d+$/.test(word)).map(Number)
      .filter((pid) => pid !== process.pid);
  };
  let pids = await pidsIn();
  if (pids.length === 0) return;
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(STOP_POLL_MS);
    pids = await pidsIn();
  }
  signal(pids, 'SIGKILL');
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch (error) {
      // ESRCH: it exited between the listing and the signal, which is what we wanted.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}
