// The outbox's record of when our datagrams left (the sent log): what a peer's ack can be timed against, and that it
// stays bounded however a switch's requests and replies fall between the beacons.

import test from 'ava';
import type {Beacon, Envelope} from '../../../agent/peer/beacon-codec.js';
import {Outbox} from '../../../agent/peer/outbox.js';
import {SentLog} from '../../../agent/peer/sent-log.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeTransport} from '../../fakes/fake-transport.js';
import {PRIMARY_ADDRESS, testConfig} from '../../fakes/test-config.js';

const BODY: Omit<Beacon, keyof Envelope> = {host: 'web-p', state: 'active', epoch: 1, holdsIp: true, health: 'ok', switchId: '', ack: undefined};

function outbox(): {clock: FakeClock; outbox: Outbox; log: SentLog} {
  const clock = new FakeClock();
  const config = testConfig('primary');
  const log = new SentLog(config.heartbeat.deadAfterMs, config.heartbeat.intervalMs);
  return {clock, log, outbox: new Outbox(config, clock, new FakeTransport(PRIMARY_ADDRESS), 'bootP', log)};
}

const request = (n: number) => ({id: `r${n}`, op: 'host-info' as const, switchId: 's1', params: {}});
const reply = (n: number) => ({id: `r${n}`, ok: true, error: undefined, result: {}});

test('a peer\'s ack of our request or reply is timed like an ack of a beacon (issue 14)', async (t) => {
  const {clock, outbox: out, log} = outbox();
  await out.beacon(BODY);
  await clock.advance(10);
  await out.request(request(1), 'bootB');
  await clock.advance(10);
  await out.reply(reply(1));
  t.deepEqual([1, 2, 3].map((seq) => log.sentAt(seq)), [0, 10, 20]);
});

test('sent-at times stay bounded to the newest datagrams, however requests and replies fall between beacons (issue 14)', async (t) => {
  const {clock, outbox: out, log} = outbox();
  // 300 switches' worth of peer requests and replies between the beacons.
  for (let n = 0; n < 1500; n++) {
    await out.beacon(BODY);
    if (n % 5 === 0) await out.request(request(n), 'bootB');
    if (n % 5 === 1) await out.reply(reply(n));
    await clock.advance(200);
  }
  const kept = Array.from({length: out.sent}, (_, i) => i + 1).filter((seq) => log.sentAt(seq) !== undefined);
  t.true(kept.length < 400, `${kept.length} of ${out.sent} kept`);
  t.deepEqual(kept, Array.from({length: kept.length}, (_, i) => out.sent - kept.length + 1 + i), 'the newest ones, without a hole');
});
