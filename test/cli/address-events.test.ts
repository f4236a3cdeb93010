// Reading `ip -ts monitor address link` output (lines as iproute2 6.1 prints them) and judging holders from it.

import test from 'ava';
import {judgeHolders, longestUnheld, parseMonitorLine, type AddressEvent, type HostAddressState} from '../../cli/lab/address-events.js';

const at = (hms: string): number => new Date(`2026-12-05T${hms}`).getTime();

test('an added and a deleted service address on the interface, timed to the microsecond', (t) => {
  t.deepEqual(parseMonitorLine('[2026-12-05T19:38:00.774409] 3: eth0    inet 192.0.2.100/25 scope global eth0', 'eth0', ['192.0.2.100']),
    {atMs: at('19:38:00.774') + 0.409, change: 'address-added', address: '192.0.2.100'});
  t.deepEqual(parseMonitorLine('[2026-12-05T19:38:00.798924] Deleted 3: eth0    inet 192.0.2.100/25 scope global eth0', 'eth0', ['192.0.2.100']),
    {atMs: at('19:38:00.798') + 0.924, change: 'address-removed', address: '192.0.2.100'});
});

test('the service address as a /32 on lo is a drain\'s hold; other addresses on lo are not', (t) => {
  t.is(parseMonitorLine('[2026-12-05T19:38:00.700000] 1: lo    inet 192.0.2.100/32 scope global lo', 'eth0', ['192.0.2.100'])?.change, 'hold-added');
  t.is(parseMonitorLine('[2026-12-05T19:38:00.900000] Deleted 1: lo    inet 192.0.2.100/32 scope global lo', 'eth0', ['192.0.2.100'])?.change, 'hold-removed');
  t.is(parseMonitorLine('[2026-12-05T19:38:00.900000] 1: lo    inet 127.77.0.9/32 scope host lo', 'eth0', ['192.0.2.100']), undefined);
});

test('the link going down and up, with or without a peer name after @', (t) => {
  t.is(parseMonitorLine('[2026-12-05T19:38:00.781384] 3: eth0@if12: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN group default ', 'eth0', ['192.0.2.100'])?.change,
    'link-down');
  t.is(parseMonitorLine('[2026-12-05T19:38:00.791914] 3: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP', 'eth0', ['192.0.2.100'])?.change,
    'link-up');
});

// As iproute2 6.1 printed them for `ip addr add … nodad`, an add without it, and `ip addr del` (13:40 UTC, 2026-12-06).
const V6 = '2001:db8:0:1::100';

test('an IPv6 service address added with nodad and deleted: one event each', (t) => {
  t.deepEqual(parseMonitorLine('[2026-12-06T13:40:59.244925] 3: eth0    inet6 2001:db8:0:1::100/64 scope global nodad ', 'eth0', [V6]),
    {atMs: new Date('2026-12-06T13:40:59.244').getTime() + 0.925, change: 'address-added', address: V6});
  t.is(parseMonitorLine('[2026-12-06T13:41:02.078009] Deleted 3: eth0    inet6 2001:db8:0:1::100/64 scope global nodad ', 'eth0', [V6])?.change,
    'address-removed');
  t.is(parseMonitorLine('[2026-12-06T13:40:59.244925] 3: eth0    inet6 2001:db8:0:1::100/64 scope global nodad ', 'eth0', ['2001:DB8:0:1:0:0:0:100'])?.change,
    'address-added', 'the address compares as an address, however it is written');
});

test('an IPv6 address added with duplicate address detection holds only once it is no longer tentative', (t) => {
  t.is(parseMonitorLine('[2026-12-06T13:40:59.561194] 3: eth0    inet6 2001:db8:0:1::100/64 scope global tentative ', 'eth0', [V6]), undefined);
  t.is(parseMonitorLine('[2026-12-06T13:41:01.131121] 3: eth0    inet6 2001:db8:0:1::100/64 scope global ', 'eth0', [V6])?.change, 'address-added');
  t.is(parseMonitorLine('[2026-12-06T13:41:01.131121] 3: eth0    inet6 2001:db8:0:1::100/64 scope global dadfailed tentative ', 'eth0', [V6]), undefined);
  t.is(parseMonitorLine('[2026-12-06T13:41:02.131121] Deleted 3: eth0    inet6 2001:db8:0:1::100/64 scope global tentative ', 'eth0', [V6])?.change,
    'address-removed');
});

test('the IPv6 service address as a /128 on lo is a drain\'s hold; as a /64 on lo, or the IPv4 one, is not ours', (t) => {
  t.is(parseMonitorLine('[2026-12-06T13:40:50.135575] 1: lo    inet6 2001:db8:0:1::100/128 scope global ', 'eth0', [V6])?.change, 'hold-added');
  t.is(parseMonitorLine('[2026-12-06T13:40:50.449659] Deleted 1: lo    inet6 2001:db8:0:1::100/128 scope global ', 'eth0', [V6])?.change, 'hold-removed');
  t.is(parseMonitorLine('[2026-12-06T13:40:50.135575] 1: lo    inet6 2001:db8:0:1::100/64 scope global ', 'eth0', [V6]), undefined);
  t.is(parseMonitorLine('[2026-12-05T19:38:00.774409] 3: eth0    inet 192.0.2.100/25 scope global eth0', 'eth0', [V6]), undefined);
  t.is(parseMonitorLine('[2026-12-06T13:40:59.244925] 3: eth0    inet6 2001:db8:0:1::11/64 scope global nodad ', 'eth0', [V6]), undefined);
});

const ignored = test.macro((t, line: string) => {
  t.is(parseMonitorLine(line, 'eth0', ['192.0.2.100']), undefined);
});
test('another address on the interface is ignored', ignored, '[2026-12-05T19:38:00.100000] 3: eth0    inet 192.0.2.11/25 scope global eth0');
test('an IPv6 address is ignored', ignored, '[2026-12-05T19:38:00.781581] Deleted 3: eth0    inet6 fe80::7057:8bff:fe03:944/64 scope link');
test('another interface is ignored', ignored, '[2026-12-05T19:38:00.791924] 2: eth1@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500');
test('a continuation line is ignored', ignored, '       valid_lft forever preferred_lft forever');

const V4 = '192.0.2.100';

function event(host: string, ms: number, change: AddressEvent['change'], address = V4): AddressEvent {
  return change.startsWith('link') ? {host, atMs: ms, change} : {host, atMs: ms, change, address};
}

/** One host's state for a single-address service (192.0.2.100). */
function one(address: boolean, linkUp: boolean, held: boolean): HostAddressState {
  return {addresses: address ? [V4] : [], linkUp, held: held ? [V4] : []};
}

test('a hand-off in order (removed, then added elsewhere) has no overlap', (t) => {
  t.deepEqual(judgeHolders({
    addresses: [V4], initial: {primary: one(true, true, false), backup: one(false, true, false)},
    events: [event('primary', 10, 'address-removed'), event('backup', 11, 'address-added')],
  }), {final: ['backup'], partly: [], overlaps: []});
});

test('an address forced onto the second host and released again is one closed overlap', (t) => {
  t.deepEqual(judgeHolders({
    addresses: [V4], initial: {primary: one(true, true, false), backup: one(false, true, false)},
    events: [event('backup', 10, 'address-added'), event('backup', 250, 'address-removed')],
  }), {final: ['primary'], partly: [], overlaps: [{fromMs: 10, toMs: 250, hosts: ['backup', 'primary']}]});
});

test('an address behind a down link does not hold (link mode), and an overlap still open at the end has no end', (t) => {
  const judged = judgeHolders({
    addresses: [V4], initial: {primary: one(true, true, false), backup: one(true, false, false)},
    events: [event('primary', 5, 'link-down'), event('backup', 6, 'link-up'), event('primary', 9, 'link-up')],
  });
  t.deepEqual(judged, {final: ['backup', 'primary'], partly: [], overlaps: [{fromMs: 9, toMs: undefined, hosts: ['backup', 'primary']}]});
});

test('a giver in a drain\'s hold does not hold the address, so a taker that adds it then is no overlap; out of hold it is', (t) => {
  // The giver killed between hold-connections and primary-net-down: the taker takes the silent address over; the
  // giver, restarted, removes its own (no overlap). Had it left the hold first and kept the address, both would hold.
  const initial = {primary: one(true, true, false), backup: one(false, true, false)};
  t.deepEqual(judgeHolders({addresses: [V4], initial, events: [
    event('primary', 5, 'hold-added'), event('backup', 1000, 'address-added'), event('primary', 2000, 'address-removed'),
    event('primary', 2001, 'hold-removed'),
  ]}), {final: ['backup'], partly: [], overlaps: []});
  t.deepEqual(judgeHolders({addresses: [V4], initial, events: [
    event('primary', 5, 'hold-added'), event('backup', 1000, 'address-added'), event('primary', 2000, 'hold-removed'),
    event('primary', 2090, 'address-removed'),
  ]}), {final: ['backup'], partly: [], overlaps: [{fromMs: 2000, toMs: 2090, hosts: ['backup', 'primary']}]});
});

// A dual-stack service: 192.0.2.100 and 2001:db8:0:1::100 moving together.
const BOTH = [V4, V6];

test('a line names which of the watched addresses it is about', (t) => {
  t.is(parseMonitorLine('[2026-12-06T13:40:59.244925] 3: eth0    inet6 2001:db8:0:1::100/64 scope global nodad ', 'eth0', BOTH)?.address, V6);
  t.is(parseMonitorLine('[2026-12-05T19:38:00.774409] 3: eth0    inet 192.0.2.100/25 scope global eth0', 'eth0', BOTH)?.address, V4);
  t.is(parseMonitorLine('[2026-12-05T19:38:00.774409] 3: eth0    inet 192.0.2.11/25 scope global eth0', 'eth0', BOTH), undefined);
});

test('dual stack: both addresses handed off in order is no overlap, and the taker holds the service', (t) => {
  t.deepEqual(judgeHolders({addresses: BOTH,
    initial: {primary: {addresses: BOTH, linkUp: true, held: []}, backup: {addresses: [], linkUp: true, held: []}},
    events: [event('primary', 10, 'address-removed'), event('primary', 11, 'address-removed', V6),
      event('backup', 12, 'address-added'), event('backup', 13, 'address-added', V6)],
  }), {final: ['backup'], partly: [], overlaps: []});
});

test('dual stack: one address on two hosts is an overlap, and a host left with one address is partly holding, not a holder', (t) => {
  t.deepEqual(judgeHolders({addresses: BOTH,
    initial: {primary: {addresses: BOTH, linkUp: true, held: []}, backup: {addresses: [], linkUp: true, held: []}},
    events: [event('backup', 10, 'address-added', V6), event('primary', 20, 'address-removed'), event('primary', 30, 'address-removed', V6)],
  }), {final: [], partly: [{host: 'backup', held: [V6], missing: [V4]}], overlaps: [{fromMs: 10, toMs: 30, hosts: ['backup', 'primary']}]});
});

test('dual stack: the two addresses split between the hosts is two holders, though no address is on both', (t) => {
  const judged = judgeHolders({addresses: BOTH,
    initial: {primary: {addresses: BOTH, linkUp: true, held: []}, backup: {addresses: [], linkUp: true, held: []}},
    events: [event('primary', 10, 'address-removed', V6), event('backup', 11, 'address-added', V6)],
  });
  t.deepEqual(judged.overlaps, [{fromMs: 11, toMs: undefined, hosts: ['backup', 'primary']}]);
  t.deepEqual(judged.final, []);
  t.deepEqual(judged.partly, [{host: 'backup', held: [V6], missing: [V4]}, {host: 'primary', held: [V4], missing: [V6]}]);
});

test('dual stack: the IPv4 address left on a downed link holds nothing; when the link returns it does, beside the taker', (t) => {
  // IPv4 stays on a downed link, IPv6 goes with it: the old primary's link comes back with half the service.
  const judged = judgeHolders({addresses: BOTH,
    initial: {primary: {addresses: BOTH, linkUp: true, held: []}, backup: {addresses: [], linkUp: true, held: []}},
    events: [event('primary', 5, 'link-down'), event('primary', 6, 'address-removed', V6), event('backup', 900, 'address-added'),
      event('backup', 901, 'address-added', V6), event('primary', 5000, 'link-up'), event('primary', 5400, 'address-removed')],
  });
  t.deepEqual(judged, {final: ['backup'], partly: [], overlaps: [{fromMs: 5000, toMs: 5400, hosts: ['backup', 'primary']}]});
});

test('longestUnheld: the longest time in the window with the address on no host, a dead host behind its down link on none', (t) => {
  const initial = {a: one(true, true, false), b: one(false, true, false), c: one(false, true, false)};
  const history = {addresses: [V4], initial, events: [
    event('a', 100, 'address-removed'), event('b', 130, 'address-added'), // a switch: 30 ms on no host
    event('b', 500, 'link-down'), event('c', 3500, 'address-added'), // a dead host (address left, link down): 3 s
  ]};
  t.is(longestUnheld(history, 0, 400), 30);
  t.is(longestUnheld(history, 0, 1000), 500);
  t.is(longestUnheld(history, 0, 5000), 3000);
  // A window inside the outage is cut to it; one after it has none.
  t.is(longestUnheld(history, 1000, 2000), 1000);
  t.is(longestUnheld(history, 4000, 5000), 0);
  // Nobody holds it from the start: the window's start counts.
  t.is(longestUnheld({addresses: [V4], initial: {a: one(false, true, false)}, events: [event('a', 70, 'address-added')]}, 20, 100), 50);
});
