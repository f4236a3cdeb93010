// Request/ack between the two agents over the beacon channel: the requester retries until a reply or a deadline;
// the responder does each request id once and answers every retry with the same reply.

import {BatonError, type ErrorCode} from '../errors.js';
import type {Clock} from '../ports.js';
import type {JsonObject, PeerReply, PeerRequest} from './beacon-codec.js';
import type {PeerOp, PeerParams} from './peer-protocol.js';
import {sanitizePeerJson, sanitizePeerText} from './peer-text.js';

/** A request as the requester builds it; the agent adds the envelope (pair, node, boot, seq, sentAt). */
export interface OutgoingRequest {
  readonly id: string;
  readonly op: PeerOp;
  readonly switchId: string;
  readonly params: JsonObject;
}

/** A reply as the responder builds it; the agent adds the envelope. */
export interface OutgoingReply {
  readonly id: string;
  readonly ok: boolean;
  readonly error: {readonly code: string; readonly message: string} | undefined;
  readonly result: JsonObject | undefined;
}

export interface RequestOptions {
  /** Give up after this long without a reply (ms). */
  readonly deadlineMs: number;
  readonly signal?: AbortSignal;
}

interface Pending {
  readonly op: PeerOp;
  readonly resolve: (result: JsonObject) => void;
  readonly reject: (error: BatonError) => void;
}

const KNOWN_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'CONFIG_INVALID', 'STATE_INVALID', 'STATE_UNWRITABLE', 'COMMAND_FAILED', 'COMMAND_TIMEOUT', 'INTERFACE_MISSING', 'STEP_FAILED', 'ROLLED_BACK',
  'TRAFFIC_NOT_CONFIRMED', 'PEER_UNREACHABLE', 'PEER_UNSUPPORTED', 'AGENT_UNREACHABLE', 'SWITCH_IN_PROGRESS', 'BAD_REQUEST', 'LAB_FAILED',
  'ACCESS_LOG_UNREADABLE', 'PREFLIGHT_REFUSED', 'ADDRESS_IN_USE',
]);

export class PeerRequester {
  readonly #send: (request: OutgoingRequest) => Promise<void>;
  readonly #clock: Clock;
  readonly #newId: () => string;
  readonly #retryMs: number;
  readonly #pending = new Map<string, Pending>();

  /** @param retryMs resend interval while no reply has come */
  constructor(send: (request: OutgoingRequest) => Promise<void>, clock: Clock, newId: () => string, retryMs: number) {
    this.#send = send;
    this.#clock = clock;
    this.#newId = newId;
    this.#retryMs = retryMs;
  }

  /**
   * Sends the request and resends it every retryMs until the peer replies or the deadline passes.
   * Resolves with the reply's result, the peer's word for the caller to check (see PeerOps); throws the peer's
   * error as a BatonError (its code kept), or PEER_UNREACHABLE when no reply came in time.
   */
  async request<Op extends PeerOp>(op: Op, switchId: string, params: PeerParams<Op>, options: RequestOptions): Promise<JsonObject> {
    const id = this.#newId();
    const outgoing: OutgoingRequest = {id, op, switchId, params};
    const stop = new AbortController();
    const answered = new Promise<JsonObject>((resolve, reject) => {
      this.#pending.set(id, {op, resolve, reject});
    });
    const started = this.#clock.now();
    const resend = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        await this.#send(outgoing).catch(() => undefined); // a send error is like a lost datagram: the retry covers it
        const left = options.deadlineMs - (this.#clock.now() - started);
        if (left <= 0) {
          this.#settle(id, undefined, new BatonError('PEER_UNREACHABLE', `the peer did not answer ${op} within ${options.deadlineMs} ms`));
          return;
        }
        try {
          await this.#clock.sleep(Math.min(this.#retryMs, left), AbortSignal.any([stop.signal, ...(options.signal ? [options.signal] : [])]));
        } catch {
          if (options.signal?.aborted === true) this.#settle(id, undefined, new BatonError('PEER_UNREACHABLE', `${op} abandoned: ${String(options.signal.reason)}`));
          return;
        }
      }
    };
    void resend();
    try {
      return await answered;
    } finally {
      stop.abort();
    }
  }

  /**
   * Feeds a reply from the peer; replies to unknown or already answered ids are ignored (late retries). The peer's
   * text (its error message, the strings of its result) is sanitised here, where it enters: whoever logs it, passes
   * it to a hook or shows it in the CLI gets no control character from it.
   */
  onReply(reply: PeerReply): void {
    if (reply.ok) {
      this.#settle(reply.id, sanitizePeerJson(reply.result ?? {}), undefined);
    } else {
      const code = reply.error !== undefined && KNOWN_CODES.has(reply.error.code) ? reply.error.code as ErrorCode : 'STEP_FAILED';
      this.#settle(reply.id, undefined, new BatonError(code, sanitizePeerText(reply.error?.message ?? 'the peer failed without a reason')));
    }
  }

  /** Fails every request still waiting, e.g. when the peer restarted and forgot them. */
  abandonAll(reason: string): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, new BatonError('PEER_UNREACHABLE', reason));
  }

  #settle(id: string, result: JsonObject | undefined, error: BatonError | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (error !== undefined) pending.reject(error);
    else pending.resolve(result ?? {});
  }
}

// Answers are remembered for the last REPLIES_KEPT request ids: far more than one switch sends, so a retry
// always finds its answer, and bounded so a flood of valid-but-new ids cannot grow memory.
const REPLIES_KEPT = 256;

export class PeerResponder {
  readonly #handle: (request: PeerRequest) => Promise<JsonObject>;
  readonly #send: (reply: OutgoingReply) => Promise<void>;
  readonly #done = new Map<string, OutgoingReply>();
  readonly #running = new Set<string>();

  constructor(handle: (request: PeerRequest) => Promise<JsonObject>, send: (reply: OutgoingReply) => Promise<void>) {
    this.#handle = handle;
    this.#send = send;
  }

  /** Runs a new request once; a retry of one that is running is ignored (the answer follows), of one done is re-answered. */
  onRequest(request: PeerRequest): void {
    const done = this.#done.get(request.id);
    if (done !== undefined) {
      void this.#send(done).catch(() => undefined);
      return;
    }
    if (this.#running.has(request.id)) return;
    this.#running.add(request.id);
    void this.#handle(request).then(
      (result): OutgoingReply => ({id: request.id, ok: true, error: undefined, result}),
      (error: unknown): OutgoingReply => ({
        id: request.id, ok: false, result: undefined,
        error: {code: error instanceof BatonError ? error.code : 'STEP_FAILED', message: (error instanceof Error ? error.message : String(error)).slice(0, 500)},
      }),
    ).then(async (reply) => {
      this.#running.delete(request.id);
      this.#done.set(request.id, reply);
      if (this.#done.size > REPLIES_KEPT) this.#done.delete(this.#done.keys().next().value ?? '');
      await this.#send(reply).catch(() => undefined);
    });
  }
}
