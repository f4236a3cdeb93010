// A dual-stack service on a fake pair (issue 16): an IPv4 and an IPv6 address that move together as one service, in
// the same steps, confirmed once; held means both held, and a host with one of them does not count as holding.

import test from 'ava';
import type {Config} from '../../agent/config/schema.js';
import {createFakePair, type FakeHost, type FakePair} from '../fakes/fake-pair.js';
import {drive, OPTIONS, stepLines} from '../fakes/switch-driver.js';
import type {SwitchProgress} from '../../agent/control-protocol.js';
import {PRIMARY_ADDRESS, PRIMARY_ADDRESS6, SERVICE_IP, SERVICE_IP6} from '../fakes/test-config.js';

const DUAL: Partial<Config> = {service: {ip: SERVICE_IP, ips: [SERVICE_IP, SERVICE_IP6], interface: 'eth0', mode: 'address'}};
const ADDRESSES = [SERVICE_IP.address, SERVICE_IP6.address];

async function dualPair(t: Parameters<typeof createFakePair>[0]): Promise<FakePair> {
  const pair = createFakePair(t, {primary: {config: DUAL}, backup: {config: DUAL}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  return pair;
}

const held = (host: FakeHost): string[] => ADDRESSES.filter((address) => host.network.addresses.has(address));

test('the primary takes both addresses at start; status shows both, and holds-IP means both', async (t) => {
  const pair = await dualPair(t);
  t.deepEqual(held(pair.primary), ADDRESSES);
  t.deepEqual(held(pair.backup), []);
  const status = await pair.primary.agent.status();
  t.deepEqual(status.service.addresses, [SERVICE_IP.cidr, SERVICE_IP6.cidr]);
  t.is(status.service.address, SERVICE_IP.cidr);
  t.true(status.self.holdsIp);
  // One address gone (an operator, another program): this host no longer holds the service, and says so.
  pair.primary.network.addresses.delete(SERVICE_IP6.address);
  const partly = await pair.primary.agent.status();
  t.false(partly.self.holdsIp);
  t.deepEqual(partly.self.held, [SERVICE_IP.cidr], 'status names the address still held');
  // The agent's next look (once a second) takes the missing one back.
  await pair.clock.advance(1500);
  t.deepEqual(held(pair.primary), ADDRESSES);
  t.deepEqual((await pair.primary.agent.status()).self.held, [SERVICE_IP.cidr, SERVICE_IP6.cidr]);
});

test('a switchover moves both addresses in the runbook\'s steps, never on two hosts, confirmed once by requests to either', async (t) => {
  const pair = await dualPair(t);
  const progress: SwitchProgress[] = [];
  let mostHolders = 0;
  let requests = 0;
  const result = await drive(pair.clock, pair.primary.agent.switchover(OPTIONS, (p) => progress.push(p)), () => {
    for (const address of ADDRESSES) mostHolders = Math.max(mostHolders, pair.segment.holders(address).length);
    // Clients of the IPv6 address only: the one confirmation counts them as well as IPv4 ones.
    if (!pair.backup.network.addresses.has(SERVICE_IP6.address)) return;
    pair.backup.accessLog.request(1);
    pair.backup.arrivals.arrive(1);
    requests += 1;
  });
  t.is(result.outcome, 'done', result.reason);
  await pair.clock.advance(1500); // the repeated announcement
  t.deepEqual(stepLines(progress), [
    'apply backup-net-down on backup ok', 'apply assign-ip on backup ok', 'apply forward-strays on backup ok',
    'apply hold-connections on primary ok', 'apply primary-net-down on primary ok',
    'apply backup-net-up on backup ok', 'apply confirm-traffic on backup ok',
    'apply drain-connections on primary ok', 'apply end-forwarding on backup ok', 'apply end-hold on primary ok',
  ]);
  t.false(progress.some((p) => p.kind === 'note' && p.text.startsWith('no drain:')), 'the switch drains');
  // Each address's strays go to the giver's own address of its family; the giver holds both.
  t.deepEqual(pair.backup.drain.journal, [
    `forward ${SERVICE_IP.address} to ${PRIMARY_ADDRESS}`, `forward ${SERVICE_IP6.address} to ${PRIMARY_ADDRESS6}`, 'unforward',
  ]);
  t.deepEqual(pair.primary.drain.journal, [
    `hold ${SERVICE_IP.address} as ${PRIMARY_ADDRESS}`, `hold ${SERVICE_IP6.address} as ${PRIMARY_ADDRESS6}`,
    `unhold ${SERVICE_IP.address}`, `unhold ${SERVICE_IP6.address}`,
  ]);
  t.true(requests > 0);
  t.is(mostHolders, 1, 'neither address was ever on both hosts');
  t.deepEqual(held(pair.backup), ADDRESSES);
  t.deepEqual(held(pair.primary), []);
  t.deepEqual(pair.backup.network.actions().filter((a) => !a.startsWith('isAddressInUse')), [
    `removeAddress ${SERVICE_IP.cidr}`, `removeAddress ${SERVICE_IP6.cidr}`,
    `addAddress ${SERVICE_IP.cidr}`, `addAddress ${SERVICE_IP6.cidr}`,
    `announce ${SERVICE_IP.cidr}`, `announce ${SERVICE_IP6.cidr}`,
    `announce ${SERVICE_IP.cidr}`, `announce ${SERVICE_IP6.cidr}`,
  ], 'both removed, both added, both announced, and both announced again');
});

test('a failed step on one address rolls both back: the primary serves both again', async (t) => {
  const pair = await dualPair(t);
  pair.backup.network.addAddress = async (ip) => {
    if (ip.family === 6) throw new Error('RTNETLINK answers: Permission denied (injected)');
    pair.backup.network.addresses.add(ip.address);
  };
  const result = await drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined));
  t.is(result.outcome, 'rolled-back');
  t.regex(result.reason ?? '', /backup-net-up failed on the backup: RTNETLINK answers: Permission denied/);
  t.deepEqual(held(pair.primary), ADDRESSES);
  t.deepEqual(held(pair.backup), [], 'the address that did come on the backup is gone again');
});

test('when the active host dies, the standby takes both addresses; not while either still answers', async (t) => {
  const pair = await dualPair(t);
  await pair.primary.kill();
  // Its IPv4 address goes, the IPv6 one still answers (a host half down): no takeover, no split brain.
  pair.primary.network.addresses.delete(SERVICE_IP.address);
  await pair.clock.advance(3000);
  t.is(pair.backup.agent.state.name, 'standby');
  t.regex(pair.backup.agent.state.reason, /peer silent but service IP alive/);
  t.deepEqual(held(pair.backup), []);
  pair.primary.network.linkUp = false;
  await pair.clock.advance(2000);
  t.is(pair.backup.agent.state.name, 'active');
  t.deepEqual(held(pair.backup), ADDRESSES);
});

test('one address on its own is repaired: the active host takes the missing one back, a standby lets a stray one go', async (t) => {
  const pair = await dualPair(t);
  pair.primary.network.addresses.delete(SERVICE_IP6.address);
  pair.backup.network.addresses.add(SERVICE_IP.address); // a stray IPv4 address on the standby, beside the holder's
  await pair.clock.advance(3000);
  t.deepEqual(held(pair.primary), ADDRESSES, 'the primary took its IPv6 address back');
  t.is(pair.primary.agent.state.name, 'active');
  t.deepEqual(held(pair.backup), [], 'the standby released the stray address');
  t.is(pair.backup.agent.state.name, 'standby');
  t.true(pair.backup.logs.some((l) => l.includes('found part of the service IP on this host while standby: releasing it')));
});

test('a released host holds neither address: one found on it is let go, and the host stays released', async (t) => {
  const pair = await dualPair(t);
  const result = await drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined), () => {
    if (!pair.backup.network.addresses.has(SERVICE_IP.address)) return;
    pair.backup.accessLog.request(1);
    pair.backup.arrivals.arrive(1);
  });
  t.is(result.outcome, 'done', result.reason);
  t.is(pair.primary.agent.state.name, 'released');
  // An address of two back on the released host (by hand, a script): it would answer beside the backup.
  pair.primary.network.addresses.add(SERVICE_IP6.address);
  await pair.clock.advance(3000);
  t.deepEqual(held(pair.primary), [], 'the released host let the stray address go');
  t.is(pair.primary.agent.state.name, 'released', 'and stays released: hands off until `baton resume`');
  t.deepEqual(held(pair.backup), ADDRESSES);
  t.true(pair.primary.logs.some((l) => l.includes('found part of the service IP on this host while released: releasing it')));
});

test('a restarted agent removes what a drain of both addresses left: both forwards, both holds', async (t) => {
  const pair = await dualPair(t);
  await pair.backup.drain.forward(SERVICE_IP, PRIMARY_ADDRESS);
  await pair.backup.drain.forward(SERVICE_IP6, PRIMARY_ADDRESS6);
  await pair.backup.drain.hold(SERVICE_IP, '192.0.2.12');
  await pair.backup.drain.hold(SERVICE_IP6, '2001:db8::12');
  await pair.backup.kill();
  await pair.backup.restart().start();
  await pair.clock.advance(2000);
  t.deepEqual([[...pair.backup.drain.forwards], [...pair.backup.drain.heldAddresses]], [[], []]);
  t.true(pair.backup.logs.some((line) => line.includes('removed what an interrupted drain left: forward, hold, hold')), pair.backup.logs.join('\n'));
});

test('link mode: resume takes an address left on the released host\'s downed link off before the link comes up', async (t) => {
  const link: Partial<Config> = {service: {...DUAL.service as Config['service'], mode: 'link'}};
  const pair = createFakePair(t, {primary: {config: link}, backup: {config: link}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  const result = await drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined), () => {
    if (!pair.backup.network.addresses.has(SERVICE_IP.address) || !pair.backup.network.linkUp) return;
    pair.backup.accessLog.request(1);
    pair.backup.arrivals.arrive(1);
  });
  t.is(result.outcome, 'done', result.reason);
  t.is(pair.primary.agent.state.name, 'released');
  t.false(pair.primary.network.linkUp);
  // The IPv4 address still on the downed link (its removal at the switch's end failed; the kernel keeps an IPv4
  // address on a downed link, and drops an IPv6 one): it must not answer once the link is up.
  pair.primary.network.addresses.add(SERVICE_IP.address);
  pair.primary.network.journal.length = 0;
  await drive(pair.clock, pair.primary.agent.resume());
  t.is(pair.primary.agent.state.name, 'standby');
  t.deepEqual(pair.primary.network.actions(), [`removeAddress ${SERVICE_IP.cidr}`, `removeAddress ${SERVICE_IP6.cidr}`, 'setLink eth0 up']);
  t.deepEqual(held(pair.primary), []);
  t.deepEqual(pair.segment.holders(SERVICE_IP.address).length, 1, 'only the backup answers for the IPv4 address');
});

test('--dry-run shows each step\'s commands for both addresses, the drain\'s included', async (t) => {
  const pair = await dualPair(t);
  const result = await drive(pair.clock, pair.primary.agent.switchover({...OPTIONS, dryRun: true}, () => undefined));
  t.is(result.outcome, 'dry-run');
  const [v4, v6] = [SERVICE_IP.cidr, SERVICE_IP6.cidr];
  t.deepEqual(result.plan?.map((s) => `${s.step} on ${s.host.role}: ${s.commands.join('; ')}`), [
    `backup-net-down on backup: removeAddress ${v4}; removeAddress ${v6}`,
    'assign-ip on backup: ',
    `forward-strays on backup: forward ${v4} ${PRIMARY_ADDRESS}; forward ${v6} ${PRIMARY_ADDRESS6}`,
    // The fake's recording drain answers ownAddress with false.
    `hold-connections on primary: ownAddress ${v4}; ownAddress ${v6}; hold ${v4} false; hold ${v6} false`,
    `primary-net-down on primary: removeAddress ${v4}; removeAddress ${v6}`,
    `backup-net-up on backup: addAddress ${v4}; addAddress ${v6}; announce ${v4}; announce ${v6}`,
    'confirm-traffic on backup: ',
    'drain-connections on primary: ',
    'end-forwarding on backup: unforward',
    `end-hold on primary: unhold ${v4}; unhold ${v6}`,
  ]);
  t.deepEqual(held(pair.primary), ADDRESSES, 'nothing changed');
});

test('a giver with no IPv6 address of its own switches without the drain, and the operator is told why', async (t) => {
  const pair = await dualPair(t);
  pair.primary.drain.ownAddress = async (ip) => (ip.family === 4 ? PRIMARY_ADDRESS : undefined);
  const progress: SwitchProgress[] = [];
  const result = await drive(pair.clock, pair.primary.agent.switchover(OPTIONS, (p) => progress.push(p)), () => {
    if (!pair.backup.network.addresses.has(SERVICE_IP.address)) return;
    pair.backup.accessLog.request(1);
    pair.backup.arrivals.arrive(1);
  });
  t.is(result.outcome, 'done', result.reason);
  const note = progress.find((p) => p.kind === 'note' && p.text.startsWith('no drain:'));
  t.regex(note?.kind === 'note' ? note.text : '', /the primary cannot drain: eth0 has no IPv6 address of its own besides the service IP/);
  t.false(stepLines(progress).some((line) => line.includes('forward-strays') || line.includes('hold-connections')));
  t.deepEqual([pair.primary.drain.journal, pair.backup.drain.journal], [[], []]);
});
