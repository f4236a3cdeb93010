// The peer's baton version: asked once the peer hears this agent, forgotten when it restarts, and, from an agent of
// baton 0.1.0 that cannot answer, left unknown without breaking anything between old and new.

import test from 'ava';
import {encodeMessage, type Beacon, type JsonObject} from '../../../agent/peer/beacon-codec.js';
import {BatonError} from '../../../agent/errors.js';
import {createLogger} from '../../../agent/log.js';
import {PeerVersion, VERSION_ASK_AGAIN_MS} from '../../../agent/peer/peer-version.js';
import {VERSION} from '../../../agent/version.js';
import {createFakePair} from '../../fakes/fake-pair.js';
import {FakeClock, settle} from '../../fakes/fake-clock.js';
import {testKey} from '../../fakes/test-config.js';

const INTERVAL_MS = 200;

function beacon(boot: string, ackOf: string | undefined): Beacon {
  return {
    pair: 'web', node: 'backup', boot, seq: 1, sentAt: 0, host: 'web-b', state: 'standby', epoch: 0, holdsIp: false, health: 'ok',
    switchId: '', ack: ackOf === undefined ? undefined : {boot: ackOf, seq: 1, heldMs: 0},
  };
}

function tracker(answer: () => Promise<JsonObject>) {
  const clock = new FakeClock();
  const logs: string[] = [];
  const asked: number[] = [];
  const version = new PeerVersion({
    clock, selfBoot: 'me', peerRole: 'backup', intervalMs: INTERVAL_MS,
    log: createLogger({journald: true, debug: false, write: (line) => logs.push(line), wallNow: () => 0}),
    ask: () => {
      asked.push(clock.now());
      return answer();
    },
  });
  return {clock, logs, asked, version};
}

test('the peer is asked once it acknowledges this agent and has been heard for two intervals; its answer is kept for that run', async (t) => {
  const {clock, asked, version} = tracker(async () => ({version: '9.8.7'}));
  version.seen(beacon('b1', undefined));
  await clock.advance(2 * INTERVAL_MS);
  version.seen(beacon('b1', 'someone-else'));
  t.deepEqual(asked, [], 'not asked before it acknowledges a datagram of this run');
  version.seen(beacon('b1', 'me'));
  await settle();
  t.deepEqual(asked, [2 * INTERVAL_MS]);
  t.is(version.of('b1'), '9.8.7');
  version.seen(beacon('b1', 'me'));
  t.is(asked.length, 1, 'asked once per run');
  t.is(version.of('b0'), undefined, 'an answer belongs to the run that gave it');
});

test('a restarted peer is asked again, and its old answer is not shown for the new run', async (t) => {
  const answers = ['1.0.0', '1.1.0'];
  const {clock, asked, version} = tracker(async () => ({version: answers.shift() ?? ''}));
  version.seen(beacon('b1', undefined));
  await clock.advance(2 * INTERVAL_MS);
  version.seen(beacon('b1', 'me'));
  await settle();
  version.seen(beacon('b2', 'me'));
  t.is(version.of('b2'), undefined);
  await clock.advance(2 * INTERVAL_MS);
  version.seen(beacon('b2', 'me'));
  await settle();
  t.is(asked.length, 2);
  t.is(version.of('b2'), '1.1.0');
});

test('a peer that does not answer (an agent of baton 0.1.0) stays unknown, and is asked again only minutes later', async (t) => {
  const {clock, asked, logs, version} = tracker(async () => {
    throw new BatonError('PEER_UNREACHABLE', 'the peer did not answer version within 1000 ms');
  });
  version.seen(beacon('old', undefined));
  await clock.advance(2 * INTERVAL_MS);
  version.seen(beacon('old', 'me'));
  await settle();
  t.is(version.of('old'), undefined);
  t.true(logs.some((line) => line.includes('the backup did not say which baton it runs') && line.includes('baton 0.1.0')), logs.join('\n'));
  await clock.advance(VERSION_ASK_AGAIN_MS - INTERVAL_MS);
  version.seen(beacon('old', 'me'));
  t.is(asked.length, 1, 'not asked at every beacon');
  await clock.advance(INTERVAL_MS);
  version.seen(beacon('old', 'me'));
  await settle();
  t.is(asked.length, 2);
});

test('an answer that is not a version is not shown', async (t) => {
  const {clock, logs, version} = tracker(async () => ({version: 'x\u001b[2J'}));
  version.seen(beacon('b1', undefined));
  await clock.advance(2 * INTERVAL_MS);
  version.seen(beacon('b1', 'me'));
  await settle();
  t.is(version.of('b1'), undefined);
  t.true(logs.some((line) => line.includes('answered the version question with no version')));
});

test('a beacon of this version carries only the fields an agent of baton 0.1.0 accepts (its codec refuses any other)', (t) => {
  // The beacon body of baton 0.1.0; the version travels in a peer request instead, which such an agent refuses alone.
  const fields010 = ['pair', 'node', 'host', 'boot', 'seq', 'sentAt', 'state', 'epoch', 'holdsIp', 'health', 'switchId', 'ack'];
  const datagram = Buffer.from(encodeMessage({kind: 'beacon', beacon: beacon('b1', 'me')}, testKey()));
  const body = JSON.parse(datagram.subarray(12, 12 + datagram.readUInt16BE(8)).toString('utf8')) as Record<string, unknown>;
  t.deepEqual(Object.keys(body).filter((key) => !fields010.includes(key)), []);
});

test('two agents of this version show each other\'s version in status', async (t) => {
  const {clock, primary, backup} = createFakePair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(2000);
  t.is((await primary.agent.status()).peer.version, VERSION);
  t.is((await backup.agent.status()).peer.version, VERSION);
  t.is((await primary.agent.status()).self.version, VERSION);
});

test('a peer that never answers the question, as an agent of baton 0.1.0 refuses it, shows no version, and the pair works as before', async (t) => {
  const {clock, primary, backup} = createFakePair(t);
  // What an agent of 0.1.0 does with a `version` request: refuses it (malformed), so the asker hears nothing.
  primary.transport.lose = (datagram) => {
    const bytes = Buffer.from(datagram);
    return bytes[3] === 2 && (JSON.parse(bytes.subarray(12, 12 + bytes.readUInt16BE(8)).toString('utf8')) as {op?: string}).op === 'version';
  };
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(3000);
  const status = await primary.agent.status();
  t.is(status.peer.version, undefined);
  t.true(status.peer.alive);
  t.is(status.self.state, 'active');
  t.is(status.peer.state, 'standby');
  t.is((await backup.agent.status()).peer.version, VERSION, 'the other way round it is answered');
  t.true(primary.logs.some((line) => line.includes('did not say which baton it runs')));
});
