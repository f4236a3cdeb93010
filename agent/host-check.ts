// The host check: whether this host can run the config, not only whether the file is right. The service interface
// exists, listen.address is this host's, the access log can be read by the agent as it will run and is in the
// configured format, the secrets are the agent's own, the programs the driver runs are there, and the service
// address is one the driver can take over. Every problem at once, each with its fix. Facts are gathered through the
// HostProbe port (gatherHostFacts); the judgement (checkHost) is pure.

import {dirname, posix} from 'node:path';
import {judgeSample} from './adapters/access-log-tail.js';
import {COMBINED, type LogFormat} from './access-log.js';
import {describeFsError, errorCode, shellQuote} from './config/messages.js';
import {type AnyConfig, type Config, type FileProblem, isEtcdConfig} from './config/schema.js';
import {describeOwnership, type FileAccess, type FileFacts, hiddenBy, whyUnreadable} from './config/unit-file-access.js';
import {describeError} from './errors.js';
import {canonicalIpText, isInSubnet, parseIpAddress, parseSubnet} from './net/ip-address.js';
import type {HostProbe} from './ports.js';
import type {ServiceIp} from './state-machine.js';

export type Severity = 'error' | 'warning';

/** What a problem is, for machines and for the table of messages in docs/troubleshooting.md. */
export type HostProblemKind =
  | 'interface-missing' | 'listen-address-missing' | 'ipv6-disabled' | 'ipv6-needs-perl' | 'program-missing' | 'perl-missing'
  | 'access-log-unset' | 'access-log-hidden' | 'access-log-missing' | 'access-log-unreadable' | 'access-log-format'
  | 'access-log-empty' | 'secret-owner' | 'secret-hidden' | 'secret-unreadable' | 'sandbox-drop-in' | 'drain-unavailable';

/**
 * Each kind's severity, and whether baton-agent refuses to start on it. An error is what makes a takeover or a
 * switchover fail, or the agent refuse the config: check-config exits 1 and install refuses. A warning is what
 * works, but worse than it could (slower announcements, no drain) or not yet (a log still empty). The agent refuses
 * to start only where its first takeover would fail: a standby that cannot take the IP must not look ready.
 */
export const HOST_PROBLEMS: Readonly<Record<HostProblemKind, {readonly severity: Severity; readonly blocksStart: boolean}>> = {
  'interface-missing': {severity: 'error', blocksStart: true},
  'ipv6-disabled': {severity: 'error', blocksStart: true},
  'ipv6-needs-perl': {severity: 'error', blocksStart: true},
  'program-missing': {severity: 'error', blocksStart: true},
  // Started on an etcd config, the agent would run as one of a pair: hosts the operator meant to be decided by
  // etcd would each decide alone (issue 17 wires etcd mode into the agent).
  // The bind of the beacon socket fails at start anyway, with its own message.
  'listen-address-missing': {severity: 'error', blocksStart: false},
  // A switchover is refused before its first step; failover does not read the log.
  'access-log-hidden': {severity: 'error', blocksStart: false},
  'access-log-missing': {severity: 'error', blocksStart: false},
  'access-log-unreadable': {severity: 'error', blocksStart: false},
  'access-log-format': {severity: 'error', blocksStart: false},
  // The agent has read the secret by then (or refused the file); these are about the unit and who can change it.
  'secret-owner': {severity: 'error', blocksStart: false},
  'secret-hidden': {severity: 'error', blocksStart: false},
  'secret-unreadable': {severity: 'error', blocksStart: false},
  // The agent refuses the config by itself (unit-sandbox.ts), with its own message.
  'sandbox-drop-in': {severity: 'error', blocksStart: false},
  'perl-missing': {severity: 'warning', blocksStart: false},
  'access-log-unset': {severity: 'warning', blocksStart: false},
  'access-log-empty': {severity: 'warning', blocksStart: false},
  'drain-unavailable': {severity: 'warning', blocksStart: false},
};

export interface HostProblem {
  readonly kind: HostProblemKind;
  readonly severity: Severity;
  /** The config key to change, when one is at fault. */
  readonly key: string | undefined;
  /** What is wrong, the value found, and the fix; starts with the key when there is one. */
  readonly message: string;
}

export function hostProblem(kind: HostProblemKind, key: string | undefined, message: string): HostProblem {
  return {kind, severity: HOST_PROBLEMS[kind].severity, key, message: key === undefined ? message : `${key}: ${message}`};
}

/** What the host check needs of a config; undefined where the file has a problem there (nothing to check). */
export interface HostCheckSubject {
  readonly serviceInterface: string | undefined;
  /** The service address the checks are about: of a dual-stack service the IPv6 one, since every check on it is
   *  about IPv6 (the IPv4 one needs nothing beyond what any service address needs). */
  readonly serviceIp: ServiceIp | undefined;
  readonly listenAddress: string | undefined;
  /** null: confirm.access_log is not set. */
  readonly accessLog: string | null | undefined;
  readonly logFormat: LogFormat;
  readonly secretFiles: readonly {readonly key: string; readonly path: string}[];
  /** Where the service's keys are, when not at the top of the file: `services[1]` (an etcd host's list). */
  readonly where?: string;
}

/** Every subject's host check, each problem once (the programs are the same for every service), the keys of a
 *  service of a `services` list under its place in it. */
export async function checkHostOfAll(subjects: readonly HostCheckSubject[], gather: (subject: HostCheckSubject) => Promise<HostFacts>,
  access: FileAccess): Promise<HostProblem[]> {
  const problems: HostProblem[] = [];
  for (const subject of subjects) {
    for (const found of checkHost(subject, await gather(subject), access)) {
      const problem = subject.where === undefined || found.key === undefined || !/^(service|confirm)\./.test(found.key) ? found
        : {...found, key: `${subject.where}.${found.key.replace(/^service\./, '')}`,
          message: found.message.replace(`${found.key}:`, `${subject.where}.${found.key.replace(/^service\./, '')}:`)};
      if (!problems.some((known) => known.message === problem.message)) problems.push(problem);
    }
  }
  return problems;
}

/**
 * What to check of a config: one subject for a pair; one per service for an etcd host (no beacons and no secret there:
 * each service's interface and address, the programs, its access log), its keys under `services[i].` when the file
 * has a `services` list.
 */
export function subjectsOfConfig(config: AnyConfig): HostCheckSubject[] {
  if (isEtcdConfig(config)) {
    return config.services.map(({service, confirm, place}) => ({serviceInterface: service.interface, serviceIp: checkedAddress(service.ips),
      listenAddress: undefined, accessLog: confirm.accessLog ?? null, logFormat: confirm.logFormat, secretFiles: [],
      ...place === undefined ? {} : {where: place}}));
  }
  return [subjectOfConfig(config)];
}

function subjectOfConfig(config: Config): HostCheckSubject {
  return {
    serviceInterface: config.service.interface, serviceIp: checkedAddress(config.service.ips), listenAddress: config.listen.address,
    accessLog: config.confirm.accessLog ?? null, logFormat: config.confirm.logFormat,
    secretFiles: [{key: 'secret_file', path: config.secretFile},
      ...config.acceptSecretFiles.map((path, index) => ({key: `accept_secret_files[${index}]`, path}))],
  };
}

function checkedAddress(ips: readonly ServiceIp[]): ServiceIp | undefined {
  return ips.find((ip) => ip.family === 6) ?? ips[0];
}

/** What subjectsOfDraft reads of a draft (ConfigDraft, where a key with a problem is undefined; a Config fits too). */
export type DraftView = PairDraftView | {readonly services: readonly ServiceDraftView[]};

interface ServiceDraftView {
  readonly service: {readonly interface?: string | undefined; readonly ips?: readonly ServiceIp[] | undefined};
  readonly confirm?: {readonly accessLog?: string | undefined; readonly logFormat?: LogFormat | undefined};
  /** etcd mode: `services[1]`, where the service's keys are in a `services` list. */
  readonly place?: string | undefined;
}

interface PairDraftView extends ServiceDraftView {
  readonly listen?: {readonly address?: string | undefined};
  readonly secretFile?: string | undefined;
  readonly acceptSecretFiles?: readonly string[] | undefined;
}

/** The subjects of a file with problems: the keys that could be read; those with a problem are left out. */
export function subjectsOfDraft(draft: DraftView, problems: readonly FileProblem[]): HostCheckSubject[] {
  const troubled = (key: string): boolean => problems.some((problem) => problem.key !== undefined &&
    (problem.key === key || key.startsWith(`${problem.key}.`) || problem.key.startsWith(`${key}.`) || problem.key.startsWith(`${key}[`)));
  const ofService = (view: ServiceDraftView): HostCheckSubject => {
    const at = view.place === undefined ? '' : `${view.place}.`;
    const accessLog = view.confirm?.accessLog;
    return {
      serviceInterface: view.service.interface,
      serviceIp: checkedAddress(view.service.ips ?? []),
      listenAddress: undefined,
      accessLog: troubled(`${at}confirm.access_log`) ? undefined : accessLog ?? null,
      logFormat: troubled(`${at}confirm.log_format`) || troubled(`${at}confirm.log_pattern`) ? COMBINED : view.confirm?.logFormat ?? COMBINED,
      secretFiles: [],
      ...view.place === undefined ? {} : {where: view.place},
    };
  };
  if ('services' in draft) return draft.services.map(ofService);
  return [{
    ...ofService(draft),
    listenAddress: draft.listen?.address,
    secretFiles: [
      ...(draft.secretFile === undefined ? [] : [{key: 'secret_file', path: draft.secretFile}]),
      ...(draft.acceptSecretFiles ?? []).map((path, index) => ({key: `accept_secret_files[${index}]`, path})),
    ],
  }];
}

/** What the driver runs, and what is lost without it. */
const PROGRAMS = [
  {name: 'ip', package: 'iproute2', kind: 'program-missing',
    why: 'the agent adds and removes the service address and brings links down and up with it'},
  {name: 'arping', package: 'iputils-arping', kind: 'program-missing',
    why: 'before each takeover the agent probes with it whether the service IP still answers (no split brain), ' +
      'so every takeover would fail'},
  {name: 'perl', package: 'perl-base', kind: 'perl-missing',
    why: 'the gratuitous ARP sender and the netlink address helper cannot run, so the agent falls back to arping and ' +
      'ip: each announcement and each change of the service address then starts a process (5-15 ms at idle, more ' +
      'on a busy host), which lengthens the moment nobody holds the IP; under systemd it also notifies through ' +
      'systemd-notify, which needs NotifyAccess=all'},
] as const;
type ProgramName = (typeof PROGRAMS)[number]['name'];

/** Everything checkHost judges, read once. */
export interface HostFacts {
  readonly interfaces: ReadonlyMap<string, readonly string[]>;
  readonly programs: Readonly<Record<ProgramName, string | undefined>>;
  readonly path: string;
  /** stat of the access log, the secrets and every directory above them. */
  readonly files: ReadonlyMap<string, FileFacts | Error>;
  /** The access log's last lines, read by this process; undefined when not read (not set, or not a file). */
  readonly accessLogLines: readonly string[] | Error | undefined;
  /** Whether IPv6 is off on the service interface; undefined when not asked (an IPv4 service address). */
  readonly ipv6Disabled: boolean | undefined;
}

/** Reads what checkHost needs, through the probe. Never throws for what it finds: a failure is a fact too. */
export async function gatherHostFacts(subject: HostCheckSubject, probe: HostProbe): Promise<HostFacts> {
  const paths = new Set<string>();
  for (const file of [subject.accessLog, ...subject.secretFiles.map((secret) => secret.path)]) {
    if (typeof file === 'string') for (const path of chainOf(file)) paths.add(path);
  }
  const [interfaces, found, stats] = await Promise.all([
    probe.interfaces(),
    Promise.all(PROGRAMS.map(async ({name}) => [name, await probe.findProgram(name)] as const)),
    Promise.all([...paths].map(async (path) => [path, await probe.stat(path)] as const)),
  ]);
  const files = new Map(stats);
  const log = typeof subject.accessLog === 'string' ? files.get(posix.normalize(subject.accessLog)) : undefined;
  const accessLogLines = typeof subject.accessLog === 'string' && log !== undefined && !(log instanceof Error) && log.kind === 'file'
    ? await probe.lastLines(subject.accessLog) : undefined;
  const ipv6Disabled = subject.serviceIp?.family === 6 && subject.serviceInterface !== undefined &&
    interfaces.has(subject.serviceInterface) ? await probe.ipv6Disabled(subject.serviceInterface) : undefined;
  return {interfaces, programs: Object.fromEntries(found) as Record<ProgramName, string | undefined>, path: probe.path,
    files, accessLogLines, ipv6Disabled};
}

/** Every problem of the host for the subject, errors first. Pure. */
export function checkHost(subject: HostCheckSubject, facts: HostFacts, access: FileAccess): HostProblem[] {
  const problems: HostProblem[] = [];
  if (subject.serviceIp?.family === 6 && subject.serviceInterface !== undefined && facts.ipv6Disabled === true) {
    problems.push(hostProblem('ipv6-disabled', 'service.address', `${subject.serviceIp.cidr} is an IPv6 address, and ` +
      `IPv6 is disabled on ${subject.serviceInterface} (net.ipv6.conf.${subject.serviceInterface}.disable_ipv6 = 1, or ` +
      'no IPv6 in the kernel): every takeover would fail at adding it; enable it (`sysctl -w ' +
      `net.ipv6.conf.${subject.serviceInterface}.disable_ipv6=0\`, and in /etc/sysctl.d) or use an IPv4 service address`));
  }
  const names = [...facts.interfaces.keys()].toSorted();
  if (subject.serviceInterface !== undefined && !facts.interfaces.has(subject.serviceInterface)) {
    problems.push(hostProblem('interface-missing', 'service.interface', `this host has no interface ` +
      `${subject.serviceInterface} (it has ${names.join(', ') || 'none'}): every takeover would fail at its first ` +
      'step; name this host\'s own interface (`ip -br link`; the names often differ between the two hosts)'));
  }
  if (subject.listenAddress !== undefined && !isHostAddress(subject.listenAddress, facts.interfaces)) {
    const own = [...facts.interfaces.values()].flat().filter((address) => !address.startsWith('fe80:'));
    const zone = subject.listenAddress.split('%')[1];
    const where = zone === undefined ? `this host (it has ${own.join(', ') || 'none'})`
      : `${zone} (it has ${(facts.interfaces.get(zone) ?? []).join(', ') || 'none'}${facts.interfaces.has(zone) ? '' : ': no such interface'})`;
    problems.push(hostProblem('listen-address-missing', 'listen.address', `${subject.listenAddress} is not an ` +
      `address of ${where}: the agent cannot send or receive beacons on it; ` +
      `set this host's own beacon address, or add it to an interface (\`${addCommandFor(subject.listenAddress)}\`)`));
  }
  for (const program of PROGRAMS) {
    if (facts.programs[program.name] !== undefined) continue;
    if (program.name === 'perl' && subject.serviceIp?.family === 6) {
      problems.push(hostProblem('ipv6-needs-perl', undefined, `perl (perl-base) is not on PATH (${facts.path}): ` +
        `for the IPv6 service address ${subject.serviceIp.cidr} only the agent's packet helper, a perl program, sends ` +
        'the duplicate-address probe and the neighbour advertisements (arping is IPv4 only), so every takeover would ' +
        'fail; install it: `apt-get install perl-base`'));
      continue;
    }
    problems.push(hostProblem(program.kind, undefined, `${program.name} (${program.package}) is not on PATH ` +
      `(${facts.path}): ${program.why}; install it: \`apt-get install ${program.package}\``));
  }
  problems.push(...checkAccessLog(subject, facts, access));
  for (const {key, path} of subject.secretFiles) problems.push(...checkSecret(key, path, facts, access));
  // Errors first, each group in the order found.
  return problems.toSorted((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}

function checkAccessLog(subject: HostCheckSubject, facts: HostFacts, access: FileAccess): HostProblem[] {
  const key = 'confirm.access_log';
  const file = subject.accessLog;
  if (file === undefined) return [];
  if (file === null) {
    return [hostProblem('access-log-unset', key, 'not set: `baton switchover` refuses until it names this host\'s ' +
      'web-server access log (failover does not need it)')];
  }
  const hidden = hiddenBy(access, posix.normalize(file));
  if (hidden !== undefined) {
    return [hostProblem('access-log-hidden', key, `${file} is hidden from the agent by ${hidden.by} (${access.described}): ` +
      'a switchover would be refused before its first step; have the web server write its log where the agent ' +
      'sees it, such as /var/log/nginx/access.log')];
  }
  const chain = readChain(file, facts);
  if (chain instanceof Error) {
    const missing = ['ENOENT', 'ENOTDIR'].includes(errorCode(chain) ?? '');
    return [hostProblem(missing ? 'access-log-missing' : 'access-log-unreadable', key, `${file} ` +
      `${missing ? 'does not exist' : `cannot be read: ${describeFsError(chain)}`}: a switchover would be refused ` +
      'before its first step; set it to the log your web server writes (nginx: /var/log/nginx/access.log, Apache on ' +
      'Debian: /var/log/apache2/access.log)')];
  }
  const target = chain.at(-1)?.facts;
  if (target?.kind !== 'file') {
    return [hostProblem('access-log-unreadable', key, `${file} is not a regular file: set it to the log your web ` +
      'server writes (nginx: /var/log/nginx/access.log, Apache on Debian: /var/log/apache2/access.log)')];
  }
  const why = whyUnreadable(access, chain);
  if (why !== undefined) {
    return [hostProblem('access-log-unreadable', key, `the agent (${access.described}) cannot read ${file}: ${why}; ` +
      'a switchover would be refused before its first step. Let group adm read it (Debian\'s nginx and Apache logs ' +
      `are www-data:adm 0640: \`chgrp adm ${shellQuote(file)} && chmod g+r ${shellQuote(file)}\`, and the same in ` +
      'its logrotate `create` line), or add its group to the unit (`systemctl edit baton-agent`: SupplementaryGroups=)')];
  }
  const lines = facts.accessLogLines;
  if (lines instanceof Error) {
    return [hostProblem('access-log-unreadable', key, `${file} cannot be read: ${describeFsError(lines)}; ` +
      'a switchover would be refused before its first step; let the agent read it (docs/troubleshooting.md, "Permissions")')];
  }
  if (lines === undefined) return [];
  if (lines.length === 0) {
    return [hostProblem('access-log-empty', key, `${file} is empty, so its format cannot be checked yet: run ` +
      '`baton check-config` again once the web server has logged a request')];
  }
  try {
    judgeSample(file, subject.logFormat, lines);
  } catch (error) {
    return [hostProblem('access-log-format', 'confirm.log_format', describeError(error))];
  }
  return [];
}

function checkSecret(key: string, file: string, facts: HostFacts, access: FileAccess): HostProblem[] {
  const hidden = hiddenBy(access, posix.normalize(file));
  if (hidden !== undefined) {
    return [hostProblem('secret-hidden', key, `${file} is hidden from the agent by ${hidden.by} (${access.described}): ` +
      'it would not start; keep the secret in /etc/baton')];
  }
  const chain = readChain(file, facts);
  // Missing or unreadable: the file check has said so already.
  if (chain instanceof Error) return [];
  const target = chain.at(-1)?.facts;
  if (target === undefined) return [];
  const why = whyUnreadable(access, chain);
  if (target.uid !== access.uid) {
    const owner = access.uid === 0 ? 'root' : `uid ${access.uid}`;
    return [hostProblem('secret-owner', key, `${file} is ${describeOwnership(target)}, not owned by ${owner}, the user ` +
      `the agent runs as: ${why === undefined ? '' : `the agent (${access.described}) cannot read it, and `}` +
      `whoever owns it can replace the key; run \`chown ${owner === 'root' ? 'root:root' : access.uid} ${shellQuote(file)}\``)];
  }
  if (why !== undefined) {
    return [hostProblem('secret-unreadable', key, `the agent (${access.described}) cannot read ${file}: ${why}; ` +
      'keep the secret in /etc/baton, root\'s own directory')];
  }
  return [];
}

/** The facts of every directory from / down to `file`, then of the file; the first failure to stat instead. */
function readChain(file: string, facts: HostFacts): {path: string; facts: FileFacts}[] | Error {
  const chain: {path: string; facts: FileFacts}[] = [];
  for (const path of chainOf(file)) {
    const found = facts.files.get(path);
    if (found === undefined) return Object.assign(new Error(`not looked at: ${path}`), {code: 'ENOENT'});
    if (found instanceof Error) return found;
    chain.push({path, facts: found});
  }
  return chain;
}

/** `/`, `/var`, `/var/log`, `/var/log/access.log` for /var/log/access.log. */
function chainOf(file: string): string[] {
  const paths = [posix.normalize(file)];
  while (paths[0] !== '/') paths.unshift(dirname(paths[0] ?? '/'));
  return paths;
}

// 127.0.0.1/8 on lo makes the kernel answer for the whole /8 (a local route), so agents on one machine may listen on
// 127.0.0.2 and 127.0.0.3 although only 127.0.0.1 is listed.
const LOOPBACK = [parseSubnet('127.0.0.0', 8), parseSubnet('::1', 128)];

/** Whether the host has `address`; one with a zone (fe80::11%eth1) on the interface the zone names. */
function isHostAddress(address: string, interfaces: ReadonlyMap<string, readonly string[]>): boolean {
  const [bare = address, zone] = address.split('%');
  const parsed = parseIpAddress(bare);
  if (parsed === undefined) return false;
  if (LOOPBACK.some((subnet) => subnet !== undefined && isInSubnet(parsed, subnet))) return true;
  const wanted = canonicalIpText(bare);
  const candidates = zone === undefined ? [...interfaces.values()].flat() : interfaces.get(zone) ?? [];
  return candidates.some((own) => canonicalIpText(own.split('%')[0] ?? own) === wanted);
}

/** The `ip address add` that would give this host `address`, for the message that says it lacks it. */
function addCommandFor(address: string): string {
  const [bare = address, zone] = address.split('%');
  return `ip address add ${bare}/${bare.includes(':') ? 64 : 24} dev ${zone ?? 'eth0'}`;
}
