// The rehearsal aids on fakes: resume the peer from here, and make the active host drop its link for a while.

import test from 'ava';
import {drive, settledPair, switchover} from '../fakes/switch-driver.js';

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
