// The drain of a planned switch on fakes: when a pair drains and when it does not, the graceful command on the
// giver, waiting for its connections and the timeout that cuts them, and failures after the confirmation that
// never roll the switch back.

import test from 'ava';
import {BatonError} from '../../../agent/errors.js';
import {createFakePair, type FakePair} from '../../fakes/fake-pair.js';
import {stepLines, switchover} from '../../fakes/switch-driver.js';
import {testConfig} from '../../fakes/test-config.js';

async function pairWith(t: Parameters<typeof createFakePair>[0], drain: Partial<FakePair['primary']['config']['drain']> = {}): Promise<FakePair> {
  const pair = createFakePair(t);
  for (const host of [pair.primary, pair.backup]) {
    host.config = {...host.config, drain: {...testConfig(host.role).drain, ...drain}};
    host.restart();
  }
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  return pair;
}

test('connections get graceful_after_s to end by themselves; the graceful command then runs on the giver for those left, and the switch waits until they are gone', async (t) => {
  const pair = await pairWith(t, {graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}, timeoutS: 60});
  pair.primary.drain.connections = 5;
  let closeAt: number | undefined;
  const {result, progress} = await switchover(pair, pair.primary, {}, () => {
    for (const host of [pair.primary, pair.backup]) {
      if (!host.network.addresses.has('192.0.2.100')) continue;
      host.accessLog.request(1);
      host.arrivals.arrive(1);
    }
    // The web server closes its connections 2 s after it was told to finish gracefully.
    if (closeAt === undefined && pair.primary.runner.calls.length > 0) closeAt = pair.clock.now() + 2000;
    if (closeAt !== undefined && pair.clock.now() >= closeAt) pair.primary.drain.connections = 0;
  });
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(pair.primary.runner.commandLines(), ['/usr/sbin/nginx -s reload'], 'on the giver only, once');
  t.deepEqual(pair.backup.runner.commandLines(), []);
  t.is(result.drain?.left, 0);
  t.true((result.drain?.ms ?? 0) >= 6900 && (result.drain?.ms ?? 0) <= 7200, `drained in ${result.drain?.ms} ms: 5 s of patience, then 2 s`);
  t.is(result.drain?.graceful, '/usr/sbin/nginx -s reload ran with 5 connection(s) open');
  t.true(progress.some((p) => p.kind === 'waiting' && p.step === 'drain-connections' && p.count === 5), 'the operator sees what is left');
  const drainStep = stepLines(progress).indexOf('apply drain-connections on primary ok');
  t.true(drainStep > stepLines(progress).indexOf('apply confirm-traffic on backup ok'), 'the drain comes after the confirmation');
  t.deepEqual([pair.primary.drain.held, pair.backup.drain.forwardingTo], [undefined, undefined], 'both tidied after the drain');
});

test('connections that outlast the drain timeout are counted and cut; the switch stands', async (t) => {
  const pair = await pairWith(t, {timeoutS: 3});
  pair.primary.drain.connections = 2;
  const {result} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.is(result.drain?.left, 2);
  t.true((result.drain?.ms ?? 0) >= 3000);
  t.is(result.drain?.graceful, undefined, 'no graceful command configured');
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.drain.held, undefined, 'the giver stops accepting the IP\'s packets: its last connections are cut');
});

test('a graceful command that fails is reported and the drain goes on to its timeout', async (t) => {
  const pair = await pairWith(t, {graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}, timeoutS: 20});
  pair.primary.drain.connections = 1;
  pair.primary.runner.on('/usr/sbin/nginx -s reload', new BatonError('COMMAND_FAILED', '`/usr/sbin/nginx -s reload` exited 1: nginx: [error] invalid PID number'));
  const {result} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done');
  t.regex(result.drain?.graceful ?? '', /^\/usr\/sbin\/nginx -s reload failed: .*invalid PID number/);
  t.is(result.drain?.left, 1);
  t.true((result.drain?.ms ?? 0) >= 20_000);
});

test('connections that end by themselves within graceful_after_s: the graceful command is not run', async (t) => {
  const pair = await pairWith(t, {graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}});
  pair.primary.drain.connections = 3;
  let closeAt: number | undefined;
  const {result} = await switchover(pair, pair.primary, {}, () => {
    for (const host of [pair.primary, pair.backup]) {
      if (!host.network.addresses.has('192.0.2.100')) continue;
      host.accessLog.request(1);
      host.arrivals.arrive(1);
    }
    if (closeAt === undefined && pair.backup.network.addresses.has('192.0.2.100')) closeAt = pair.clock.now() + 1500;
    if (closeAt !== undefined && pair.clock.now() >= closeAt) pair.primary.drain.connections = 0;
  });
  t.is(result.outcome, 'done');
  t.deepEqual(pair.primary.runner.commandLines(), []);
  t.regex(result.drain?.graceful ?? '', /^\/usr\/sbin\/nginx -s reload not needed: no connection was left after \d+ ms$/);
});

test('a host that cannot drain: the switch is the runbook\'s five steps, and the operator is told why', async (t) => {
  const pair = await pairWith(t);
  pair.backup.drain.cannot = 'nftables cannot take the drain\'s rules here: nft: not found';
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(stepLines(progress), [
    'apply backup-net-down on backup ok', 'apply assign-ip on backup ok', 'apply primary-net-down on primary ok',
    'apply backup-net-up on backup ok', 'apply confirm-traffic on backup ok',
  ]);
  t.true(progress.some((p) => p.kind === 'note' && p.text === 'no drain: the backup cannot drain: nftables cannot take the drain\'s rules here: nft: not found; ' +
    'connections open on the primary at the move will be cut'));
  t.is(result.drain, undefined);
  t.deepEqual([pair.primary.drain.journal, pair.backup.drain.journal], [[], []]);
});

test('an IPv6 service address drains too: the taker forwards to the giver\'s own IPv6 address, the giver holds the address', async (t) => {
  const pair = createFakePair(t);
  const ip = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;
  for (const [host, own] of [[pair.primary, '2001:db8::11'], [pair.backup, '2001:db8::12']] as const) {
    host.config = {...host.config, service: {...host.config.service, ip, ips: [ip]}};
    host.drain.own = own;
    host.restart();
  }
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  const {result, progress} = await switchover(pair, pair.primary, {}, () => {
    for (const host of [pair.primary, pair.backup]) {
      if (!host.network.addresses.has(ip.address)) continue;
      host.accessLog.request(1);
      host.arrivals.arrive(1);
    }
  });
  t.is(result.outcome, 'done', result.reason);
  t.false(progress.some((p) => p.kind === 'note' && p.text.startsWith('no drain')), 'no note of a missing drain');
  t.deepEqual(pair.backup.drain.journal, ['forward 2001:db8::100 to 2001:db8::11', 'unforward']);
  t.deepEqual(pair.primary.drain.journal, ['hold 2001:db8::100 as 2001:db8::11', 'unhold 2001:db8::100']);
  t.is(result.drain?.left, 0);
  t.true(pair.backup.network.addresses.has(ip.address));
});

test('drain.enabled false on the coordinator: the old switch, without a word about a drain', async (t) => {
  const pair = await pairWith(t, {enabled: false});
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done');
  t.false(stepLines(progress).some((line) => line.includes('drain') || line.includes('strays')));
  t.false(progress.some((p) => p.kind === 'note' && p.text.startsWith('no drain')));
});

test('a failure after the confirmation is reported, never rolled back, and what it left is taken back at the end', async (t) => {
  const pair = await pairWith(t);
  pair.primary.drain.failNext('unhold');
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', 'the taker serves and was confirmed: the switch stands');
  t.true(stepLines(progress).includes('apply end-hold on primary failed'));
  t.false(stepLines(progress).some((line) => line.startsWith('undo')), 'nothing is rolled back');
  t.deepEqual(result.drain?.problems, ['end-hold on the primary: unhold failed (injected)']);
  t.is(pair.primary.drain.held, undefined, 'the end of the switch takes the hold back after all');
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
});

test('a switchback drains the other way: the backup holds, the primary forwards to the backup\'s address', async (t) => {
  const pair = await pairWith(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  pair.primary.drain.journal.length = 0;
  pair.backup.drain.journal.length = 0;
  const {result} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(pair.primary.drain.journal, ['forward 192.0.2.100 to 192.0.2.12', 'unforward']);
  t.deepEqual(pair.backup.drain.journal, ['hold 192.0.2.100 as 192.0.2.12', 'unhold 192.0.2.100']);
});

test('a restarted agent removes whatever a drain left behind before it decides anything', async (t) => {
  const pair = await pairWith(t);
  // What a drain leaves when its agent is killed mid-switch: a forward and a hold, made as a switch makes them.
  const ip = pair.backup.config.service.ip;
  await pair.backup.drain.forward(ip, '192.0.2.11');
  await pair.backup.drain.hold(ip, '192.0.2.12');
  await pair.backup.kill();
  const restarted = pair.backup.restart();
  await restarted.start();
  await pair.clock.advance(2000);
  t.deepEqual([pair.backup.drain.forwardingTo, pair.backup.drain.held], [undefined, undefined]);
  t.true(pair.backup.logs.some((line) => line.includes('removed what an interrupted drain left: forward, hold')));
});

test('a peer agent from before the drain (it drops can-drain unanswered) gets the old switch, after a short wait, not a refusal', async (t) => {
  const pair = await pairWith(t);
  pair.primary.transport.lose = (datagram) => Buffer.from(datagram).includes('"can-drain"');
  const started = pair.clock.now();
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.false(stepLines(progress).some((line) => line.includes('strays') || line.includes('hold')));
  t.true(progress.some((p) => p.kind === 'note' && /^no drain: the backup cannot drain: its agent did not answer whether it can drain/.test(p.text)));
  t.true(pair.clock.now() - started < 10_000, 'the wait for an answer is short');
});
