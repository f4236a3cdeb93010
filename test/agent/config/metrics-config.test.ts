// The metrics section of the config: off by default, loopback when on, and the rules between listen and allow_from.

import test from 'ava';
import {parseConfig} from '../../../agent/config/schema.js';
import {DEFAULT_SECRET, MINIMAL, PROGRAMS, rejects} from '../../fakes/config-fixtures.js';

const withMetrics = (section: string): string => `${MINIMAL}metrics:\n${section}`;
const parse = (yaml: string) => parseConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

test('metrics are off by default', (t) => {
  t.deepEqual(parse(MINIMAL).metrics, {enabled: false, listen: {address: '127.0.0.1', port: 7412}, allowFrom: []});
});

test('metrics on listen on loopback port 7412 unless told otherwise', (t) => {
  t.deepEqual(parse(withMetrics('  enabled: true\n')).metrics, {enabled: true, listen: {address: '127.0.0.1', port: 7412}, allowFrom: []});
});

test('listen takes IPv4 and bracketed IPv6; allow_from takes addresses and subnets, canonical', (t) => {
  const v4 = parse(withMetrics('  enabled: true\n  listen: 192.0.2.12:9100\n  allow_from: [192.0.2.50, 198.51.100.0/24]\n')).metrics;
  t.deepEqual(v4.listen, {address: '192.0.2.12', port: 9100});
  t.deepEqual(v4.allowFrom, [
    {network: {address: '192.0.2.50', family: 4}, prefixLength: 32},
    {network: {address: '198.51.100.0', family: 4}, prefixLength: 24},
  ]);
  const v6 = parse(withMetrics('  enabled: true\n  listen: \'[2001:DB8::12]:7412\'\n  allow_from: [\'2001:db8:0::/48\']\n')).metrics;
  t.deepEqual(v6.listen, {address: '2001:db8::12', port: 7412});
  t.deepEqual(v6.allowFrom, [{network: {address: '2001:db8::', family: 6}, prefixLength: 48}]);
});

test('listen on every address needs no allow_from: loopback can scrape it', (t) => {
  t.is(parse(withMetrics('  enabled: true\n  listen: 0.0.0.0:7412\n')).metrics.listen.address, '0.0.0.0');
});

test('listen or allow_from without enabled: true is refused: the endpoint would seem up', rejects,
  withMetrics('  listen: 192.0.2.12:7412\n  allow_from: [192.0.2.50]\n'),
  ['7 metrics.listen: expected nothing, got \'192.0.2.12:7412\' (read only with metrics.enabled: true)',
    '8 metrics.allow_from: expected nothing, got a list (read only with metrics.enabled: true)']);

test('a listen address that is not loopback needs allow_from: nobody else could scrape', rejects,
  withMetrics('  enabled: true\n  listen: 192.0.2.12:7412\n'),
  ['6 metrics.allow_from: expected the addresses or subnets of the hosts that scrape, got nothing (key missing) ' +
    '(metrics.listen 192.0.2.12 is not loopback, and only loopback and metrics.allow_from may scrape: nobody could)']);

test('allow_from with a loopback listen address is refused: no other host can reach it', rejects,
  withMetrics('  enabled: true\n  allow_from: [192.0.2.50]\n'),
  ['8 metrics.allow_from: expected nothing, got a list (metrics.listen 127.0.0.1 is loopback, which no other host can reach; ' +
    'listen on an address of this host to be scraped from elsewhere)']);

test('bad listen values and allow_from entries are each named', rejects,
  withMetrics('  enabled: true\n  listen: 192.0.2.12\n  allow_from: [192.0.2.5/24, nowhere, \'::1/129\']\n'),
  ['8 metrics.listen: expected an address and a port like 127.0.0.1:7412 or [::1]:7412, got \'192.0.2.12\'',
    '9 metrics.allow_from[0]: expected an IP address or a subnet like 198.51.100.0/24, got \'192.0.2.5/24\' ' +
      '(192.0.2.5 is not the first address of its /24; write the subnet by its first address)',
    '9 metrics.allow_from[1]: expected an IP address or a subnet like 198.51.100.0/24, got \'nowhere\'',
    '9 metrics.allow_from[2]: expected an IP address or a subnet like 198.51.100.0/24, got \'::1/129\' ' +
      '(the prefix length of an IPv6 subnet is 0..128)']);

test('a port out of range and an unbracketed IPv6 listen address are refused with the reason', rejects,
  withMetrics('  enabled: true\n  listen: 127.0.0.1:70000\n'),
  ['8 metrics.listen: expected an address and a port like 127.0.0.1:7412 or [::1]:7412, got \'127.0.0.1:70000\' (the port is 1..65535)']);
