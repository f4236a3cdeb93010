// What confirm-traffic accepts, on fakes end to end: client requests in the log and, where the kernel can count
// them, client connections to the service IP; what it refuses, and the reason it gives.

import test from 'ava';
import type {FakePair} from '../../fakes/fake-pair.js';
import {settledPair, switchover} from '../../fakes/switch-driver.js';

/** Requests to whichever host serves, as real clients, except that their connections do not reach the counter. */
const logOnly = (pair: FakePair) => (): void => {
  for (const host of [pair.primary, pair.backup]) if (host.network.addresses.has('192.0.2.100')) host.accessLog.request(1);
};

test('the kernel counts the new host\'s client connections from backup-net-up to the end of the switch, the peer excluded', async (t) => {
  const pair = await settledPair(t);
  let seenWhileConfirming: unknown;
  const {result} = await switchover(pair, pair.primary, {}, () => {
    seenWhileConfirming ??= pair.backup.arrivals.running;
    for (const host of [pair.primary, pair.backup]) {
      if (!host.network.addresses.has('192.0.2.100')) continue;
      host.accessLog.request(1);
      host.arrivals.arrive(1);
    }
  });
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(seenWhileConfirming === undefined ? undefined : (seenWhileConfirming as {excluded: string[]}).excluded, ['192.0.2.11', '192.0.2.12']);
  t.is(pair.backup.arrivals.running, undefined, 'the counter is removed when the switch ends');
  t.is(pair.primary.arrivals.running, undefined, 'the giver never counts');
});

test('requests in the log but no connection to the service IP: the switch rolls back, saying the requests came another way', async (t) => {
  const pair = await settledPair(t);
  const {result} = await switchover(pair, pair.primary, {confirmTimeoutS: 3}, logOnly(pair));
  t.is(result.outcome, 'rolled-back');
  t.regex(result.reason ?? '', /confirm-traffic failed on the backup: \d+ client request\(s\) arrived within 3 s, but the kernel saw no new connection to 192\.0\.2\.100 on eth0 from another host/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.backup.arrivals.running, undefined);
});

test('a host whose kernel cannot count confirms on the log alone, and says so in its log', async (t) => {
  const pair = await settledPair(t);
  pair.backup.arrivals.failStart = 'nft: not installed (injected)';
  const {result} = await switchover(pair, pair.primary, {}, logOnly(pair));
  t.is(result.outcome, 'done', result.reason);
  t.true(pair.backup.logs.some((line) => /the kernel cannot count connections to 192\.0\.2\.100 here, so the access log alone confirms: nft: not installed/.test(line)));
});

test('only the agent\'s health checks and errors in the log: the rollback names what was not counted', async (t) => {
  const pair = await settledPair(t);
  const {result} = await switchover(pair, pair.primary, {confirmTimeoutS: 3}, () => {
    if (!pair.backup.network.addresses.has('192.0.2.100')) return;
    pair.backup.accessLog.excluded('health-check', 1);
    pair.backup.accessLog.excluded('status', 1);
    pair.backup.arrivals.arrive(1);
  });
  t.is(result.outcome, 'rolled-back');
  t.regex(result.reason ?? '', /0 of 3 client requests arrived within 3 s \(not counted: \d+ health checks of this agent, \d+ with a status outside 2xx, 3xx\)/);
});

test('an arrival counter an interrupted switch left is removed at start', async (t) => {
  const pair = await settledPair(t);
  await pair.backup.kill();
  pair.backup.arrivals.leftover = true;
  pair.backup.restart();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  t.false(pair.backup.arrivals.leftover);
  t.true(pair.backup.logs.some((line) => line.includes('removed the arrival counter an interrupted switch left')));
});

test('each host tells the other its addresses of both families at begin, and neither counts the other\'s as clients', async (t) => {
  const primaryAddresses = ['127.0.0.1', '192.0.2.11', '2001:db8::11', 'fe80::11'];
  const backupAddresses = ['127.0.0.1', '192.0.2.12', '2001:db8::12', 'fe80::12'];
  for (const from of ['primary', 'backup'] as const) {
    const pair = await settledPair(t, {primary: {hostAddresses: primaryAddresses}, backup: {hostAddresses: backupAddresses}});
    let excluded: unknown;
    const {result} = await switchover(pair, pair[from], {}, () => {
      excluded ??= pair.backup.arrivals.running;
      for (const host of [pair.primary, pair.backup]) {
        if (!host.network.addresses.has('192.0.2.100')) continue;
        host.accessLog.request(1);
        host.arrivals.arrive(1);
      }
    });
    t.is(result.outcome, 'done', result.reason);
    // The giver held the service IP when it told its addresses: not among them, it moves.
    t.deepEqual(pair.backup.accessLog.peerAddresses, [['192.0.2.11', '2001:db8::11']], `switchover from the ${from}`);
    t.deepEqual((excluded as {excluded: string[]} | undefined)?.excluded, ['192.0.2.11', '192.0.2.12', '2001:db8::11'], `switchover from the ${from}`);
  }
});
