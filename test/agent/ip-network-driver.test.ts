// The ip/arping NetworkDriver: exact argv of every method, the tolerated "already there / already gone" answers,
// INTERFACE_MISSING, and arping exit codes mapped without ever calling a failed probe "free"; the long-lived helpers
// in arping's and ip's place, and the fallback to those where the helpers cannot run.

import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {ArpProber, type ArpProbeAnswer} from '../../agent/adapters/arp-probe.js';
import {GarpSender} from '../../agent/adapters/garp-sender.js';
import {createIpNetworkDriver, type NetlinkPort, type ProberPort} from '../../agent/adapters/ip-network-driver.js';
import {BatonError} from '../../agent/errors.js';
import type {ServiceIp} from '../../agent/state-machine.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';

const V4: ServiceIp = {address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'};
const V6: ServiceIp = {address: '2001:DB8:0::100', prefixLength: 64, family: 6, cidr: '2001:DB8:0::100/64'};

const LINKS_JSON = JSON.stringify([
  {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP']},
  {ifindex: 2, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']},
]);

function addrJson(...addresses: Array<[family: 'inet' | 'inet6', local: string, prefixlen: number]>): string {
  return JSON.stringify([{
    ifindex: 2, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    addr_info: addresses.map(([family, local, prefixlen]) => ({family, local, prefixlen, scope: 'global'})),
  }]);
}

// Outputs copied from iputils-arping 20221126 in the namespace lab.
const ARPING_FREE = 'ARPING 192.0.2.100 from 0.0.0.0 eth0\nSent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n';
const ARPING_TAKEN = 'ARPING 192.0.2.100 from 0.0.0.0 eth0\nUnicast reply from 192.0.2.100 [46:C3:73:9A:84:03]  0.535ms\n' +
  'Sent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n';
const ARPING_UNSOLICITED = 'ARPING 192.0.2.100 from 192.0.2.100 eth0\nSent 3 probes (3 broadcast(s))\nReceived 0 response(s)\n';

function setup(options: {announce?: {count: number; intervalMs: number}; probe?: {timeoutMs: number}} = {}) {
  const runner = new RecordingRunner();
  const driver = createIpNetworkDriver(runner, {interface: 'eth0', ...options});
  return {runner, driver};
}

async function assertCode(t: ExecutionContext, promise: Promise<unknown>, code: BatonError['code']): Promise<BatonError> {
  const error = await t.throwsAsync(promise, {instanceOf: BatonError});
  t.is(error?.code, code, error?.message);
  return error as BatonError;
}

test('hasAddress reads `ip -j -4 addr show dev eth0` and matches address and prefix length', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip -j -4 addr show dev eth0', addrJson(['inet', '192.0.2.11', 24], ['inet', '192.0.2.100', 24]));
  t.true(await driver.hasAddress(V4));
  t.false(await driver.hasAddress({...V4, prefixLength: 25, cidr: '192.0.2.100/25'}));
  t.false(await driver.hasAddress({...V4, address: '192.0.2.101', cidr: '192.0.2.101/24'}));
  t.deepEqual(runner.commandLines(), Array(3).fill('ip -j -4 addr show dev eth0'));
});

test('hasAddress uses -6 for IPv6 and compares the canonical spelling', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip -j -6 addr show dev eth0', addrJson(['inet6', 'fe80::1', 64], ['inet6', '2001:db8::100', 64]));
  t.true(await driver.hasAddress(V6));
  t.deepEqual(runner.commandLines(), ['ip -j -6 addr show dev eth0']);
});

test('hasAddress is false on an interface without addresses', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip -j -4 addr show dev eth0', '[]');
  t.false(await driver.hasAddress(V4));
});

test('a missing interface is INTERFACE_MISSING, naming it and the interfaces that exist', async (t) => {
  const runner = new RecordingRunner();
  const driver = createIpNetworkDriver(runner, {interface: 'eth9'});
  runner.on('ip -j -4 addr show dev eth9', commandFailure('ip -j -4 addr show dev eth9', 1, 'Device "eth9" does not exist.\n'));
  runner.on('ip -j link show', LINKS_JSON);
  const error = await assertCode(t, driver.hasAddress(V4), 'INTERFACE_MISSING');
  t.is(error.message, 'interface eth9 does not exist: `ip link` lists lo, eth0');
  t.is((error.cause as BatonError).code, 'COMMAND_FAILED');
  t.deepEqual(runner.commandLines(), ['ip -j -4 addr show dev eth9', 'ip -j link show']);
});

test('addAddress runs `ip addr add CIDR dev IF`', async (t) => {
  const {runner, driver} = setup();
  await driver.addAddress(V4);
  t.deepEqual(runner.commandLines(), ['ip addr add 192.0.2.100/24 dev eth0']);
});

test('addAddress adds IPv6 with nodad', async (t) => {
  const {runner, driver} = setup();
  await driver.addAddress(V6);
  t.deepEqual(runner.commandLines(), ['ip addr add 2001:DB8:0::100/64 dev eth0 nodad']);
});

const alreadyThere = test.macro(async (t, stderr: string) => {
  const {runner, driver} = setup();
  runner.on('ip addr add 192.0.2.100/24 dev eth0', commandFailure('ip addr add 192.0.2.100/24 dev eth0', 2, stderr));
  await t.notThrowsAsync(driver.addAddress(V4));
});
test('addAddress succeeds when iproute2 6 says "Address already assigned"', alreadyThere, 'Error: ipv4: Address already assigned.\n');
test('addAddress succeeds when older iproute2 says "File exists"', alreadyThere, 'RTNETLINK answers: File exists\n');

test('addAddress passes other failures on, with the permission fix in the message', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip addr add 192.0.2.100/24 dev eth0',
    commandFailure('ip addr add 192.0.2.100/24 dev eth0', 2, 'RTNETLINK answers: Operation not permitted\n'));
  const error = await assertCode(t, driver.addAddress(V4), 'COMMAND_FAILED');
  t.is(error.message, '`ip addr add 192.0.2.100/24 dev eth0` exited 2: RTNETLINK answers: Operation not permitted. ' +
    'baton-agent needs CAP_NET_ADMIN (for ip) and CAP_NET_RAW (for arping): run it as root or from its systemd unit');
  t.is(error.details?.exitCode, 2);
});

test('addAddress on a missing interface is INTERFACE_MISSING', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip addr add 192.0.2.100/24 dev eth0', commandFailure('ip addr add 192.0.2.100/24 dev eth0', 1, 'Cannot find device "eth0"\n'));
  runner.on('ip -j link show', JSON.stringify([{ifname: 'lo'}]));
  const error = await assertCode(t, driver.addAddress(V4), 'INTERFACE_MISSING');
  t.is(error.message, 'interface eth0 does not exist: `ip link` lists lo');
});

test('removeAddress runs `ip addr del CIDR dev IF`', async (t) => {
  const {runner, driver} = setup();
  await driver.removeAddress(V4);
  t.deepEqual(runner.commandLines(), ['ip addr del 192.0.2.100/24 dev eth0']);
});

const alreadyGone = test.macro(async (t, stderr: string) => {
  const {runner, driver} = setup();
  runner.on('ip addr del 192.0.2.100/24 dev eth0', commandFailure('ip addr del 192.0.2.100/24 dev eth0', 2, stderr));
  await t.notThrowsAsync(driver.removeAddress(V4));
});
test('removeAddress succeeds when iproute2 6 says "Address not found"', alreadyGone, 'Error: ipv4: Address not found.\n');
test('removeAddress succeeds when older iproute2 says "Cannot assign requested address"', alreadyGone,
  'RTNETLINK answers: Cannot assign requested address\n');

test('removeAddress passes other failures on', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip addr del 192.0.2.100/24 dev eth0', commandFailure('ip addr del 192.0.2.100/24 dev eth0', 2, 'Error: something else\n'));
  const error = await assertCode(t, driver.removeAddress(V4), 'COMMAND_FAILED');
  t.is(error.message, '`ip addr del 192.0.2.100/24 dev eth0` exited 2: Error: something else');
});

test('setLink runs `ip link set dev IF up|down`', async (t) => {
  const {runner, driver} = setup();
  await driver.setLink('eth1', false);
  await driver.setLink('eth1', true);
  t.deepEqual(runner.commandLines(), ['ip link set dev eth1 down', 'ip link set dev eth1 up']);
});

test('setLink on a missing interface is INTERFACE_MISSING naming that interface', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip link set dev eth7 up', commandFailure('ip link set dev eth7 up', 1, 'Cannot find device "eth7"\n'));
  runner.on('ip -j link show', LINKS_JSON);
  const error = await assertCode(t, driver.setLink('eth7', true), 'INTERFACE_MISSING');
  t.is(error.message, 'interface eth7 does not exist: `ip link` lists lo, eth0');
});

test('isLinkUp reads the UP flag from `ip -j link show dev IF`', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip -j link show dev eth0', JSON.stringify([{ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']}]), {times: 1});
  runner.on('ip -j link show dev eth0', JSON.stringify([{ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST']}]), {times: 1});
  t.true(await driver.isLinkUp('eth0'));
  t.false(await driver.isLinkUp('eth0'));
  t.deepEqual(runner.commandLines(), ['ip -j link show dev eth0', 'ip -j link show dev eth0']);
  runner.assertNothingPending();
});

test('isLinkUp on a missing interface is INTERFACE_MISSING', async (t) => {
  const {runner, driver} = setup();
  runner.on('ip -j link show dev eth3', commandFailure('ip -j link show dev eth3', 1, 'Device "eth3" does not exist.\n'));
  runner.on('ip -j link show', LINKS_JSON);
  await assertCode(t, driver.isLinkUp('eth3'), 'INTERFACE_MISSING');
});

test('announce sends gratuitous ARP in request form and reply form, 2 of each 1 s apart by default', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping /, ARPING_UNSOLICITED);
  await driver.announce(V4);
  t.deepEqual(runner.commandLines(), [
    'arping -U -c 2 -i 1 -I eth0 192.0.2.100',
    'arping -A -c 2 -i 1 -I eth0 192.0.2.100',
  ]);
  // arping would idle one more interval after its last packet: it is interrupted 100 ms after that packet instead.
  t.deepEqual(runner.calls.map((c) => c.interruptAfterMs), [1100, 1100]);
  t.true(runner.calls.every((c) => (c.timeoutMs ?? 0) > 1100));
});

test('announce takes count and whole-second interval from the options', async (t) => {
  const {runner, driver} = setup({announce: {count: 3, intervalMs: 2000}});
  runner.on(/^arping /, ARPING_UNSOLICITED);
  await driver.announce(V4);
  t.deepEqual(runner.commandLines(), [
    'arping -U -c 3 -i 2 -I eth0 192.0.2.100',
    'arping -A -c 3 -i 2 -I eth0 192.0.2.100',
  ]);
  t.deepEqual(runner.calls.map((c) => c.interruptAfterMs), [4100, 4100]);
});

test('announce fails when arping was stopped before its first packet left', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -U /, ARPING_UNSOLICITED);
  runner.on(/^arping -A /, 'ARPING 192.0.2.100 from 192.0.2.100 eth0\nSent 0 probes (0 broadcast(s))\nReceived 0 response(s)\n');
  const error = await assertCode(t, driver.announce(V4), 'COMMAND_FAILED');
  t.regex(error.message, /^`arping -A -c 2 -i 1 -I eth0 192.0.2.100` sent no packet/);
});

const refused = test.macro((t, options: Parameters<typeof setup>[0], expected: RegExp) => {
  const error = t.throws(() => setup(options), {instanceOf: BatonError});
  t.is(error?.code, 'CONFIG_INVALID');
  t.regex(error?.message ?? '', expected);
});
test('an announce interval arping cannot express is refused when the driver is built', refused,
  {announce: {count: 3, intervalMs: 300}}, /announce.intervalMs: expected whole seconds .* got 300/);
test('an announce count below 1 is refused', refused, {announce: {count: 0, intervalMs: 1000}}, /announce.count/);
test('a probe too short for arping to send anything is refused', refused, {probe: {timeoutMs: 50}}, /probe.timeoutMs: expected an integer ≥ 100/);

test('announce accepts exit 1 after probes were sent (older iputils: nobody answered, as expected)', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -A /, ARPING_UNSOLICITED);
  runner.on(/^arping -U /, commandFailure('arping -U -c 2 -i 1 -I eth0 192.0.2.100', 1, '', ARPING_UNSOLICITED));
  await t.notThrowsAsync(driver.announce(V4));
});

test('announce fails when arping exits 1 without sending (e.g. invalid argument)', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -U /, ARPING_UNSOLICITED);
  runner.on(/^arping -A /, commandFailure('arping -A -c 2 -i 1 -I eth0 192.0.2.100', 1, "arping: invalid argument: '0.1'\n"));
  const error = await assertCode(t, driver.announce(V4), 'COMMAND_FAILED');
  t.is(error.message, "`arping -A -c 2 -i 1 -I eth0 192.0.2.100` exited 1: arping: invalid argument: '0.1'");
});

test('announce fails when arping exits 2 (interface down)', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -A /, ARPING_UNSOLICITED);
  runner.on(/^arping -U /, commandFailure('arping -U -c 2 -i 1 -I eth0 192.0.2.100', 2, 'Interface "eth0" is down\n'));
  await assertCode(t, driver.announce(V4), 'COMMAND_FAILED');
});

test('announce for IPv6 sends a neighbour advertisement per packet through the helper; without a helper that runs it fails naming perl, and spawns nothing', async (t) => {
  const sent: string[] = [];
  const garp = {unusable: undefined, send: async (iface: string, address: string) => {
    sent.push(`${iface} ${address}`);
    return '02:00:00:00:00:01';
  }};
  const {runner} = setup();
  await createIpNetworkDriver(runner, {interface: 'eth0', announce: {count: 2, intervalMs: 1000}, garp}).announce(V6);
  t.deepEqual(sent, ['eth0 2001:DB8:0::100', 'eth0 2001:DB8:0::100']);
  for (const without of [undefined, {unusable: 'cannot run `the gratuitous ARP helper (perl)`: spawn perl ENOENT', send: garp.send}]) {
    const error = await assertCode(t, createIpNetworkDriver(runner, {interface: 'eth0', ...(without === undefined ? {} : {garp: without})}).announce(V6), 'COMMAND_FAILED');
    t.regex(error.message, /^cannot announce 2001:DB8:0::100: for IPv6 only the agent's packet helper \(perl\) sends neighbour discovery, and it cannot run here \(.+\); arping is IPv4 only/);
  }
  t.is(sent.length, 2);
  t.deepEqual(runner.commandLines(), []);
});

test('isAddressInUse probes with `arping -D -c 1 -w 1`, interrupted after 300 ms, and reads exit 0 as free', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -D /, ARPING_FREE);
  t.false(await driver.isAddressInUse(V4));
  t.deepEqual(runner.commandLines(), ['arping -D -c 1 -w 1 -I eth0 192.0.2.100']);
  t.is(runner.calls[0]?.interruptAfterMs, 300);
});

test('a probe of whole seconds lets arping run to its own deadline', async (t) => {
  const {runner, driver} = setup({probe: {timeoutMs: 1000}});
  runner.on(/^arping -D /, ARPING_FREE);
  await driver.isAddressInUse(V4);
  t.deepEqual(runner.commandLines(), ['arping -D -c 1 -w 1 -I eth0 192.0.2.100']);
  t.is(runner.calls[0]?.interruptAfterMs, undefined);
});

test('isAddressInUse reads exit 1 with a reply as in use', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -D /, commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 1, '', ARPING_TAKEN));
  t.true(await driver.isAddressInUse(V4));
});

test('a longer probe sends one probe per second and is interrupted at its time', async (t) => {
  const {runner, driver} = setup({probe: {timeoutMs: 1500}});
  runner.on(/^arping -D /, ARPING_FREE);
  await driver.isAddressInUse(V4);
  t.deepEqual(runner.commandLines(), ['arping -D -c 2 -w 2 -I eth0 192.0.2.100']);
  t.is(runner.calls[0]?.interruptAfterMs, 1500);
});

const failedProbe = test.macro(async (t, failure: BatonError, code: BatonError['code']) => {
  const {runner, driver} = setup();
  runner.on(/^arping -D /, failure);
  runner.on('ip -j link show', LINKS_JSON);
  await assertCode(t, driver.isAddressInUse(V4), code);
});
test('a probe that exits 2 is COMMAND_FAILED, never "free"', failedProbe,
  commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 2, 'Interface "eth0" is down\n'), 'COMMAND_FAILED');
test('a probe that exits 1 without a reply is COMMAND_FAILED, never "in use" or "free"', failedProbe,
  commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 1, "arping: invalid argument: '0.3'\n"), 'COMMAND_FAILED');
test('a probe that times out is COMMAND_TIMEOUT, never "free"', failedProbe,
  new BatonError('COMMAND_TIMEOUT', '`arping -D -c 1 -w 1 -I eth0 192.0.2.100` did not finish within 4000 ms and was stopped'),
  'COMMAND_TIMEOUT');
test('a probe on a missing interface is INTERFACE_MISSING', failedProbe,
  commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 2, 'arping: Device eth0 not available.\n'), 'INTERFACE_MISSING');

test('a probe interrupted before its first packet (exit 0, "Sent 0 probes") is COMMAND_FAILED, never "free"', async (t) => {
  const {runner, driver} = setup();
  runner.on(/^arping -D /, 'ARPING 192.0.2.100 from 0.0.0.0 eth0\nSent 0 probes (0 broadcast(s))\nReceived 0 response(s)\n');
  await assertCode(t, driver.isAddressInUse(V4), 'COMMAND_FAILED');
});

test('isAddressInUse for IPv6 refuses instead of guessing', async (t) => {
  const {runner, driver} = setup();
  await assertCode(t, driver.isAddressInUse(V6), 'COMMAND_FAILED');
  t.deepEqual(runner.calls, []);
});

// A stand-in for perl that answers every request as the real helper does; the arguments it gets (-e SCRIPT) are ignored.
const ANSWERING_HELPER = ['sh', '-c', 'while read -r line; do echo "$line" >> "$0"; echo "sent 2 02:00:00:00:00:01"; done'] as const;

test('with the long-lived sender, announce writes one request per packet and starts no arping', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-garp-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  const requests = join(dir, 'requests');
  const garp = new GarpSender({command: [...ANSWERING_HELPER, requests]});
  t.teardown(() => garp.close());
  const runner = new RecordingRunner();
  const driver = createIpNetworkDriver(runner, {interface: 'eth0', announce: {count: 2, intervalMs: 1000}, garp});
  const started = Date.now();
  await driver.announce(V4);
  t.true(Date.now() - started >= 1000, 'the second packet waits the interval');
  t.deepEqual((await readFile(requests, 'utf8')).trim().split('\n'), ['garp eth0 192.0.2.100', 'garp eth0 192.0.2.100']);
  t.deepEqual(runner.commandLines(), []);
});

test('where the sender cannot run, announce falls back to arping; a missing interface is INTERFACE_MISSING', async (t) => {
  const garp = new GarpSender({command: ['/nonexistent/perl']});
  const {runner, driver} = setupWith({garp});
  runner.on(/^arping /, ARPING_UNSOLICITED);
  await driver.announce(V4);
  t.deepEqual(runner.commandLines(), ['arping -U -c 1 -i 1 -I eth0 192.0.2.100', 'arping -A -c 1 -i 1 -I eth0 192.0.2.100']);

  const real = new GarpSender();
  t.teardown(() => real.close());
  const missing = setupWith({garp: real, interface: 'nosuch9'});
  missing.runner.on('ip -j link show', LINKS_JSON);
  const error = await assertCode(t, missing.driver.announce(V4), 'INTERFACE_MISSING');
  t.is(error.message, 'interface nosuch9 does not exist: `ip link` lists lo, eth0');
  t.deepEqual(missing.runner.commandLines(), ['ip -j link show'], 'no arping after the kernel said the interface is missing');
});

function setupWith(options: {garp: GarpSender; interface?: string}) {
  const runner = new RecordingRunner();
  const driver = createIpNetworkDriver(runner, {interface: options.interface ?? 'eth0', announce: {count: 1, intervalMs: 1000}, garp: options.garp});
  return {runner, driver};
}

/** A netlink helper that records what it is asked and answers with `answer` (undefined: ok, else the kernel's words). */
function recordingNetlink(answer?: string, unusable?: string): NetlinkPort & {readonly asked: string[]} {
  const asked: string[] = [];
  return {
    asked, unusable,
    change: async (verb, iface, address, prefixLength) => {
      asked.push(`${verb} ${iface} ${address} ${prefixLength}`);
      if (answer !== undefined) throw new BatonError('COMMAND_FAILED', `address change failed: ${answer}`, {details: {exitCode: 1, stdout: '', stderr: answer}});
    },
  };
}

test('with the netlink helper, an IPv4 address is added and removed through it and no ip starts', async (t) => {
  const netlink = recordingNetlink();
  const runner = new RecordingRunner();
  const driver = createIpNetworkDriver(runner, {interface: 'eth0', netlink});
  await driver.addAddress(V4);
  await driver.removeAddress(V4);
  t.deepEqual(netlink.asked, ['add eth0 192.0.2.100 24', 'del eth0 192.0.2.100 24']);
  t.deepEqual(runner.commandLines(), []);
});

test('through the netlink helper, "already there" and "already gone" are what was wanted; other failures are passed on', async (t) => {
  const runner = new RecordingRunner();
  await createIpNetworkDriver(runner, {interface: 'eth0', netlink: recordingNetlink('File exists')}).addAddress(V4);
  await createIpNetworkDriver(runner, {interface: 'eth0', netlink: recordingNetlink('Cannot assign requested address')}).removeAddress(V4);
  const denied = createIpNetworkDriver(runner, {interface: 'eth0', netlink: recordingNetlink('Operation not permitted')});
  const error = await assertCode(t, denied.addAddress(V4), 'COMMAND_FAILED');
  t.regex(error.message, /needs CAP_NET_ADMIN/);
  runner.on('ip -j link show', LINKS_JSON);
  const missing = createIpNetworkDriver(runner, {interface: 'eth9', netlink: recordingNetlink('eth9: No such device')});
  t.is((await assertCode(t, missing.addAddress(V4), 'INTERFACE_MISSING')).message, 'interface eth9 does not exist: `ip link` lists lo, eth0');
  t.deepEqual(runner.commandLines(), ['ip -j link show'], 'no ip addr after the helper answered');
});

test('where the netlink helper cannot run, the address goes through ip (an IPv6 one with nodad); where it runs, it takes IPv6 too', async (t) => {
  const netlink = recordingNetlink(undefined, 'cannot run `the netlink address helper (perl)`: spawn perl ENOENT');
  const {runner} = setup();
  const driver = createIpNetworkDriver(runner, {interface: 'eth0', netlink});
  await driver.addAddress(V4);
  await driver.addAddress(V6);
  const v6 = recordingNetlink();
  await createIpNetworkDriver(runner, {interface: 'eth0', netlink: v6}).addAddress(V6);
  t.deepEqual(netlink.asked, []);
  t.deepEqual(v6.asked, ['add eth0 2001:DB8:0::100 64']);
  t.deepEqual(runner.commandLines(), ['ip addr add 192.0.2.100/24 dev eth0', 'ip addr add 2001:DB8:0::100/64 dev eth0 nodad']);
});

/** A prober that records what it is asked and answers `answer`: a probe's answer, or the helper's words of a failure. */
function recordingProber(answer: ArpProbeAnswer | string, unusable?: string): ProberPort & {readonly asked: string[]} {
  const asked: string[] = [];
  return {
    asked, unusable,
    probe: async (iface, address, listenMs) => {
      asked.push(`${iface} ${address} ${listenMs}`);
      if (typeof answer !== 'string') return answer;
      throw new BatonError('COMMAND_FAILED', `duplicate-address probe failed: ${answer}`, {details: {exitCode: 2, stdout: '', stderr: answer}});
    },
  };
}

test('with the prober, isAddressInUse asks it for the probe\'s time, reads free and taken, and starts no arping', async (t) => {
  const runner = new RecordingRunner();
  const free = recordingProber({inUse: false});
  t.false(await createIpNetworkDriver(runner, {interface: 'eth0', probe: {timeoutMs: 150}, prober: free}).isAddressInUse(V4));
  const taken = recordingProber({inUse: true, mac: '46:c3:73:9a:84:03'});
  t.true(await createIpNetworkDriver(runner, {interface: 'eth0', prober: taken}).isAddressInUse(V4));
  t.deepEqual([...free.asked, ...taken.asked], ['eth0 192.0.2.100 150', 'eth0 192.0.2.100 300']);
  t.deepEqual(runner.commandLines(), []);
});

test('through the prober, a missing interface is INTERFACE_MISSING and a down one COMMAND_FAILED, never "free", and no arping follows', async (t) => {
  const runner = new RecordingRunner();
  runner.on('ip -j link show', LINKS_JSON);
  const missing = createIpNetworkDriver(runner, {interface: 'eth9', prober: recordingProber('eth9: No such device')});
  t.is((await assertCode(t, missing.isAddressInUse(V4), 'INTERFACE_MISSING')).message, 'interface eth9 does not exist: `ip link` lists lo, eth0');
  const down = createIpNetworkDriver(runner, {interface: 'eth0', prober: recordingProber('Interface "eth0" is down')});
  t.regex((await assertCode(t, down.isAddressInUse(V4), 'COMMAND_FAILED')).message, /Interface "eth0" is down/);
  t.deepEqual(runner.commandLines(), ['ip -j link show']);
});

test('where the prober cannot run, isAddressInUse falls back to arping for IPv4 and fails for IPv6, which only the prober can probe', async (t) => {
  const prober = recordingProber({inUse: false}, 'cannot run `the duplicate-address probe helper (perl)`: spawn perl ENOENT');
  const {runner} = setup();
  runner.on(/^arping -D /, commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 1, '', ARPING_TAKEN));
  const driver = createIpNetworkDriver(runner, {interface: 'eth0', prober});
  t.true(await driver.isAddressInUse(V4));
  const error = await assertCode(t, driver.isAddressInUse(V6), 'COMMAND_FAILED');
  t.regex(error.message, /^cannot probe 2001:DB8:0::100: for IPv6 only the agent's packet helper \(perl\) sends neighbour discovery, and it cannot run here \(cannot run .*ENOENT\)/);
  t.deepEqual(prober.asked, []);
  t.deepEqual(runner.commandLines(), ['arping -D -c 1 -w 1 -I eth0 192.0.2.100']);
  const v6 = recordingProber({inUse: true, mac: '46:c3:73:9a:84:03'});
  t.true(await createIpNetworkDriver(runner, {interface: 'eth0', probe: {timeoutMs: 150}, prober: v6}).isAddressInUse(V6));
  t.deepEqual(v6.asked, ['eth0 2001:DB8:0::100 150']);
});

test('a prober that turns out not to run on this host falls back to arping for that probe', async (t) => {
  const prober = new ArpProber({command: ['/nonexistent/perl']});
  const {runner} = setup();
  runner.on(/^arping -D /, ARPING_FREE);
  t.false(await createIpNetworkDriver(runner, {interface: 'eth0', prober}).isAddressInUse(V4));
  t.deepEqual(runner.commandLines(), ['arping -D -c 1 -w 1 -I eth0 192.0.2.100']);
});

test('arping stopped by the narrowed system-call filter says why and what to do, not "needs CAP_NET_RAW"', async (t) => {
  const prober = recordingProber({inUse: false}, 'cannot run `the duplicate-address probe helper (perl)`: spawn perl ENOENT');
  const {runner} = setup();
  runner.on(/^arping -D /, commandFailure('arping -D -c 1 -w 1 -I eth0 192.0.2.100', 255, 'arping: cap_set_proc: Operation not permitted\n'));
  const error = await assertCode(t, createIpNetworkDriver(runner, {interface: 'eth0', prober}).isAddressInUse(V4), 'COMMAND_FAILED');
  t.regex(error.message, /arping cannot drop its privileges under this system-call filter .* make perl runnable \(Debian package perl-base\)$/);
});
