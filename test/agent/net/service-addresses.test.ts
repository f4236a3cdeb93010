// The service's addresses as one: all or none added, every address announced and probed, a mixed state told apart.

import test from 'ava';
import {BatonError, isBatonError} from '../../../agent/errors.js';
import {addAll, announceAll, findAddresses, isAnyInUse, presenceOf, removeAll} from '../../../agent/net/service-addresses.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {SERVICE_IP, SERVICE_IP6} from '../../fakes/test-config.js';

const BOTH = [SERVICE_IP, SERVICE_IP6];

test('addAll takes back what it added when a later address fails, and throws that failure', async (t) => {
  const network = new FakeNetworkDriver('self', new FakeSegment());
  network.failNext('addAddress'); // the first add fails: nothing to take back
  await t.throwsAsync(addAll(network, BOTH), {message: 'addAddress failed (injected)'});
  t.deepEqual([...network.addresses], []);
  const addAddress = network.addAddress.bind(network);
  network.addAddress = async (ip) => {
    if (ip.family === 6) throw new BatonError('COMMAND_FAILED', '`ip -6 addr add 2001:db8::100/64 dev eth0` exited 2: Permission denied');
    await addAddress(ip);
  };
  const error = await t.throwsAsync(addAll(network, BOTH));
  t.true(isBatonError(error, 'COMMAND_FAILED'));
  t.regex(error?.message ?? '', /^`ip -6 addr add/);
  t.deepEqual([...network.addresses], [], 'the IPv4 address added before it is gone again');
  t.deepEqual(network.actions().slice(-2), [`addAddress ${SERVICE_IP.cidr}`, `removeAddress ${SERVICE_IP.cidr}`]);
});

test('addAll says so when the take-back fails too', async (t) => {
  const network = new FakeNetworkDriver('self', new FakeSegment());
  const addAddress = network.addAddress.bind(network);
  network.addAddress = async (ip) => {
    if (ip.family === 6) throw new BatonError('COMMAND_FAILED', 'the IPv6 add failed');
    await addAddress(ip);
  };
  network.failNext('removeAddress');
  const error = await t.throwsAsync(addAll(network, BOTH));
  t.is(error?.message, `the IPv6 add failed; and taking back ${SERVICE_IP.cidr}, added before it, failed too: removeAddress failed (injected)`);
});

test('removeAll removes every address even when one removal fails, then throws that failure', async (t) => {
  const network = new FakeNetworkDriver('self', new FakeSegment());
  network.addresses.add(SERVICE_IP.address);
  network.addresses.add(SERVICE_IP6.address);
  network.failNext('removeAddress'); // the IPv4 address's
  await t.throwsAsync(removeAll(network, BOTH), {message: 'removeAddress failed (injected)'});
  t.deepEqual([...network.addresses], [SERVICE_IP.address], 'the IPv6 address went all the same');
  await removeAll(network, BOTH);
  t.deepEqual([...network.addresses], []);
});

test('announceAll announces every address even when one fails, then throws that failure', async (t) => {
  const network = new FakeNetworkDriver('self', new FakeSegment());
  network.failNext('announce');
  await t.throwsAsync(announceAll(network, BOTH), {message: 'announce failed (injected)'});
  t.deepEqual(network.actions(), [`announce ${SERVICE_IP.cidr}`, `announce ${SERVICE_IP6.cidr}`]);
});

test('isAnyInUse: another host answering for either address is enough', async (t) => {
  const segment = new FakeSegment();
  const self = new FakeNetworkDriver('self', segment);
  const other = new FakeNetworkDriver('other', segment);
  t.false(await isAnyInUse(self, BOTH));
  other.addresses.add(SERVICE_IP6.address);
  t.true(await isAnyInUse(self, BOTH));
});

test('presence: all, none, or some, and the addresses of each side', async (t) => {
  const network = new FakeNetworkDriver('self', new FakeSegment());
  t.is(presenceOf(await findAddresses(network, BOTH)), 'none');
  network.addresses.add(SERVICE_IP6.address);
  const some = await findAddresses(network, BOTH);
  t.is(presenceOf(some), 'some');
  t.deepEqual(some, {present: [SERVICE_IP6], absent: [SERVICE_IP]});
  network.addresses.add(SERVICE_IP.address);
  t.is(presenceOf(await findAddresses(network, BOTH)), 'all');
});
