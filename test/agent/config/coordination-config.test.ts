// The coordination section: pair by default and unchanged, etcd with its endpoints, TLS, prefix and lease timing,
// and every bad value reported at once with its line.

import test from 'ava';
import {isEtcdConfig, parseAnyConfig, parseConfig} from '../../../agent/config/schema.js';
import {DEFAULT_SECRET, MINIMAL, PROGRAMS, rejects} from '../../fakes/config-fixtures.js';

const withCoordination = (section: string): string => `${MINIMAL}coordination:\n${section}`;
// An etcd host: no node, peer or beacons; five lines before the section, as MINIMAL has, so that lines compare.
const ETCD_BASE = 'pair: web\nservice: {address: 192.0.2.100/24, interface: eth0}\nstate_dir: /var/lib/baton\n' +
  'control_socket: /run/baton/control.sock\non_stop: release\n';
const HOSTS = '  host: a\n  hosts: [a, b, c]\n';
const withEtcd = (section: string, hosts = HOSTS): string => `${ETCD_BASE}coordination:\n${section}${hosts}`;
const parseAny = (yaml: string) => parseAnyConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
const parse = (yaml: string) => parseConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
const THREE = '  endpoints: [http://192.0.2.31:2379, http://192.0.2.32:2379, http://192.0.2.33:2379]\n';

test('without the section a host is one of a pair, as before', (t) => {
  t.deepEqual(parse(MINIMAL).coordination, {mode: 'pair'});
  t.deepEqual(parse(withCoordination('  mode: pair\n')).coordination, {mode: 'pair'});
});

test('etcd mode with only endpoints gets every default, the margin derived from the TTL', (t) => {
  t.deepEqual(parseAny(withEtcd(`  mode: etcd\n${THREE}`)).coordination, {
    mode: 'etcd',
    endpoints: ['http://192.0.2.31:2379', 'http://192.0.2.32:2379', 'http://192.0.2.33:2379'],
    tls: undefined,
    prefix: '/baton/',
    leaseTtlS: 10,
    renewMarginMs: 2000,
    onEtcdLoss: 'drop',
    host: 'a',
    hosts: ['a', 'b', 'c'],
    beacons: undefined,
  });
});

test('a shorter TTL derives a shorter margin; a margin given is kept', (t) => {
  const derived = parseAny(withEtcd(`  mode: etcd\n${THREE}  lease_ttl_s: 3\n`)).coordination;
  t.like(derived, {leaseTtlS: 3, renewMarginMs: 600});
  const given = parseAny(withEtcd(`  mode: etcd\n${THREE}  lease_ttl_s: 30\n  renew_margin_ms: 5000\n  on_etcd_loss: drop\n  prefix: /prod/baton/\n`)).coordination;
  t.like(given, {leaseTtlS: 30, renewMarginMs: 5000, onEtcdLoss: 'drop', prefix: '/prod/baton/'});
});

const BEACONS = '  beacons:\n    port: 7420\n    addresses: {a: 192.0.2.11, b: 192.0.2.12, c: 192.0.2.13}\n';

test('keep-while-peers-agree takes the hosts\' beacons: every host\'s address, the port, the secret, D from the interval', (t) => {
  const config = parseAny(withEtcd(`  mode: etcd\n${THREE}  on_etcd_loss: keep-while-peers-agree\n${BEACONS}`)).coordination;
  t.like(config, {onEtcdLoss: 'keep-while-peers-agree', beacons: {port: 7420, secretFile: '/etc/baton/secret', intervalMs: 200, heardWithinMs: 1000,
    addresses: {a: '192.0.2.11', b: '192.0.2.12', c: '192.0.2.13'}}});
  t.is(config.mode === 'etcd' ? config.beacons?.keyring.signing.secret.length : 0, 32);
});

test('keep-while-peers-agree without beacons is refused, and beacons with drop: they would do nothing', rejects,
  withEtcd(`  mode: etcd\n${THREE}  on_etcd_loss: keep-while-peers-agree\n`),
  ['6 coordination.beacons: expected a mapping like {port: 7411, secret_file: /etc/baton/secret, addresses: {web-a: 192.0.2.11, web-b: 192.0.2.12}}, ' +
    'got nothing (key missing) (coordination.on_etcd_loss is keep-while-peers-agree: a holder keeps the service only while the other hosts\' beacons agree)']);

test('beacons with drop are refused', rejects,
  withEtcd(`  mode: etcd\n${THREE}${BEACONS}`),
  ['9 coordination.beacons: expected nothing, got a mapping (read only with coordination.on_etcd_loss: keep-while-peers-agree; ' +
    'with drop a holder that cannot reach etcd gives the address up and needs no beacons)']);

test('beacon addresses: a host missing, a host not in the list, one address twice, and a D the lease cannot hold are each named', rejects,
  withEtcd(`  mode: etcd\n${THREE}  lease_ttl_s: 2\n  on_etcd_loss: keep-while-peers-agree\n  beacons:\n    heard_within_ms: 1800\n` +
    '    addresses: {a: 192.0.2.11, b: 192.0.2.11, d: 192.0.2.14}\n'),
  ['12 coordination.beacons.heard_within_ms: expected less than 1600, got 1800 (coordination.lease_ttl_s 2 less renew_margin_ms 400: ' +
    'a beacon a host echoes at the lease\'s deadline must have been sent while the holder held the service)',
  '13 coordination.beacons.addresses.d: unknown key \'d\', did you mean \'a\'?',
  '13 coordination.beacons.addresses.b: expected an address of its own, got \'192.0.2.11\' (a has 192.0.2.11 already)',
  '13 coordination.beacons.addresses.c: expected an IPv4 or IPv6 address, got nothing (key missing)']);

test('https endpoints take a CA and a client certificate with its key; a single endpoint is allowed', (t) => {
  const config = parseAny(withEtcd('  mode: etcd\n  endpoints: [\'https://etcd1.example:2379/\']\n' +
    '  tls: {ca_file: /etc/baton/etcd-ca.pem, cert_file: /etc/baton/etcd.pem, key_file: /etc/baton/etcd-key.pem}\n')).coordination;
  t.like(config, {endpoints: ['https://etcd1.example:2379'],
    tls: {caFile: '/etc/baton/etcd-ca.pem', client: {certFile: '/etc/baton/etcd.pem', keyFile: '/etc/baton/etcd-key.pem'}}});
  const caOnly = parseAny(withEtcd('  mode: etcd\n  endpoints: [https://192.0.2.31:2379]\n  tls: {ca_file: /etc/baton/etcd-ca.pem}\n')).coordination;
  t.like(caOnly, {tls: {caFile: '/etc/baton/etcd-ca.pem', client: undefined}});
});

test('etcd keys in pair mode are refused: etcd would seem to decide', rejects,
  withCoordination('  prefix: /baton/\n  lease_ttl_s: 10\n'),
  ['7 coordination.prefix: expected nothing, got \'/baton/\' (read only with coordination.mode: etcd)',
    '8 coordination.lease_ttl_s: expected nothing, got 10 (read only with coordination.mode: etcd)']);

test('etcd mode without endpoints is refused', rejects,
  withEtcd('  mode: etcd\n'),
  ['6 coordination.endpoints: expected a list of etcd client URLs like [http://192.0.2.31:2379, http://192.0.2.32:2379, ' +
    'http://192.0.2.33:2379], got nothing (key missing) (coordination.mode is etcd)']);

test('an empty endpoint list is refused', rejects,
  withEtcd('  mode: etcd\n  endpoints: []\n'),
  ['8 coordination.endpoints: expected a list of etcd client URLs like [http://192.0.2.31:2379, http://192.0.2.32:2379, ' +
    'http://192.0.2.33:2379], got a list (an empty list)']);

test('every bad value is reported at once, each with its line, the value and what is expected', rejects,
  withCoordination('  mode: raft\n  prefix: baton\n  lease_ttl_s: 1\n  renew_margin_ms: fast\n  on_etcd_loss: panic\n'),
  ['7 coordination.mode: expected \'pair\' or \'etcd\', got \'raft\'']);

test('in etcd mode, bad endpoints, prefix, TTL, margin and loss policy are each named', rejects,
  withEtcd('  mode: etcd\n  endpoints: [ftp://192.0.2.31:2379, \'http://root:pw@192.0.2.32:2379\', http://192.0.2.33:2379/v3, nowhere]\n' +
    '  prefix: baton\n  lease_ttl_s: 1\n  renew_margin_ms: fast\n  on_etcd_loss: panic\n'),
  ['8 coordination.endpoints[0]: expected an etcd client URL like http://192.0.2.31:2379 or https://etcd1.example:2379, got \'ftp://192.0.2.31:2379\' (the scheme \'ftp\' is neither http nor https)',
    '8 coordination.endpoints[1]: expected an etcd client URL like http://192.0.2.31:2379 or https://etcd1.example:2379, got \'http://root:pw@192.0.2.32:2379\' (no user or password in the URL; etcd client certificates go in coordination.tls)',
    '8 coordination.endpoints[2]: expected an etcd client URL like http://192.0.2.31:2379 or https://etcd1.example:2379, got \'http://192.0.2.33:2379/v3\' (only scheme, host and port: baton adds the paths itself)',
    '8 coordination.endpoints[3]: expected an etcd client URL like http://192.0.2.31:2379 or https://etcd1.example:2379, got \'nowhere\' (not a URL)',
    '9 coordination.prefix: expected a key prefix like /baton/ (begins and ends with /, 2..64 of A-Z a-z 0-9 . _ - /), got \'baton\'',
    '10 coordination.lease_ttl_s: expected an integer 2..3600, got 1',
    '11 coordination.renew_margin_ms: expected an integer 100..1800000, got \'fast\'',
    '12 coordination.on_etcd_loss: expected \'drop\' or \'keep-while-peers-agree\', got \'panic\'']);

test('a margin above half the TTL is refused: one slow renewal would drop a healthy holder', rejects,
  withEtcd(`  mode: etcd\n${THREE}  lease_ttl_s: 4\n  renew_margin_ms: 2500\n`),
  ['10 coordination.renew_margin_ms: expected an integer 100..2000, got 2500 (half of coordination.lease_ttl_s 4: ' +
    'renewals go out every third of the TTL, and a larger margin would drop a healthy holder after one slow renewal)']);

test('a member twice, and http beside https, are refused', rejects,
  withEtcd('  mode: etcd\n  endpoints:\n    - http://192.0.2.31:2379\n    - http://192.0.2.31:2379/\n    - https://192.0.2.33:2379\n'),
  ['8 coordination.endpoints: expected URLs of one scheme, all http:// or all https://, got a list (a cluster serves its clients one way)',
    '10 coordination.endpoints[1]: expected each member once, got \'http://192.0.2.31:2379/\' (http://192.0.2.31:2379 is already in the list)']);

test('a client certificate without its key, a key without its certificate, and TLS on http:// are refused', rejects,
  withEtcd(`  mode: etcd\n${THREE}  tls:\n    cert_file: /etc/baton/etcd.pem\n    ca_file: etc/ca.pem\n`),
  ['9 coordination.tls.key_file: expected the client key\'s path, got nothing (key missing) (coordination.tls.cert_file is set: a certificate is used with its key)',
    '9 coordination.tls: expected nothing, got a mapping (the endpoints are http://, which carries no TLS; write them https://)',
    '11 coordination.tls.ca_file: expected an absolute path, got \'etc/ca.pem\'']);

test('a key file alone is refused', rejects,
  withEtcd('  mode: etcd\n  endpoints: [https://192.0.2.31:2379]\n  tls: {key_file: /etc/baton/etcd-key.pem}\n'),
  ['9 coordination.tls.cert_file: expected the client certificate\'s path, got nothing (key missing) (coordination.tls.key_file is set: a key is used with its certificate)']);

test('unknown keys in the section are named with a suggestion', rejects,
  withEtcd(`  mode: etcd\n${THREE}  lease_ttl: 10\n`),
  ['9 coordination.lease_ttl: unknown key \'lease_ttl\', did you mean \'lease_ttl_s\'?']);

test('in etcd mode a pair\'s keys are refused, not ignored: no peer, no beacons, no planned switch yet', rejects,
  `${MINIMAL}heartbeat: {interval_ms: 100}\ncoordination:\n  mode: etcd\n${THREE}${HOSTS}`,
  ['2 node: expected nothing, got \'backup\' (read only with coordination.mode: pair; in etcd mode etcd decides who holds the service)',
    '3 listen: expected nothing, got a mapping (read only with coordination.mode: pair; in etcd mode etcd decides who holds the service)',
    '4 peer: expected nothing, got a mapping (read only with coordination.mode: pair; in etcd mode etcd decides who holds the service)',
    '6 heartbeat: expected nothing, got a mapping (read only with coordination.mode: pair; in etcd mode etcd decides who holds the service)']);

test('in etcd mode on_stop defaults to release, and keep is refused: the lease would expire under a kept address', (t) => {
  t.is(parseAny(withEtcd(`  mode: etcd\n${THREE}`).replace('on_stop: release\n', '\n')).onStop, 'release');
  const error = t.throws(() => parseAny(withEtcd(`  mode: etcd\n${THREE}`).replace('on_stop: release', 'on_stop: keep')));
  t.regex(error?.message ?? '', /5 on_stop: expected release, got 'keep' \(with coordination\.mode: etcd an agent that stops renews its lease no more/);
});

test('host and hosts: this host among them, each once, at least two', rejects,
  `${ETCD_BASE}coordination:\n  mode: etcd\n${THREE}  host: d\n  hosts: [a, b, c]\n`,
  ['10 coordination.hosts: expected a list with coordination.host d in it, got a list (this host must be one of the hosts that may hold the service)']);

test('a host twice, a single host, a bad name and no host at all are each refused', (t) => {
  const problems = (yaml: string): string => t.throws(() => parseAny(yaml))?.message ?? '';
  t.regex(problems(withEtcd(`  mode: etcd\n${THREE}`, '  host: a\n  hosts: [a, b, a]\n')), /coordination\.hosts\[2\]: expected each host once, got 'a' \(a is already in the list\)/);
  t.regex(problems(withEtcd(`  mode: etcd\n${THREE}`, '  host: a\n  hosts: [a]\n')), /a service needs a second host to fail over to/);
  t.regex(problems(withEtcd(`  mode: etcd\n${THREE}`, '  host: \'a b\'\n  hosts: [a, b]\n')), /coordination\.host: expected a host name of 1\.\.63 characters/);
  t.regex(problems(withEtcd(`  mode: etcd\n${THREE}`, '')), /coordination\.host: expected a host name .* \(key missing\)[\s\S]*coordination\.hosts: expected a list of the host names/);
});

test('what needs a pair refuses an etcd config by name, and the etcd config reads whole', (t) => {
  const yaml = withEtcd(`  mode: etcd\n${THREE}`);
  const error = t.throws(() => parse(yaml));
  t.is(error?.message, 'baton.yaml: coordination.mode is etcd, and this works with a pair\'s config (coordination.mode: pair) only');
  const config = parseAny(yaml);
  t.like(config, {onStop: 'release', stateDir: '/var/lib/baton', controlSocket: '/run/baton/control.sock',
    coordination: {mode: 'etcd', host: 'a', hosts: ['a', 'b', 'c']}});
  t.like(isEtcdConfig(config) ? config.services : [], [{name: 'web', service: {interface: 'eth0', mode: 'address'}, hosts: ['a', 'b', 'c'], place: undefined}],
    'the file\'s pair and service are its one service');
});

// An etcd host with a `services` list instead of its pair and service: two services, the second on b first.
const SERVICES_BASE = 'state_dir: /var/lib/baton\ncontrol_socket: /run/baton/control.sock\n' +
  `coordination:\n  mode: etcd\n${THREE}${HOSTS}`;
const withServices = (list: string): string => `${SERVICES_BASE}services:\n${list}`;
const TWO = '  - {name: shop, address: 192.0.2.100/24, interface: eth0, confirm: {access_log: /var/log/nginx/shop.log}}\n' +
  '  - {name: blog, address: [192.0.2.101/24, 2001:db8::101/64], interface: eth1, hosts: [b, a]}\n';

test('a services list: each service with its name, address, interface, confirmation and its own order of hosts', (t) => {
  const config = parseAny(withServices(TWO));
  if (!isEtcdConfig(config)) return t.fail();
  t.is(config.services.length, 2);
  t.like(config.services[0], {name: 'shop', service: {interface: 'eth0', mode: 'address'}, hosts: ['a', 'b', 'c'], place: 'services[0]',
    confirm: {accessLog: '/var/log/nginx/shop.log', minRequests: 3}});
  t.like(config.services[1], {name: 'blog', service: {interface: 'eth1'}, hosts: ['b', 'a'], place: 'services[1]', confirm: {accessLog: undefined}});
  t.deepEqual(config.services[1]?.service.ips.map((ip) => ip.cidr), ['192.0.2.101/24', '2001:db8::101/64']);
});

test('a services list refuses the one-service keys beside it, and names, addresses or hosts given twice', (t) => {
  const problems = (yaml: string): string => t.throws(() => parseAny(yaml))?.message ?? '';
  t.regex(problems(`pair: web\n${withServices(TWO)}`), /pair: expected nothing, got 'web' \(with a `services` list each service has its own name\)/);
  t.regex(problems(withServices(`${TWO}  - {name: shop, address: 192.0.2.102/24, interface: eth0}\n`)),
    /services\[2\]\.name: expected a name no other service has, got 'shop' \(shop is already the name of services\[0\]\)/);
  t.regex(problems(withServices(`${TWO}  - {name: wiki, address: 192.0.2.100/24, interface: eth0}\n`)),
    /services\[2\]\.address: expected an address no other service has, .*\(192\.0\.2\.100 is already shop's\)/);
  t.regex(problems(withServices('  - {name: shop, address: 192.0.2.100/24, interface: eth0, hosts: [a, z]}\n')),
    /services\[0\]\.hosts\[1\]: expected one of coordination\.hosts \(a, b, c\), got 'z'/);
  t.regex(problems(withServices('  - {name: shop, address: 192.0.2.100/24, interface: eth0, hosts: [b, c]}\n')),
    /services\[0\]\.hosts: expected a list with coordination\.host a in it/);
  t.regex(problems(withServices('  - {name: shop, address: 192.0.2.100/24, interface: eth0, hosts: [a]}\n')), /a service needs a second host to fail over to/);
  t.regex(problems(withServices('  - {name: shop, address: 192.0.2.100/24, interface: eth0, colour: blue}\n')), /services\[0\]\.colour: unknown key/);
  t.regex(problems(`${SERVICES_BASE}services: []\n`), /services: expected a list of services .* \(an empty list\)/);
  t.regex(problems(`${MINIMAL}services:\n${TWO}`), /services: expected nothing, .*several services on one set of hosts are for coordination\.mode: etcd/);
});

test('in etcd mode drain is read as a pair reads it: the same defaults, and the same refusals', (t) => {
  const config = parseAny(withEtcd(`  mode: etcd\n${THREE}`));
  t.like(config, {drain: {enabled: true, graceful: undefined, gracefulAfterS: 5, timeoutS: 60}});
  t.deepEqual((parseAny(`${ETCD_BASE}drain: {timeout_s: 20, graceful_after_s: 2}\ncoordination:\n  mode: etcd\n${THREE}${HOSTS}`) as {drain: unknown}).drain,
    {enabled: true, graceful: undefined, gracefulAfterS: 2, timeoutS: 20});
  t.deepEqual((parseAny(`${ETCD_BASE}drain: {enabled: false}\ncoordination:\n  mode: etcd\n${THREE}${HOSTS}`) as {drain: {enabled: boolean}}).drain.enabled, false);
});

test('in etcd mode a drain value out of range is refused with its line', rejects,
  `${ETCD_BASE}drain: {timeout_s: 0}\ncoordination:\n  mode: etcd\n${THREE}${HOSTS}`,
  ['6 drain.timeout_s: expected an integer 1..3600, got 0']);
