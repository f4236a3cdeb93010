// `baton check-config [FILE] [--json] [--file-only]`: the file and its secret files, and this host as the agent will
// see it (host-check.ts: interface, listen address, access log, secrets, programs), whether the unit's installed
// allow-lists allow the config, and whether this host can drain a planned switch. Every problem at once; exit 1 on
// any error, warnings alone exit 0.

import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createSystemHostProbe, unitFileAccess} from '../../agent/adapters/host-probe.js';
import {createNftDrainDriver} from '../../agent/adapters/nft-drain-driver.js';
import {readFile} from 'node:fs/promises';
import {resolve} from 'node:path';
import {inspectProgramFile} from '../../agent/config/program-files.js';
import {type AnyConfig, type Config, DEFAULT_CONFIG_FILE, type EtcdConfig, type FileProblem, inspectConfig, isEtcdConfig, readConfigText} from '../../agent/config/schema.js';
import {serviceKey} from '../../agent/config/coordination.js';
import {readSecretFile} from '../../agent/config/secret-files.js';
import type {FileAccess} from '../../agent/config/unit-file-access.js';
import {parseSandboxDropIn, SANDBOX_DROP_IN, sandboxProblems} from '../../agent/config/unit-sandbox.js';
import {describeError, isBatonError} from '../../agent/errors.js';
import {
  checkHostOfAll, type DraftView, gatherHostFacts, type HostCheckSubject, type HostProblem, hostProblem, type HostProblemKind, type Severity,
  subjectsOfConfig, subjectsOfDraft,
} from '../../agent/host-check.js';
import type {DrainDriver, HostProbe} from '../../agent/ports.js';
import {COMBINED} from '../../agent/access-log.js';
import type {Output} from '../output.js';
import {endpointText} from '../../agent/net/ip-address.js';
import {ownDrainAddresses} from '../../agent/net/service-addresses.js';

export interface CheckConfigOptions {
  readonly file: string;
  readonly json: boolean;
  /** Only the file and its secrets: for a config written for another machine (an image made with install --root). */
  readonly fileOnly: boolean;
}

/** What check-config reads of this host; injected so the command can run on fakes. */
export interface CheckConfigDeps {
  readonly probe: HostProbe;
  /** Who the agent reads files as under its unit. */
  readonly access: () => Promise<FileAccess>;
  /** The drain driver of a service interface. */
  readonly drain: (iface: string) => DrainDriver;
  /** The drop-in `baton install` wrote; compared with the config only for the config the unit runs. */
  readonly dropIn: string;
}

export function createCheckConfigDeps(): CheckConfigDeps {
  return {
    probe: createSystemHostProbe({path: process.env['PATH'] ?? ''}),
    access: () => unitFileAccess(),
    drain: (iface) => createNftDrainDriver(createExecaRunner(), {interface: iface}),
    dropIn: SANDBOX_DROP_IN,
  };
}

/** One problem as check-config reports it: of the file (with its line) or of the host (with its kind). */
export interface ReportedProblem {
  readonly severity: Severity;
  readonly check: 'file' | 'host';
  readonly kind?: HostProblemKind;
  readonly key?: string;
  readonly line?: number;
  readonly message: string;
}

export interface ConfigReport {
  readonly file: string;
  /** No error (warnings allowed). */
  readonly valid: boolean;
  readonly problems: readonly ReportedProblem[];
  readonly config: AnyConfig | undefined;
  /** The lines that describe a valid config: replay protection or etcd, drain, sandbox. */
  readonly notes: readonly string[];
  /** Who the files were judged as; undefined with --file-only. */
  readonly readsAs: string | undefined;
}

export async function run(out: Output, options: CheckConfigOptions, deps: CheckConfigDeps = createCheckConfigDeps()): Promise<number> {
  const report = await checkConfig(options, deps);
  if (options.json) {
    out.stdout(`${JSON.stringify(reportJson(report), null, 2)}\n`);
  } else if (report.valid) {
    out.stdout(formatValid(report));
  } else {
    out.stderr(`baton: ${formatProblems(report)}\n`);
  }
  return report.valid ? 0 : 1;
}

export async function checkConfig(options: CheckConfigOptions, deps: CheckConfigDeps): Promise<ConfigReport> {
  const {file} = options;
  let text: string | undefined;
  const problems: ReportedProblem[] = [];
  try {
    text = await readConfigText(file);
  } catch (error) {
    if (!isBatonError(error, 'CONFIG_INVALID')) throw error;
    problems.push({severity: 'error', check: 'file', message: error.message});
  }
  const inspected = text === undefined ? undefined : inspectConfig(text, file, readSecretFile, inspectProgramFile);
  const config = inspected?.config;
  for (const problem of inspected?.problems ?? []) problems.push(fileProblem(file, problem));
  if (options.fileOnly) return finish(file, problems, config, config === undefined ? [] : [describeDecider(config)], undefined);

  // Where the file has problems, the keys that could be read are still checked: every problem at once.
  const subjects: HostCheckSubject[] = config !== undefined ? subjectsOfConfig(config)
    : inspected?.draft !== undefined ? subjectsOfDraft(inspected.draft as DraftView, inspected.problems)
      : [{serviceInterface: undefined, serviceIp: undefined, listenAddress: undefined, accessLog: undefined, logFormat: COMBINED, secretFiles: []}];
  const access = await deps.access();
  const host = await checkHostOfAll(subjects, (subject) => gatherHostFacts(subject, deps.probe), access);
  const notes: string[] = [];
  if (config !== undefined) {
    notes.push(describeDecider(config));
    // Without its interface nftables refuses the drain's rules too: that would only say the same thing again.
    if (!host.some((problem) => problem.kind === 'interface-missing')) {
      // In etcd mode the file's one drain section serves each of its services, on each one's interface.
      const services = isEtcdConfig(config) ? config.services.map((s) => ({name: s.name, service: s.service})) : [{name: undefined, service: config.service}];
      for (const {name, service} of services) {
        const drain = await describeDrain({drain: config.drain, service}, deps.drain(service.interface));
        const named = services.length > 1 && name !== undefined;
        if (typeof drain === 'string') notes.push(named ? `${name}: ${drain}` : drain);
        else host.push(named ? {...drain, message: `${name}: ${drain.message}`} : drain);
      }
    }
    if (resolve(file) === DEFAULT_CONFIG_FILE) {
      const sandbox = await checkSandbox(config, deps.dropIn);
      if (typeof sandbox === 'string') notes.push(sandbox);
      else if (sandbox !== undefined) host.push(...sandbox);
    }
  }
  for (const problem of host) {
    problems.push({severity: problem.severity, check: 'host', kind: problem.kind, ...(problem.key === undefined ? {} : {key: problem.key}),
      message: problem.message});
  }
  return finish(file, problems, config, notes, access.described);
}

function finish(file: string, problems: readonly ReportedProblem[], config: AnyConfig | undefined, notes: readonly string[],
  readsAs: string | undefined): ConfigReport {
  // Errors first (the file's, then the host's), warnings after.
  const ordered = problems.toSorted((a, b) => a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1);
  return {file, valid: config !== undefined && !ordered.some((problem) => problem.severity === 'error'), problems: ordered, config,
    notes, readsAs};
}

function fileProblem(file: string, problem: FileProblem): ReportedProblem {
  return {severity: 'error', check: 'file', ...(problem.key === undefined ? {} : {key: problem.key}), line: problem.line,
    message: `${file}:${problem.line} ${problem.message}`};
}

/** The refusal: every problem, errors then warnings, under a heading that counts them. */
export function formatProblems(report: ConfigReport): string {
  const errors = report.problems.filter((problem) => problem.severity === 'error').length;
  const warnings = report.problems.length - errors;
  const count = report.problems.length;
  const heading = `${report.file}: ${count} problem${count === 1 ? '' : 's'}` +
    (warnings === 0 ? '' : `: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return [heading, ...report.problems.map((problem) => `  - ${problem.severity === 'warning' ? 'warning: ' : ''}${problem.message}`)].join('\n');
}

/** What a valid config does, then its warnings. */
function formatValid(report: ConfigReport): string {
  const any = report.config;
  if (any === undefined) return formatProblems(report);
  if (isEtcdConfig(any)) return formatValidEtcd(report, any);
  const config = any;
  const lines = [
    `${config.file}: valid`,
    `  ${config.node} of pair ${config.pair}; beacons ${endpointText(config.listen.address, config.listen.port)} -> ${endpointText(config.peer.address, config.peer.port)}`,
    `  service IP ${config.service.ips.map((ip) => ip.cidr).join(' and ')} on ${config.service.interface} (${config.service.mode} mode)`,
    `  heartbeat every ${config.heartbeat.intervalMs} ms, peer dead after ${config.heartbeat.deadAfterMs} ms; key id ${config.keyring.signing.id}`,
    ...report.notes.map((note) => `  ${note}`),
    report.readsAs === undefined ? '  host: not checked (--file-only)'
      : `  host: ${config.service.interface} and ${config.listen.address} are this host's; ip, arping and perl, the access ` +
        `log and the secret checked as the agent reads them (${report.readsAs})`,
    ...report.problems.map((problem) => `  WARNING ${problem.message}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The machine-readable result: {file, valid, errors, warnings, problems: [{severity, check, kind?, key?, line?, message}], config}. */
export function reportJson(report: ConfigReport): Record<string, unknown> {
  const config = report.config === undefined || isEtcdConfig(report.config) ? undefined : report.config;
  const etcd = report.config !== undefined && isEtcdConfig(report.config) ? report.config : undefined;
  return {
    file: report.file,
    valid: report.valid,
    errors: report.problems.filter((problem) => problem.severity === 'error').length,
    warnings: report.problems.filter((problem) => problem.severity === 'warning').length,
    problems: report.problems,
    hostChecked: report.readsAs !== undefined,
    readsAs: report.readsAs ?? null,
    config: etcd !== undefined ? {
      coordination: etcd.coordination,
      services: etcd.services.map(({name, service, hosts, confirm}) => ({name, key: serviceKey(etcd.coordination.prefix, name), hosts,
        address: service.ip.cidr, addresses: service.ips.map((ip) => ip.cidr), interface: service.interface, mode: service.mode,
        accessLog: confirm.accessLog ?? null})),
    } : config === undefined ? null : {
      pair: config.pair, node: config.node, listen: config.listen, peer: config.peer,
      service: {address: config.service.ip.cidr, addresses: config.service.ips.map((ip) => ip.cidr), interface: config.service.interface, mode: config.service.mode},
      heartbeat: {intervalMs: config.heartbeat.intervalMs, deadAfterMs: config.heartbeat.deadAfterMs,
        replayProtection: config.heartbeat.replayProtection},
      keyId: config.keyring.signing.id,
      accessLog: config.confirm.accessLog ?? null,
    },
  };
}

/** Who decides which host holds the service: a pair's replay protection, or etcd's members and lease. */
function describeDecider(config: AnyConfig): string {
  if (!isEtcdConfig(config)) return describeReplayProtection(config);
  const {endpoints, leaseTtlS, renewMarginMs, onEtcdLoss} = config.coordination;
  return `etcd: ${endpoints.length} member${endpoints.length === 1 ? '' : 's'} (${endpoints.join(', ')}); lease ${leaseTtlS} s, ` +
    `the address given up ${renewMarginMs} ms before it could expire; on etcd loss: ${onEtcdLoss}` +
    (endpoints.length < 3 ? '; give etcd three members or five: fewer tolerate no failure' : '');
}

/** What a valid etcd-mode config does. */
function formatValidEtcd(report: ConfigReport, config: EtcdConfig): string {
  const {host, hosts, prefix} = config.coordination;
  const rank = hosts.indexOf(host);
  const interfaces = [...new Set(config.services.map((s) => s.service.interface))].join(' and ');
  const lines = [
    `${config.file}: valid`,
    `  host ${host} in etcd mode, ${rank === 0 ? 'first' : `number ${rank + 1}`} in the preference ${hosts.join(', ')}`,
    ...config.services.flatMap((s) => [
      `  service ${s.name}, its key ${serviceKey(prefix, s.name)}` +
        (s.hosts === hosts ? '' : `; its hosts ${s.hosts.join(', ')}, this one ${s.hosts.indexOf(host) === 0 ? 'first' : `number ${s.hosts.indexOf(host) + 1}`}`),
      `    service IP ${s.service.ips.map((ip) => ip.cidr).join(' and ')} on ${s.service.interface} (${s.service.mode} mode)`,
    ]),
    ...report.notes.map((note) => `  ${note}`),
    report.readsAs === undefined ? '  host: not checked (--file-only)'
      : `  host: ${interfaces} ${interfaces.includes(' and ') ? 'are' : 'is'} this host's; ip, arping and perl, and the access log${config.services.length > 1 ? 's' : ''} checked as the agent finds them (${report.readsAs})`,
    ...report.problems.map((problem) => `  WARNING ${problem.message}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** How the peer's datagrams are told from recordings, and what that asks of the hosts. */
export function describeReplayProtection(config: Config): string {
  return config.heartbeat.replayProtection === 'clock'
    ? `replay protection: clock (sent-at within ${config.heartbeat.maxClockSkewMs} ms of this host's clock: keep both hosts on NTP)`
    : 'replay protection: acknowledged (the clocks are not compared; beacons must pass both ways, and the peer should say acknowledged too)';
}

/**
 * For the config the unit runs: whether the allow-lists `baton install` wrote still allow it, as a line; else one
 * error per thing it lacks, since the agent refuses such a config (at start and on reload). Nothing when there is no
 * drop-in (the lab, a test, a hand-made unit): nothing to compare with.
 */
export async function checkSandbox(config: AnyConfig, dropIn: string): Promise<string | HostProblem[] | undefined> {
  let text: string;
  try {
    text = await readFile(dropIn, 'utf8');
  } catch {
    return undefined;
  }
  const problems = sandboxProblems(config, parseSandboxDropIn(text));
  if (problems.length === 0) return `sandbox: ${dropIn} allows what this config needs`;
  return problems.map((problem) => hostProblem('sandbox-drop-in', undefined, `${problem}: the agent refuses this config ` +
    `until ${dropIn} allows it; run \`baton install --keep-config\` to write it for this config, then ` +
    '`systemctl restart baton-agent`'));
}

/**
 * Whether a planned switch drains on this host, and why not when it cannot: the same checks as the agent makes
 * before a switch (plans/drain.ts: drainReadiness), in either coordination mode, run against this host's nftables. A host that cannot drain still
 * switches, cutting the connections open at the move; so this is a warning, not a reason to refuse the file.
 */
export async function describeDrain(config: Pick<Config, 'drain' | 'service'>, drain: DrainDriver): Promise<string | HostProblem> {
  if (!config.drain.enabled) return 'drain: off (drain.enabled: false): a planned switch cuts the connections open at the move';
  if (config.service.mode !== 'address') return 'drain: none in link mode (the giver\'s interface goes down): a planned switch cuts the connections open at the move';
  const why = await drain.unavailable().catch((error: unknown) => describeError(error))
    ?? (await ownDrainAddresses(config.service, drain)).unavailable;
  if (why !== undefined) {
    return hostProblem('drain-unavailable', undefined, `drain: this host cannot drain: ${why}; a planned switch will cut the ` +
      'connections open at the move');
  }
  const graceful = config.drain.graceful === undefined ? 'no graceful command (connections must end by themselves)'
    : `then ${[config.drain.graceful.path, ...config.drain.graceful.args].join(' ')}`;
  return `drain: on; connections get ${config.drain.gracefulAfterS} s to end, ${graceful}, ${config.drain.timeoutS} s in all`;
}
