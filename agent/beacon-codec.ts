// Datagram ⇄ Message: the wire format of beacons, HMAC-SHA256 sign and verify. Pure: keys are passed in.
//
// Wire format, version 1 (all integers big-endian):
//
//   offset  size  field
//   0       2     magic 0x42 0x54 ("BT")
//   2       1     protocol version (1)
//   3       1     kind (1 = beacon)
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
import type {Key, Keyring} from './config.js';
import type {Role} from './ports.js';

export const PROTOCOL_VERSION = 1;
export const MAGIC_0 = 0x42;
export const MAGIC_1 = 0x54;
export const HEADER_BYTES = 12;
export const MAC_BYTES = 32;
// A beacon body is about 300 bytes; 1024 leaves room for new fields and stays far below any MTU (no fragmentation).
export const MAX_BODY_BYTES = 1024;
export const MAX_DATAGRAM_BYTES = HEADER_BYTES + MAX_BODY_BYTES + MAC_BYTES;

export type MessageKind = 'beacon';
const KIND_CODE: Record<MessageKind, number> = {beacon: 1};

export type AgentStateName = 'starting' | 'active' | 'standby' | 'released' | 'fault' | 'switching';
export const AGENT_STATE_NAMES: readonly AgentStateName[] = ['starting', 'active', 'standby', 'released', 'fault', 'switching'];

export type Health = 'ok' | 'failing';

/** Acknowledges the newest beacon received from the other side, so the sender can measure round-trip time. */
export interface BeaconAck {
  /** Boot id of the host whose beacon is acknowledged. */
  readonly boot: string;
  readonly seq: number;
  /** How long the acknowledged beacon was held before this one was sent (ms). */
  readonly heldMs: number;
}

export interface Beacon {
  readonly pair: string;
  readonly node: Role;
  /** Host name, for humans only. */
  readonly host: string;
  /** nanoid, new at each agent start. */
  readonly boot: string;
  /** 1, 2, 3… per boot. */
  readonly seq: number;
  /** Sender's wall clock, ms since the epoch. */
  readonly sentAt: number;
  readonly state: AgentStateName;
  readonly epoch: number;
  /** Whether the sender observed the service IP on its interface. */
  readonly holdsIp: boolean;
  readonly health: Health;
  /** Id of the switch the sender is running, or '' when none. */
  readonly switchId: string;
  readonly ack: BeaconAck | undefined;
}

export type Message = {readonly kind: 'beacon'; readonly beacon: Beacon};

export type RejectReason =
  | 'oversized'
  | 'truncated'
  | 'malformed'
  | 'bad-version'
  | 'unknown-key'
  | 'bad-mac'
  | 'wrong-pair'
  | 'wrong-node'
  | 'wrong-source'
  | 'replay'
  | 'stale'
  | 'future';

export const REJECT_REASONS: readonly RejectReason[] = [
  'oversized', 'truncated', 'malformed', 'bad-version', 'unknown-key', 'bad-mac',
  'wrong-pair', 'wrong-node', 'wrong-source', 'replay', 'stale', 'future',
];

export type Decoded =
  | {readonly ok: true; readonly message: Message; readonly keyId: string}
  | {readonly ok: false; readonly reason: RejectReason; readonly detail: string};

export function encodeMessage(message: Message, key: Key): Uint8Array {
  const body = Buffer.from(JSON.stringify(bodyOf(message)), 'utf8');
  if (body.length > MAX_BODY_BYTES) {
    throw new RangeError(`message body is ${body.length} bytes, more than ${MAX_BODY_BYTES}`);
  }
  const datagram = Buffer.alloc(HEADER_BYTES + body.length + MAC_BYTES);
  datagram[0] = MAGIC_0;
  datagram[1] = MAGIC_1;
  datagram[2] = PROTOCOL_VERSION;
  datagram[3] = KIND_CODE[message.kind];
  Buffer.from(key.id, 'hex').copy(datagram, 4);
  datagram.writeUInt16BE(body.length, 8);
  datagram.writeUInt16BE(0, 10);
  body.copy(datagram, HEADER_BYTES);
  mac(key.secret, datagram.subarray(0, HEADER_BYTES + body.length)).copy(datagram, HEADER_BYTES + body.length);
  return new Uint8Array(datagram.buffer, datagram.byteOffset, datagram.length);
}

/** Never throws: every input is either a message or a reject reason with a detail for the log. */
export function decodeDatagram(input: Uint8Array, keyring: Keyring, pair: string): Decoded {
  if (input.length > MAX_DATAGRAM_BYTES) return reject('oversized', `${input.length} bytes, at most ${MAX_DATAGRAM_BYTES}`);
  if (input.length < HEADER_BYTES + MAC_BYTES) return reject('truncated', `${input.length} bytes, at least ${HEADER_BYTES + MAC_BYTES}`);
  const datagram = Buffer.from(input.buffer, input.byteOffset, input.length);
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return reject('malformed', 'not a baton datagram (bad magic)');
  if (datagram[2] !== PROTOCOL_VERSION) return reject('bad-version', `protocol version ${datagram[2]}, this agent speaks ${PROTOCOL_VERSION}`);
  const kind = datagram[3] === KIND_CODE.beacon ? 'beacon' : undefined;
  if (kind === undefined) return reject('malformed', `unknown message kind ${datagram[3]}`);
  const bodyLength = datagram.readUInt16BE(8);
  const expected = HEADER_BYTES + bodyLength + MAC_BYTES;
  if (datagram.length < expected) return reject('truncated', `${datagram.length} bytes, header announces ${expected}`);
  if (datagram.length > expected) return reject('malformed', `${datagram.length} bytes, header announces ${expected}`);
  if (bodyLength > MAX_BODY_BYTES) return reject('oversized', `body of ${bodyLength} bytes, at most ${MAX_BODY_BYTES}`);
  const keyId = datagram.subarray(4, 8).toString('hex');
  const key = keyring.accepted.find((candidate) => candidate.id === keyId);
  if (key === undefined) return reject('unknown-key', `key id ${keyId} is not one of ours (${keyring.accepted.map((k) => k.id).join(', ')})`);
  const signed = datagram.subarray(0, HEADER_BYTES + bodyLength);
  const received = datagram.subarray(HEADER_BYTES + bodyLength);
  if (!timingSafeEqual(mac(key.secret, signed), received)) return reject('bad-mac', `MAC does not match key ${keyId}`);

  let body: unknown;
  try {
    body = JSON.parse(datagram.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength).toString('utf8'));
  } catch {
    return reject('malformed', 'body is not JSON');
  }
  const beacon = parseBeaconBody(body);
  if (typeof beacon === 'string') return reject('malformed', beacon);
  if (beacon.pair !== pair) return reject('wrong-pair', `pair '${beacon.pair}', ours is '${pair}'`);
  return {ok: true, message: {kind, beacon}, keyId};
}

function mac(secret: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

function reject(reason: RejectReason, detail: string): Decoded {
  return {ok: false, reason, detail};
}

// Field order is fixed so that the same beacon always encodes to the same bytes (golden test vectors).
function bodyOf(message: Message): Record<string, unknown> {
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
const BEACON_KEYS = new Set(['pair', 'node', 'host', 'boot', 'seq', 'sentAt', 'state', 'epoch', 'holdsIp', 'health', 'switchId', 'ack']);

/** A Beacon, or what is wrong with the body. Strict: unknown fields, wrong types and absurd numbers are refused. */
function parseBeaconBody(body: unknown): Beacon | string {
  if (!isRecord(body)) return 'body is not a JSON object';
  for (const key of Object.keys(body)) if (!BEACON_KEYS.has(key)) return `unknown field '${key.slice(0, 32)}'`;
  const {pair, node, host, boot, seq, sentAt, state, epoch, holdsIp, health, switchId, ack} = body;
  if (typeof pair !== 'string' || !NAME_PATTERN.test(pair)) return 'field pair: expected a pair name';
  if (node !== 'primary' && node !== 'backup') return 'field node: expected primary or backup';
  if (typeof host !== 'string' || !HOST_PATTERN.test(host)) return 'field host: expected a host name';
  if (typeof boot !== 'string' || !ID_PATTERN.test(boot)) return 'field boot: expected a boot id';
  if (!isCount(seq) || seq < 1) return 'field seq: expected a positive integer';
  if (!isCount(sentAt)) return 'field sentAt: expected ms since the epoch';
  if (typeof state !== 'string' || !(AGENT_STATE_NAMES as readonly string[]).includes(state)) return 'field state: expected an agent state';
  if (!isCount(epoch)) return 'field epoch: expected a non-negative integer';
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
  return {pair, node, host, boot, seq, sentAt, state: state as AgentStateName, epoch, holdsIp, health, switchId, ack: parsedAck};
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
