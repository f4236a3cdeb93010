// A released host on fakes: it never takes the IP back by itself, stays released across a restart, and becomes a
// standby again on resume.

import test from 'ava';
import {drive, settledPair, switchover} from '../fakes/switch-driver.js';

test('resume turns a released host into a standby, and a released host never takes the IP back by itself', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'released');
  pair.backup.transport.connected = false;
  await pair.clock.advance(5000);
  t.is(pair.primary.agent.state.name, 'released', 'the peer is silent, but released means hands off');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  pair.backup.transport.connected = true;
  await pair.clock.advance(500);
  const resumed = await pair.primary.agent.resume();
  t.is(resumed.state, 'standby');
  await t.throwsAsync(pair.primary.agent.resume(), {message: /not released/});
});

test('a released host that restarts (reboot, agent upgrade) is still released, until resume', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  await pair.primary.kill();
  const restarted = pair.primary.restart();
  await restarted.start();
  await pair.clock.advance(2000);
  t.is(restarted.state.name, 'released');
  await drive(pair.clock, restarted.resume());
  t.is(restarted.state.name, 'standby');
  t.deepEqual(pair.primary.store.state?.released, false);
});
