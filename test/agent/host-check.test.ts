// The host check on fakes: each problem of the host alone, with its message and fix, and all of them at once.

import {readFileSync} from 'node:fs';
import test from 'ava';
import type {Config} from '../../agent/config/schema.js';
import {type FileAccess, parseUnitFileAccess} from '../../agent/config/unit-file-access.js';
import {
  checkHost, gatherHostFacts, HOST_PROBLEMS, type HostProblem, subjectsOfConfig, subjectsOfDraft,
} from '../../agent/host-check.js';
import {ADM, enoent, facts, FakeHostProbe, NOBODY, ROOT, WWW_DATA} from '../fakes/fake-host-probe.js';
import {testConfig, testEtcdConfig} from '../fakes/test-config.js';

const TEMPLATE = readFileSync(new URL('../../../systemd/baton-agent.service', import.meta.url), 'utf8');
const LOOKUPS = {user: () => undefined, group: (name: string) => (name === 'adm' ? ADM : undefined)};
/** The agent as the unit in systemd/ runs it: root without CAP_DAC_OVERRIDE, groups root and adm. */
const UNIT_ACCESS: FileAccess = parseUnitFileAccess([TEMPLATE], LOOKUPS, 'baton-agent.service');
const LOG = '/var/log/nginx/access.log';
const COMBINED_LINE = '192.0.2.20 - - [21/Nov/2026:13:45:02 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.1"';
const VHOST_LINE = `www.example.com:80 ${COMBINED_LINE}`;

/** The primary of test-config with its access log, on a host where everything is right. */
const V6_SERVICE_IP = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;

function healthy(): {config: Config; probe: FakeHostProbe} {
  const config = testConfig('primary', {confirm: {...testConfig('primary').confirm, accessLog: LOG}});
  const probe = new FakeHostProbe()
    .addFile('/etc/baton/secret', facts('file', ROOT, ROOT, 0o600))
    .addFile(LOG, facts('file', WWW_DATA, ADM, 0o640), [COMBINED_LINE, COMBINED_LINE]);
  return {config, probe};
}

async function check(config: Config, probe: FakeHostProbe, access: FileAccess = UNIT_ACCESS): Promise<HostProblem[]> {
  const [subject] = subjectsOfConfig(config);
  if (subject === undefined) throw new Error('a pair has one subject');
  return checkHost(subject, await gatherHostFacts(subject, probe), access);
}

test('the unit in systemd/ runs the agent as root without CAP_DAC_OVERRIDE, in groups root and adm, with /home and /tmp hidden', (t) => {
  t.is(UNIT_ACCESS.uid, 0);
  t.deepEqual(UNIT_ACCESS.gids, [ROOT, ADM]);
  t.false(UNIT_ACCESS.readsAnything);
  const hidden = UNIT_ACCESS.hidden.map((entry) => entry.path);
  for (const path of ['/home', '/root', '/run/user', '/tmp', '/var/tmp', '/etc/shadow', '/etc/ssh', '/var/mail']) t.true(hidden.includes(path), path);
  t.is(UNIT_ACCESS.described, 'root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service');
});

test('a drop-in can give back a capability, reset a list, or leave home readable', (t) => {
  const access = parseUnitFileAccess([TEMPLATE, '[Service]\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH\nInaccessiblePaths=\nProtectHome=read-only\n'],
    LOOKUPS, 'baton-agent.service');
  t.true(access.readsAnything);
  t.deepEqual(access.hidden.map((entry) => entry.path), ['/tmp', '/var/tmp']);
  const user = parseUnitFileAccess(['[Service]\nUser=web\nSupplementaryGroups=adm\n'],
    {user: (name) => (name === 'web' ? {uid: 1000, gid: 1000} : undefined), group: LOOKUPS.group}, 'x.service');
  t.like(user, {uid: 1000, gids: [1000, ADM], readsAnything: false});
});

test('a host where everything is right has no problem', async (t) => {
  const {config, probe} = healthy();
  t.deepEqual(await check(config, probe), []);
});

test('every problem of the host is reported at once, errors first, each with its fix', async (t) => {
  const {config, probe} = healthy();
  const broken = testConfig('primary', {
    listen: {address: '192.0.2.21', port: 7411},
    service: {ip: V6_SERVICE_IP, ips: [V6_SERVICE_IP], interface: 'eth9', mode: 'address'},
    confirm: {...config.confirm, accessLog: '/var/log/app/access.log'},
    acceptSecretFiles: ['/tmp/old-secret'],
  });
  probe.programs.clear();
  probe.addFile('/etc/baton/secret', facts('file', NOBODY, NOBODY, 0o600));
  probe.addFile('/var/log/app/access.log', facts('file', WWW_DATA, WWW_DATA, 0o640), [COMBINED_LINE]);
  probe.addFile('/tmp/old-secret', facts('file', ROOT, ROOT, 0o600));
  const problems = await check(broken, probe);
  t.deepEqual(problems.map((problem) => [problem.severity, problem.kind, problem.key]), [
    ['error', 'interface-missing', 'service.interface'],
    ['error', 'listen-address-missing', 'listen.address'],
    ['error', 'program-missing', undefined],
    ['error', 'program-missing', undefined],
    ['error', 'ipv6-needs-perl', undefined],
    ['error', 'access-log-unreadable', 'confirm.access_log'],
    ['error', 'secret-owner', 'secret_file'],
    ['error', 'secret-hidden', 'accept_secret_files[0]'],
  ]);
  const messages = problems.map((problem) => problem.message);
  t.is(messages[0], 'service.interface: this host has no interface eth9 (it has eth0, lo): every takeover would fail at its first ' +
    'step; name this host\'s own interface (`ip -br link`; the names often differ between the two hosts)');
  t.is(messages[1], 'listen.address: 192.0.2.21 is not an address of this host (it has 192.0.2.11, 127.0.0.1, ::1): the agent ' +
    'cannot send or receive beacons on it; set this host\'s own beacon address, or add it to an interface ' +
    '(`ip address add 192.0.2.21/24 dev eth0`)');
  t.regex(messages[2] ?? '', /^ip \(iproute2\) is not on PATH \(\/usr\/local\/sbin:.*\): the agent adds and removes the service address .*; install it: `apt-get install iproute2`$/);
  t.regex(messages[3] ?? '', /^arping \(iputils-arping\) is not on PATH .*every takeover would fail; install it: `apt-get install iputils-arping`$/);
  t.is(messages[5], 'confirm.access_log: the agent (root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service) ' +
    'cannot read /var/log/app/access.log: /var/log/app/access.log is www-data:www-data 0640, which does not let it read it; a switchover ' +
    'would be refused before its first step. Let group adm read it (Debian\'s nginx and Apache logs are www-data:adm 0640: ' +
    '`chgrp adm /var/log/app/access.log && chmod g+r /var/log/app/access.log`, and the same in its logrotate `create` line), or add ' +
    'its group to the unit (`systemctl edit baton-agent`: SupplementaryGroups=)');
  t.is(messages[6], 'secret_file: /etc/baton/secret is nobody:nobody 0600, not owned by root, the user the agent runs as: the agent ' +
    '(root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service) cannot read it, and whoever owns it can ' +
    'replace the key; run `chown root:root /etc/baton/secret`');
  t.is(messages[7], 'accept_secret_files[0]: /tmp/old-secret is hidden from the agent by PrivateTmp=yes (root without ' +
    'CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service): it would not start; keep the secret in /etc/baton');
  t.regex(messages[4] ?? '', /^perl \(perl-base\) is not on PATH .*: for the IPv6 service address 2001:db8::100\/64 only the agent's packet helper, a perl program, sends .*every takeover would fail; install it: `apt-get install perl-base`$/);
  for (const problem of problems) t.is(problem.severity, HOST_PROBLEMS[problem.kind].severity);
});

const accessLog = test.macro(async (t, setUp: (probe: FakeHostProbe) => string | null, expected: [string, RegExp] | undefined) => {
  const {config, probe} = healthy();
  const file = setUp(probe);
  const problems = await check({...config, confirm: {...config.confirm, accessLog: file ?? undefined}}, probe);
  if (expected === undefined) {
    t.deepEqual(problems, []);
    return;
  }
  t.is(problems.length, 1, JSON.stringify(problems));
  t.is(problems[0]?.kind as string | undefined, expected[0]);
  t.regex(problems[0]?.message ?? '', expected[1]);
});

test('the access log: not set is a warning, failover does not need it', accessLog, () => null,
  ['access-log-unset', /^confirm\.access_log: not set: `baton switchover` refuses until it names/]);
test('the access log: under /home the unit hides it', accessLog, (probe) => {
  probe.addFile('/home/web/access.log', facts('file', ROOT, ROOT, 0o644), [COMBINED_LINE]);
  return '/home/web/access.log';
}, ['access-log-hidden', /^confirm\.access_log: \/home\/web\/access\.log is hidden from the agent by ProtectHome=yes \(root without/]);
test('the access log: missing', accessLog, () => '/var/log/nginx/acces.log',
  ['access-log-missing', /^confirm\.access_log: \/var\/log\/nginx\/acces\.log does not exist: a switchover would be refused before its first step; set it to the log your web server writes/]);
test('the access log: a directory', accessLog, (probe) => {
  probe.addFile('/var/log/nginx', facts('directory', ROOT, ADM, 0o755));
  return '/var/log/nginx';
}, ['access-log-unreadable', /is not a regular file/]);
test('the access log: readable through group adm, as on Debian', accessLog, () => LOG, undefined);
test('the access log: root-owned and 0600 is readable by root without CAP_DAC_OVERRIDE', accessLog, (probe) => {
  probe.addFile(LOG, facts('file', ROOT, ROOT, 0o600), [COMBINED_LINE]);
  return LOG;
}, undefined);
test('the access log: in a directory the agent cannot enter', accessLog, (probe) => {
  probe.addFile('/srv/logs', facts('directory', 1000, 1000, 0o700));
  probe.addFile('/srv/logs/access.log', facts('file', 1000, ADM, 0o640), [COMBINED_LINE]);
  return '/srv/logs/access.log';
}, ['access-log-unreadable', /cannot read \/srv\/logs\/access\.log: the directory \/srv\/logs is alice:alice 0700, which does not let it pass through/]);
test('the access log: the read itself fails', accessLog, (probe) => {
  probe.logs.set(LOG, Object.assign(new Error('EACCES: permission denied'), {code: 'EACCES'}));
  return LOG;
}, ['access-log-unreadable', /cannot be read: permission denied, EACCES/]);
test('the access log: empty is a warning, its format cannot be checked yet', accessLog, (probe) => {
  probe.logs.set(LOG, []);
  return LOG;
}, ['access-log-empty', /is empty, so its format cannot be checked yet/]);
test('the access log: lines in another format than confirm.log_format', accessLog, (probe) => {
  probe.logs.set(LOG, [VHOST_LINE, VHOST_LINE]);
  return LOG;
}, ['access-log-format', /^confirm\.log_format: access log \/var\/log\/nginx\/access\.log: none of its last 2 line\(s\) is in the format confirm\.log_format says \(combined\); they look like vhost_combined/]);

test('the secret: in a directory only another user may enter, owned by root', async (t) => {
  const {config, probe} = healthy();
  probe.addFile('/srv/keys', facts('directory', 1000, 1000, 0o700));
  probe.addFile('/srv/keys/secret', facts('file', ROOT, ROOT, 0o600));
  const problems = await check({...config, secretFile: '/srv/keys/secret'}, probe);
  t.deepEqual(problems.map((problem) => problem.kind), ['secret-unreadable']);
  t.regex(problems[0]?.message ?? '', /^secret_file: the agent \(.*\) cannot read \/srv\/keys\/secret: the directory \/srv\/keys is alice:alice 0700/);
});

test('the secret: owned by another user is an error even when the agent could read it', async (t) => {
  const {config, probe} = healthy();
  probe.addFile('/etc/baton/secret', facts('file', 1000, ROOT, 0o600));
  const reader: FileAccess = {...UNIT_ACCESS, readsAnything: true};
  const problems = await check(config, probe, reader);
  t.deepEqual(problems.map((problem) => problem.kind), ['secret-owner']);
  t.regex(problems[0]?.message ?? '', /is alice:root 0600, not owned by root, the user the agent runs as: whoever owns it can replace the key/);
});

test('listen.address: anywhere in 127.0.0.0/8, and an IPv6 address however it is written, is this host\'s', async (t) => {
  const {config, probe} = healthy();
  t.deepEqual(await check({...config, listen: {address: '127.0.0.3', port: 7411}}, probe), []);
  probe.interfaceList.set('eth1', ['2001:db8::11']);
  t.deepEqual(await check({...config, listen: {address: '2001:DB8:0::11', port: 7411}}, probe), []);
});

test('listen.address with a zone is this host\'s only on the interface the zone names; the fix names it and the IPv6 prefix', async (t) => {
  const {config, probe} = healthy();
  probe.interfaceList.set('eth1', ['fe80::11', '2001:db8::11']);
  probe.interfaceList.set('eth2', ['fe80::22']);
  t.deepEqual(await check({...config, listen: {address: 'fe80::11%eth1', port: 7411}}, probe), []);
  const [other] = await check({...config, listen: {address: 'fe80::11%eth2', port: 7411}}, probe);
  t.is(other?.message, 'listen.address: fe80::11%eth2 is not an address of eth2 (it has fe80::22): the agent cannot send or ' +
    'receive beacons on it; set this host\'s own beacon address, or add it to an interface (`ip address add fe80::11/64 dev eth2`)');
  const [missing] = await check({...config, listen: {address: 'fe80::11%eth9', port: 7411}}, probe);
  t.regex(missing?.message ?? '', /is not an address of eth9 \(it has none: no such interface\)/);
  const [global] = await check({...config, listen: {address: '2001:db8::99', port: 7411}}, probe);
  t.regex(global?.message ?? '', /\(`ip address add 2001:db8::99\/64 dev eth0`\)$/);
});

test('a down interface still counts: link mode\'s backup keeps its service interface down', async (t) => {
  const {config, probe} = healthy();
  probe.interfaceList.set('svc0', []);
  t.deepEqual(await check({...config, service: {...config.service, interface: 'svc0', mode: 'link'}}, probe), []);
});

test('a file with problems: the keys that could be read are still checked, those with a problem are not', (t) => {
  const {config} = healthy();
  const [subject] = subjectsOfDraft(config, [
    {line: 8, key: 'service.interface', message: 'service.interface: expected a Linux interface name'},
    {line: 12, key: 'confirm', message: 'confirm: expected a mapping'},
  ]);
  t.is(subject?.serviceInterface, 'eth0', 'the draft of a file with problems has undefined where they are: here it is given');
  t.is(subject?.accessLog, undefined, 'confirm has a problem: the access log is not judged, not even as unset');
  t.is(subject?.listenAddress, '192.0.2.11');
  t.deepEqual(subject?.secretFiles, [{key: 'secret_file', path: '/etc/baton/secret'}]);
});

test('only errors keep the agent from starting, and only those that fail the first takeover', (t) => {
  for (const [kind, {severity, blocksStart}] of Object.entries(HOST_PROBLEMS)) {
    if (blocksStart) t.is(severity, 'error', kind);
  }
  t.deepEqual(Object.entries(HOST_PROBLEMS).filter(([, about]) => about.blocksStart).map(([kind]) => kind),
    ['interface-missing', 'ipv6-disabled', 'ipv6-needs-perl', 'program-missing']);
});

test('an IPv6 service address needs IPv6 on the service interface and perl, whose absence is then an error, not a warning', async (t) => {
  const ipv6 = {ip: V6_SERVICE_IP, ips: [V6_SERVICE_IP], interface: 'eth0', mode: 'address'} as const;
  const {config, probe} = healthy();
  const v6 = testConfig('primary', {...config, service: ipv6});
  t.deepEqual(await check(v6, probe), [], 'IPv6 on, perl there: nothing to say');
  probe.ipv6Off.add('eth0');
  probe.programs.delete('perl');
  const problems = await check(v6, probe);
  t.deepEqual(problems.map((problem) => [problem.severity, problem.kind, problem.key]),
    [['error', 'ipv6-disabled', 'service.address'], ['error', 'ipv6-needs-perl', undefined]]);
  t.regex(problems[0]?.message ?? '', /^service\.address: 2001:db8::100\/64 is an IPv6 address, and IPv6 is disabled on eth0 \(net\.ipv6\.conf\.eth0\.disable_ipv6 = 1/);
  t.regex(problems[1]?.message ?? '', /only the agent's packet helper, a perl program, sends the duplicate-address probe and the neighbour advertisements/);
  // The same host with an IPv4 service: IPv6 off is not its business, and perl missing only a warning.
  t.deepEqual((await check(config, probe)).map((problem) => [problem.severity, problem.kind]), [['warning', 'perl-missing']]);
});

test('a missing file reads as missing, not as unreadable', async (t) => {
  const {config, probe} = healthy();
  probe.files.set('/var/log/nginx', enoent('/var/log/nginx'));
  const problems = await check(config, probe);
  t.deepEqual(problems.map((problem) => problem.kind), ['access-log-missing']);
});

test('an etcd config is checked for its interface, programs and access log, not for beacons or a secret it has none of', async (t) => {
  const probe = new FakeHostProbe();
  const etcd = testEtcdConfig('b');
  const [subject] = subjectsOfConfig(etcd);
  if (subject === undefined) return t.fail();
  t.like(subject, {serviceInterface: 'eth0', listenAddress: undefined, accessLog: null, secretFiles: []});
  t.deepEqual((await checkHost(subject, await gatherHostFacts(subject, probe), UNIT_ACCESS)).map((problem) => problem.kind), ['access-log-unset'],
    'a switchover to this host cannot be confirmed without it; nothing about a secret');
  probe.interfaceList.delete('eth0');
  const problems = await checkHost(subject, await gatherHostFacts(subject, probe), UNIT_ACCESS);
  t.deepEqual(problems.map((problem) => [problem.kind, problem.key]), [['interface-missing', 'service.interface'], ['access-log-unset', 'confirm.access_log']]);
});
