// A pair whose beacons and peer requests travel over IPv6 (listen and peer in 2001:db8:0:1::/64) while the service
// address is IPv4: the agents see each other, a planned switchover and switchback, and an unplanned failover with the
// old primary's return, each judged from the kernels' address events (never two holders) and the client's answers.

import test from 'ava';
import {judgeHolders} from '../../cli/lab/address-events.js';
import {setHostLink} from '../../cli/lab/lab.js';
import {LAB_ADDRESSES6} from '../../cli/lab/topology-plan.js';
import {baton, servesAddress, servedBy, settled, statusOf, until, useLab, watched} from './lab-helpers.js';

// As failover.test.ts: a dead timer of 2 s.
const DEAD_AFTER_MS = 2000;

const fixture = useLab({web: 'builtin', heartbeatFamily: 6, extraConfig: `heartbeat: { interval_ms: 200, dead_after_ms: ${DEAD_AFTER_MS} }`},
  {probe: true});
const requireLab = fixture.lab;

test.serial('the agents listen on and beacon to their IPv6 addresses, and see each other alive', async (t) => {
  const l = requireLab();
  t.is(l.heartbeatFamily, 6);
  t.is(l.serviceIp, '192.0.2.100/25');
  const {primary, backup} = await settled(l);
  t.is(primary.self.listen, `[${LAB_ADDRESSES6.primary.svc}]:7411`);
  t.is(primary.peer.address, `[${LAB_ADDRESSES6.backup.svc}]:7411`);
  t.is(backup.peer.address, `[${LAB_ADDRESSES6.primary.svc}]:7411`);
  t.true(primary.peer.alive);
  t.true(backup.peer.alive);
  t.true(primary.beacons.accepted > 0 && backup.beacons.accepted > 0);
  t.is(primary.self.state, 'active');
  t.is(backup.self.state, 'standby');
});

test.serial('switchover and switchback over IPv6 peer requests: the client follows, never two holders', async (t) => {
  const l = requireLab();
  t.is(await servedBy(l, 'primary'), 'primary');
  const {result, history} = await watched(l, async () => {
    const over = await baton(l.hosts.primary, 'switchover');
    t.log(String(over.stdout));
    t.is(over.exitCode, 0, String(over.stderr));
    t.true(await servesAddress(l.hosts.backup));
    t.is(await servedBy(l, 'backup'), 'backup');
    const back = await baton(l.hosts.primary, 'switchover');
    t.is(back.exitCode, 0, String(back.stderr));
    return back;
  });
  t.regex(String(result.stdout), /is free to upgrade/);
  t.is(await servedBy(l, 'primary'), 'primary');
  const changes = (host: string): string[] => history.events.filter((e) => e.host === host && e.change.startsWith('address')).map((e) => e.change);
  t.deepEqual(changes('backup'), ['address-added', 'address-removed']);
  t.deepEqual(changes('primary'), ['address-removed', 'address-added']);
  const judged = judgeHolders(history);
  t.deepEqual(judged.overlaps, [], 'never two holders');
  t.deepEqual(judged.final, ['primary']);
  const resumed = await baton(l.hosts.backup, 'resume');
  t.is(resumed.exitCode, 0, String(resumed.stderr));
  const {backup} = await settled(l);
  t.is(backup.self.state, 'standby');
});

test.serial('the primary\'s link cut: the backup takes over; back up, the old primary hears the backup over IPv6 again and stays standby', async (t) => {
  const l = requireLab();
  t.is((await settled(l)).primary.self.state, 'active');
  const {history} = await watched(l, async () => {
    const cutAt = Date.now();
    await setHostLink(l.hosts.primary, 'eth0', false);
    t.is(await servedBy(l, 'backup'), 'backup');
    t.log(`client served by the backup ${Date.now() - cutAt} ms after the cut (dead timer ${DEAD_AFTER_MS} ms)`);
    const backup = await statusOf(l.hosts.backup);
    t.is(backup.self.state, 'active');
    t.false(backup.peer.alive);
    await setHostLink(l.hosts.primary, 'eth0', true);
    // Its IPv6 beacon address was flushed with the link and put back: the agents must find each other again.
    return until('the returning primary stands by, both peers alive', 20_000, async () => {
      const pair = await settled(l, 20_000);
      return pair.primary.self.state === 'standby' ? pair : undefined;
    });
  });
  const after = await settled(l);
  t.true(after.primary.peer.alive && after.backup.peer.alive);
  t.false(after.primary.self.holdsIp);
  t.true(after.backup.self.holdsIp);
  t.is(await servedBy(l, 'backup'), 'backup');
  const judged = judgeHolders(history);
  t.deepEqual(judged.final, ['backup']);
  t.log(`kernel events: ${JSON.stringify(history.events)}; overlaps: ${JSON.stringify(judged.overlaps)}`);
  // The IPv4 address stays on a downed link; the primary's agent takes it off before the link returns, or both
  // hosts would answer for it until the primary heard the backup (~230 ms, seen before it did).
  t.deepEqual(judged.overlaps, [], 'never two holders, the return included');
  const primaryChanges = history.events.filter((e) => e.host === 'primary').map((e) => e.change);
  t.true(primaryChanges.indexOf('address-removed') > primaryChanges.indexOf('link-down') &&
    primaryChanges.indexOf('address-removed') < primaryChanges.lastIndexOf('link-up'), `released while the link was down: ${primaryChanges.join(', ')}`);
});
