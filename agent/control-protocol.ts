// Control socket protocol between `baton` and the local agent: request/reply types and the JSON-lines codec.
// The only agent/ file that cli/ imports. One request per connection; the agent answers with one line
// (later: progress lines first), then closes.

import type {AgentStateName, Health, RejectReason} from './beacon-codec.js';
import type {ErrorCode} from './errors.js';
import type {Role} from './ports.js';

// A request is a few hundred bytes; anything far larger is a client bug or an attack and is refused.
export const MAX_REQUEST_BYTES = 64 * 1024;

export type ControlRequest = {readonly id: string; readonly type: 'status'};

export type ControlReply =
  | {readonly id: string; readonly type: 'result'; readonly ok: true; readonly result: StatusReport}
  | {readonly id: string; readonly type: 'result'; readonly ok: false; readonly error: {readonly code: ErrorCode; readonly message: string}};

export interface StatusReport {
  readonly pair: string;
  readonly self: {
    readonly role: Role;
    readonly host: string;
    readonly pid: number;
    readonly bootId: string;
    readonly state: AgentStateName;
    readonly reason: string;
    /** ms since the state was entered */
    readonly stateForMs: number;
    readonly epoch: number;
    /** Observed on the interface while answering this request, not believed. */
    readonly holdsIp: boolean | undefined;
    /** Why holdsIp could not be observed, if it could not. */
    readonly holdsIpError: string | undefined;
    readonly health: Health;
    readonly uptimeMs: number;
    readonly listen: string;
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
    readonly state: AgentStateName | undefined;
    /** As the peer observed it on its own interface and reported it in its last beacon. */
    readonly holdsIp: boolean | undefined;
    readonly epoch: number | undefined;
    readonly rttMs: {readonly last: number; readonly average: number} | undefined;
    /** 0..1 over the last 100 beacons */
    readonly loss: number | undefined;
  };
  readonly beacons: {
    readonly sent: number;
    readonly accepted: number;
    readonly rejected: Readonly<Record<RejectReason, number>>;
  };
  readonly timers: {
    /** Event-loop lateness: how late the agent ran compared with when it should have. */
    readonly loopLagMs: {readonly p99: number; readonly max: number};
    readonly lateBeyondInterval: number;
    readonly intervalMs: number;
    readonly deadAfterMs: number;
  };
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
  const {id, type} = value as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) return 'request id: expected a string of 1..64 characters';
  if (type !== 'status') return `request type: expected status, got ${JSON.stringify(type)?.slice(0, 40)}`;
  return {id, type};
}

/** Parses one reply line; throws a plain Error when it is not a reply (the CLI reports it as AGENT_UNREACHABLE). */
export function decodeReply(line: string): ControlReply {
  const value: unknown = JSON.parse(line);
  if (typeof value !== 'object' || value === null || (value as {type?: unknown}).type !== 'result') {
    throw new Error('the agent sent something that is not a reply');
  }
  return value as ControlReply;
}
