// Preflight of a planned switch: compares both hosts' software base and the target's headroom (HostInfo). Pure.
//
// Why: both hosts must run an identical software base. A backup with an older MySQL once ran new code "fine"
// while a feature it used silently misbehaved; nothing failed loudly. So every difference is reported as drift,
// including a program installed on one host only, and `--strict` refuses the switch while any remains.
// Load and memory of the host about to take over are warnings only: they change by the minute, the software
// base does not.

import {BatonError} from './errors.js';
import type {HostInfo} from './ports.js';

export interface DriftItem {
  /** 'os', 'kernel', 'arch' or a program name from HostInfo.versions. */
  readonly item: string;
  /** undefined: not installed on that host. */
  readonly self: string | undefined;
  readonly peer: string | undefined;
}

export interface PreflightReport {
  readonly drift: readonly DriftItem[];
  /** About the target only; never affect `ok`. */
  readonly warnings: readonly string[];
  /** No drift. */
  readonly ok: boolean;
  /** The host about to take the service over, with the figures the warnings were judged on. */
  readonly target: {
    readonly side: 'self' | 'peer';
    readonly hostname: string;
    readonly loadPerCore: number;
    readonly memory: HostInfo['memory'];
  };
}

// The target adds the whole service's load to its own. Above 0.8 runnable tasks per core, requests already
// queue for a CPU now and then; with the service on top it would queue all the time.
export const MAX_TARGET_LOAD_PER_CORE = 0.8;
// Below a tenth of RAM available the kernel is already evicting page cache; the web server's and database's
// working sets that arrive with the traffic push it into swap or the OOM killer.
export const MIN_TARGET_AVAILABLE_FRACTION = 0.1;
// A floor for small hosts, where 10 % is too little: 10 % of 1 GiB (~100 MiB) cannot absorb a few new worker
// processes and their caches. 256 MiB is roughly what nginx plus a small application pool need to warm up.
export const MIN_TARGET_AVAILABLE_BYTES = 256 * 1024 * 1024;

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Compares `self` with `peer`; `target` names the one about to hold the service IP (its load and memory are judged). */
export function comparePreflight(self: HostInfo, peer: HostInfo, target: 'self' | 'peer'): PreflightReport {
  const drift: DriftItem[] = [];
  const check = (item: string, a: string | undefined, b: string | undefined): void => {
    if (a !== b) drift.push({item, self: a, peer: b});
  };
  check('os', osName(self), osName(peer));
  check('kernel', self.os.kernel, peer.os.kernel);
  check('arch', self.os.arch, peer.os.arch);
  const programs = [...new Set([...Object.keys(self.versions), ...Object.keys(peer.versions)])].sort();
  for (const program of programs) check(program, versionOf(self, program), versionOf(peer, program));

  const host = target === 'self' ? self : peer;
  const warnings: string[] = [];
  if (host.loadPerCore > MAX_TARGET_LOAD_PER_CORE) {
    warnings.push(`load ${host.loadPerCore.toFixed(2)} per core is above ${MAX_TARGET_LOAD_PER_CORE}: `
      + 'the target is busy before it takes the service over');
  }
  const {totalBytes, availableBytes} = host.memory;
  if (availableBytes / totalBytes < MIN_TARGET_AVAILABLE_FRACTION || availableBytes < MIN_TARGET_AVAILABLE_BYTES) {
    warnings.push(`only ${formatBytes(availableBytes)} of ${formatBytes(totalBytes)} memory available `
      + `(needs at least ${MIN_TARGET_AVAILABLE_FRACTION * 100} % and ${formatBytes(MIN_TARGET_AVAILABLE_BYTES)}): `
      + 'the target may swap once the service arrives');
  }
  return {
    drift, warnings, ok: drift.length === 0,
    target: {side: target, hostname: host.hostname, loadPerCore: host.loadPerCore, memory: host.memory},
  };
}

/**
 * The report as text for the CLI. `selfName`/`peerName` label the two hosts (roles or host names), e.g.
 *
 *   preflight: software base differs on 2 items
 *     kernel  primary 6.1.0-18  backup 6.1.0-21
 *     mysql   primary 8.0.36    backup 8.0.32
 *     target backup: load 0.12 per core, 1.9 GiB of 3.8 GiB available
 */
export function formatPreflight(report: PreflightReport, selfName: string, peerName: string): string {
  const lines: string[] = [];
  if (report.drift.length === 0) {
    lines.push('preflight: software base identical');
  } else {
    const count = report.drift.length;
    lines.push(`preflight: software base differs on ${count} ${count === 1 ? 'item' : 'items'}`);
    const itemWidth = Math.max(...report.drift.map((d) => d.item.length));
    const selfCells = report.drift.map((d) => `${selfName} ${shown(d.self)}`);
    const selfWidth = Math.max(...selfCells.map((cell) => cell.length));
    report.drift.forEach((d, index) => {
      lines.push(`  ${d.item.padEnd(itemWidth)}  ${(selfCells[index] ?? '').padEnd(selfWidth)}  ${peerName} ${shown(d.peer)}`);
    });
  }
  const {side, loadPerCore, memory} = report.target;
  const targetName = side === 'self' ? selfName : peerName;
  lines.push(`  target ${targetName}: load ${loadPerCore.toFixed(2)} per core, `
    + `${formatBytes(memory.availableBytes)} of ${formatBytes(memory.totalBytes)} available`);
  for (const warning of report.warnings) lines.push(`  warning: ${targetName}: ${warning}`);
  return lines.join('\n');
}

/** Throws PREFLIGHT_REFUSED listing every drift item when `strict` and the software bases differ; else returns. */
export function assertPreflight(report: PreflightReport, strict: boolean): void {
  if (!strict || report.drift.length === 0) return;
  const items = report.drift.map((d) => `${d.item} (this host ${shown(d.self)}, peer ${shown(d.peer)})`);
  throw new BatonError('PREFLIGHT_REFUSED',
    `software base differs from the peer on ${items.length} ${items.length === 1 ? 'item' : 'items'}: `
    + `${items.join(', ')}. Bring both hosts to the same versions, or switch without --strict to accept the drift.`);
}

function osName(info: HostInfo): string {
  return `${info.os.distro} ${info.os.release}`.trim();
}

// Object.hasOwn: a program named like an Object.prototype member ('constructor') must not read the prototype.
function versionOf(info: HostInfo, program: string): string | undefined {
  return Object.hasOwn(info.versions, program) ? info.versions[program] : undefined;
}

function shown(value: string | undefined): string {
  return value ?? 'not installed';
}

function formatBytes(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(1)} GiB` : `${Math.round(bytes / MIB)} MiB`;
}

// ---- HostInfo on the wire ----------------------------------------------------------------------------------

// Version strings and OS fields are a few dozen characters; 128 leaves room and bounds what a peer can make us
// print and keep.
export const MAX_HOST_INFO_TEXT = 128;
// DNS limit for a full host name.
export const MAX_HOST_INFO_HOSTNAME = 253;
// The adapter asks for about ten programs; 32 leaves room for more without letting a peer send thousands.
export const MAX_HOST_INFO_VERSIONS = 32;

const HOST_INFO_KEYS = ['hostname', 'os', 'versions', 'loadPerCore', 'memory'];
const OS_KEYS = ['distro', 'release', 'kernel', 'arch'];
const MEMORY_KEYS = ['totalBytes', 'availableBytes'];
// Lower-case program names as systeminformation spells them; a leading letter or digit also keeps '__proto__' out.
const PROGRAM_PATTERN = /^[a-z0-9][a-z0-9._+-]{0,31}$/;
// These strings reach the operator's terminal: no control characters (escape sequences) and no bidi overrides.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, 'gu');
// A load average per core in the thousands means a broken host or a forged message, not a measurement.
const MAX_LOAD_PER_CORE = 10_000;

/**
 * A fresh, JSON-ready copy of `info` with a fixed field order and sorted programs, for a peer message.
 * Throws RangeError when the peer's parseHostInfo would refuse it, so the sender learns why, not the receiver.
 */
export function encodeHostInfo(info: HostInfo): HostInfo {
  const copy: HostInfo = {
    hostname: info.hostname,
    os: {distro: info.os.distro, release: info.os.release, kernel: info.os.kernel, arch: info.os.arch},
    versions: Object.fromEntries(Object.entries(info.versions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    loadPerCore: info.loadPerCore,
    memory: {totalBytes: info.memory.totalBytes, availableBytes: info.memory.availableBytes},
  };
  const checked = parseHostInfo(copy);
  if (typeof checked === 'string') throw new RangeError(`host info would be refused by the peer: ${checked}`);
  return copy;
}

/** A HostInfo received from the peer (already JSON-parsed), or what is wrong with it. Strict; never throws. */
export function parseHostInfo(value: unknown): HostInfo | string {
  if (!isRecord(value)) return 'host info: expected a JSON object';
  const extra = unknownKey(value, HOST_INFO_KEYS);
  if (extra !== undefined) return `host info: unknown field '${extra}'`;
  const {hostname, os, versions, loadPerCore, memory} = value;

  if (!isText(hostname, 1, MAX_HOST_INFO_HOSTNAME)) return `field hostname: ${textExpected(1, MAX_HOST_INFO_HOSTNAME)}`;

  if (!isRecord(os)) return 'field os: expected {distro, release, kernel, arch}';
  const osExtra = unknownKey(os, OS_KEYS);
  if (osExtra !== undefined) return `field os: unknown field '${osExtra}'`;
  // Empty is allowed: rolling distributions have no release, and an unknown field is still comparable.
  for (const key of OS_KEYS) if (!isText(os[key], 0, MAX_HOST_INFO_TEXT)) return `field os.${key}: ${textExpected(0, MAX_HOST_INFO_TEXT)}`;

  if (!isRecord(versions)) return 'field versions: expected an object of program name to version';
  const entries = Object.entries(versions);
  if (entries.length > MAX_HOST_INFO_VERSIONS) return `field versions: ${entries.length} programs, at most ${MAX_HOST_INFO_VERSIONS}`;
  for (const [program, version] of entries) {
    if (!PROGRAM_PATTERN.test(program)) return `field versions: program name '${printable(program)}' is not a lower-case name of 1..32 characters`;
    // Empty is not "not installed" on the wire: an absent program is an absent key.
    if (!isText(version, 1, MAX_HOST_INFO_TEXT)) return `field versions.${program}: ${textExpected(1, MAX_HOST_INFO_TEXT)}`;
  }

  if (typeof loadPerCore !== 'number' || !Number.isFinite(loadPerCore) || loadPerCore < 0 || loadPerCore > MAX_LOAD_PER_CORE) {
    return `field loadPerCore: expected a number from 0 to ${MAX_LOAD_PER_CORE}`;
  }

  if (!isRecord(memory)) return 'field memory: expected {totalBytes, availableBytes}';
  const memoryExtra = unknownKey(memory, MEMORY_KEYS);
  if (memoryExtra !== undefined) return `field memory: unknown field '${memoryExtra}'`;
  const {totalBytes, availableBytes} = memory;
  if (!isCount(totalBytes) || totalBytes === 0) return 'field memory.totalBytes: expected a positive integer';
  if (!isCount(availableBytes)) return 'field memory.availableBytes: expected a non-negative integer';
  if (availableBytes > totalBytes) return `field memory.availableBytes: ${availableBytes} is more than totalBytes ${totalBytes}`;

  return {
    hostname,
    os: {distro: os['distro'] as string, release: os['release'] as string, kernel: os['kernel'] as string, arch: os['arch'] as string},
    versions: Object.fromEntries(entries as Array<[string, string]>),
    loadPerCore,
    memory: {totalBytes, availableBytes},
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKey(record: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  const extra = Object.keys(record).find((key) => !allowed.includes(key));
  return extra === undefined ? undefined : printable(extra);
}

function isText(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.length >= min && value.length <= max && !UNPRINTABLE.test(value);
}

function textExpected(min: number, max: number): string {
  return `expected a string of ${min}..${max} printable characters`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

// A rejected name is echoed in the reason, which is logged: keep it short and harmless.
function printable(text: string): string {
  return text.slice(0, 32).replace(UNPRINTABLE_ALL, '?');
}
