// The one error class of baton and the closed set of codes callers branch on.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'STATE_INVALID'
  | 'STATE_UNWRITABLE'
  | 'COMMAND_FAILED'
  | 'COMMAND_TIMEOUT'
  | 'INTERFACE_MISSING'
  | 'STEP_FAILED'
  | 'ROLLED_BACK'
  | 'TRAFFIC_NOT_CONFIRMED'
  | 'PEER_UNREACHABLE'
  /** The peer is alive but does not answer an operation: its agent is older than this one. */
  | 'PEER_UNSUPPORTED'
  | 'AGENT_UNREACHABLE'
  | 'SWITCH_IN_PROGRESS'
  | 'BAD_REQUEST'
  | 'LAB_FAILED'
  | 'ACCESS_LOG_UNREADABLE'
  | 'PREFLIGHT_REFUSED'
  | 'ADDRESS_IN_USE'
  /** The metrics endpoint cannot listen on metrics.listen. */
  | 'METRICS_UNAVAILABLE'
  /** No etcd member answered a coordination request within its deadline (unreachable, partitioned, no quorum). */
  | 'COORDINATION_UNAVAILABLE'
  /** An etcd member answered, with an error or an answer baton cannot read. */
  | 'COORDINATION_FAILED'

  /** The CLI and the agent speak different control protocols (control-protocol.ts), or a reply has the wrong shape. */
  | 'PROTOCOL_MISMATCH';

/** What a failed external command left behind, so callers can branch on it without parsing the message. */
export interface CommandFailureDetails {
  /** undefined when the program did not run or was killed by a signal. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

export interface BatonErrorOptions extends ErrorOptions {
  readonly details?: CommandFailureDetails;
}

export class BatonError extends Error {
  readonly code: ErrorCode;
  /** Set on COMMAND_FAILED and COMMAND_TIMEOUT raised by a CommandRunner. */
  readonly details: CommandFailureDetails | undefined;

  constructor(code: ErrorCode, message: string, options?: BatonErrorOptions) {
    super(message, options);
    this.name = 'BatonError';
    this.code = code;
    this.details = options?.details;
  }
}

export function isBatonError(error: unknown, code?: ErrorCode): error is BatonError {
  return error instanceof BatonError && (code === undefined || error.code === code);
}

/** The message of anything thrown, for log lines and replies. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}
