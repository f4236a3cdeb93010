// The rehearsal aids on fakes: resume the peer from here, make the active host drop its link for a while, and ask
// whether each host enables the aids.

import test from 'ava';
import {HEADER_BYTES} from '../../agent/peer/beacon-codec.js';
import {REHEARSAL_ASK_DEADLINE_MS} from '../../agent/rehearsal.js';
import {createFakePair} from '../fakes/fake-pair.js';
import {drive, OPTIONS, settledPair, switchover} from '../fakes/switch-driver.js';

test('rehearsal helpers: resume the peer from here, and make the active host drop its link for a while', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'released');
  const resumed = await drive(pair.clock, pair.backup.agent.resume(true));
  t.is(resumed.state, 'standby', 'the backup resumed the primary over the peer channel');
  t.is(pair.primary.agent.state.name, 'standby');

  const failed = await drive(pair.clock, pair.primary.agent.failActive(3));
  t.deepEqual(failed, {host: {role: 'backup', host: 'web-backup'}, seconds: 3}, 'the request went to the active peer');
  t.false(pair.backup.network.linkUp);
  await pair.clock.advance(3100);
  t.true(pair.backup.network.linkUp, 'the link came back by itself');
  await t.throwsAsync(pair.backup.agent.resume(false), {message: /not released/});
});

async function pairWithRehearsal(t: Parameters<typeof createFakePair>[0], enabled: {primary: boolean; backup: boolean}) {
  const pair = createFakePair(t, {primary: {config: {rehearsal: {enabled: enabled.primary}}}, backup: {config: {rehearsal: {enabled: enabled.backup}}}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  return pair;
}

test('fail-active on an agent whose configuration does not enable rehearsals is refused, naming the key', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: false, backup: true});
  const error = await t.throwsAsync(pair.primary.agent.failActive(3));
  t.is((error as {code?: string}).code, 'BAD_REQUEST');
  t.is(error?.message, 'fail-active (baton rehearse --with-failure) is a rehearsal aid, and /etc/baton/primary.yaml does not ' +
    'enable it: set `rehearsal: {enabled: true}` there (on a pair kept for rehearsals, not in production) and restart the agent');
  t.true(pair.primary.network.linkUp);
});

test('a peer that does not enable rehearsals refuses drop-link, whatever the asking host allows', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: true, backup: false});
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  // The backup holds the IP now: the primary's fail-active asks it to drop its link.
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.failActive(3)));
  t.is((error as {code?: string}).code, 'BAD_REQUEST');
  t.regex(error?.message ?? '', /the peer's drop-link .* is a rehearsal aid, and \/etc\/baton\/backup\.yaml does not enable it: set `rehearsal: \{enabled: true\}`/);
  t.true(pair.backup.network.linkUp);
  // The host asked says so in its own log: someone asked to cut its link.
  t.true(pair.backup.logs.some((line) => /\(rehearsal\) refused the peer's drop-link: the peer's drop-link .* is a rehearsal aid/.test(line)), pair.backup.logs.join('\n'));
});

test('switchover --pause-after is refused where rehearsals are not enabled, before any step', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: false, backup: false});
  const error = await t.throwsAsync(pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'assign-ip', seconds: 5}}, () => undefined));
  t.regex(error?.message ?? '', /^switchover --pause-after is a rehearsal aid, and \/etc\/baton\/primary\.yaml does not enable it/);
  t.is(pair.primary.agent.state.name, 'active');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
});

/** The `result` of every reply the host sent to a `rehearsal` request, as it went on the wire. */
function rehearsalReplies(sent: readonly Uint8Array[]): unknown[] {
  return sent.map((datagram) => Buffer.from(datagram))
    .map((datagram) => JSON.parse(datagram.subarray(HEADER_BYTES, HEADER_BYTES + datagram.readUInt16BE(8)).toString('utf8')) as {result?: unknown})
    .filter((body) => typeof body.result === 'object' && body.result !== null && 'enabled' in body.result)
    .map((body) => body.result);
}

test('each host says whether its own configuration enables the rehearsal aids; the peer tells that and nothing else', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: true, backup: false});
  t.deepEqual(await drive(pair.clock, pair.primary.agent.rehearsalAids()), {
    self: {host: {role: 'primary', host: 'web-primary'}, enabled: true},
    peer: {host: {role: 'backup', host: 'web-backup'}, enabled: false},
  });
  t.deepEqual(rehearsalReplies(pair.backup.transport.sent), [{enabled: false}]);
  t.deepEqual(await drive(pair.clock, pair.backup.agent.rehearsalAids()), {
    self: {host: {role: 'backup', host: 'web-backup'}, enabled: false},
    peer: {host: {role: 'primary', host: 'web-primary'}, enabled: true},
  }, 'asked from the other side, the same');
  t.true(pair.primary.network.linkUp);
  t.is(pair.primary.agent.state.name, 'active');
});

test('a peer too old to know the rehearsal request is named as such at its deadline, not waited for', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: true, backup: true});
  // What an older agent does with an op it does not know: its codec refuses the datagram as malformed and nothing
  // answers. Its beacons go on.
  pair.primary.transport.lose = (datagram) => Buffer.from(datagram).includes('"op":"rehearsal"');
  const asked = pair.clock.now();
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.rehearsalAids()));
  t.is((error as {code?: string}).code, 'PEER_UNSUPPORTED');
  t.is(error?.message, `the backup (web-backup) is alive but did not answer the rehearsal request within ${REHEARSAL_ASK_DEADLINE_MS} ms: ` +
    'its baton-agent is older than this one and does not support it (it rejects it as malformed, `field op: expected a ' +
    'request operation`, counted in its `baton status`); upgrade baton there');
  t.true(pair.clock.now() - asked <= REHEARSAL_ASK_DEADLINE_MS + 10, 'given up at the deadline');
});

test('a peer that is not alive is not asked: the rehearsal needs both hosts', async (t) => {
  const pair = await pairWithRehearsal(t, {primary: true, backup: true});
  await pair.backup.kill();
  await pair.clock.advance(pair.primary.config.heartbeat.deadAfterMs + 100);
  const sentBefore = pair.primary.transport.sent.length;
  const error = await t.throwsAsync(pair.primary.agent.rehearsalAids());
  t.is((error as {code?: string}).code, 'PEER_UNREACHABLE');
  t.regex(error?.message ?? '', /^the backup \(web-backup\) is not alive \(no valid beacon from it\), so whether it enables the rehearsal aids cannot be asked/);
  t.is(pair.primary.transport.sent.length, sentBefore, 'no request went out');
});
