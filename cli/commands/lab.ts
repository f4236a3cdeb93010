// `baton lab up|status|down|run`: a two-host pair plus a client in network namespaces on this machine, or three hosts
// in etcd mode with three etcd members (--hosts 3 --coordination etcd).

import {spawnSync} from 'node:child_process';
import {readdir, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {BatonError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import type {LabAction} from '../args.js';
import {formatEtcdStatus, formatStatus} from '../format.js';
import {runDrill} from '../drill/drill.js';
import {formatEtcdDrillReport, runEtcdDrill} from '../drill/etcd-drill.js';
import {createLabTarget} from '../drill/lab-target.js';
import {formatDrillReport} from '../drill/report.js';
import {writeDrillReport} from '../drill/report-html.js';
import {EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK} from '../exit-codes.js';
import {LAB_BASE_DIR, labDown, labsByOwner, labStatus, labUp, readLab, waitForSettledPair, type Lab} from '../lab/lab.js';
import {etcdLabStatus, etcdLabUp, readEtcdLab, waitForOneHolder, type EtcdLab} from '../lab/etcd-lab.js';
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
  /** lab up, lab run: a pair (default), or three hosts in etcd mode with three etcd members (etcd-lab.ts). */
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
      if (options.coordination === 'etcd') return etcdLabUpAndSay(out, options, runner);
      const lab = await labUp({runner, web: await webKind(options.web), ...families(options), prefix: newLabPrefix(options.prefixStem),
        progress: (line) => out.stderr(`${line}\n`)});
      await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
      out.stdout(`lab ${lab.prefix} is up: primary ${lab.hosts.primary.address}, backup ${lab.hosts.backup.address}, client ${lab.client.address}, service IP ${lab.serviceIps.join(' and ')}\n` +
        `  status:  baton lab status\n  one host: baton status --config ${lab.hosts.primary.configFile}\n  remove:  baton lab down\n`);
      return 0;
    }
    case 'status': {
      const current = await currentLab();
      if (current.kind === 'etcd') return etcdLabStatusOut(out, options, current.lab);
      const lab = current.lab;
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
  requireEtcd();
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

/** Before anything is built: without etcd the lab would fail half-way, with namespaces to take down. */
function requireEtcd(): void {
  const missing = ['etcd', 'etcdctl'].filter((program) => spawnSync(program, ['--version'], {stdio: 'ignore'}).error !== undefined);
  if (missing.length > 0) {
    throw new BatonError('LAB_FAILED', `--coordination etcd: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not installed; ` +
      'install them with `apt-get install etcd-server etcd-client` (the lab starts its own members; the package\'s service is not needed)');
  }
}

/** `lab up --hosts 3 --coordination etcd`: builds the etcd lab, waits for one holder, says where everything is. */
async function etcdLabUpAndSay(out: Output, options: LabOptions, runner: CommandRunner): Promise<number> {
  requireEtcd();
  const lab = await etcdLabUp({runner, prefix: newLabPrefix(options.prefixStem), web: await webKind(options.web),
    progress: (line) => out.stderr(`${line}\n`)});
  const settled = await waitForOneHolder(lab, SETTLE_TIMEOUT_MS);
  const [first, second] = lab.hosts;
  out.stdout(`lab ${lab.prefix} is up in etcd mode: hosts ${lab.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}; ` +
    `etcd ${lab.endpoints.join(', ')}; client ${lab.client.address}; service IP ${lab.serviceIp}, held by ${settled.holder} at epoch ${settled.epoch}\n` +
    '  status:  baton lab status\n' +
    `  one host: baton status --config ${first?.configFile ?? ''}\n` +
    `  a switch: baton switchover --to ${second?.name ?? 'b'} --config ${second?.configFile ?? ''}\n` +
    `            (it waits for client requests on the taker: e.g. \`ip netns exec ${lab.prefix}-client curl -s ${lab.serviceUrl}\` a few times)\n` +
    '  remove:  baton lab down\n');
  return EXIT_OK;
}

/** `lab status` of an etcd lab: each host's status as `baton status` shows it (or why its agent did not answer). */
async function etcdLabStatusOut(out: Output, options: LabOptions, lab: EtcdLab): Promise<number> {
  const statuses = await etcdLabStatus(lab);
  const failed = statuses.some((s) => s instanceof Error);
  if (options.json) {
    const hosts = statuses.map((s, i) => (s instanceof Error ? {host: lab.hosts[i]?.name, error: s.message} : s));
    out.stdout(`${JSON.stringify({lab: lab.prefix, coordination: 'etcd', hosts}, null, 2)}\n`);
  } else {
    out.stdout(statuses.map((s, i) => (s instanceof Error ? `host ${lab.hosts[i]?.name ?? '?'}: its agent did not answer: ${s.message}\n` : formatEtcdStatus(s)))
      .join('\n'));
  }
  return failed ? EXIT_ERROR : EXIT_OK;
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
async function currentLab(): Promise<{kind: 'pair'; lab: Lab} | {kind: 'etcd'; lab: EtcdLab}> {
  const labs: Array<{lab: {kind: 'pair'; lab: Lab} | {kind: 'etcd'; lab: EtcdLab}; standing: boolean; madeMs: number}> = [];
  for (const name of await readdir(LAB_BASE_DIR).catch(() => [] as string[])) {
    const dir = join(LAB_BASE_DIR, name);
    const lab = await readLab(dir).then((pair) => ({kind: 'pair' as const, lab: pair}),
      () => readEtcdLab(dir).then((etcd) => ({kind: 'etcd' as const, lab: etcd}), () => undefined));
    if (lab === undefined) continue;
    const madeMs = (await stat(dir).catch(() => undefined))?.mtimeMs ?? 0;
    labs.push({lab, standing: await liveOwner(lab.lab.prefix) === undefined, madeMs});
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
