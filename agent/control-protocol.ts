// Control socket protocol between `baton` and the local agent: request/reply types and the JSON-lines codec.
// The only agent/ file that cli/ imports. One request per connection; the agent answers with one line
// (progress lines first, for a switch), then closes. A second request on the same connection is not served: it is
// answered at once with a BAD_REQUEST error carrying its id, and the first is answered as usual.

import type {RejectReason} from './peer/beacon-codec.js';
import type {ErrorCode} from './errors.js';
import {MAX_DROP_S} from './rehearsal.js';
import type {AgentStateName, Health, Role} from './state-machine.js';

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
}

export type ControlRequest =
  | {readonly id: string; readonly type: 'status'}
  | {readonly id: string; readonly type: 'switchover'; readonly options: SwitchoverOptions}
  | {readonly id: string; readonly type: 'resume'; readonly peer: boolean}
  /** Rehearsal: the host holding the IP drops its service link for `seconds`, as a dying host would. */
  | {readonly id: string; readonly type: 'fail-active'; readonly seconds: number};

export interface HostLabel {
  readonly role: Role;
  readonly host: string;
}

/** A host in words: "backup (web-2)". */
export function hostText(host: HostLabel): string {
  return `${host.role} (${host.host})`;
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

export interface ResumeResult {
  readonly state: string;
  readonly reason: string;
}

export interface FailResult {
  /** The host whose link went down. */
  readonly host: HostLabel;
  readonly seconds: number;
}

export type ControlResult = StatusReport | SwitchResult | ResumeResult | FailResult;

export type ControlReply =
  | {readonly id: string; readonly type: 'progress'; readonly progress: SwitchProgress}
  | {readonly id: string; readonly type: 'result'; readonly ok: true; readonly result: ControlResult}
  | {readonly id: string; readonly type: 'result'; readonly ok: false; readonly error: {readonly code: ErrorCode; readonly message: string}};

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
    /** Observed on the interface while answering this request, not believed. */
    readonly holdsIp: boolean | undefined;
    readonly health: Health;
    readonly healthChecks: readonly {readonly name: string; readonly ok: boolean; readonly detail: string}[];
    readonly uptimeMs: number;
    readonly listen: string;
    /** rehearsal.enabled in this agent's configuration: whether it accepts the rehearsal aids. */
    readonly rehearsal: boolean;
  };
  readonly service: {readonly address: string; readonly interface: string; readonly mode: string};
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
  const {id, type, options, peer, seconds} = value as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) return 'request id: expected a string of 1..64 characters';
  switch (type) {
    case 'status':
      return {id, type};
    case 'resume':
      if (peer !== undefined && typeof peer !== 'boolean') return 'resume: peer must be a boolean';
      return {id, type, peer: peer === true};
    case 'fail-active':
      if (!isIntIn(seconds, 1, MAX_DROP_S)) return `fail-active: seconds must be an integer 1..${MAX_DROP_S}`;
      return {id, type, seconds: seconds as number};
    case 'switchover': {
      const parsed = parseSwitchoverOptions(options);
      return typeof parsed === 'string' ? parsed : {id, type, options: parsed};
    }
    default:
      return `request type: expected status, switchover, resume or fail-active, got ${JSON.stringify(type)?.slice(0, 40)}`;
  }
}

function parseSwitchoverOptions(value: unknown): SwitchoverOptions | string {
  if (typeof value !== 'object' || value === null) return 'switchover options: expected an object';
  const {dryRun, strict, minRequests, confirmTimeoutS, pauseAfter} = value as Record<string, unknown>;
  if (typeof dryRun !== 'boolean' || typeof strict !== 'boolean') return 'switchover options: dryRun and strict must be booleans';
  if (minRequests !== undefined && !isIntIn(minRequests, 1, 1_000_000)) return 'min requests: expected an integer 1..1000000';
  if (confirmTimeoutS !== undefined && !isIntIn(confirmTimeoutS, 1, 3600)) return 'confirm timeout: expected 1..3600 seconds';
  let pause: SwitchoverOptions['pauseAfter'];
  if (pauseAfter !== undefined) {
    const {step, seconds} = (pauseAfter ?? {}) as Record<string, unknown>;
    if (typeof step !== 'string' || step.length > 40 || !isIntIn(seconds, 1, 3600)) return 'pause after: expected {step, seconds 1..3600}';
    pause = {step, seconds: seconds as number};
  }
  return {dryRun, strict, minRequests: minRequests as number | undefined, confirmTimeoutS: confirmTimeoutS as number | undefined, pauseAfter: pause};
}

function isIntIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Parses one reply line; throws a plain Error when it is not a reply (the CLI reports it as AGENT_UNREACHABLE). */
export function decodeReply(line: string): ControlReply {
  const value: unknown = JSON.parse(line);
  const type = (value as {type?: unknown} | null)?.type;
  if (typeof value !== 'object' || value === null || (type !== 'result' && type !== 'progress')) {
    throw new Error('the agent sent something that is not a reply');
  }
  return value as ControlReply;
}
