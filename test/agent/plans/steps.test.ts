// The step catalogue: each step's exact effect on the interface per mode, what verify refuses, and that undo
// takes the step back.

import test from 'ava';
import type {ServiceMode} from '../../../agent/config/schema.js';
import {executeStep, executeUndo, type StepRun} from '../../../agent/plans/executor.js';
import {LOCAL_STEP_NAMES, SWITCH_STEP_NAMES, type StepName} from '../../../agent/plans/plans.js';
import {describeStep, STEPS} from '../../../agent/plans/steps.js';
import {announceAll, isAnyInUse} from '../../../agent/net/service-addresses.js';
import {isBatonError} from '../../../agent/errors.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import type {ServiceIp} from '../../../agent/state-machine.js';
import {SERVICE_IP, SERVICE_IP6} from '../../fakes/test-config.js';

interface Host {
  readonly network: FakeNetworkDriver;
  readonly drain: FakeDrainDriver;
  readonly other: FakeNetworkDriver;
  readonly run: StepRun;
}

/** A host of a service with `ips` (default: single-stack IPv4); `holds`: all of them are on its interface. */
function host(mode: ServiceMode, state: {holds: boolean; linkUp: boolean}, ips: readonly ServiceIp[] = [SERVICE_IP]): Host {
  const segment = new FakeSegment();
  const network = new FakeNetworkDriver('self', segment);
  const other = new FakeNetworkDriver('other', segment);
  if (state.holds) for (const address of ips) network.addresses.add(address.address);
  network.linkUp = state.linkUp;
  const clock = new FakeClock();
  const drain = new FakeDrainDriver('192.0.2.11');
  return {
    network, other, drain,
    run: {mode, clock, ctx: {
      service: {ip: ips[0] ?? SERVICE_IP, ips, interface: 'eth0', mode},
      network,
      announce: () => announceAll(network, ips),
      probe: () => isAnyInUse(network, ips),
      drain,
      giverAddresses: () => ['192.0.2.11'],
    }},
  };
}

const ip = SERVICE_IP.cidr;

// Each step from the state a host is in when it runs it: what it does to the interface, and what undo does.
// `after` is the state undo leaves when it is not the one the step started from.
const cases: {step: StepName; mode: ServiceMode; from: {holds: boolean; linkUp: boolean}; apply: string[]; undo: string[]; after?: {holds: boolean; linkUp: boolean}}[] = [
  {step: 'take-ip', mode: 'address', from: {holds: false, linkUp: true}, apply: [`addAddress ${ip}`], undo: [`removeAddress ${ip}`]},
  // The link stays up without the address, as a standby's is.
  {step: 'take-ip', mode: 'link', from: {holds: false, linkUp: false}, apply: [`addAddress ${ip}`, 'setLink eth0 up'], undo: [`removeAddress ${ip}`], after: {holds: false, linkUp: true}},
  {step: 'release-ip', mode: 'address', from: {holds: true, linkUp: true}, apply: [`removeAddress ${ip}`], undo: [`addAddress ${ip}`]},
  {step: 'announce', mode: 'address', from: {holds: true, linkUp: true}, apply: [`announce ${ip}`], undo: []},
  {step: 'probe-address', mode: 'address', from: {holds: false, linkUp: true}, apply: [`isAddressInUse ${ip}`], undo: []},
  {step: 'backup-net-down', mode: 'address', from: {holds: false, linkUp: true}, apply: [`removeAddress ${ip}`], undo: []},
  {step: 'backup-net-down', mode: 'link', from: {holds: false, linkUp: true}, apply: ['setLink eth0 down'], undo: ['setLink eth0 up']},
  {step: 'assign-ip', mode: 'address', from: {holds: false, linkUp: true}, apply: [], undo: []},
  {step: 'assign-ip', mode: 'link', from: {holds: false, linkUp: false}, apply: [`addAddress ${ip}`], undo: [`removeAddress ${ip}`]},
  {step: 'primary-net-down', mode: 'address', from: {holds: true, linkUp: true}, apply: [`removeAddress ${ip}`], undo: [`addAddress ${ip}`, `announce ${ip}`]},
  {step: 'primary-net-down', mode: 'link', from: {holds: true, linkUp: true}, apply: ['setLink eth0 down'], undo: [`addAddress ${ip}`, 'setLink eth0 up', `announce ${ip}`]},
  {step: 'backup-net-up', mode: 'address', from: {holds: false, linkUp: true}, apply: [`addAddress ${ip}`, `announce ${ip}`], undo: [`removeAddress ${ip}`]},
  {step: 'backup-net-up', mode: 'link', from: {holds: true, linkUp: false}, apply: ['setLink eth0 up', `announce ${ip}`], undo: ['setLink eth0 down']},
  {step: 'confirm-traffic', mode: 'address', from: {holds: true, linkUp: true}, apply: [], undo: []},
];

for (const c of cases) {
  test(`${c.step} in ${c.mode} mode: ${c.apply.join(', ') || 'changes nothing'}; undo: ${c.undo.join(', ') || 'nothing'}`, async (t) => {
    const h = host(c.mode, c.from);
    const before = {holds: h.network.addresses.has(SERVICE_IP.address), linkUp: h.network.linkUp};
    await executeStep(c.step, h.run);
    t.deepEqual(h.network.actions(), c.apply);
    h.network.journal.length = 0;
    await executeUndo(c.step, h.run);
    t.deepEqual(h.network.actions(), c.undo);
    if (c.undo.length > 0) t.deepEqual({holds: h.network.addresses.has(SERVICE_IP.address), linkUp: h.network.linkUp}, c.after ?? before, 'undo puts the interface back');
  });
}

// A dual-stack service: every step does to both addresses, in the config's order, what it does to the one address
// of a single-stack service, in the same place among its other actions; undo takes both back.
const ip6 = SERVICE_IP6.cidr;
const bothAddresses = (actions: readonly string[]): string[] =>
  actions.flatMap((action) => action.endsWith(` ${ip}`) ? [action, action.replace(` ${ip}`, ` ${ip6}`)] : [action]);
const dual = [SERVICE_IP, SERVICE_IP6];
const holdsAll = (h: Host): boolean => dual.every((address) => h.network.addresses.has(address.address));
const holdsNone = (h: Host): boolean => dual.every((address) => !h.network.addresses.has(address.address));

for (const c of cases) {
  const apply = bothAddresses(c.apply);
  const undo = bothAddresses(c.undo);
  test(`dual stack: ${c.step} in ${c.mode} mode: ${apply.join(', ') || 'changes nothing'}; undo: ${undo.join(', ') || 'nothing'}`, async (t) => {
    const h = host(c.mode, c.from, dual);
    const before = {holds: holdsAll(h), linkUp: h.network.linkUp};
    await executeStep(c.step, h.run);
    t.deepEqual(h.network.actions(), apply);
    t.true(holdsAll(h) || holdsNone(h), 'never one address without the other');
    h.network.journal.length = 0;
    await executeUndo(c.step, h.run);
    t.deepEqual(h.network.actions(), undo);
    t.true(holdsAll(h) || holdsNone(h), 'never one address without the other after undo');
    if (c.undo.length > 0) t.deepEqual({holds: holdsAll(h), linkUp: h.network.linkUp}, c.after ?? before, 'undo puts the interface back');
  });
}

test('dual stack: one address still there is not "released", and one missing is not "taken"', async (t) => {
  const giver = host('address', {holds: true, linkUp: true}, dual);
  const removeAddress = giver.network.removeAddress.bind(giver.network);
  giver.network.removeAddress = async (address) => {
    if (address.family === 4) await removeAddress(address); // the IPv6 address stays
  };
  const released = await t.throwsAsync(executeStep('primary-net-down', giver.run));
  t.true(isBatonError(released, 'STEP_FAILED'));
  t.is(released?.message, `primary-net-down: ${ip6} is still on eth0`);
  const notReleased = await t.throwsAsync(executeStep('release-ip', giver.run));
  t.is(notReleased?.message, `release-ip: ${ip6} is still on eth0`);
  const notDown = await t.throwsAsync(executeStep('backup-net-down', giver.run));
  t.is(notDown?.message, `backup-net-down: ${ip6} is still on eth0`);

  const taker = host('address', {holds: false, linkUp: true}, dual);
  const addAddress = taker.network.addAddress.bind(taker.network);
  taker.network.addAddress = async (address) => {
    if (address.family === 6) await addAddress(address); // the IPv4 address never comes
  };
  const up = await t.throwsAsync(executeStep('backup-net-up', taker.run));
  t.is(up?.message, `backup-net-up: ${ip} is not on eth0`);
  const taken = await t.throwsAsync(executeStep('take-ip', taker.run));
  t.is(taken?.message, `take-ip: ${ip} is not up on eth0 after adding it`);
  await executeUndo('take-ip', taker.run);
  t.true(holdsNone(taker), 'undo removes the address that did come');
});

test('dual stack: neither address missing reads as both missing, on a mixed interface before the step', async (t) => {
  // A host left with only the IPv6 address (a crash part-way): backup-net-down removes it, and take-ip adds the other.
  const h = host('address', {holds: false, linkUp: true}, dual);
  h.network.addresses.add(SERVICE_IP6.address);
  await executeStep('backup-net-down', h.run);
  t.true(holdsNone(h));
  h.network.addresses.add(SERVICE_IP6.address);
  await executeStep('take-ip', h.run);
  t.true(holdsAll(h));
});

test('dual stack: probe-address refuses when another host answers for either address, and probes both', async (t) => {
  const h = host('address', {holds: false, linkUp: true}, dual);
  h.other.addresses.add(SERVICE_IP6.address);
  const error = await t.throwsAsync(executeStep('probe-address', h.run));
  t.true(isBatonError(error, 'ADDRESS_IN_USE'));
  t.is(error?.message, 'peer silent but service IP alive: 192.0.2.100 or 2001:db8::100 answered a duplicate-address probe');
  t.deepEqual(h.network.actions(), [`isAddressInUse ${ip}`, `isAddressInUse ${ip6}`]);
});

test('every step of every plan has an entry for both modes and words for --dry-run', (t) => {
  for (const step of [...LOCAL_STEP_NAMES, ...SWITCH_STEP_NAMES]) {
    for (const mode of ['address', 'link'] as const) {
      t.truthy(STEPS[step][mode], `${step} ${mode}`);
      t.true(describeStep(step, mode).length > 10, `${step} ${mode} is described`);
    }
  }
  t.deepEqual(Object.keys(STEPS).sort(), [...LOCAL_STEP_NAMES, ...SWITCH_STEP_NAMES].sort(), 'the catalogue holds exactly the plans\' steps');
});

// The drain's steps touch only the drain driver, never the service interface.
const drainCases: {step: StepName; apply: string[]; undo: string[]; holding: boolean; forwarding: boolean}[] = [
  {step: 'forward-strays', apply: ['forward 192.0.2.100 to 192.0.2.11'], undo: ['unforward'], holding: false, forwarding: true},
  {step: 'hold-connections', apply: ['hold 192.0.2.100 as 192.0.2.11'], undo: ['unhold 192.0.2.100'], holding: true, forwarding: false},
  {step: 'drain-connections', apply: [], undo: [], holding: false, forwarding: false},
];

for (const c of drainCases) {
  test(`${c.step}: ${c.apply.join(', ') || 'changes nothing'}; undo: ${c.undo.join(', ') || 'nothing'}`, async (t) => {
    const h = host('address', {holds: true, linkUp: true});
    await executeStep(c.step, h.run);
    t.deepEqual(h.drain.journal, c.apply);
    t.deepEqual([h.drain.held !== undefined, h.drain.forwardingTo !== undefined], [c.holding, c.forwarding]);
    h.drain.journal.length = 0;
    await executeUndo(c.step, h.run);
    t.deepEqual(h.drain.journal, c.undo);
    t.deepEqual([h.drain.held, h.drain.forwardingTo], [undefined, undefined], 'undo leaves nothing held or forwarded');
    t.deepEqual(h.network.actions(), [], 'the service interface is not touched');
  });
}

test('end-forwarding and end-hold take the preparations back and have no undo of their own', async (t) => {
  const h = host('address', {holds: false, linkUp: true});
  await executeStep('forward-strays', h.run);
  await executeStep('hold-connections', h.run);
  await executeStep('end-forwarding', h.run);
  await executeStep('end-hold', h.run);
  t.deepEqual([h.drain.held, h.drain.forwardingTo], [undefined, undefined]);
  h.drain.journal.length = 0;
  await executeUndo('end-forwarding', h.run);
  await executeUndo('end-hold', h.run);
  t.deepEqual(h.drain.journal, []);
});

test('forward-strays verifies the rule is in place, and refuses without a giver to send to', async (t) => {
  const h = host('address', {holds: false, linkUp: true});
  h.drain.forward = async () => undefined; // nft said yes, but nothing is there
  const error = await t.throwsAsync(executeStep('forward-strays', h.run));
  t.is(error?.message, 'forward-strays: the rule that hands strays for 192.0.2.100 to the giver is not in place');
  const none = host('address', {holds: false, linkUp: true});
  const unknown = await t.throwsAsync(executeStep('forward-strays', {...none.run, ctx: {...none.run.ctx, giverAddresses: () => []}}));
  t.regex(unknown?.message ?? '', /giver's address is not known/);
});

test('hold-connections refuses a service interface with no address of its own to name in ARP', async (t) => {
  const h = host('address', {holds: true, linkUp: true});
  h.drain.ownAddress = async () => undefined;
  const error = await t.throwsAsync(executeStep('hold-connections', h.run));
  t.regex(error?.message ?? '', /eth0 has no IPv4 address of its own/);
  t.is(h.drain.held, undefined);
});

test('verify refuses what it does not observe, naming the step and what it found', async (t) => {
  const h = host('address', {holds: true, linkUp: true});
  // The address comes back at once (another process re-adds it): primary-net-down must not pass.
  const removeAddress = h.network.removeAddress.bind(h.network);
  h.network.removeAddress = async (address) => {
    await removeAddress(address);
    h.network.addresses.add(SERVICE_IP.address);
  };
  const error = await t.throwsAsync(executeStep('primary-net-down', h.run));
  t.true(isBatonError(error, 'STEP_FAILED'));
  t.is(error?.message, `primary-net-down: ${ip} is still on eth0`);
});

test('take-ip on a downed interface fails its verify: the address is there but nobody is served', async (t) => {
  const h = host('address', {holds: false, linkUp: false});
  const error = await t.throwsAsync(executeStep('take-ip', h.run));
  t.is(error?.message, `take-ip: ${ip} is not up on eth0 after adding it`);
});

test('probe-address refuses with ADDRESS_IN_USE when another host answers for the IP', async (t) => {
  const h = host('address', {holds: false, linkUp: true});
  h.other.addresses.add(SERVICE_IP.address);
  const error = await t.throwsAsync(executeStep('probe-address', h.run));
  t.true(isBatonError(error, 'ADDRESS_IN_USE'));
  t.regex(error?.message ?? '', /peer silent but service IP alive: 192\.0\.2\.100 answered an ARP probe/);
});

test('assign-ip in address mode refuses a downed service interface', async (t) => {
  const h = host('address', {holds: false, linkUp: false});
  const error = await t.throwsAsync(executeStep('assign-ip', h.run));
  t.is(error?.message, 'assign-ip: eth0 is down: the service IP could not be brought up on it');
});

test('an undo that cannot be verified says "undo <step>"', async (t) => {
  const h = host('link', {holds: false, linkUp: true});
  await executeStep('backup-net-down', h.run);
  h.network.setLink = async () => undefined; // the link refuses to come up
  const error = await t.throwsAsync(executeUndo('backup-net-down', h.run));
  t.is(error?.message, 'undo backup-net-down: eth0 is not up');
});

test('a dual-stack service drains both addresses: each held with an own address of its family, each forwarded to the giver\'s of its family', async (t) => {
  const dual = [SERVICE_IP, SERVICE_IP6];
  const giver = host('address', {holds: true, linkUp: true}, dual);
  giver.drain.own6 = '2001:db8:0:1::11';
  await executeStep('hold-connections', giver.run);
  t.deepEqual(giver.drain.journal, [`hold ${SERVICE_IP.address} as 192.0.2.11`, `hold ${SERVICE_IP6.address} as 2001:db8:0:1::11`]);
  await executeStep('end-hold', giver.run);
  t.deepEqual([...giver.drain.heldAddresses], [], 'end-hold takes both back');

  const taker = host('address', {holds: false, linkUp: true}, dual);
  const givers = ['2001:db8:0:1::11', '192.0.2.11'];
  const run = {...taker.run, ctx: {...taker.run.ctx, giverAddresses: () => givers}};
  await executeStep('forward-strays', run);
  t.deepEqual([...taker.drain.forwards], [[SERVICE_IP.address, '192.0.2.11'], [SERVICE_IP6.address, '2001:db8:0:1::11']]);
  await executeUndo('forward-strays', run);
  t.deepEqual([...taker.drain.forwards], []);

  // A giver that named an IPv4 address only: the IPv6 address's strays have nowhere to go, and the step says so.
  const half = host('address', {holds: false, linkUp: true}, dual);
  const error = await t.throwsAsync(executeStep('forward-strays', {...half.run, ctx: {...half.run.ctx, giverAddresses: () => ['192.0.2.11']}}));
  t.regex(error?.message ?? '', /the giver said no IPv6 address of its own \(192\.0\.2\.11\) to hand 2001:db8::100's strays to/);
  // As with any failed step, the caller undoes it too: that takes back the IPv4 forward it made first.
  await executeUndo('forward-strays', {...half.run, ctx: {...half.run.ctx, giverAddresses: () => ['192.0.2.11']}});
  t.deepEqual([...half.drain.forwards], []);
});

test('hold-connections on a dual-stack service refuses a host with no IPv6 address of its own, and holds nothing', async (t) => {
  const h = host('address', {holds: true, linkUp: true}, [SERVICE_IP, SERVICE_IP6]);
  h.drain.ownAddress = async (ip) => (ip.family === 4 ? '192.0.2.11' : undefined);
  const error = await t.throwsAsync(executeStep('hold-connections', h.run));
  // The words check-config and the participant use for the same host (ownDrainAddresses).
  t.is(error?.message, 'eth0 has no IPv6 address of its own besides the service IP (link-local ones do not count): ' +
    'the taker would have nowhere to hand its strays; nothing held');
  t.deepEqual([h.drain.journal, [...h.drain.heldAddresses]], [[], []], 'not even the IPv4 address, which has an own address, is held');
});
