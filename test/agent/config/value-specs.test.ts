// Single values: integers in range, text, pair ids, addresses, ports, interface names, words, paths.

import test from 'ava';
import {DESIGN_EXAMPLE, edit, rejects, BAD_INTERFACE} from '../../fakes/config-fixtures.js';

// ---- values ----

test('text where an integer is expected is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interval_ms: 200', 'interval_ms: fast']),
  ['10 heartbeat.interval_ms: expected an integer 10..10000, got \'fast\'']);

test('a quoted number where an integer is expected is rejected with the fix', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.12, port: 7411', '192.0.2.12, port: "7411"']),
  ['4 peer.port: expected an integer 1..65535, got \'7411\' (text; write the number without quotes)']);

test('a fraction where an integer is expected is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['min_requests: 3', 'min_requests: 2.5']),
  ['13 confirm.min_requests: expected an integer 1..1000000, got 2.5']);

test('a number where text is expected is rejected with the fix', rejects,
  edit(DESIGN_EXAMPLE, ['pair: web', 'pair: 42 ']),
  ['1 pair: expected a pair id of 1..32 characters from A-Z a-z 0-9 . _ -, got 42 ' +
    '(not text; put it in quotes if you mean text)']);

test('a pair id with a space is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['pair: web', 'pair: "w b"']),
  ['1 pair: expected a pair id of 1..32 characters from A-Z a-z 0-9 . _ -, got \'w b\'']);

test('a pair id longer than 32 characters is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['pair: web', `pair: ${'w'.repeat(33)}`]),
  [`1 pair: expected a pair id of 1..32 characters from A-Z a-z 0-9 . _ -, got '${'w'.repeat(33)}'`]);

test('a node other than primary or backup is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['node: primary', 'node: master ']),
  ['2 node: expected \'primary\' or \'backup\', got \'master\'']);

const beaconAddress = test.macro({
  exec: (t, written: string, note: string) => {
    rejects.exec(t, edit(DESIGN_EXAMPLE, ['192.0.2.12,', `${written},`]),
      [`4 peer.address: expected an IPv4 or IPv6 address, got '${written.replaceAll('"', '')}' (${note})`]);
  },
  title: (_, written: string) => `the beacon address ${written} is rejected with the reason`,
});
test(beaconAddress, '0.0.0.0', 'the unspecified address, no host\'s; name the one address beacons leave from and go to');
test(beaconAddress, '"::"', 'the unspecified address, no host\'s; name the one address beacons leave from and go to');
test(beaconAddress, '224.0.0.18', 'a multicast address; beacons go to one host');
test(beaconAddress, '"ff02::12"', 'a multicast address; beacons go to one host');
test(beaconAddress, '"::ffff:192.0.2.12"', 'an IPv4-mapped address, which carries IPv4 beacons; write the IPv4 address 192.0.2.12');
test(beaconAddress, '"fe80::12"', 'a link-local address names a host only on one link; add its interface, like fe80::12%eth0');
test(beaconAddress, '"fe80::12%2"', 'the zone %2 is an interface index; write the interface\'s name, like %eth0');
test(beaconAddress, '"2001:db8::12%eth0"', 'a zone (%eth0) belongs only to a link-local address (fe80::/10); write 2001:db8::12');

test('an invalid IP address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.11,', '192.0.2.256,']),
  ['3 listen.address: expected an IPv4 or IPv6 address, got \'192.0.2.256\'']);

test('a host name where an IP address is expected is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.12,', 'backup.example,']),
  ['4 peer.address: expected an IPv4 or IPv6 address, got \'backup.example\'']);

test('a port above 65535 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.12, port: 7411', '192.0.2.12, port: 70000']),
  ['4 peer.port: expected an integer 1..65535, got 70000']);

test('port 0 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.11, port: 7411', '192.0.2.11, port: 0']),
  ['3 listen.port: expected an integer 1..65535, got 0']);

test('a service address without a prefix length is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.100']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.100\' ' +
    '(no prefix length)']);

test('a service address with an IPv4 prefix length above 32 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.100/33']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.100/33\' ' +
    '(the prefix length of an IPv4 address is 1..32)']);

test('a service address with prefix length 0 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.100/0']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.100/0\' ' +
    '(the prefix length of an IPv4 address is 1..32)']);

test('a service address with an IPv6 prefix length above 128 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '"2001:db8::100/129"']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'2001:db8::100/129\' ' +
    '(the prefix length of an IPv6 address is 1..128)']);

test('a service address that is not an IP address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2/24']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2/24\' ' +
    '(\'192.0.2\' is not an IP address)']);

test('a service address that is the network address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.0/24']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.0/24\' ' +
    '(192.0.2.0 is the network address of its /24; use a host address)']);

test('a service address that is the broadcast address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.255/24']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.255/24\' ' +
    '(192.0.2.255 is the broadcast address of its /24; use a host address)']);

test('an IPv6 service address that is the network address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '"2001:db8:0:1::/64"']),
  ['7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'2001:db8:0:1::/64\' ' +
    '(2001:db8:0:1:: is the network address of its /64; use a host address)']);


test('an interface name with a shell metacharacter is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interface: eth0', 'interface: eth0;reboot']),
  [`${BAD_INTERFACE} 'eth0;reboot' (';' is not allowed)`]);

test('an interface name of 16 characters is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interface: eth0', 'interface: abcdefghijklmnop']),
  [`${BAD_INTERFACE} 'abcdefghijklmnop' (16 bytes)`]);

test('an interface label with a colon is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interface: eth0', 'interface: eth0:1']),
  [`${BAD_INTERFACE} 'eth0:1' (':' is not allowed)`]);

test('an interface name with a tab is rejected and the tab shown escaped', rejects,
  edit(DESIGN_EXAMPLE, ['interface: eth0', 'interface: "eth\\t0"']),
  [`${BAD_INTERFACE} 'eth\\u00090' (the character \\u0009 is not allowed)`]);

test('the interface name .. is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interface: eth0', 'interface: ".."']),
  [`${BAD_INTERFACE} '..' ('..' is reserved)`]);

test('a service mode other than address or link is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['mode: address ', 'mode: bridge  ']),
  ['9 service.mode: expected \'address\' or \'link\', got \'bridge\'']);

test('dead_after_ms above 600000 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 600001']),
  ['10 heartbeat.dead_after_ms: expected an integer 20..600000, got 600001']);

test('interval_ms below 10 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['interval_ms: 200', 'interval_ms: 9']),
  ['10 heartbeat.interval_ms: expected an integer 10..10000, got 9']);

test('max_clock_skew_ms below 100 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 1000, max_clock_skew_ms: 99']),
  ['10 heartbeat.max_clock_skew_ms: expected an integer 100..3600000, got 99']);

test('timeout_s above 3600 is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['timeout_s: 30', 'timeout_s: 3601']),
  ['14 confirm.timeout_s: expected an integer 1..3600, got 3601']);

test('a relative access_log path is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['access_log: /var/log', 'access_log: var/log']),
  ['12 confirm.access_log: expected an absolute path, got \'var/log/nginx/access.log\'']);

test('an on_stop other than keep or release is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['on_stop: keep', 'on_stop: yes ']),
  ['15 on_stop: expected \'keep\' or \'release\', got \'yes\'']);

test('a relative state_dir is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['state_dir: /var/lib/baton', 'state_dir: ./state']),
  ['16 state_dir: expected an absolute path, got \'./state\'']);

test('a control socket path too long for a unix socket is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['control_socket: /run/baton/control.sock', `control_socket: /${'s'.repeat(107)}`]),
  ['17 control_socket: expected an absolute path of at most 107 bytes (a unix socket address), ' +
    `got '/${'s'.repeat(79)}…' (108 bytes)`]);
