// Control socket protocol between `baton` and the local agent: request/reply types and the JSON-lines codec.
// The only agent/ file that cli/ imports. One request per connection; the agent answers with one line
// (progress lines first, for a switch), then closes. A second request on the same connection is not served: it is
// answered at once with a BAD_REQUEST error carrying its id, and the first is answered as usual.

import {BatonError, type ErrorCode} from './errors.js';
import {count, flag, listOf, object, oneOf, optional, tableOf, text, type Check} from './json-shape.js';
import type {RejectReason} from './peer/beacon-codec.js';
import {MAX_DROP_S} from './rehearsal.js';
import {AGENT_STATE_NAMES, type AgentStateName, type Health, type Role} from './state-machine.js';
import {VERSION} from './version.js';

/**
 * The control protocol's version: every request of this baton and every reply of this agent carry it. Version 1
 * is baton 0.1.0's, which carried none. Bumped whenever one side would misread the other's messages: a field
 * removed, renamed or retyped, or a field added that the CLI needs (as 2 added the agents' versions to status).
 * An agent serves a request that carries no version (baton 0.1.0's CLI) as before, and refuses one that names
 * another version before doing anything; the CLI reads a reply only when it names this version.
 */
export const CONTROL_PROTOCOL = 2;
/** What an agent that sends no version speaks. */
export const UNVERSIONED_PROTOCOL = 1;

// A request is a few hundred bytes; anything far larger is a client bug or an attack and is refused.
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface SwitchoverOptions {
  readonly dryRun: boolean;
  readonly strict: boolean;
  /** Overrides confirm.min_requests of the host taking over. */
  readonly minRequests: number | undefined;
  /** Overrides confirm.timeout_s. */
  readonly confirmTimeoutS: number | undefined;
  /** Rehearsal aid: hold the switch this long after this step, e.g. to inspect or inject a failure. */
  readonly pauseAfter: {readonly step: string; readonly seconds: number} | undefined;
  /** etcd mode: the host to move the service to (`--to HOST`). A pair has one other host and takes none. */
  readonly to?: string;
  /** etcd mode: which of the host's services to move (`--service NAME`); needed only when it has several. */
  readonly service?: string;
}

export type ControlRequest = (
  | {readonly id: string; readonly type: 'status'}
  | {readonly id: string; readonly type: 'switchover'; readonly options: SwitchoverOptions}
  | {readonly id: string; readonly type: 'resume'; readonly peer: boolean}
  /** Rehearsal: the host holding the IP drops its service link for `seconds`, as a dying host would. */
  | {readonly id: string; readonly type: 'fail-active'; readonly seconds: number}
  /** Rehearsal, before any step: whether this host and the peer enable the rehearsal aids (the peer is asked). */
  | {readonly id: string; readonly type: 'rehearsal'}
  /** etcd mode: `host` stops taking the service, and gives it to another host if it holds it. */
  | {readonly id: string; readonly type: 'drain'; readonly host: string}
) & {
  /** The client's CONTROL_PROTOCOL (the CLI adds it when it sends); absent from baton 0.1.0's CLI. */
  readonly protocol?: number;
};

export interface HostLabel {
  /** A pair's role, or `host` for a host in etcd mode (which has none). */
  readonly role: Role | 'host';
  readonly host: string;
}

/** A host in words: "backup (web-2)". */
export function hostText(host: HostLabel): string {
  return host.role === 'host' ? `host ${host.host}` : `${host.role} (${host.host})`;
}

/** Streamed to the CLI while a switch runs, one line each. */
export type SwitchProgress =
  | {readonly kind: 'start'; readonly switchId: string; readonly giver: HostLabel; readonly taker: HostLabel; readonly mode: string}
  | {readonly kind: 'preflight'; readonly text: string}
  | {readonly kind: 'step'; readonly step: string; readonly host: HostLabel; readonly action: 'apply' | 'undo' | 'check';
      readonly status: 'ok' | 'failed'; readonly elapsedMs: number; readonly detail: string | undefined}
  | {readonly kind: 'waiting'; readonly step: string; readonly host: HostLabel; readonly count: number; readonly needed: number; readonly elapsedMs: number}
  | {readonly kind: 'note'; readonly text: string};

export interface DryRunStep {
  readonly step: string;
  readonly host: HostLabel;
  readonly does: string;
  readonly commands: readonly string[];
}

export interface SwitchResult {
  readonly switchId: string;
  readonly outcome: 'done' | 'rolled-back' | 'dry-run';
  readonly giver: HostLabel;
  readonly taker: HostLabel;
  /** Why it rolled back. */
  readonly reason: string | undefined;
  readonly failedStep: string | undefined;
  readonly totalMs: number;
  readonly confirmedRequests: number | undefined;
  /** After a rollback: requests seen on the old host once it served again, or why that could not be checked. */
  readonly rollbackCheck: string | undefined;
  readonly plan: readonly DryRunStep[] | undefined;
  /** The drain on the giver, when the switch had one and got that far. */
  readonly drain?: DrainSummary | undefined;
}

/** How the giver's connections ended after a switch. */
export interface DrainSummary {
  /** Connections still open on the giver when the drain ended: 0, or the ones cut at the drain timeout;
   *  undefined when they could not be counted (the giver went silent). */
  readonly left: number | undefined;
  readonly ms: number;
  /** The graceful command's fate: undefined when none is configured. */
  readonly graceful: string | undefined;
  /** What went wrong after the taker was confirmed (the switch stands; the host may need a look). */
  readonly problems: readonly string[];
}

/** `baton drain HOST`: the host is drained (it does not campaign or take a switch); the switch that moved the service
 *  away from it, when it held the service. */
export interface DrainResult {
  readonly host: string;
  /** What was done, in words. */
  readonly text: string;
  /** The switch that moved the service (etcd mode: the last of the services' switches), if one ran. */
  readonly moved: SwitchResult | undefined;
  /** etcd mode: the services the drained host still holds because no other host took them. */
  readonly stuck?: readonly string[];
}

export interface ResumeResult {
  readonly state: string;
  readonly reason: string;
}

export interface FailResult {
  /** The host whose link went down. */
  readonly host: HostLabel;
  readonly seconds: number;
}

/** Whether each host's configuration enables the rehearsal aids (rehearsal.enabled), each by its own word. */
export interface RehearsalAids {
  readonly self: {readonly host: HostLabel; readonly enabled: boolean};
  readonly peer: {readonly host: HostLabel; readonly enabled: boolean};
}

export type ControlResult = StatusReport | EtcdStatusReport | DrainResult | SwitchResult | ResumeResult | FailResult | RehearsalAids;

export type ControlReply = (
  | {readonly id: string; readonly type: 'progress'; readonly progress: SwitchProgress}
  | {readonly id: string; readonly type: 'result'; readonly ok: true; readonly result: ControlResult}
  | {readonly id: string; readonly type: 'result'; readonly ok: false; readonly error: {readonly code: ErrorCode; readonly message: string}}
) & {
  /** The agent's CONTROL_PROTOCOL. */
  readonly protocol: number;
};

export interface StatusReport {
  readonly pair: string;
  readonly self: {
    readonly role: Role;
    readonly host: string;
    readonly pid: number;
    readonly bootId: string;
    /** The baton version this agent runs. */
    readonly version: string;
    readonly state: AgentStateName;
    readonly reason: string;
    /** ms since the state was entered */
    readonly stateForMs: number;
    readonly epoch: number;
    /** Observed on the interface while answering this request, not believed: every service address (dual stack: both). */
    readonly holdsIp: boolean | undefined;
    /** The service addresses (as in service.addresses) observed on the interface then: fewer than all is a host that
     *  holds part of the service. Undefined from an agent built before this field. */
    readonly held: readonly string[] | undefined;
    readonly health: Health;
    readonly healthChecks: readonly {readonly name: string; readonly ok: boolean; readonly detail: string}[];
    readonly uptimeMs: number;
    readonly listen: string;
    /** rehearsal.enabled in this agent's configuration: whether it accepts the rehearsal aids. */
    readonly rehearsal: boolean;
  };
  /** address: the first of addresses, kept for scripts that read it; addresses: every one (dual stack: both). */
  readonly service: {readonly address: string; readonly addresses: readonly string[]; readonly interface: string; readonly mode: string};
  readonly peer: {
    readonly role: Role;
    readonly address: string;
    readonly alive: boolean;
    /** undefined until the first valid beacon */
    readonly lastSeenMsAgo: number | undefined;
    readonly host: string | undefined;
    readonly bootId: string | undefined;
    /** The baton version the peer's agent said it runs (the peer request `version`): undefined until it has
     *  answered, and from an agent of baton 0.1.0, which does not know the question. */
    readonly version: string | undefined;
    readonly state: AgentStateName | undefined;
    /** As the peer observed it on its own interface and reported it in its last beacon. */
    readonly holdsIp: boolean | undefined;
    readonly epoch: number | undefined;
    readonly health: Health | undefined;
    readonly rttMs: {readonly last: number; readonly average: number} | undefined;
    /** 0..1 over the last 100 beacons */
    readonly loss: number | undefined;
    /** Datagrams from the peer's address rejected since its last valid one (e.g. clocks apart): the latest's reason. */
    readonly rejectedSinceValid: {readonly count: number; readonly reason: RejectReason; readonly detail: string} | undefined;
  };
  /** The last planned switch this host took part in, or recovered from after a restart. */
  readonly lastSwitch: {readonly id: string; readonly outcome: string; readonly reason: string; readonly endedMsAgo: number} | undefined;
  /** The switch running now, if any. */
  readonly switching: {readonly id: string; readonly side: string} | undefined;
  readonly beacons: {
    readonly sent: number;
    readonly accepted: number;
    readonly rejected: Readonly<Record<RejectReason, number>>;
    /** Datagrams dropped before they were judged because the agent fell behind (a flood); counted, not logged. */
    readonly droppedUnread: number;
  };
  readonly timers: {
    /** Event-loop lateness: how late the agent ran compared with when it should have. */
    readonly loopLagMs: {readonly p99: number; readonly max: number};
    readonly lateBeyondInterval: number;
    readonly intervalMs: number;
    readonly deadAfterMs: number;
  };
  /** The control socket's refusals since the agent started; filled in by the control server, which counts them. */
  readonly control: ControlStats;
}

/** What the agent itself reports; the control server adds its own counts (`control`) when it answers. */
export type AgentStatus = Omit<StatusReport, 'control'>;

/** Where a host in etcd mode is in its claim on the service (agent/coordination/service-claim.ts). */
export type ClaimPhase = 'starting' | 'standing-by' | 'campaigning' | 'holding' | 'stopped';
export const CLAIM_PHASES: readonly ClaimPhase[] = ['starting', 'standing-by', 'campaigning', 'holding', 'stopped'];

/** Another host of an etcd-mode service, as its presence key and the service's key said at this host's last look. */
export interface EtcdPeer {
  /** Its name (coordination.hosts). */
  readonly host: string;
  /** Whether its presence key is there: its agent runs and reaches etcd (undefined: the keys could not be read). */
  readonly present: boolean | undefined;
  /** What its presence key says; undefined when absent. */
  readonly health: Health | undefined;
  readonly version: string | undefined;
  /** Since when (wall clock, ISO 8601) its health has been what it is. */
  readonly since: string | undefined;
  /** The services whose keys name it, as this host last read them. */
  readonly holds: readonly string[];
}

/** One service of a host in etcd mode, in `baton status`: its address as observed here, and its claim. */
export interface EtcdServiceStatus {
  /** Its name, which names its key. */
  readonly name: string;
  readonly service: {readonly address: string; readonly addresses: readonly string[]; readonly interface: string; readonly mode: string};
  /** Observed on the interface while answering: every address of the service is there (undefined: could not tell). */
  readonly holdsIp: boolean | undefined;
  /** The service's addresses found there. */
  readonly held: readonly string[];
  readonly claim: {
    readonly phase: ClaimPhase;
    /** While standing by: the host the key names (undefined: absent or unknown); while holding: this host. */
    readonly holder: string | undefined;
    /** The key's revision: the epoch of the holder's term. */
    readonly epoch: number | undefined;
    /** Why the key could not be read, while it cannot. */
    readonly error: string | undefined;
    /** While holding: how long until the address goes unless a renewal succeeds. */
    readonly deadlineInMs: number | undefined;
    /** The planned switch this host takes part in now, if any: the address may be on neither host for a few ms. */
    readonly switching?: string | undefined;
    readonly since: {readonly phaseForMs: number};
  };
  /** The hosts that may hold it, in its order of preference. */
  readonly hosts: readonly string[];
  readonly key: string;
}

/** `baton status` of a host in etcd mode: no peer and no beacons; each service's key in etcd says who holds it. */
export interface EtcdStatusReport {
  readonly coordination: 'etcd';
  readonly self: {
    /** This host's name in etcd (coordination.host), and the machine's hostname. */
    readonly host: string;
    readonly hostname: string;
    readonly pid: number;
    readonly version: string;
    readonly uptimeMs: number;
    readonly health: Health;
    readonly healthChecks: readonly {readonly name: string; readonly ok: boolean | undefined; readonly detail: string}[];
    /** `baton drain` said this host must not take any service, until `baton resume` here. */
    readonly drained?: boolean;
  };
  /** The services of this host's file, in its order. */
  readonly services: readonly EtcdServiceStatus[];
  /** Every host of coordination.hosts, in its order. */
  readonly hosts: readonly string[];
  /** The other hosts (every one but this), as this host last read their presence keys and the services' keys. */
  readonly peers: readonly EtcdPeer[];
  /** How long ago that read was (undefined: never yet). */
  readonly peersReadMsAgo: number | undefined;
  /** Whether this host's watches on etcd are open (changes reach it at once) rather than broken (it polls). */
  readonly watching: boolean;
  readonly etcd: {readonly endpoints: readonly string[]; readonly prefix: string; readonly leaseTtlS: number; readonly renewMarginMs: number;
    readonly onEtcdLoss: string};
  /** The control socket's refusals since the agent started; filled in by the control server. */
  readonly control?: ControlStats;
}

/** What an agent in either mode reports. */
export type AnyAgentStatus = AgentStatus | Omit<EtcdStatusReport, 'control'>;

/** Whether a status is an etcd-mode host's. */
export function isEtcdStatus(status: object): status is EtcdStatusReport {
  return (status as {coordination?: unknown}).coordination === 'etcd';
}

/** Control connections turned away or cut short since start, by reason. */
export interface ControlStats {
  /** Refused at accept: the server's limit of connections at once was reached. */
  readonly refusedBusy: number;
  /** No complete request line within the deadline counted from accept. */
  readonly timedOut: number;
  /** A second request on a connection that already had one (refused with an error reply). */
  readonly extraRequests: number;
}

export function encodeLine(message: ControlRequest | ControlReply): string {
  return `${JSON.stringify(message)}\n`;
}

/** Parses one request line; a string says what is wrong with it. */
export function decodeRequest(line: string): ControlRequest | string {
  if (line.length > MAX_REQUEST_BYTES) return `request of ${line.length} bytes, at most ${MAX_REQUEST_BYTES}`;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'request is not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'request is not a JSON object';
  const {id, type, options, peer, seconds, protocol, host} = value as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) return 'request id: expected a string of 1..64 characters';
  if (protocol !== undefined && !isIntIn(protocol, 1, Number.MAX_SAFE_INTEGER)) return 'request protocol: expected a positive integer';
  const body = type === 'drain'
    ? typeof host === 'string' && /^[A-Za-z0-9._-]{1,63}$/.test(host) ? {id, type, host} as const : 'drain: host must be a host name'
    : decodeBody(id, type, options, peer, seconds);
  if (typeof body === 'string' || protocol === undefined) return body;
  return {...body, protocol: protocol as number};
}

function decodeBody(id: string, type: unknown, options: unknown, peer: unknown, seconds: unknown): ControlRequest | string {
  switch (type) {
    case 'status':
      return {id, type};
    case 'resume':
      if (peer !== undefined && typeof peer !== 'boolean') return 'resume: peer must be a boolean';
      return {id, type, peer: peer === true};
    case 'fail-active':
      if (!isIntIn(seconds, 1, MAX_DROP_S)) return `fail-active: seconds must be an integer 1..${MAX_DROP_S}`;
      return {id, type, seconds: seconds as number};
    case 'rehearsal':
      return {id, type};
    case 'switchover': {
      const parsed = parseSwitchoverOptions(options);
      return typeof parsed === 'string' ? parsed : {id, type, options: parsed};
    }
    default:
      return `request type: expected status, switchover, resume, fail-active or rehearsal, got ${JSON.stringify(type)?.slice(0, 40)}`;
  }
}

function parseSwitchoverOptions(value: unknown): SwitchoverOptions | string {
  if (typeof value !== 'object' || value === null) return 'switchover options: expected an object';
  const {dryRun, strict, minRequests, confirmTimeoutS, pauseAfter, to, service} = value as Record<string, unknown>;
  if (to !== undefined && (typeof to !== 'string' || !/^[A-Za-z0-9._-]{1,63}$/.test(to))) return 'switchover to: expected a host name';
  if (service !== undefined && (typeof service !== 'string' || !/^[A-Za-z0-9._-]{1,32}$/.test(service))) return 'switchover service: expected a service name';
  if (typeof dryRun !== 'boolean' || typeof strict !== 'boolean') return 'switchover options: dryRun and strict must be booleans';
  if (minRequests !== undefined && !isIntIn(minRequests, 1, 1_000_000)) return 'min requests: expected an integer 1..1000000';
  if (confirmTimeoutS !== undefined && !isIntIn(confirmTimeoutS, 1, 3600)) return 'confirm timeout: expected 1..3600 seconds';
  let pause: SwitchoverOptions['pauseAfter'];
  if (pauseAfter !== undefined) {
    const {step, seconds} = (pauseAfter ?? {}) as Record<string, unknown>;
    if (typeof step !== 'string' || step.length > 40 || !isIntIn(seconds, 1, 3600)) return 'pause after: expected {step, seconds 1..3600}';
    pause = {step, seconds: seconds as number};
  }
  return {dryRun, strict, minRequests: minRequests as number | undefined, confirmTimeoutS: confirmTimeoutS as number | undefined, pauseAfter: pause,
    ...to === undefined ? {} : {to: to as string}, ...service === undefined ? {} : {service: service as string}};
}

function isIntIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * The refusal of a request whose protocol is not this agent's, or undefined when the agent serves it (the same
 * version, or none: baton 0.1.0's CLI, whose requests this agent still reads).
 */
export function protocolRefusal(request: ControlRequest): string | undefined {
  const theirs = request.protocol;
  if (theirs === undefined || theirs === CONTROL_PROTOCOL) return undefined;
  const fix = theirs > CONTROL_PROTOCOL
    ? 'if baton was just upgraded on this host, restart the agent (`systemctl restart baton-agent`) to finish the upgrade'
    : 'use the baton installed with this agent';
  return `this baton-agent (baton ${VERSION}) speaks control protocol ${CONTROL_PROTOCOL} and the client ${theirs}: ${fix}; nothing was done`;
}

/**
 * Parses one reply line and checks that it is a reply of this protocol: its envelope, and a progress line's
 * fields (a result's are checked by checkResult, which knows the request). Throws BatonError PROTOCOL_MISMATCH
 * saying what does not match, in words that follow "the agent at SOCKET ".
 */
export function decodeReply(line: string): ControlReply {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BatonError('PROTOCOL_MISMATCH', 'sent a reply that is not JSON: is it a baton-agent?');
  }
  const envelope = REPLY.envelope(value, '');
  if (envelope !== undefined) throw new BatonError('PROTOCOL_MISMATCH', `sent something that is not a reply (${envelope}): is it a baton-agent?`);
  const reply = value as ControlReply;
  const mismatch = protocolMismatch((value as {protocol?: unknown}).protocol);
  if (mismatch !== undefined) throw new BatonError('PROTOCOL_MISMATCH', mismatch);
  const problem = reply.type === 'progress' ? REPLY.progress(reply.progress, 'progress')
    : flag(reply.ok, 'ok') ?? (reply.ok ? undefined : REPLY.error(reply.error, 'error'));
  if (problem !== undefined) throw new BatonError('PROTOCOL_MISMATCH', unreadable('reply', problem));
  return reply;
}

/** Checks a successful result as the request it answers needs it; throws BatonError PROTOCOL_MISMATCH (see decodeReply). */
export function checkResult(type: ControlRequest['type'], result: unknown): ControlResult {
  const problem = RESULTS[type](result, '');
  if (problem !== undefined) throw new BatonError('PROTOCOL_MISMATCH', unreadable(`${type} result`, problem));
  return result as ControlResult;
}

function protocolMismatch(protocol: unknown): string | undefined {
  if (protocol === CONTROL_PROTOCOL) return undefined;
  const theirs = protocol === undefined ? UNVERSIONED_PROTOCOL : protocol;
  if (typeof theirs !== 'number' || !Number.isInteger(theirs)) return unreadable('reply', `protocol: expected a whole number, got ${JSON.stringify(theirs)}`);
  const ours = `this baton ${VERSION} speaks ${CONTROL_PROTOCOL}`;
  if (theirs > CONTROL_PROTOCOL) {
    return `speaks control protocol ${theirs}, newer than this baton's: ${ours}. Use the baton installed with the agent`;
  }
  return `speaks control protocol ${theirs}${protocol === undefined ? ' (baton 0.1.0)' : ''}, older than this baton's: ${ours}. ` +
    'If baton was just upgraded on this host, restart the agent (`systemctl restart baton-agent`) to finish the upgrade; ' +
    'else use the baton installed with the agent';
}

function unreadable(what: string, problem: string): string {
  return `sent a ${what} this baton cannot read (${problem}), though both speak control protocol ${CONTROL_PROTOCOL}: ` +
    'the agent and this baton are different builds; use the baton installed with the agent';
}

// What the CLI reads of each reply, so a reply of the wrong shape is named instead of crashing the formatter.
const HOST_LABEL = object({role: oneOf(['primary', 'backup', 'host']), host: text});
const STATUS_REPORT = object({
  pair: text,
  self: object({
    role: oneOf(['primary', 'backup']), host: text, pid: count, bootId: text, version: text, state: oneOf(AGENT_STATE_NAMES),
    reason: text, stateForMs: count, epoch: count, holdsIp: optional(flag), held: optional(listOf(text)), health: oneOf(['ok', 'failing']),
    healthChecks: listOf(object({name: text, ok: flag, detail: text})), uptimeMs: count, listen: text, rehearsal: flag,
  }),
  service: object({address: text, addresses: listOf(text), interface: text, mode: text}),
  peer: object({
    role: oneOf(['primary', 'backup']), address: text, alive: flag, lastSeenMsAgo: optional(count), host: optional(text),
    bootId: optional(text), version: optional(text), state: optional(oneOf(AGENT_STATE_NAMES)), holdsIp: optional(flag),
    epoch: optional(count), health: optional(oneOf(['ok', 'failing'])), rttMs: optional(object({last: count, average: count})),
    loss: optional(count), rejectedSinceValid: optional(object({count, reason: text, detail: text})),
  }),
  lastSwitch: optional(object({id: text, outcome: text, reason: text, endedMsAgo: count})),
  switching: optional(object({id: text, side: text})),
  beacons: object({sent: count, accepted: count, rejected: tableOf(count), droppedUnread: count}),
  timers: object({loopLagMs: object({p99: count, max: count}), lateBeyondInterval: count, intervalMs: count, deadAfterMs: count}),
  control: object({refusedBusy: count, timedOut: count, extraRequests: count}),
});
const ETCD_STATUS_REPORT = object({
  coordination: oneOf(['etcd']),
  self: object({
    host: text, hostname: text, pid: count, version: text, uptimeMs: count, health: oneOf(['ok', 'failing']),
    healthChecks: listOf(object({name: text, ok: optional(flag), detail: text})), drained: optional(flag),
  }),
  services: listOf(object({
    name: text,
    service: object({address: text, addresses: listOf(text), interface: text, mode: text}),
    holdsIp: optional(flag), held: listOf(text),
    claim: object({
      phase: oneOf(CLAIM_PHASES), holder: optional(text), epoch: optional(count), error: optional(text), deadlineInMs: optional(count),
      switching: optional(text),
      since: object({phaseForMs: count}),
    }),
    hosts: listOf(text),
    key: text,
  })),
  hosts: listOf(text),
  peers: listOf(object({host: text, present: optional(flag), health: optional(oneOf(['ok', 'failing'])), version: optional(text),
    since: optional(text), holds: listOf(text)})),
  peersReadMsAgo: optional(count),
  watching: flag,
  etcd: object({endpoints: listOf(text), prefix: text, leaseTtlS: count, renewMarginMs: count, onEtcdLoss: text}),
  control: object({refusedBusy: count, timedOut: count, extraRequests: count}),
});
/** A status of either mode, told apart by `coordination`. */
const ANY_STATUS_REPORT: Check = (value, path) =>
  (typeof value === 'object' && value !== null && isEtcdStatus(value) ? ETCD_STATUS_REPORT : STATUS_REPORT)(value, path);
const SWITCH_RESULT = object({
  switchId: text, outcome: oneOf(['done', 'rolled-back', 'dry-run']), giver: HOST_LABEL, taker: HOST_LABEL,
  reason: optional(text), failedStep: optional(text), totalMs: count, confirmedRequests: optional(count),
  rollbackCheck: optional(text),
  plan: optional(listOf(object({step: text, host: HOST_LABEL, does: text, commands: listOf(text)}))),
  drain: optional(object({left: optional(count), ms: count, graceful: optional(text), problems: listOf(text)})),
});
const PROGRESS: Readonly<Record<SwitchProgress['kind'], Check>> = {
  start: object({switchId: text, giver: HOST_LABEL, taker: HOST_LABEL, mode: text}),
  preflight: object({text}),
  step: object({step: text, host: HOST_LABEL, action: oneOf(['apply', 'undo', 'check']), status: oneOf(['ok', 'failed']),
    elapsedMs: count, detail: optional(text)}),
  waiting: object({step: text, host: HOST_LABEL, count, needed: count, elapsedMs: count}),
  note: object({text}),
};
const progressLine: Check = (value, path) => {
  const kind = oneOf(Object.keys(PROGRESS))((value as {kind?: unknown} | null | undefined)?.kind, `${path}.kind`);
  return kind ?? PROGRESS[(value as SwitchProgress).kind](value, path);
};
const REPLY = {
  envelope: object({id: text, type: oneOf(['result', 'progress'])}),
  progress: progressLine,
  error: object({code: text, message: text}),
};
const RESULTS: Readonly<Record<ControlRequest['type'], Check>> = {
  'status': ANY_STATUS_REPORT,
  'switchover': SWITCH_RESULT,
  'resume': object({state: text, reason: text}),
  'fail-active': object({host: HOST_LABEL, seconds: count}),
  'rehearsal': object({self: object({host: HOST_LABEL, enabled: flag}), peer: object({host: HOST_LABEL, enabled: flag})}),
  'drain': object({host: text, text: text, moved: optional(SWITCH_RESULT)}),
};
