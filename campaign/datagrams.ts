// Hostile datagrams, as fast-check arbitraries: random bytes; valid datagrams with bytes flipped, cut short or
// extended; and correctly framed and signed bodies of any JSON (a peer that holds the key but sends nonsense:
// deep nesting, huge numbers, wrong types). Shared by the unit fuzz test, the campaign's fuzz part and the flood.

import {createHmac} from 'node:crypto';
import fc from 'fast-check';
import {encodeMessage, HEADER_BYTES, MAX_DATAGRAM_BYTES, type Beacon, type PeerReply, type PeerRequest} from '../agent/peer/beacon-codec.js';
import type {Key} from '../agent/config/secret-files.js';

export interface DatagramTemplates {
  readonly beacon: Beacon;
  readonly request: PeerRequest;
  readonly reply: PeerReply;
}

/** A plausible message of each kind from the backup of pair `pair`, sent at `sentAt`. */
export function templates(pair: string, sentAt: number): DatagramTemplates {
  const envelope = {pair, node: 'backup' as const, boot: 'bootA', sentAt};
  return {
    beacon: {...envelope, seq: 7, host: 'web-b', state: 'standby', epoch: 1, holdsIp: false, health: 'ok', switchId: '', ack: undefined},
    request: {...envelope, seq: 8, to: 'bootP', id: 'req1', op: 'apply', switchId: 'sw1', params: {step: 'primary-net-down'}},
    reply: {...envelope, seq: 9, id: 'req0', ok: true, error: undefined, result: {applied: true}},
  };
}

/** The templates encoded and signed with `key`: the intact inputs the mutations start from. */
export function validDatagrams(key: Key, from: DatagramTemplates): Uint8Array[] {
  return [
    encodeMessage({kind: 'beacon', beacon: from.beacon}, key),
    encodeMessage({kind: 'request', request: from.request}, key),
    encodeMessage({kind: 'reply', reply: from.reply}, key),
  ];
}

/** The codec's framing with a valid MAC around any body: only the body's validation stands in the way. */
export function signedBody(key: Key, header: Uint8Array, body: string): Uint8Array {
  const bodyBytes = Buffer.from(body.slice(0, 1300), 'utf8').subarray(0, 1300);
  const head = Buffer.from(header.subarray(0, HEADER_BYTES));
  head.writeUInt16BE(bodyBytes.length, 8);
  const toSign = Buffer.concat([head, bodyBytes]);
  return new Uint8Array(Buffer.concat([toSign, createHmac('sha256', key.secret).update(toSign).digest()]));
}

export function hostileDatagrams(key: Key, from: DatagramTemplates): fc.Arbitrary<Uint8Array> {
  const valid = validDatagrams(key, from);
  const header = valid[0] ?? new Uint8Array(HEADER_BYTES);
  return fc.oneof(
    fc.uint8Array({maxLength: MAX_DATAGRAM_BYTES + 64}),
    fc.uint8Array({minLength: MAX_DATAGRAM_BYTES + 1, maxLength: 9000}),
    fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({min: 1, max: 255})), {minLength: 1, maxLength: 8}))
      .map(([base, flips]) => {
        const copy = new Uint8Array(base);
        for (const [at, xor] of flips) copy[at % copy.length] = (copy[at % copy.length] ?? 0) ^ xor;
        return copy;
      }),
    fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([base, cut]) => base.subarray(0, cut % base.length)),
    fc.tuple(fc.constantFrom(...valid), fc.uint8Array({minLength: 1, maxLength: 64})).map(([base, extra]) => new Uint8Array([...base, ...extra])),
    // Header fields that lie: a body length beyond the datagram, a kind or version nobody speaks.
    fc.tuple(fc.constantFrom(...valid), fc.integer({min: 0, max: 0xffff}), fc.integer({min: 0, max: 255}), fc.integer({min: 0, max: 255}))
      .map(([base, length, kind, version]) => {
        const copy = Buffer.from(base);
        copy.writeUInt16BE(length, 8);
        copy[3] = kind;
        copy[2] = version;
        return new Uint8Array(copy);
      }),
    fc.jsonValue({maxDepth: 8}).map((value) => signedBody(key, header, JSON.stringify(value))),
    fc.constantFrom(...Object.values(from)).chain((template: object) =>
      fc.record(Object.fromEntries(Object.keys(template).map((k) => [k, fc.oneof(fc.jsonValue({maxDepth: 3}), fc.constant(Number.MAX_VALUE), fc.constant(2 ** 53 + 1))]))))
      .map((value) => signedBody(key, header, JSON.stringify(value))),
    // Deep nesting, far past what JSON.parse handles comfortably in a small heap.
    fc.integer({min: 100, max: 640}).map((depth) => signedBody(key, header, `${'['.repeat(depth)}${']'.repeat(depth)}`)),
  );
}
