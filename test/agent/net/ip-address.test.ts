// IP addresses and subnets: canonical forms, strictness, prefix bounds, network/broadcast, membership.

import test from 'ava';
import {
  addressRoleOf, canonicalIpText, type IpAddress, isHostOf, isInSubnet, isSubnetOf, parseHostCidr, parseIpAddress,
  parseSubnet, type Subnet, unmapIpv4,
} from '../../../agent/net/ip-address.js';

function ip(text: string): IpAddress {
  const parsed = parseIpAddress(text);
  if (parsed === undefined) throw new Error(`test setup: ${text} is no address`);
  return parsed;
}

function subnet(network: string, prefixLength: number): Subnet {
  const parsed = parseSubnet(network, prefixLength);
  if (parsed === undefined) throw new Error(`test setup: ${network}/${prefixLength} is no subnet`);
  return parsed;
}

const canonical = test.macro({
  exec: (t, text: string, expected: IpAddress | undefined) => t.deepEqual(parseIpAddress(text), expected),
  title: (title, text) => title ?? `${JSON.stringify(text)} parses to its canonical form`,
});

test(canonical, '192.0.2.1', {address: '192.0.2.1', family: 4});
test(canonical, '0.0.0.0', {address: '0.0.0.0', family: 4});
test(canonical, '255.255.255.255', {address: '255.255.255.255', family: 4});
test(canonical, '2001:DB8:0:0::12', {address: '2001:db8::12', family: 6});
test(canonical, '2001:0db8:0000:0000:0000:0000:0000:0001', {address: '2001:db8::1', family: 6});
test(canonical, '::', {address: '::', family: 6});
test('the first of two equal zero runs is the one compressed', canonical, '1:0:0:1:0:0:0:1',
  {address: '1:0:0:1::1', family: 6});
test('a single zero group is not compressed', canonical, '2001:db8:0:1:1:1:1:1',
  {address: '2001:db8:0:1:1:1:1:1', family: 6});
test('an IPv4-mapped address is written in hex', canonical, '::ffff:192.0.2.1',
  {address: '::ffff:c000:201', family: 6});
test('an IPv4-compatible address stays IPv4-compatible, not mapped', canonical, '::192.0.2.1',
  {address: '::c000:201', family: 6});
test('a zone is kept as written', canonical, 'FE80::1%br-lan', {address: 'fe80::1%br-lan', family: 6});

const notAnAddress = test.macro({
  exec: (t, text: string) => t.is(parseIpAddress(text), undefined),
  title: (title, text) => title ?? `${JSON.stringify(text)} is not an address`,
});

for (const text of ['', 'abc', 'backup.example', '192.0.2.256', '192.0.2', '192.0.2.1.', ' 192.0.2.1', '192.0.2.1/24',
  '2001:db8::1::2', '2001:db8:::1', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '[::1]', 'fe80::1%', 'fe80::1%a b',
  '1.2.3.4%eth0', '::ffff:1.2.3']) {
  test(notAnAddress, text);
}
// inet_aton would read these as other addresses than a person means; `ip` refuses them too.
test('an IPv4 address in the short form of inet_aton is refused', notAnAddress, '127.1');
test('an IPv4 address with a hex part is refused', notAnAddress, '0x7f.0.0.1');
test('an IPv4 address with a leading zero (octal to inet_aton) is refused', notAnAddress, '010.0.0.1');
test('an IPv4 tail of an IPv6 address with a hex part is refused', notAnAddress, '::ffff:0x7f.0.0.1');
test('an IPv4 tail of an IPv6 address with a leading zero is refused', notAnAddress, '::ffff:01.2.3.4');

test('a host address with its prefix length parses to a ServiceIp', (t) => {
  t.deepEqual(parseHostCidr('192.0.2.100/24'), {address: '192.0.2.100', prefixLength: 24, family: 4,
    cidr: '192.0.2.100/24'});
  t.deepEqual(parseHostCidr('2001:DB8::100/64'), {address: '2001:db8::100', prefixLength: 64, family: 6,
    cidr: '2001:db8::100/64'});
});

test('the prefix length is 1..32 for IPv4 and 1..128 for IPv6', (t) => {
  t.like(parseHostCidr('192.0.2.100/1'), {prefixLength: 1});
  t.like(parseHostCidr('192.0.2.100/32'), {prefixLength: 32});
  t.like(parseHostCidr('2001:db8::100/128'), {prefixLength: 128});
  t.deepEqual(parseHostCidr('192.0.2.100/0'), {problem: 'prefix-length-out-of-range', family: 4});
  t.deepEqual(parseHostCidr('192.0.2.100/33'), {problem: 'prefix-length-out-of-range', family: 4});
  t.deepEqual(parseHostCidr('2001:db8::100/129'), {problem: 'prefix-length-out-of-range', family: 6});
});

test('a prefix length that is not plain digits is out of range, not read some other way', (t) => {
  for (const prefix of ['', '024', '+24', '24 ', 'x', '1e1']) {
    t.deepEqual(parseHostCidr(`192.0.2.100/${prefix}`), {problem: 'prefix-length-out-of-range', family: 4}, prefix);
  }
});

test('a CIDR without a slash, or with no address before it, is refused with the reason', (t) => {
  t.deepEqual(parseHostCidr('192.0.2.100'), {problem: 'no-prefix-length'});
  t.deepEqual(parseHostCidr('192.0.2/24'), {problem: 'not-an-address', addressText: '192.0.2'});
  t.deepEqual(parseHostCidr('/24'), {problem: 'not-an-address', addressText: ''});
  t.deepEqual(parseHostCidr('fe80::1%eth0/64'), {problem: 'not-an-address', addressText: 'fe80::1%eth0'});
});

test('the network and broadcast addresses of a subnet are not host addresses', (t) => {
  t.deepEqual(parseHostCidr('192.0.2.0/24'), {problem: 'network-address', address: '192.0.2.0', prefixLength: 24});
  t.deepEqual(parseHostCidr('192.0.2.255/24'), {problem: 'broadcast-address', address: '192.0.2.255',
    prefixLength: 24});
  t.deepEqual(parseHostCidr('192.0.2.128/25'), {problem: 'network-address', address: '192.0.2.128',
    prefixLength: 25});
  t.deepEqual(parseHostCidr('192.0.2.127/25'), {problem: 'broadcast-address', address: '192.0.2.127',
    prefixLength: 25});
  t.deepEqual(parseHostCidr('2001:db8:0:1::/64'), {problem: 'network-address', address: '2001:db8:0:1::',
    prefixLength: 64});
});

test('IPv6 has no broadcast address: all ones in the host part is a host', (t) => {
  t.like(parseHostCidr('2001:db8:0:1:ffff:ffff:ffff:ffff/64'), {cidr: '2001:db8:0:1:ffff:ffff:ffff:ffff/64'});
});

test('/31 and /32 (/127 and /128) have no network or broadcast address (RFC 3021, RFC 6164)', (t) => {
  t.like(parseHostCidr('192.0.2.0/31'), {cidr: '192.0.2.0/31'});
  t.like(parseHostCidr('192.0.2.1/31'), {cidr: '192.0.2.1/31'});
  t.like(parseHostCidr('192.0.2.0/32'), {cidr: '192.0.2.0/32'});
  t.like(parseHostCidr('2001:db8::/127'), {cidr: '2001:db8::/127'});
  t.like(parseHostCidr('2001:db8::/128'), {cidr: '2001:db8::/128'});
  t.is(addressRoleOf(ip('192.0.2.0'), 30), 'network');
  t.is(addressRoleOf(ip('192.0.2.3'), 30), 'broadcast');
  t.is(addressRoleOf(ip('192.0.2.2'), 30), 'host');
});

test('the host part is found across a byte boundary', (t) => {
  t.is(addressRoleOf(ip('192.0.2.64'), 26), 'network');
  t.is(addressRoleOf(ip('192.0.2.127'), 26), 'broadcast');
  t.is(addressRoleOf(ip('192.0.4.0'), 22), 'network');
  t.is(addressRoleOf(ip('192.0.7.255'), 22), 'broadcast');
  t.is(addressRoleOf(ip('192.0.5.0'), 22), 'host');
  t.is(addressRoleOf(ip('2001:db8:0:100::'), 56), 'network');
  t.is(addressRoleOf(ip('2001:db8:0:1ff:ffff:ffff:ffff:ffff'), 55), 'host');
});

test('a subnet is given by its first address and a prefix length within the family', (t) => {
  t.deepEqual(parseSubnet('192.0.2.128', 25), {network: {address: '192.0.2.128', family: 4}, prefixLength: 25});
  t.deepEqual(parseSubnet('0.0.0.0', 0), {network: {address: '0.0.0.0', family: 4}, prefixLength: 0});
  t.deepEqual(parseSubnet('2001:DB8::', 32), {network: {address: '2001:db8::', family: 6}, prefixLength: 32});
  t.is(parseSubnet('192.0.2.1', 24), undefined, 'host bits set');
  t.is(parseSubnet('192.0.2.128', 24), undefined, 'host bits set');
  t.is(parseSubnet('192.0.2.0', 33), undefined);
  t.is(parseSubnet('192.0.2.0', -1), undefined);
  t.is(parseSubnet('192.0.2.0', 24.5), undefined);
  t.is(parseSubnet('2001:db8::', 129), undefined);
  t.is(parseSubnet('192.0.2', 24), undefined);
});

test('an address is in a subnet exactly from its first to its last address', (t) => {
  const lan = subnet('192.0.2.128', 25);
  t.true(isInSubnet(ip('192.0.2.128'), lan));
  t.true(isInSubnet(ip('192.0.2.255'), lan));
  t.false(isInSubnet(ip('192.0.2.127'), lan));
  t.false(isInSubnet(ip('192.0.3.0'), lan));
  t.true(isInSubnet(ip('2001:db8::1'), subnet('2001:db8::', 64)));
  t.false(isInSubnet(ip('2001:db8:0:1::1'), subnet('2001:db8::', 64)));
});

test('an address of the other family is in no subnet, the IPv4-mapped form included', (t) => {
  t.false(isInSubnet(ip('::ffff:192.0.2.1'), subnet('192.0.2.0', 24)));
  t.false(isInSubnet(ip('192.0.2.1'), subnet('::', 0)));
});

test('a host of a subnet is inside it and neither its network nor broadcast address', (t) => {
  const lan = subnet('192.0.2.0', 25);
  t.true(isHostOf(ip('192.0.2.11'), lan));
  t.true(isHostOf(ip('192.0.2.126'), lan));
  t.false(isHostOf(ip('192.0.2.0'), lan));
  t.false(isHostOf(ip('192.0.2.127'), lan));
  t.false(isHostOf(ip('192.0.2.141'), lan));
  t.true(isHostOf(ip('192.0.2.0'), subnet('192.0.2.0', 31)));
  t.true(isHostOf(ip('2001:db8::ffff:ffff:ffff:ffff'), subnet('2001:db8::', 64)));
  t.false(isHostOf(ip('2001:db8::'), subnet('2001:db8::', 64)));
});

test('a subnet lies in another when its prefix is no shorter and its first address is inside', (t) => {
  const testNet1 = subnet('192.0.2.0', 24);
  t.true(isSubnetOf(subnet('192.0.2.128', 25), testNet1));
  t.true(isSubnetOf(testNet1, testNet1));
  t.false(isSubnetOf(subnet('192.0.0.0', 16), testNet1));
  t.false(isSubnetOf(subnet('198.51.100.0', 24), testNet1));
  t.false(isSubnetOf(subnet('2001:db8::', 32), testNet1));
});

test('canonicalIpText writes an address canonically and anything else in lower case', (t) => {
  t.is(canonicalIpText('2001:DB8:0::100'), '2001:db8::100');
  t.is(canonicalIpText('192.0.2.7'), '192.0.2.7');
  t.is(canonicalIpText('FE80::1%Eth0'), 'fe80::1%Eth0');
  t.is(canonicalIpText('Host.Example.COM'), 'host.example.com');
});

test('unmapIpv4 turns an IPv4-mapped IPv6 address into its IPv4 address and leaves others alone', (t) => {
  t.deepEqual(unmapIpv4(ip('::ffff:192.0.2.7')), {address: '192.0.2.7', family: 4});
  t.deepEqual(unmapIpv4(ip('::FFFF:c000:207')), {address: '192.0.2.7', family: 4});
  t.deepEqual(unmapIpv4(ip('::c000:207')), {address: '::c000:207', family: 6});
  t.deepEqual(unmapIpv4(ip('64:ff9b::c000:207')), {address: '64:ff9b::c000:207', family: 6});
  t.deepEqual(unmapIpv4(ip('192.0.2.7')), {address: '192.0.2.7', family: 4});
});
