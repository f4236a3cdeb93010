// `baton lab up|status|down|run`: a two-host pair plus a client in network namespaces on this machine.

import {spawnSync} from 'node:child_process';
import {readdir, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {BatonError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import type {LabAction} from '../args.js';
import {formatStatus} from '../format.js';
import {runDrill} from '../drill/drill.js';
import {formatEtcdDrillReport, runEtcdDrill} from '../drill/etcd-drill.js';
import {createLabTarget} from '../drill/lab-target.js';
import {formatDrillReport} from '../drill/report.js';
import {writeDrillReport} from '../drill/report-html.js';
import {EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK} from '../exit-codes.js';
import {LAB_BASE_DIR, labDown, labsByOwner, labStatus, labUp, readLab, waitForSettledPair, type Lab} from '../lab/lab.js';
import {etcdLabUp} from '../lab/etcd-lab.js';
import {liveOwner} from '../lab/lab-owner.js';
import {newLabPrefix} from '../lab/topology-plan.js';
import {isNginxInstalled, NGINX_PROGRAM} from '../lab/web.js';
import type {Output} from '../output.js';

export interface LabOptions {
  readonly action: LabAction;
  readonly json: boolean;
  readonly web: 'builtin' | 'nginx';
  readonly report: string;
  /** lab up, lab run: the service address, the beacons and the client in IPv6. */
  readonly ipv6: boolean;
  /** lab up, lab run: both service addresses as one dual-stack service; beacons IPv4. */
  readonly dualStack?: boolean;
  /** lab down NAME: that lab only. */
  readonly lab?: string;
  /** lab run: a pair (default), or three hosts in etcd mode with three etcd members (etcd-lab.ts). */
  readonly coordination?: 'pair' | 'etcd';
  /** lab up, lab run: the start of the lab's name (LAB_PREFIX_STEM). */
  readonly prefixStem?: string;
}

// The lab's default timers, for the failure phase's target.
const LAB_DEAD_AFTER_MS = 1000;
// The drill's client probes this often: fine enough to see a 50 ms gap, light enough for a 2-core machine.
const DRILL_PROBE_INTERVAL_MS = 20;
// The etcd drill's service prober: every 10 ms, as issue 17 samples its faults.
const ETCD_DRILL_PROBE_INTERVAL_MS = 10;

// Agents decide within two heartbeat intervals plus an ARP probe; 15 s is generous even on a loaded CI host.
const SETTLE_TIMEOUT_MS = 15_000;

export async function run(out: Output, options: LabOptions, runner: CommandRunner = createExecaRunner()): Promise<number> {
  requireRoot();
  switch (options.action) {
    case 'up': {
      // Labs of runs still going (a campaign, a drill, a test) may stand beside this one; a standing lab may not,
      // as `lab status` and `lab down` would not know which one is meant.
      const existing = (await labsByOwner(runner)).unowned;
      if (existing.length > 0) {
        throw new BatonError('LAB_FAILED', `a lab already exists (${existing.join(', ')}); use it with \`baton lab status\`, or remove it with \`baton lab down\``);
      }
      const lab = await labUp({runner, web: await webKind(options.web), ...families(options), prefix: newLabPrefix(options.prefixStem),
        progress: (line) => out.stderr(`${line}\n`)});
      await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
      out.stdout(`lab ${lab.prefix} is up: primary ${lab.hosts.primary.address}, backup ${lab.hosts.backup.address}, client ${lab.client.address}, service IP ${lab.serviceIps.join(' and ')}\n` +
        `  status:  baton lab status\n  one host: baton status --config ${lab.hosts.primary.configFile}\n  remove:  baton lab down\n`);
      return 0;
    }
    case 'status': {
      const lab = await currentLab();
      const status = await labStatus(lab);
      out.stdout(options.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status.primary)}\n${formatStatus(status.backup)}`);
      return 0;
    }
    case 'down': {
      const {unowned, inUse} = await labsByOwner(runner);
      if (options.lab !== undefined && ![...unowned, ...inUse.map((l) => l.prefix)].includes(options.lab)) {
        throw new BatonError('LAB_FAILED', `no lab ${options.lab} on this machine${unowned.length + inUse.length === 0 ? '' : ` (there are: ${[...unowned, ...inUse.map((l) => l.prefix)].sort().join(', ')})`}`);
      }
      // Named: that lab, in use or not. Unnamed: every lab whose builder has gone (standing, interrupted, crashed).
      const remove = options.lab === undefined ? unowned : [options.lab];
      for (const prefix of remove) {
        await labDown(runner, prefix);
        out.stdout(`lab ${prefix} removed: agents stopped, namespaces and files deleted\n`);
      }
      if (options.lab === undefined) {
        for (const {prefix, owner} of inUse) {
          out.stdout(`lab ${prefix} left up: in use by process ${owner.pid} (${owner.command}); \`baton lab down ${prefix}\` removes it anyway\n`);
        }
        if (unowned.length + inUse.length === 0) out.stdout('no lab to remove\n');
      }
      return 0;
    }
    case 'run':
      return options.coordination === 'etcd' ? runEtcdDrillInLab(out, options, runner) : runDrillInLab(out, options, runner);
  }
}

/**
 * Builds a lab, runs the drill in it with a client probing, writes the report (text, HTML, JSON), removes the lab.
 * Ctrl-C stops the drill, waits until exactly one host serves, and leaves the lab up for a look.
 */
async function runDrillInLab(out: Output, options: LabOptions, runner: CommandRunner): Promise<number> {
  const say = (line: string): void => out.stderr(`${line}\n`);
  const abort = new AbortController();
  const onInterrupt = (): void => {
    if (!abort.signal.aborted) say('\nCtrl-C: stopping the drill after the current step; the pair is left with exactly one host serving');
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  const lab = await labUp({runner, web: await webKind(options.web), ...families(options), prefix: newLabPrefix(options.prefixStem), progress: say});
  let keepLab = false;
  try {
    await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
    const report = await runDrill(createLabTarget(lab, LAB_DEAD_AFTER_MS), {
      title: `baton lab drill (${options.web} web servers${options.ipv6 ? ', IPv6' : ''}${options.dualStack === true ? ', dual stack' : ''})`, withFailure: true, probeIntervalMs: DRILL_PROBE_INTERVAL_MS, say, signal: abort.signal,
    });
    const jsonPath = options.report.replace(/\.html?$/, '') + '.json';
    await writeDrillReport(report, options.report, jsonPath);
    out.stdout(options.json ? `${JSON.stringify(report, null, 2)}\n` : `\n${formatDrillReport(report)}\nreport: ${options.report} (timeline), ${jsonPath}\n`);
    if (report.interrupted !== undefined) {
      keepLab = true;
      const settled = await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
      const holder = settled.primary.self.holdsIp === true ? 'primary' : 'backup';
      say(`interrupted: lab ${lab.prefix} left up, exactly one host serves (the ${holder}); look with \`baton lab status\`, remove it with \`baton lab down\``);
      return EXIT_INTERRUPTED;
    }
    return report.ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    process.off('SIGINT', onInterrupt);
    if (!keepLab) {
      await labDown(runner, lab.prefix);
      say(`lab ${lab.prefix}: removed`);
    }
  }
}

/**
 * `lab run --hosts 3 --coordination etcd`: builds the etcd lab (three hosts, three etcd members, a client), runs the
 * etcd drill, writes its JSON report beside --report's name, and removes the lab whatever happened. Ctrl-C ends the
 * drill after the current phase; the lab is removed all the same (its hosts stand by for etcd, nothing to keep).
 */
async function runEtcdDrillInLab(out: Output, options: LabOptions, runner: CommandRunner): Promise<number> {
  // Before anything is built: without etcd the lab would fail half-way, with namespaces to take down.
  const missing = ['etcd', 'etcdctl'].filter((program) => spawnSync(program, ['--version'], {stdio: 'ignore'}).error !== undefined);
  if (missing.length > 0) {
    throw new BatonError('LAB_FAILED', `--coordination etcd: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not installed; ` +
      'install them with `apt-get install etcd-server etcd-client` (the lab starts its own members; the package\'s service is not needed)');
  }
  const say = (line: string): void => out.stderr(`${line}\n`);
  const abort = new AbortController();
  const onInterrupt = (): void => {
    if (!abort.signal.aborted) say('\nCtrl-C: stopping the drill after the current phase; the lab is then removed');
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  const prefix = newLabPrefix(options.prefixStem);
  try {
    const lab = await etcdLabUp({runner, prefix, web: await webKind(options.web), progress: say});
    const report = await runEtcdDrill(lab, {
      title: `baton lab drill (3 hosts in etcd mode, ${options.web} web servers)`, probeIntervalMs: ETCD_DRILL_PROBE_INTERVAL_MS, say,
      signal: abort.signal, clients: true,
    });
    const jsonPath = options.report.replace(/\.html?$/, '') + '.json';
    await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    out.stdout(options.json ? `${JSON.stringify(report, null, 2)}\n` : `\n${formatEtcdDrillReport(report)}\nreport: ${jsonPath}\n`);
    if (report.interrupted !== undefined) return EXIT_INTERRUPTED;
    return report.ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    process.off('SIGINT', onInterrupt);
    await labDown(runner, prefix);
    say(`lab ${prefix}: removed`);
  }
}

/** --ipv6: the service, the beacons and (following the service) the client in IPv6; --dual-stack: the service in
 *  both (the client probes both), beacons IPv4; IPv4 otherwise. */
function families(options: LabOptions): {serviceFamily: 4 | 6 | 'dual'; heartbeatFamily: 4 | 6} {
  if (options.dualStack === true) return {serviceFamily: 'dual', heartbeatFamily: 4};
  return options.ipv6 ? {serviceFamily: 6, heartbeatFamily: 6} : {serviceFamily: 4, heartbeatFamily: 4};
}

async function webKind(wanted: 'builtin' | 'nginx'): Promise<'builtin' | 'nginx'> {
  if (wanted === 'nginx' && !(await isNginxInstalled())) {
    throw new BatonError('LAB_FAILED', `--web nginx: nginx is not installed (${NGINX_PROGRAM}); install it with \`apt-get install nginx-light\`, or use the built-in server`);
  }
  return wanted;
}

/**
 * The lab `baton lab up` or `lab run` built here (their records are in LAB_BASE_DIR; a campaign keeps its own): the
 * standing one (its builder has exited: `lab up`, an interrupted drill), else one a drill still runs in; the newest
 * of them. Another user's drill running beside a standing lab is not the one meant.
 */
async function currentLab(): Promise<Lab> {
  const labs: Array<{lab: Lab; standing: boolean; madeMs: number}> = [];
  for (const name of await readdir(LAB_BASE_DIR).catch(() => [] as string[])) {
    const dir = join(LAB_BASE_DIR, name);
    const lab = await readLab(dir).catch(() => undefined);
    if (lab === undefined) continue;
    const madeMs = (await stat(dir).catch(() => undefined))?.mtimeMs ?? 0;
    labs.push({lab, standing: await liveOwner(lab.prefix) === undefined, madeMs});
  }
  labs.sort((a, b) => Number(a.standing) - Number(b.standing) || a.madeMs - b.madeMs);
  const chosen = labs.at(-1);
  if (chosen === undefined) throw new BatonError('LAB_FAILED', 'no lab is running; start one with `baton lab up`');
  return chosen.lab;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new BatonError('LAB_FAILED', 'the lab creates network namespaces and needs root: run it with sudo');
  }
}
