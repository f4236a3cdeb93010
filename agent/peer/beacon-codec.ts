// Datagram ⇄ Message: the wire format of beacons, HMAC-SHA256 sign and verify. Pure: keys are passed in.
//
// Wire format, version 1 (all integers big-endian):
//
//   offset  size  field
//   0       2     magic 0x42 0x54 ("BT")
//   2       1     protocol version (1)
//   3       1     kind (1 = beacon, 2 = peer request, 3 = peer reply)
//   4       4     key id: first 4 bytes of SHA-256 over the signing secret
//   8       2     body length N
//   10      2     reserved, 0
//   12      N     body: UTF-8 JSON object (fields below), at most MAX_BODY_BYTES
//   12+N    32    HMAC-SHA256(secret, bytes 0 .. 12+N)
//
// The MAC covers the whole datagram, header included, so a changed kind, key id or length is a bad MAC.
// Nothing in the body is parsed before the MAC checks out: a forged datagram costs one HMAC, never a JSON parse.
// Replay, skew and liveness are judged by peer-monitor.ts, which knows the peer's history; this file only
// answers "is this a well-formed message signed with a key we accept".

import {createHmac, timingSafeEqual} from 'node:crypto';
import type {Key, Keyring} from '../config/secret-files.js';
import {EPOCH_EXPECTED, isEpoch} from '../epoch.js';
import {AGENT_STATE_NAMES, type AgentStateName, type Health, type Role} from '../state-machine.js';
import {PEER_OPS, type PeerOp} from './peer-protocol.js';
import {sanitizePeerText} from './peer-text.js';

export const PROTOCOL_VERSION = 1;
export const MAGIC_0 = 0x42;
export const MAGIC_1 = 0x54;
export const HEADER_BYTES = 12;
export const MAC_BYTES = 32;
// 1400 bytes fit one Ethernet frame (1500 − 20 IPv4 − 8 UDP = 1472; over IPv6 1500 − 40 − 8 = 1452) with room to
// spare, so no datagram is ever fragmented on the LAN the pair shares. A beacon body is about 300 bytes; the largest request reply (host info for preflight) about 400.
export const MAX_DATAGRAM_BYTES = 1400;
export const MAX_BODY_BYTES = MAX_DATAGRAM_BYTES - HEADER_BYTES - MAC_BYTES;

export type MessageKind = 'beacon' | 'request' | 'reply';
const KIND_CODE: Record<MessageKind, number> = {beacon: 1, request: 2, reply: 3};
const KIND_BY_CODE: ReadonlyMap<number, MessageKind> = new Map(Object.entries(KIND_CODE).map(([kind, code]) => [code, kind as MessageKind]));

/**
 * Acknowledges the newest datagram received from the other side (any kind), so the sender can measure round-trip
 * time and, with heartbeat.replay_protection acknowledged, know that this beacon was sent after its own datagram.
 */
export interface BeaconAck {
  /** Boot id of the host whose beacon is acknowledged. */
  readonly boot: string;
  readonly seq: number;
  /** How long the acknowledged beacon was held before this one was sent (ms). */
  readonly heldMs: number;
}

/** What every message carries, so replay, skew and sender checks apply to all kinds alike. */
export interface Envelope {
  readonly pair: string;
  readonly node: Role;
  /** nanoid, new at each agent start. */
  readonly boot: string;
  /** 1, 2, 3… per boot, one counter for every datagram the agent sends. */
  readonly seq: number;
  /** Sender's wall clock, ms since the epoch. */
  readonly sentAt: number;
}

export interface Beacon extends Envelope {
  /** Host name, for humans only. */
  readonly host: string;
  readonly state: AgentStateName;
  readonly epoch: number;
  /** Whether the sender observed the service IP on its interface. */
  readonly holdsIp: boolean;
  readonly health: Health;
  /** Id of the switch the sender is running, or '' when none. */
  readonly switchId: string;
  readonly ack: BeaconAck | undefined;
}

/** A JSON object as carried in requests and replies; each operation validates its own fields. */
export type JsonObject = {readonly [key: string]: JsonValue};
export type JsonValue = string | number | boolean | null | JsonObject | readonly JsonValue[];

export interface PeerRequest extends Envelope {
  /**
   * Boot id of the agent the request is for. Sequence numbers stop a replay to the agent that saw the original,
   * but an agent that restarted has forgotten them: a request recorded before it restarted names its old boot
   * and is void, whatever the clock skew window allows.
   */
  readonly to: string;
  /** nanoid; retries of one request carry the same id, so the receiver does the work once. */
  readonly id: string;
  /** One of peer-protocol.ts's operations; its params are checked there, by the side that answers. */
  readonly op: PeerOp;
  /** The switch the request belongs to, '' for none. */
  readonly switchId: string;
  readonly params: JsonObject;
}

export interface PeerReply extends Envelope {
  /** The id of the request answered. */
  readonly id: string;
  readonly ok: boolean;
  readonly error: {readonly code: string; readonly message: string} | undefined;
  readonly result: JsonObject | undefined;
}

export type Message =
  | {readonly kind: 'beacon'; readonly beacon: Beacon}
  | {readonly kind: 'request'; readonly request: PeerRequest}
  | {readonly kind: 'reply'; readonly reply: PeerReply};

export function envelopeOf(message: Message): Envelope {
  switch (message.kind) {
    case 'beacon':
      return message.beacon;
    case 'request':
      return message.request;
    case 'reply':
      return message.reply;
  }
}

export type RejectReason =
  | 'oversized'
  | 'truncated'
  | 'malformed'
  | 'bad-version'
  | 'unknown-key'
  | 'expired-key'
  | 'rate-limited'
  | 'bad-mac'
  | 'wrong-pair'
  | 'wrong-node'
  | 'wrong-source'
  | 'replay'
  | 'stale'
  | 'future'
  | 'unacknowledged';

export const REJECT_REASONS: readonly RejectReason[] = [
  'oversized', 'truncated', 'malformed', 'bad-version', 'unknown-key', 'expired-key', 'rate-limited', 'bad-mac',
  'wrong-pair', 'wrong-node', 'wrong-source', 'replay', 'stale', 'future', 'unacknowledged',
];

export type Decoded =
  | {readonly ok: true; readonly message: Message; readonly keyId: string}
  | {readonly ok: false; readonly reason: RejectReason; readonly detail: string};

export function encodeMessage(message: Message, key: Key): Uint8Array {
  return sealBody(KIND_CODE[message.kind], bodyOf(message), key);
}

/**
 * One signed datagram of `kindCode` around a JSON body: the framing and MAC of every baton datagram. Also used by
 * the beacons between etcd hosts (coordination/host-beacons.ts, kind HOST_BEACON_KIND), which a pair's agent refuses
 * as an unknown kind.
 */
export function sealBody(kindCode: number, bodyObject: Record<string, unknown>, key: Key): Uint8Array {
  const body = Buffer.from(JSON.stringify(bodyObject), 'utf8');
  if (body.length > MAX_BODY_BYTES) {
    throw new RangeError(`message body is ${body.length} bytes, more than ${MAX_BODY_BYTES}`);
  }
  const datagram = Buffer.alloc(HEADER_BYTES + body.length + MAC_BYTES);
  datagram[0] = MAGIC_0;
  datagram[1] = MAGIC_1;
  datagram[2] = PROTOCOL_VERSION;
  datagram[3] = kindCode;
  Buffer.from(key.id, 'hex').copy(datagram, 4);
  datagram.writeUInt16BE(body.length, 8);
  datagram.writeUInt16BE(0, 10);
  body.copy(datagram, HEADER_BYTES);
  mac(key.secret, datagram.subarray(0, HEADER_BYTES + body.length)).copy(datagram, HEADER_BYTES + body.length);
  return new Uint8Array(datagram.buffer, datagram.byteOffset, datagram.length);
}

/**
 * Never throws: every input is either a message or a reject reason with a detail for the log.
 * @param wallNow wall-clock ms, only to refuse keys past their `until` (accept_secret_files)
 */
export function decodeDatagram(input: Uint8Array, keyring: Keyring, pair: string, wallNow: number): Decoded {
  const framed = readFrame(input, keyring);
  return framed.ok ? openFrame(framed.frame, pair, wallNow) : framed;
}

/** A datagram whose framing is right and whose key id is one of ours: what is left to do costs (MAC, JSON). */
export interface Frame {
  readonly datagram: Buffer;
  readonly kind: MessageKind;
  readonly key: Key;
  readonly bodyLength: number;
}

/** The free checks (sizes, magic, version, kind, key id): no crypto, no parsing. Never throws. */
export function readFrame(input: Uint8Array, keyring: Keyring): {readonly ok: true; readonly frame: Frame} | Extract<Decoded, {ok: false}> {
  return readFrameOf(input, keyring, (code) => KIND_BY_CODE.get(code));
}

/** The kind code of the beacons between etcd hosts (coordination/host-beacons.ts); not a pair's message kind. */
export const HOST_BEACON_KIND = 4;

/**
 * A datagram of kind HOST_BEACON_KIND, its framing, key and MAC checked as every baton datagram's (and its key's
 * expiry): its JSON body, for host-beacons.ts to read. Never throws.
 */
export function unsealHostBeacon(input: Uint8Array, keyring: Keyring, wallNow: number): {readonly ok: true; readonly body: unknown; readonly keyId: string} | Extract<Decoded, {ok: false}> {
  const framed = readFrameOf(input, keyring, (code) => (code === HOST_BEACON_KIND ? 'beacon' : undefined));
  if (!framed.ok) return framed;
  const {datagram, key, bodyLength} = framed.frame;
  const checked = checkMac(datagram, key, bodyLength, wallNow);
  if (checked !== undefined) return checked;
  try {
    return {ok: true, body: JSON.parse(datagram.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength).toString('utf8')), keyId: key.id};
  } catch {
    return reject('malformed', 'body is not JSON');
  }
}

function readFrameOf(input: Uint8Array, keyring: Keyring, kindOf: (code: number) => MessageKind | undefined): {readonly ok: true; readonly frame: Frame} | Extract<Decoded, {ok: false}> {
  if (input.length > MAX_DATAGRAM_BYTES) return reject('oversized', `${input.length} bytes, at most ${MAX_DATAGRAM_BYTES}`);
  if (input.length < HEADER_BYTES + MAC_BYTES) return reject('truncated', `${input.length} bytes, at least ${HEADER_BYTES + MAC_BYTES}`);
  const datagram = Buffer.from(input.buffer, input.byteOffset, input.length);
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return reject('malformed', 'not a baton datagram (bad magic)');
  if (datagram[2] !== PROTOCOL_VERSION) return reject('bad-version', `protocol version ${datagram[2]}, this agent speaks ${PROTOCOL_VERSION}`);
  const kind = kindOf(datagram[3] ?? 0);
  if (kind === undefined) return reject('malformed', `unknown message kind ${datagram[3]}`);
  const bodyLength = datagram.readUInt16BE(8);
  const expected = HEADER_BYTES + bodyLength + MAC_BYTES;
  if (datagram.length < expected) return reject('truncated', `${datagram.length} bytes, header announces ${expected}`);
  if (datagram.length > expected) return reject('malformed', `${datagram.length} bytes, header announces ${expected}`);
  if (bodyLength > MAX_BODY_BYTES) return reject('oversized', `body of ${bodyLength} bytes, at most ${MAX_BODY_BYTES}`);
  const keyId = datagram.subarray(4, 8).toString('hex');
  const key = keyring.accepted.find((candidate) => candidate.id === keyId);
  if (key === undefined) return reject('unknown-key', `key id ${keyId} is not one of ours (${keyring.accepted.map((k) => k.id).join(', ')})`);
  return {ok: true, frame: {datagram, kind, key, bodyLength}};
}

/** The costly part: MAC, key expiry, JSON, fields. Never throws. */
export function openFrame(frame: Frame, pair: string, wallNow: number): Decoded {
  const {datagram, kind, key, bodyLength} = frame;
  const keyId = key.id;
  const checked = checkMac(datagram, key, bodyLength, wallNow);
  if (checked !== undefined) return checked;

  let body: unknown;
  try {
    body = JSON.parse(datagram.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength).toString('utf8'));
  } catch {
    return reject('malformed', 'body is not JSON');
  }
  const message = parseBody(kind, body);
  if (typeof message === 'string') return reject('malformed', message);
  const envelope = envelopeOf(message);
  if (envelope.pair !== pair) return reject('wrong-pair', `pair '${envelope.pair}', ours is '${pair}'`);
  return {ok: true, message, keyId};
}

/** The MAC over the whole datagram, then the key's expiry; undefined when both are good. */
function checkMac(datagram: Buffer, key: Key, bodyLength: number, wallNow: number): Extract<Decoded, {ok: false}> | undefined {
  const signed = datagram.subarray(0, HEADER_BYTES + bodyLength);
  const received = datagram.subarray(HEADER_BYTES + bodyLength);
  if (!timingSafeEqual(mac(key.secret, signed), received)) return reject('bad-mac', `MAC does not match key ${key.id}`);
  // After the MAC, so the count is of datagrams really signed with the retired key (a peer not yet switched over).
  if (key.until !== undefined && wallNow >= key.until) {
    return reject('expired-key', `signed with key ${key.id} (${key.file}), accepted until ${new Date(key.until).toISOString()}; sign with the new secret_file on the peer`);
  }
  return undefined;
}

function mac(secret: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

function reject(reason: RejectReason, detail: string): Extract<Decoded, {ok: false}> {
  return {ok: false, reason, detail};
}

// Field order is fixed so that the same message always encodes to the same bytes (golden test vectors).
function bodyOf(message: Message): Record<string, unknown> {
  if (message.kind === 'request') {
    const r = message.request;
    return {...envelopeBody(r), to: r.to, id: r.id, op: r.op, switchId: r.switchId, params: r.params};
  }
  if (message.kind === 'reply') {
    const r = message.reply;
    return {
      ...envelopeBody(r), id: r.id, ok: r.ok,
      ...(r.error === undefined ? {} : {error: {code: r.error.code, message: r.error.message}}),
      ...(r.result === undefined ? {} : {result: r.result}),
    };
  }
  const b = message.beacon;
  return {
    pair: b.pair, node: b.node, host: b.host, boot: b.boot, seq: b.seq, sentAt: b.sentAt, state: b.state,
    epoch: b.epoch, holdsIp: b.holdsIp, health: b.health, switchId: b.switchId,
    ...(b.ack === undefined ? {} : {ack: {boot: b.ack.boot, seq: b.ack.seq, heldMs: b.ack.heldMs}}),
  };
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const HOST_PATTERN = /^[A-Za-z0-9._-]{0,253}$/;
const ENVELOPE_KEYS = ['pair', 'node', 'boot', 'seq', 'sentAt'];
const BODY_KEYS: Record<MessageKind, ReadonlySet<string>> = {
  beacon: new Set([...ENVELOPE_KEYS, 'host', 'state', 'epoch', 'holdsIp', 'health', 'switchId', 'ack']),
  request: new Set([...ENVELOPE_KEYS, 'to', 'id', 'op', 'switchId', 'params']),
  reply: new Set([...ENVELOPE_KEYS, 'id', 'ok', 'error', 'result']),
};
// Requests and replies nest a little (a step name inside params, a version table inside a result); anything
// deeper is not ours.
const MAX_JSON_DEPTH = 4;
const MAX_ERROR_MESSAGE = 600;

/** A Message, or what is wrong with the body. Strict: unknown fields, wrong types and absurd numbers are refused. */
function parseBody(kind: MessageKind, body: unknown): Message | string {
  if (!isRecord(body)) return 'body is not a JSON object';
  // The key is the sender's text and goes to the log and status: escaped like any peer text.
  for (const key of Object.keys(body)) if (!BODY_KEYS[kind].has(key)) return `unknown field '${sanitizePeerText(key, 32)}'`;
  const envelope = parseEnvelope(body);
  if (typeof envelope === 'string') return envelope;
  switch (kind) {
    case 'beacon': {
      const beacon = parseBeaconFields(body, envelope);
      return typeof beacon === 'string' ? beacon : {kind, beacon};
    }
    case 'request': {
      const request = parseRequestFields(body, envelope);
      return typeof request === 'string' ? request : {kind, request};
    }
    case 'reply': {
      const reply = parseReplyFields(body, envelope);
      return typeof reply === 'string' ? reply : {kind, reply};
    }
  }
}

function parseEnvelope(body: Record<string, unknown>): Envelope | string {
  const {pair, node, boot, seq, sentAt} = body;
  if (typeof pair !== 'string' || !NAME_PATTERN.test(pair)) return 'field pair: expected a pair name';
  if (node !== 'primary' && node !== 'backup') return 'field node: expected primary or backup';
  if (typeof boot !== 'string' || !ID_PATTERN.test(boot)) return 'field boot: expected a boot id';
  if (!isCount(seq) || seq < 1) return 'field seq: expected a positive integer';
  if (!isCount(sentAt)) return 'field sentAt: expected ms since the epoch';
  return {pair, node, boot, seq, sentAt};
}

function parseRequestFields(body: Record<string, unknown>, envelope: Envelope): PeerRequest | string {
  const {to, id, op, switchId, params} = body;
  // Empty when the sender has not heard from the receiver yet; such a request is refused by the receiver.
  if (typeof to !== 'string' || (to !== '' && !ID_PATTERN.test(to))) return 'field to: expected a boot id or empty';
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) return 'field id: expected a request id';
  if (typeof op !== 'string' || !(PEER_OPS as readonly string[]).includes(op)) return 'field op: expected a request operation';
  if (typeof switchId !== 'string' || (switchId !== '' && !ID_PATTERN.test(switchId))) return 'field switchId: expected a switch id or empty';
  if (!isJsonObject(params, 1)) return `field params: expected a JSON object nested at most ${MAX_JSON_DEPTH} deep`;
  return {...envelope, to, id, op: op as PeerOp, switchId, params};
}

function parseReplyFields(body: Record<string, unknown>, envelope: Envelope): PeerReply | string {
  const {id, ok, error, result} = body;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) return 'field id: expected a request id';
  if (typeof ok !== 'boolean') return 'field ok: expected a boolean';
  let parsedError: PeerReply['error'];
  if (error !== undefined) {
    if (!isRecord(error) || Object.keys(error).length !== 2) return 'field error: expected {code, message}';
    const {code, message} = error;
    if (typeof code !== 'string' || !/^[A-Z_]{1,40}$/.test(code)) return 'field error.code: expected an error code';
    if (typeof message !== 'string' || message.length > MAX_ERROR_MESSAGE) return `field error.message: expected text of at most ${MAX_ERROR_MESSAGE} characters`;
    parsedError = {code, message};
  }
  if (result !== undefined && !isJsonObject(result, 1)) return `field result: expected a JSON object nested at most ${MAX_JSON_DEPTH} deep`;
  if (ok === (parsedError !== undefined)) return 'fields ok and error disagree';
  return {...envelope, id, ok, error: parsedError, result: result as JsonObject | undefined};
}

function parseBeaconFields(body: Record<string, unknown>, envelope: Envelope): Beacon | string {
  const {host, state, epoch, holdsIp, health, switchId, ack} = body;
  if (typeof host !== 'string' || !HOST_PATTERN.test(host)) return 'field host: expected a host name';
  if (typeof state !== 'string' || !(AGENT_STATE_NAMES as readonly string[]).includes(state)) return 'field state: expected an agent state';
  if (!isEpoch(epoch)) return `field epoch: expected ${EPOCH_EXPECTED}`;
  if (typeof holdsIp !== 'boolean') return 'field holdsIp: expected a boolean';
  if (health !== 'ok' && health !== 'failing') return 'field health: expected ok or failing';
  if (typeof switchId !== 'string' || (switchId !== '' && !ID_PATTERN.test(switchId))) return 'field switchId: expected a switch id or empty';
  let parsedAck: BeaconAck | undefined;
  if (ack !== undefined) {
    if (!isRecord(ack) || Object.keys(ack).length !== 3) return 'field ack: expected {boot, seq, heldMs}';
    if (typeof ack['boot'] !== 'string' || !ID_PATTERN.test(ack['boot'])) return 'field ack.boot: expected a boot id';
    if (!isCount(ack['seq'])) return 'field ack.seq: expected a non-negative integer';
    if (!isCount(ack['heldMs'])) return 'field ack.heldMs: expected a non-negative integer';
    parsedAck = {boot: ack['boot'], seq: ack['seq'], heldMs: ack['heldMs']};
  }
  return {...envelope, host, state: state as AgentStateName, epoch, holdsIp, health, switchId, ack: parsedAck};
}

function envelopeBody(e: Envelope): Record<string, unknown> {
  return {pair: e.pair, node: e.node, boot: e.boot, seq: e.seq, sentAt: e.sentAt};
}

function isJsonObject(value: unknown, depth: number): value is JsonObject {
  return isRecord(value) && Object.values(value).every((v) => isJsonValue(v, depth + 1));
}

function isJsonValue(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (depth > MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1));
  return isJsonObject(value, depth);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
