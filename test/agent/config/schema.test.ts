// Config loading as a whole: every value read and defaulted, the rules across keys, the config file itself.

import test from 'ava';
import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {type Config, loadConfig, parseConfig} from '../../../agent/config/schema.js';
import {keyIdOf} from '../../../agent/config/secret-files.js';
import {
  DESIGN_EXAMPLE, MINIMAL, SECRET, DEFAULT_SECRET, PROGRAMS, edit, configErrorAsync, rejects, tempDir,
  writeFileWithMode, BAD_INTERFACE,
} from '../../fakes/config-fixtures.js';

// ---- valid files ----

test('DESIGN\'s example loads with every value as written', async (t) => {
  const dir = await tempDir(t);
  const secretFile = await writeFileWithMode(join(dir, 'secret'), SECRET, 0o600);
  const file = await writeFileWithMode(join(dir, 'baton.yaml'),
    edit(DESIGN_EXAMPLE, ['/etc/baton/secret', secretFile]), 0o644);

  const config = await loadConfig(file);

  const signing = {id: keyIdOf(SECRET), secret: SECRET, file: secretFile};
  t.deepEqual(config, {
    file,
    pair: 'web',
    node: 'primary',
    listen: {address: '192.0.2.11', port: 7411},
    peer: {address: '192.0.2.12', port: 7411},
    secretFile,
    acceptSecretFiles: [],
    keyring: {signing, accepted: [signing]},
    service: {
      ip: {address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'},
      ips: [{address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'}],
      interface: 'eth0',
      mode: 'address',
    },
    heartbeat: {intervalMs: 200, deadAfterMs: 1000, replayProtection: 'clock', maxClockSkewMs: 5000},
    confirm: {accessLog: '/var/log/nginx/access.log', minRequests: 3, timeoutS: 30, statuses: [{from: 200, to: 299}, {from: 300, to: 399}], logFormat: {kind: 'combined'}},
    drain: {enabled: true, graceful: undefined, gracefulAfterS: 5, timeoutS: 60},
    onStop: 'keep',
    stateDir: '/var/lib/baton',
    controlSocket: '/run/baton/control.sock',
    health: {intervalMs: 1000, fall: 3, rise: 2, checks: []},
    hooks: {onStateChange: undefined, timeoutMs: 5000},
    rehearsal: {enabled: false},
    metrics: {enabled: false, listen: {address: '127.0.0.1', port: 7412}, allowFrom: []},
    scriptUser: undefined,
    coordination: {mode: 'pair'},
  } satisfies Config);
});

test('a minimal config gets every default', (t) => {
  const config = parseConfig(MINIMAL, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.is(config.listen.port, 7411);
  t.is(config.peer.port, 7411);
  t.is(config.secretFile, '/etc/baton/secret');
  t.deepEqual(config.acceptSecretFiles, []);
  t.deepEqual(config.keyring.accepted, [config.keyring.signing]);
  t.is(config.keyring.signing.file, '/etc/baton/secret');
  t.is(config.service.mode, 'address');
  t.deepEqual(config.heartbeat, {intervalMs: 200, deadAfterMs: 1000, replayProtection: 'clock', maxClockSkewMs: 5000});
  t.deepEqual(config.confirm, {accessLog: undefined, minRequests: 3, timeoutS: 30, statuses: [{from: 200, to: 299}, {from: 300, to: 399}], logFormat: {kind: 'combined'}});
  t.deepEqual(config.drain, {enabled: true, graceful: undefined, gracefulAfterS: 5, timeoutS: 60});
  t.is(config.onStop, 'keep');
  t.is(config.stateDir, '/var/lib/baton');
  t.is(config.controlSocket, '/run/baton/control.sock');
  t.deepEqual(config.health, {intervalMs: 1000, fall: 3, rise: 2, checks: []});
  t.deepEqual(config.hooks, {onStateChange: undefined, timeoutMs: 5000});
  t.deepEqual(config.rehearsal, {enabled: false}, 'the rehearsal aids are off unless the file enables them');
  t.deepEqual(config.coordination, {mode: 'pair'}, 'a file without a coordination section is a pair, as before');
});

test('rehearsal.enabled: true turns the rehearsal aids on', (t) => {
  t.true(parseConfig(`${MINIMAL}rehearsal: {enabled: true}\n`, 'baton.yaml', DEFAULT_SECRET, PROGRAMS).rehearsal.enabled);
});

test('a rehearsal.enabled that is not a boolean is rejected', rejects,
  `${DESIGN_EXAMPLE}rehearsal: {enabled: yes please}\n`,
  ['18 rehearsal.enabled: expected true or false, got \'yes please\'']);

test('dead_after_ms defaults to 5 × interval_ms', (t) => {
  const config = parseConfig(`${MINIMAL}heartbeat: {interval_ms: 50}\n`, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.is(config.heartbeat.deadAfterMs, 250);
});

test('heartbeat.replay_protection: acknowledged is read, and the skew window is then not', (t) => {
  const config = parseConfig(`${MINIMAL}heartbeat: {replay_protection: acknowledged}\n`, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.is(config.heartbeat.replayProtection, 'acknowledged');
});

test('a replay_protection that is neither clock nor acknowledged is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 1000, replay_protection: ntp']),
  ['10 heartbeat.replay_protection: expected \'clock\' or \'acknowledged\', got \'ntp\'']);

test('max_clock_skew_ms with replay_protection: acknowledged is rejected: no window applies, none may seem to', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 1000, replay_protection: acknowledged, max_clock_skew_ms: 5000']),
  ['10 heartbeat.max_clock_skew_ms: expected nothing, got 5000 (the clocks are not compared with heartbeat.replay_protection: acknowledged; remove it)']);

test('empty sections and empty optional values mean their defaults', (t) => {
  const config = parseConfig(`${MINIMAL}heartbeat:\nconfirm: {access_log: ~}\non_stop:\n`, 'baton.yaml',
    DEFAULT_SECRET, PROGRAMS);

  t.is(config.heartbeat.intervalMs, 200);
  t.is(config.confirm.accessLog, undefined);
  t.is(config.onStop, 'keep');
});

test('IPv6 addresses are stored in canonical form', (t) => {
  const config = parseConfig(edit(MINIMAL,
    ['192.0.2.12}', '2001:DB8:0:0::12}'],
    ['192.0.2.11}', '2001:db8::11, port: 7412}'],
    ['192.0.2.100/24', '"2001:DB8::100/64"']), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.listen, {address: '2001:db8::12', port: 7411});
  t.deepEqual(config.peer, {address: '2001:db8::11', port: 7412});
  t.deepEqual(config.service.ip, {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'});
});

test('the returned config is frozen all the way down', (t) => {
  const config = parseConfig(MINIMAL, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  for (const object of [config, config.listen, config.service, config.service.ip, config.heartbeat, config.confirm,
    config.keyring, config.keyring.accepted, config.keyring.signing, config.acceptSecretFiles]) {
    t.true(Object.isFrozen(object));
  }
  t.throws(() => {
    (config.heartbeat as {intervalMs: number}).intervalMs = 1;
  }, {instanceOf: TypeError});
});

// ---- the config file itself ----

test('a missing config file is named with the fix', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'baton.yaml');

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, `${file}: cannot read the config file: no such file, ENOENT; ` +
    'create it (`baton install` writes one) or pass --config FILE');
  t.is((error.cause as {code?: string}).code, 'ENOENT');
});

test('an unreadable config file is named with the reason', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'baton.yaml');
  await mkdir(file); // unreadable as a file even for root, unlike chmod 000

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, `${file}: cannot read the config file: a directory, not a file, EISDIR`);
});

test('a listen address equal to the peer address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.12,', '192.0.2.11,']),
  ['4 peer.address: expected an address other than listen.address, got \'192.0.2.11\' ' +
    '(a host cannot be its own peer)']);

test('one IPv6 address spelled two ways is still the same address', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.11,', '"2001:db8::11",'], ['192.0.2.12,', '"2001:DB8:0::11",']),
  ['4 peer.address: expected an address other than listen.address, got \'2001:DB8:0::11\' ' +
    '(a host cannot be its own peer)']);

test('listen and peer addresses of different families are rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.12,', '"2001:db8::12",']),
  ['4 peer.address: expected an IPv4 address like listen.address, got \'2001:db8::12\' ' +
    '(heartbeats go from listen.address to peer.address)']);

test('heartbeats over IPv6 with an IPv4 service, and over IPv4 with an IPv6 service: the families are independent', (t) => {
  const v6Beacons = parseConfig(edit(MINIMAL, ['192.0.2.12}', '2001:db8::12}'], ['192.0.2.11}', '2001:db8::11}']),
    'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.is(v6Beacons.listen.address, '2001:db8::12');
  t.is(v6Beacons.service.ip.family, 4);
  const v6Service = parseConfig(edit(MINIMAL, ['192.0.2.100/24', '"2001:db8::100/64"']), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.is(v6Service.listen.address, '192.0.2.12');
  t.is(v6Service.service.ip.family, 6);
});

test('link-local beacon addresses on one link load with their zone', (t) => {
  const config = parseConfig(edit(MINIMAL, ['192.0.2.12}', 'fe80::12%eth1}'], ['192.0.2.11}', 'FE80::0:11%eth1}']),
    'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.is(config.listen.address, 'fe80::12%eth1');
  t.is(config.peer.address, 'fe80::11%eth1');
});

test('link-local listen and peer addresses on two links are rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.11,', 'fe80::11%eth1,'], ['192.0.2.12,', 'fe80::12%eth2,']),
  ['4 peer.address: expected a link-local address on listen.address\'s link, like fe80::12%eth1, got \'fe80::12%eth2\' ' +
    '(heartbeats go from listen.address to peer.address over one link)']);

test('a link-local peer of a global listen address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.11,', '"2001:db8::11",'], ['192.0.2.12,', 'fe80::12%eth1,']),
  ['4 peer.address: expected a global address like listen.address, got \'fe80::12%eth1\' ' +
    '(heartbeats go from listen.address to peer.address over one link)']);

test('a service address equal to the listen address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.11/24']),
  ['7 service.address: expected an address other than listen.address, got \'192.0.2.11/24\' ' +
    '(the service address moves between the hosts, their own addresses stay)']);

test('dead_after_ms below 2 × interval_ms is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 300']),
  ['10 heartbeat.dead_after_ms: expected an integer >= 400, got 300 ' +
    '(2 × heartbeat.interval_ms 200: one lost beacon must not declare the peer dead)']);

test('dead_after_ms is checked against the default interval_ms too', rejects,
  edit(DESIGN_EXAMPLE, ['{ interval_ms: 200, dead_after_ms: 1000 }', '{ dead_after_ms: 399 }']),
  ['10 heartbeat.dead_after_ms: expected an integer >= 400, got 399 ' +
    '(2 × heartbeat.interval_ms 200: one lost beacon must not declare the peer dead)']);

test('several problems in one file are all reported together, in line order', rejects,
  edit(DESIGN_EXAMPLE,
    ['node: primary', 'node: master '],
    ['192.0.2.12, port: 7411', '192.0.2.12, port: 99999'],
    ['interface: eth0', 'interface: eth0;reboot'],
    ['interval_ms: 200', 'interval_ms: fast'],
    ['on_stop: keep', 'on_stap: keep']),
  [
    '2 node: expected \'primary\' or \'backup\', got \'master\'',
    '4 peer.port: expected an integer 1..65535, got 99999',
    `${BAD_INTERFACE} 'eth0;reboot' (';' is not allowed)`,
    '10 heartbeat.interval_ms: expected an integer 10..10000, got \'fast\'',
    '15 on_stap: unknown key \'on_stap\', did you mean \'on_stop\'?',
  ]);

// ---- hooks ----

test('a state-change hook loads with its timeout', (t) => {
  const config = parseConfig(`${MINIMAL}hooks: { on_state_change: /usr/local/bin/baton-notify, timeout_ms: 100 }\n`,
    'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.hooks, {onStateChange: '/usr/local/bin/baton-notify', timeoutMs: 100});
});

test('a hook path with spaces and quotes is taken as written', (t) => {
  const config = parseConfig(`${MINIMAL}hooks:\n  on_state_change: /opt/my hooks/it's "notify"\n`, 'baton.yaml',
    DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.hooks, {onStateChange: '/opt/my hooks/it\'s "notify"', timeoutMs: 5000});
});

// ---- script_user ----

const USERS = (name: string) => ({nobody: {uid: 65534, gid: 65534}, 'baton-script': {uid: 998, gid: 997},
  root: {uid: 0, gid: 0}} as Record<string, {uid: number; gid: number}>)[name];
const HOOK_LINE = 'hooks: {on_state_change: /usr/local/bin/baton-notify}\n';

test('the hook and command checks run as nobody by default, as the configured user otherwise', (t) => {
  const byDefault = parseConfig(`${MINIMAL}${HOOK_LINE}`, 'baton.yaml', DEFAULT_SECRET, PROGRAMS, USERS);
  const configured = parseConfig(`${MINIMAL}${HOOK_LINE}script_user: baton-script\n`, 'baton.yaml', DEFAULT_SECRET,
    PROGRAMS, USERS);

  t.deepEqual(byDefault.scriptUser, {name: 'nobody', uid: 65534, gid: 65534});
  t.deepEqual(configured.scriptUser, {name: 'baton-script', uid: 998, gid: 997});
});

test('with no hook and no command check, script_user is not looked up', (t) => {
  const config = parseConfig(MINIMAL, 'baton.yaml', DEFAULT_SECRET, PROGRAMS, () => new Error('must not be called'));

  t.is(config.scriptUser, undefined);
});

test('script_user root is refused: a hook must not keep the agent\'s power', (t) => {
  const error = t.throws(() => parseConfig(`${MINIMAL}${HOOK_LINE}script_user: root\n`, 'baton.yaml', DEFAULT_SECRET,
    PROGRAMS, USERS));

  t.regex(error?.message ?? '', /script_user: expected an unprivileged user, got 'root' \(uid 0\)/);
});

test('a script_user that does not exist is refused with the useradd that makes it', (t) => {
  const error = t.throws(() => parseConfig(`${MINIMAL}${HOOK_LINE}script_user: baton-hooks\n`, 'baton.yaml',
    DEFAULT_SECRET, PROGRAMS, USERS));

  t.regex(error?.message ?? '', /script_user: expected a user in \/etc\/passwd, got 'baton-hooks'; create it with `useradd --system --no-create-home --shell \/usr\/sbin\/nologin baton-hooks` or name another/);
});

test('an unknown key in hooks suggests the nearest valid key', rejects,
  `${DESIGN_EXAMPLE}hooks: {on_state_changed: /usr/local/bin/baton-notify}\n`,
  ['18 hooks.on_state_changed: unknown key \'on_state_changed\', did you mean \'on_state_change\'?']);

test('a relative hook path is rejected', rejects,
  `${DESIGN_EXAMPLE}hooks: {on_state_change: baton-notify}\n`,
  ['18 hooks.on_state_change: expected an absolute path, got \'baton-notify\'']);

test('a hook timeout below 100 ms is rejected', rejects,
  `${DESIGN_EXAMPLE}hooks: {on_state_change: /usr/local/bin/baton-notify, timeout_ms: 99}\n`,
  ['18 hooks.timeout_ms: expected an integer 100..600000, got 99']);

test('a hook timeout above 600000 ms is rejected', rejects,
  `${DESIGN_EXAMPLE}hooks:\n  timeout_ms: 600001\n`,
  ['19 hooks.timeout_ms: expected an integer 100..600000, got 600001']);

// ---- confirm: statuses and the access log's format ----

// A function as the replacement: a pattern's `$'` must stay text.
const withConfirm = (lines: string): string => DESIGN_EXAMPLE.replace('  timeout_s: 30\n', () => `  timeout_s: 30\n${lines}`);

test('confirm.statuses takes classes, ranges and single statuses', (t) => {
  const config = parseConfig(withConfirm('  statuses: [2xx, 301-302, 404]\n'), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.deepEqual(config.confirm.statuses, [{from: 200, to: 299}, {from: 301, to: 302}, {from: 404, to: 404}]);
  t.deepEqual(parseConfig(DESIGN_EXAMPLE, 'baton.yaml', DEFAULT_SECRET, PROGRAMS).confirm.statuses, [{from: 200, to: 299}, {from: 300, to: 399}]);
});

test('confirm.statuses refuses what is not a status, and an empty list', rejects,
  withConfirm('  statuses: [6xx, 299-200, ok]\n'),
  ['15 confirm.statuses[0]: expected an HTTP status (204), a class (2xx) or a range (200-299), within 100..599, got \'6xx\'',
    '15 confirm.statuses[1]: expected an HTTP status (204), a class (2xx) or a range (200-299), within 100..599, got \'299-200\' (299 is above 200)',
    '15 confirm.statuses[2]: expected an HTTP status (204), a class (2xx) or a range (200-299), within 100..599, got \'ok\'']);

test('confirm.log_format: vhost_combined, and a pattern with its groups', (t) => {
  t.deepEqual(parseConfig(withConfirm('  log_format: vhost_combined\n'), 'baton.yaml', DEFAULT_SECRET, PROGRAMS).confirm.logFormat, {kind: 'vhost_combined'});
  const config = parseConfig(withConfirm('  log_format: pattern\n  log_pattern: \'^(?<client>\\S+) \\[(?<time>[^\\]]+)\\] (?<status>\\d{3})$\'\n'),
    'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.is(config.confirm.logFormat.kind, 'pattern');
  t.is(config.confirm.logFormat.kind === 'pattern' ? config.confirm.logFormat.pattern.source : '', '^(?<client>\\S+) \\[(?<time>[^\\]]+)\\] (?<status>\\d{3})$');
});

test('a log_pattern that is not a regular expression, lacks a group or names an unknown one is refused', rejects,
  withConfirm('  log_format: pattern\n  log_pattern: \'(?<client>\\S+) (?<time>\\S+) (?<stat>\\d+)\'\n'),
  ['16 confirm.log_pattern: expected a regular expression with the named groups client, time and status, got \'(?<client>\\\\S+) (?<time>\\\\S+) (?<stat>\\\\d+)\' (no group named status, e.g. (?<client>\\S+))']);

test('log_format: pattern needs log_pattern, and log_pattern needs log_format: pattern', rejects,
  withConfirm('  log_format: pattern\n'),
  ['11 confirm.log_pattern: expected a regular expression with the named groups client, time and status, got nothing (key missing) (confirm.log_format is pattern)']);

// ---- a dual-stack service: service.address as a list of an IPv4 and an IPv6 address ----

const DUAL_STACK_WHAT = 'one address like 192.0.2.100/24, or a list of two, one IPv4 and one IPv6, like [192.0.2.100/24, 2001:db8::100/64]';

test('a dual-stack service address list loads both addresses in its order; ip is the first', (t) => {
  const v4First = parseConfig(edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '[192.0.2.100/24, 2001:DB8::100/64]']), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.deepEqual(v4First.service.ips, [
    {address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'},
    {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'},
  ]);
  t.true(v4First.service.ip === v4First.service.ips[0], 'ip is the first of ips');
  const v6First = parseConfig(edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '[\'2001:db8::100/64\', 192.0.2.100/24]']), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.deepEqual(v6First.service.ips.map((ip) => ip.family), [6, 4]);
  t.is(v6First.service.ip.family, 6);
});

test('a single service address is a list of one in ips', (t) => {
  const config = parseConfig(DESIGN_EXAMPLE, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.deepEqual(config.service.ips, [config.service.ip]);
});

test('two service addresses of one family are rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '[192.0.2.100/24, 192.0.2.101/24]']),
  [`7 service.address: expected ${DUAL_STACK_WHAT}, got a list (both are IPv4 addresses; a service moves one address of each family)`]);

test('three service addresses, and a list of one, are rejected', (t) => {
  for (const [list, note] of [
    ['[192.0.2.100/24, \'2001:db8::100/64\', 192.0.2.101/24]', '3 addresses: a single one is written without the list'],
    ['[192.0.2.100/24]', '1 address: a single one is written without the list'],
    ['[]', '0 addresses: a single one is written without the list'],
  ] as const) {
    const error = t.throws(() => parseConfig(edit(DESIGN_EXAMPLE, ['192.0.2.100/24', list]), 'baton.yaml', DEFAULT_SECRET, PROGRAMS));
    t.is(error?.message, `baton.yaml: 1 problem\n  - baton.yaml:7 service.address: expected ${DUAL_STACK_WHAT}, got a list (${note})`, list);
  }
});

test('each address of the list is checked as a single one is, and named by its place', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '[192.0.2.11/24, \'2001:db8::100\']']),
  ['7 service.address[1]: expected an address with its prefix length, like 192.0.2.100/24, got \'2001:db8::100\' (no prefix length)',
    '7 service.address[0]: expected an address other than listen.address, got \'192.0.2.11/24\' ' +
    '(the service address moves between the hosts, their own addresses stay)']);
