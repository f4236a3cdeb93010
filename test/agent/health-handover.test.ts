// Health checks and the IP, on fakes: a failing active host hands over through a confirmed switchover, a failing
// standby goes to fault and never takes the IP.

import test from 'ava';
import {createFakePair} from '../fakes/fake-pair.js';
import {clients, drive, OPTIONS} from '../fakes/switch-driver.js';

const CHECK = {kind: 'command', path: '/usr/local/bin/check-app', args: [], timeoutMs: 500} as const;
const HEALTH = {intervalMs: 1000, fall: 2, rise: 2, checks: [CHECK]};


test('an active host whose health checks fail hands the IP over through a confirmed switchover, then waits in fault', async (t) => {
  const pair = createFakePair(t, {primary: {config: {health: HEALTH}}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  pair.primary.healthProbe.answer('command /usr/local/bin/check-app', {ok: false, detail: 'check-app exited 1: database unreachable'});
  await drive(pair.clock, (async () => {
    while (!pair.backup.network.addresses.has('192.0.2.100') || pair.primary.agent.state.name === 'switching') await pair.clock.sleep(50);
  })(), clients(pair), 30_000);
  await pair.clock.advance(500);
  t.is(pair.backup.agent.state.name, 'active');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.agent.state.name, 'fault');
  t.regex(pair.primary.agent.state.reason, /handed the service IP over because health checks fail/);
  t.true(pair.primary.logs.some((l) => l.includes('(health) failing: ') && l.includes('database unreachable')));
  t.true(pair.backup.accessLog !== undefined);

  pair.primary.healthProbe.answer('command /usr/local/bin/check-app', {ok: true, detail: 'ok'});
  await pair.clock.advance(3000);
  t.is(pair.primary.agent.state.name, 'standby', 'healthy again: ready to take over, but no preemption');
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
});

test('a standby whose health checks fail goes to fault and never takes the IP, even when the active host dies', async (t) => {
  const pair = createFakePair(t, {backup: {config: {health: HEALTH}}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  pair.backup.healthProbe.answer('command /usr/local/bin/check-app', {ok: false, detail: 'disk full'});
  await pair.clock.advance(2500);
  t.is(pair.backup.agent.state.name, 'fault');
  const refused = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined)));
  t.regex(refused?.message ?? '', /in fault|health checks fail/);
  await pair.primary.kill();
  pair.primary.network.linkUp = false;
  await pair.clock.advance(5000);
  t.is(pair.backup.agent.state.name, 'fault');
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
});
