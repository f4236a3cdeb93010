import {createHmac} from 'node:crypto';
import {readFileSync} from 'node:fs';
import test from 'ava';
import {decodeDatagram, encodeMessage, HEADER_BYTES, MAC_BYTES, MAX_DATAGRAM_BYTES, type Beacon, type RejectReason} from '../../../agent/peer/beacon-codec.js';
import {testKey, testKeyring} from '../../fakes/test-config.js';

interface Vectors {
  beacon: Beacon;
  valid: Array<{name: string; hex: string}>;
  rejected: Array<{name: string; reason: RejectReason; hex: string}>;
}
const vectors = JSON.parse(readFileSync(new URL('../../../../test/fixtures/beacon-vectors.json', import.meta.url), 'utf8')) as Vectors;
const key = testKey();
const keyring = testKeyring(key);
// Any moment: only keys with an `until` look at it.
const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

/** A datagram with any body, correctly framed and signed: what a peer with our key but a bug could send. */
function signedRaw(body: string): Uint8Array {
  const bodyBytes = Buffer.from(body, 'utf8');
  const header = Buffer.from([0x42, 0x54, 1, 1, ...Buffer.from(key.id, 'hex'), bodyBytes.length >> 8, bodyBytes.length & 0xff, 0, 0]);
  const signed = Buffer.concat([header, bodyBytes]);
  return new Uint8Array(Buffer.concat([signed, createHmac('sha256', key.secret).update(signed).digest()]));
}

test('the golden beacon encodes to the same bytes as recorded', (t) => {
  const encoded = encodeMessage({kind: 'beacon', beacon: vectors.beacon}, key);
  t.is(Buffer.from(encoded).toString('hex'), vectors.valid[0]?.hex ?? 'missing');
});

test('every golden valid datagram decodes, and the first one to the golden beacon', (t) => {
  for (const vector of vectors.valid) {
    const decoded = decodeDatagram(fromHex(vector.hex), keyring, 'web', NOW);
    t.true(decoded.ok, vector.name);
  }
  const first = decodeDatagram(fromHex(vectors.valid[0]?.hex ?? ''), keyring, 'web', NOW);
  t.deepEqual(first.ok && first.message.kind === 'beacon' ? first.message.beacon : undefined, vectors.beacon);
});

test('the header carries magic, version, kind, key id and body length, and the MAC is HMAC-SHA256 over all before it', (t) => {
  const datagram = Buffer.from(fromHex(vectors.valid[0]?.hex ?? ''));
  t.deepEqual([...datagram.subarray(0, 4)], [0x42, 0x54, 1, 1]);
  t.is(datagram.subarray(4, 8).toString('hex'), key.id);
  const bodyLength = datagram.readUInt16BE(8);
  t.is(datagram.length, HEADER_BYTES + bodyLength + MAC_BYTES);
  const expectedMac = createHmac('sha256', key.secret).update(datagram.subarray(0, HEADER_BYTES + bodyLength)).digest();
  t.deepEqual(datagram.subarray(HEADER_BYTES + bodyLength), expectedMac);
});

test('a round trip keeps every field, with and without an ack', (t) => {
  const beacon: Beacon = {...vectors.beacon, state: 'active', holdsIp: true, switchId: 'k3F9aBcD', ack: undefined};
  for (const candidate of [beacon, vectors.beacon]) {
    const decoded = decodeDatagram(encodeMessage({kind: 'beacon', beacon: candidate}, key), keyring, 'web', NOW);
    t.deepEqual(decoded.ok && decoded.message.kind === 'beacon' ? decoded.message.beacon : decoded, candidate);
  }
});

const rejectedGolden = test.macro({
  exec(t, name: string) {
    const vector = vectors.rejected.find((v) => v.name === name);
    if (vector === undefined) return t.fail(`no vector named ${name}`);
    const decoded = decodeDatagram(fromHex(vector.hex), keyring, 'web', NOW);
    t.false(decoded.ok);
    t.is(decoded.ok ? undefined : decoded.reason, vector.reason);
  },
  title: (_, name: string) => `golden datagram rejected: ${name}`,
});
for (const vector of vectors.rejected) test(rejectedGolden, vector.name);

const rejects = test.macro({
  exec(t, input: () => Uint8Array, reason: RejectReason, detailPart: string) {
    const decoded = decodeDatagram(input(), keyring, 'web', NOW);
    t.false(decoded.ok);
    if (decoded.ok) return;
    t.is(decoded.reason, reason);
    t.true(decoded.detail.includes(detailPart), `detail '${decoded.detail}' should mention '${detailPart}'`);
  },
  title: (title) => `rejects ${title ?? ''}`,
});

test('an empty datagram as truncated', rejects, () => new Uint8Array(0), 'truncated', 'at least');
test('an oversized datagram before looking at it', rejects, () => new Uint8Array(MAX_DATAGRAM_BYTES + 1).fill(0x42), 'oversized', `${MAX_DATAGRAM_BYTES + 1} bytes`);
test('bytes that are not a baton datagram as malformed', rejects, () => new Uint8Array(64).fill(7), 'malformed', 'magic');
test('a signed body that is not JSON as malformed', rejects, () => signedRaw('{not json'), 'malformed', 'not JSON');
test('a signed body that is a JSON array as malformed', rejects, () => signedRaw('[1,2,3]'), 'malformed', 'not a JSON object');
test('a signed body with an unknown field as malformed', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, extra: 1})), 'malformed', "unknown field 'extra'");
test('an unknown field named with a terminal escape is reported escaped', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, '\u001b[2J\n': 1})), 'malformed', "unknown field '\\x1b[2J\\n'");
test('a signed body with a negative sequence as malformed', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, seq: -5})), 'malformed', 'seq');
test('a signed body with a huge sequence as malformed', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, seq: 2 ** 60})), 'malformed', 'seq');
test('a signed body with an epoch above 2^31 − 1 as malformed', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, epoch: 2 ** 53 - 1})), 'malformed', 'field epoch: expected an integer 0..2147483647');
test('a signed body with an unknown state as malformed', rejects,
  () => signedRaw(JSON.stringify({...vectors.beacon, state: 'master'})), 'malformed', 'state');
test('a datagram longer than its header says as malformed', rejects,
  () => new Uint8Array(Buffer.concat([Buffer.from(fromHex(vectors.valid[0]?.hex ?? '')), Buffer.from([0])])), 'malformed', 'header announces');

test('a beacon signed with a key kept for rotation is accepted and names that key', (t) => {
  const old = testKey('the-old-secret-still-accepted-for-a-while');
  const datagram = encodeMessage({kind: 'beacon', beacon: vectors.beacon}, old);
  t.is(decodeDatagram(datagram, testKeyring(key), 'web', NOW).ok, false);
  const decoded = decodeDatagram(datagram, testKeyring(key, old), 'web', NOW);
  t.true(decoded.ok);
  t.is(decoded.ok ? decoded.keyId : '', old.id);
});

test('a beacon signed with a rotated-out key is accepted until its end, then refused as expired-key', (t) => {
  const until = Date.UTC(2027, 0, 31);
  const old = {...testKey('the-old-secret-still-accepted-for-a-while'), until};
  const datagram = encodeMessage({kind: 'beacon', beacon: vectors.beacon}, old);
  t.true(decodeDatagram(datagram, testKeyring(key, old), 'web', until - 1).ok);
  const after = decodeDatagram(datagram, testKeyring(key, old), 'web', until);
  t.is(after.ok ? undefined : after.reason, 'expired-key');
  t.regex(after.ok ? '' : after.detail, /accepted until 2027-01-31T00:00:00.000Z; sign with the new secret_file on the peer/);
  const forged = new Uint8Array(datagram);
  forged[forged.length - 1] = (forged.at(-1) ?? 0) ^ 1;
  const bad = decodeDatagram(forged, testKeyring(key, old), 'web', until);
  t.is(bad.ok ? undefined : bad.reason, 'bad-mac', 'only datagrams really signed with the old key count as expired-key');
});

test('encoding refuses a body too large for one datagram', (t) => {
  t.throws(() => encodeMessage({kind: 'beacon', beacon: {...vectors.beacon, host: 'h'.repeat(2000)}}, key), {instanceOf: RangeError});
});
