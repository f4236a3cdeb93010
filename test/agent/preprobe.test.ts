// The takeover's early duplicate-address probe: started within its lead of the dead timer, once per silence, and
// its answer used only while fresh and only when it started after the peer's last beacon.

import test from 'ava';
import {PreProbe} from '../../agent/preprobe.js';
import {FakeClock} from '../fakes/fake-clock.js';
import {FakeNetworkDriver, FakeSegment} from '../fakes/fake-network-driver.js';
import {SERVICE_IP} from '../fakes/test-config.js';

function setup(): {clock: FakeClock; network: FakeNetworkDriver; probe: PreProbe} {
  const clock = new FakeClock();
  const network = new FakeNetworkDriver('backup', new FakeSegment());
  return {clock, network, probe: new PreProbe(clock, network, [SERVICE_IP], {intervalMs: 200, deadAfterMs: 1000})};
}

const probes = (network: FakeNetworkDriver): number => network.journal.filter((line) => line.startsWith('isAddressInUse')).length;

test('the probe starts within 300 ms of the dead timer, not before, and once per silence', async (t) => {
  const {clock, network, probe} = setup();
  const deadline = 1000;
  await clock.advance(650);
  probe.maybeStart(deadline);
  t.is(probes(network), 0, '350 ms before the dead timer is too early');
  await clock.advance(100);
  probe.maybeStart(deadline);
  probe.maybeStart(deadline);
  t.is(probes(network), 1, 'started once at 250 ms before it');
  t.is(probe.dueInMs(deadline), 250, 'the next moment that matters is the dead timer');
});

test('the lead never reaches back before two beacons were missed', (t) => {
  const clock = new FakeClock();
  const probe = new PreProbe(clock, new FakeNetworkDriver('b', new FakeSegment()), [SERVICE_IP], {intervalMs: 50, deadAfterMs: 250});
  t.is(probe.leadMs, 150);
});

test('a fresh answer is used; a stale one, or one from before the peer\'s last beacon, is not', async (t) => {
  const {clock, probe} = setup();
  await clock.advance(750);
  probe.maybeStart(1000);
  await clock.advance(10);
  t.is(await probe.fresh(700), false, 'started after the last beacon at 700 and just ended: used');
  t.is(probe.fresh(800), undefined, 'a beacon at 800 came after the probe started: not used');
  await clock.advance(300);
  t.is(probe.fresh(700), undefined, 'ended more than 250 ms ago: not used');
});
