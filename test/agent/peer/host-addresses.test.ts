// What one host tells the other of its own addresses at the start of a switch, and how the told list is checked.

import test from 'ava';
import {decodeHostAddresses, MAX_HOST_ADDRESSES, shareableAddresses} from '../../../agent/peer/host-addresses.js';
import {decodePeerParams} from '../../../agent/peer/peer-protocol.js';
import {encodeMessage, MAX_DATAGRAM_BYTES, openFrame, readFrame} from '../../../agent/peer/beacon-codec.js';
import {testKey, testKeyring} from '../../fakes/test-config.js';

test('a host tells its addresses of both families, canonical and once each, without loopback and link-local ones', (t) => {
  const {shared, left} = shareableAddresses(['127.0.0.1', '192.0.2.11', '::1', '2001:DB8:0::11', 'fe80::11', '2001:db8::11',
    '::ffff:192.0.2.12', 'not an address', '']);
  t.deepEqual(shared, ['192.0.2.11', '2001:db8::11', '192.0.2.12']);
  t.deepEqual(left, []);
});

test('at most MAX_HOST_ADDRESSES are told, so the request fits one datagram; the rest is returned to be logged', (t) => {
  const many = Array.from({length: MAX_HOST_ADDRESSES + 2}, (_, i) => `2001:db8:ffff:ffff:ffff:ffff:ffff:${(i + 1).toString(16)}`);
  const {shared, left} = shareableAddresses(many);
  t.is(shared.length, MAX_HOST_ADDRESSES);
  t.deepEqual(left, many.slice(MAX_HOST_ADDRESSES));
});

test('a told list is read canonically; anything but a short list of addresses is refused with BAD_REQUEST', (t) => {
  t.is(decodeHostAddresses(undefined, 'begin'), undefined, 'an older agent tells nothing');
  t.deepEqual(decodeHostAddresses(['2001:DB8::11', '::ffff:192.0.2.11'], 'begin'), ['2001:db8::11', '192.0.2.11']);
  t.throws(() => decodeHostAddresses('192.0.2.11', 'begin'), {message: `begin: addresses must be a list of at most ${MAX_HOST_ADDRESSES} IP addresses`});
  t.throws(() => decodeHostAddresses(Array.from({length: MAX_HOST_ADDRESSES + 1}, () => '192.0.2.11'), 'begin'), {code: 'BAD_REQUEST'} as never);
  t.throws(() => decodeHostAddresses(['192.0.2.11', 'example.org'], 'begin'), {message: 'begin: addresses: "example.org" is not an IP address'});
  t.throws(() => decodeHostAddresses([7], 'begin'), {message: 'begin: addresses: 7 is not an IP address'});
});

test('begin carries the coordinator\'s addresses beside the drain\'s giver address', (t) => {
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4, addresses: ['2001:db8::11']}), {side: 'taker', epoch: 4, addresses: ['2001:db8::11']});
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4, giverAddress: '192.0.2.11', addresses: []}),
    {side: 'taker', epoch: 4, giverAddress: '192.0.2.11', addresses: []});
  t.throws(() => decodePeerParams('begin', {side: 'taker', epoch: 4, addresses: ['nope']}), {message: 'begin: addresses: "nope" is not an IP address'});
});

test('a begin with the most and longest addresses, and the reply with as many, each fit one datagram and decode', (t) => {
  // The longest an address's canonical text gets: eight groups of four digits, or an IPv4-mapped tail unmapped.
  const longest = Array.from({length: MAX_HOST_ADDRESSES}, (_, i) => `2001:db8:ffff:ffff:ffff:ffff:ffff:${(0xff00 + i).toString(16)}`);
  const envelope = {pair: 'abcdefghijklmnopqrstuvwxyz012345', node: 'primary' as const, boot: 'x'.repeat(21), seq: Number.MAX_SAFE_INTEGER,
    sentAt: Date.UTC(2026, 11, 6)};
  const request = encodeMessage({kind: 'request', request: {...envelope, to: 'y'.repeat(21), id: 'z'.repeat(21), op: 'begin',
    switchId: 's'.repeat(21), params: {side: 'taker', epoch: Number.MAX_SAFE_INTEGER, giverAddress: '255.255.255.254', addresses: longest}}}, testKey());
  const reply = encodeMessage({kind: 'reply', reply: {...envelope, id: 'z'.repeat(21), ok: true, error: undefined, result: {addresses: longest}}}, testKey());
  for (const datagram of [request, reply]) {
    t.log(`${datagram.length} of ${MAX_DATAGRAM_BYTES} bytes`);
    t.true(datagram.length <= MAX_DATAGRAM_BYTES, `${datagram.length} bytes`);
    const framed = readFrame(datagram, testKeyring());
    t.true(framed.ok && openFrame(framed.frame, envelope.pair, envelope.sentAt).ok);
  }
});
