// Property-based fuzzing of the datagram decoder and the peer monitor: whatever arrives, nothing throws, every
// input is either a valid message or rejected with a reason, and nothing unsigned changes the peer view.

import {createHmac} from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import {decodeDatagram, encodeMessage, MAX_DATAGRAM_BYTES, REJECT_REASONS, type Beacon, type PeerRequest} from '../../agent/beacon-codec.js';
import {PeerMonitor} from '../../agent/peer-monitor.js';
import {BACKUP_ADDRESS, testKey, testKeyring} from '../fakes/test-config.js';

const key = testKey();
const keyring = testKeyring(key);
const WALL = Date.UTC(2026, 10, 21, 12, 0, 0);
// Enough runs to cover the shapes below many times over, few enough to keep the unit suite fast.
const RUNS = 20_000;

const beacon: Beacon = {
  pair: 'web', node: 'backup', host: 'web-b', boot: 'bootA', seq: 7, sentAt: WALL, state: 'standby', epoch: 1,
  holdsIp: false, health: 'ok', switchId: '', ack: undefined,
};
const request: PeerRequest = {pair: 'web', node: 'backup', boot: 'bootA', seq: 8, sentAt: WALL, id: 'req1', op: 'apply', switchId: 'sw1', params: {step: 'assign-ip'}};
const valid = [encodeMessage({kind: 'beacon', beacon}, key), encodeMessage({kind: 'request', request}, key)];

/** Random bytes; valid datagrams with bytes flipped, cut or extended; and signed bodies of any JSON. */
const datagrams = fc.oneof(
  fc.uint8Array({maxLength: MAX_DATAGRAM_BYTES + 64}),
  fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({min: 1, max: 255})), {minLength: 1, maxLength: 8}))
    .map(([base, flips]) => {
      const copy = new Uint8Array(base);
      for (const [at, xor] of flips) copy[at % copy.length] = (copy[at % copy.length] ?? 0) ^ xor;
      return copy;
    }),
  fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([base, cut]) => base.subarray(0, cut % base.length)),
  fc.tuple(fc.constantFrom(...valid), fc.uint8Array({minLength: 1, maxLength: 64})).map(([base, extra]) => new Uint8Array([...base, ...extra])),
  // A peer holding our key but sending nonsense: anything JSON can express, deeply nested, huge numbers.
  fc.jsonValue({maxDepth: 8}).map((value) => signed(JSON.stringify(value))),
  fc.record({...Object.fromEntries(Object.keys(beacon).map((k) => [k, fc.jsonValue({maxDepth: 3})]))}).map((value) => signed(JSON.stringify(value))),
);

function signed(body: string): Uint8Array {
  // The codec's own framing with a valid MAC, whatever the body: only the body's validation stands in the way.
  const framed = encodeMessage({kind: 'beacon', beacon}, key);
  const bodyBytes = Buffer.from(body.slice(0, 1300), 'utf8').subarray(0, 1300);
  const header = Buffer.from(framed.subarray(0, 12));
  header.writeUInt16BE(bodyBytes.length, 8);
  const toSign = Buffer.concat([header, bodyBytes]);
  return new Uint8Array(Buffer.concat([toSign, createHmac('sha256', key.secret).update(toSign).digest()]));
}

test('the decoder never throws, and every input is a message or a known reject reason', (t) => {
  let accepted = 0;
  const reasons = new Map<string, number>();
  fc.assert(fc.property(datagrams, (input) => {
    const decoded = decodeDatagram(input, keyring, 'web');
    if (decoded.ok) {
      accepted += 1;
      return;
    }
    if (!REJECT_REASONS.includes(decoded.reason) || decoded.detail.length === 0) throw new Error(`bad rejection ${JSON.stringify(decoded)}`);
    reasons.set(decoded.reason, (reasons.get(decoded.reason) ?? 0) + 1);
  }), {numRuns: RUNS});
  t.log(`${RUNS} inputs: ${accepted} accepted, rejected ${[...reasons].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  t.true((reasons.get('bad-mac') ?? 0) > 0 && (reasons.get('malformed') ?? 0) > 0 && (reasons.get('truncated') ?? 0) > 0);
});

test('no input that is not an intact valid datagram changes what the monitor believes about the peer', (t) => {
  fc.assert(fc.property(fc.array(datagrams, {maxLength: 20}), (inputs) => {
    const monitor = new PeerMonitor({pair: 'web', peerRole: 'backup', peerAddress: BACKUP_ADDRESS, keyring, deadAfterMs: 1000, maxClockSkewMs: 5000});
    for (const input of inputs) {
      const intact = valid.some((v) => v.length === input.length && v.every((byte, i) => byte === input[i]));
      const observed = monitor.observe(input, BACKUP_ADDRESS, 0, WALL);
      if (observed.ok && !intact && observed.message.kind === 'beacon' && observed.message.beacon.epoch !== beacon.epoch) {
        throw new Error('a forged beacon reached the peer view');
      }
    }
    const stats = monitor.stats(0);
    const rejected = Object.values(stats.rejected).reduce((a, b) => a + b, 0);
    if (stats.accepted + rejected !== inputs.length) throw new Error('an input was neither accepted nor counted as rejected');
  }), {numRuns: 2000});
  t.pass();
});
