// Config loading: every rule of the config reference, with messages naming file, line, key, value and expectation.

import test, {type ExecutionContext} from 'ava';
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {
  type Config, keyIdOf, loadConfig, parseConfig, type ProgramInspector, type SecretFileInfo, type SecretReader,
} from '../../agent/config.js';
import {BatonError} from '../../agent/errors.js';

// DESIGN.md's example; line numbers in the expectations below refer to this text.
const DESIGN_EXAMPLE = `pair: web                      # pair id, the same on both hosts
node: primary                  # primary | backup
listen: { address: 192.0.2.11, port: 7411 }
peer:   { address: 192.0.2.12, port: 7411 }
secret_file: /etc/baton/secret
service:
  address: 192.0.2.100/24
  interface: eth0
  mode: address                # address | link
heartbeat: { interval_ms: 200, dead_after_ms: 1000 }
confirm:
  access_log: /var/log/nginx/access.log
  min_requests: 3
  timeout_s: 30
on_stop: keep                  # keep | release
state_dir: /var/lib/baton
control_socket: /run/baton/control.sock
`;

const MINIMAL = `pair: web
node: backup
listen: {address: 192.0.2.12}
peer: {address: 192.0.2.11}
service: {address: 192.0.2.100/24, interface: eth0}
`;

const SECRET = Uint8Array.from({length: 32}, (_, index) => index);

function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {code: 'ENOENT'});
}

/** A SecretReader over in-memory files; any other path does not exist. */
function secrets(files: Readonly<Record<string, SecretFileInfo>>): SecretReader {
  return (path) => files[path] ?? enoent(path);
}

const DEFAULT_SECRET = secrets({'/etc/baton/secret': {mode: 0o100600, content: SECRET}});

/** A ProgramInspector over in-memory files (path → st_mode); any other path does not exist. */
function programs(modes: Readonly<Record<string, number>>): ProgramInspector {
  return (path) => {
    const mode = modes[path];
    return mode === undefined ? enoent(path) : {mode};
  };
}

const PROGRAMS = programs({
  '/usr/local/bin/baton-notify': 0o100755,
  '/usr/local/bin/check-db': 0o100750,
  '/usr/local/bin/not-executable': 0o100644,
  '/opt/my hooks/it\'s "notify"': 0o100700,
});

/** `text` with `from` replaced by `to`; `from` must occur exactly once, so a stale edit cannot pass silently. */
function edit(text: string, ...replacements: Array<[from: string, to: string]>): string {
  return replacements.reduce((result, [from, to]) => {
    if (result.split(from).length !== 2) throw new Error(`expected exactly one ${JSON.stringify(from)}`);
    return result.replace(from, to);
  }, text);
}

function problems(file: string, lines: readonly string[]): string {
  const heading = `${file}: ${lines.length} problem${lines.length === 1 ? '' : 's'}`;
  return [heading, ...lines.map((line) => `  - ${file}:${line}`)].join('\n');
}

function configError(t: ExecutionContext, run: () => unknown): BatonError {
  const error = t.throws(run, {instanceOf: BatonError});
  t.is(error.code, 'CONFIG_INVALID');
  return error;
}

async function configErrorAsync(t: ExecutionContext, run: () => Promise<unknown>): Promise<BatonError> {
  const error = await t.throwsAsync(run, {instanceOf: BatonError});
  t.is(error.code, 'CONFIG_INVALID');
  return error;
}

/** Parses `yaml` as baton.yaml and expects exactly these problem lines ("<line> <key>: …"), in this order. */
const rejects = test.macro((t, yaml: string, expected: readonly string[]) => {
  const error = configError(t, () => parseConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS));
  t.is(error.message, problems('baton.yaml', expected));
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-config-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

async function writeFileWithMode(path: string, content: string | Uint8Array, mode: number): Promise<string> {
  await writeFile(path, content);
  await chmod(path, mode); // explicit, so the umask cannot change it
  return path;
}

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
      interface: 'eth0',
      mode: 'address',
    },
    heartbeat: {intervalMs: 200, deadAfterMs: 1000, maxClockSkewMs: 5000},
    confirm: {accessLog: '/var/log/nginx/access.log', minRequests: 3, timeoutS: 30},
    onStop: 'keep',
    stateDir: '/var/lib/baton',
    controlSocket: '/run/baton/control.sock',
    health: {intervalMs: 1000, fall: 3, rise: 2, checks: []},
    hooks: {onStateChange: undefined, timeoutMs: 5000},
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
  t.deepEqual(config.heartbeat, {intervalMs: 200, deadAfterMs: 1000, maxClockSkewMs: 5000});
  t.deepEqual(config.confirm, {accessLog: undefined, minRequests: 3, timeoutS: 30});
  t.is(config.onStop, 'keep');
  t.is(config.stateDir, '/var/lib/baton');
  t.is(config.controlSocket, '/run/baton/control.sock');
  t.deepEqual(config.health, {intervalMs: 1000, fall: 3, rise: 2, checks: []});
  t.deepEqual(config.hooks, {onStateChange: undefined, timeoutMs: 5000});
});

test('dead_after_ms defaults to 5 × interval_ms', (t) => {
  const config = parseConfig(`${MINIMAL}heartbeat: {interval_ms: 50}\n`, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.is(config.heartbeat.deadAfterMs, 250);
});

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

test('keyIdOf is the first 4 bytes of SHA-256 as lowercase hex', (t) => {
  // sha256sum of the empty input and of 32 zero bytes
  t.is(keyIdOf(new Uint8Array(0)), 'e3b0c442');
  t.is(keyIdOf(new Uint8Array(32)), '66687aad');
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

test('a YAML syntax error gives file, line, column and the parser\'s reason', (t) => {
  const error = configError(t, () =>
    parseConfig(edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000 }', 'dead_after_ms: 1000']), 'baton.yaml',
      DEFAULT_SECRET, PROGRAMS));

  t.regex(error.message, /^baton\.yaml: 1 problem\n {2}- baton\.yaml:11:1 YAML syntax error: Flow map .*\}$/);
});

test('a YAML syntax error in a quoted string gives its position', (t) => {
  const error = configError(t, () => parseConfig('pair: "web\nnode: primary\n', 'baton.yaml', DEFAULT_SECRET, PROGRAMS));

  t.regex(error.message, /^baton\.yaml: 1 problem\n {2}- baton\.yaml:\d+:\d+ YAML syntax error: .*quote/);
});

// ---- structure ----

test('an unknown top-level key suggests the nearest valid key', rejects,
  edit(DESIGN_EXAMPLE, ['heartbeat:', 'heartbeet:']),
  ['10 heartbeet: unknown key \'heartbeet\', did you mean \'heartbeat\'?']);

test('an unknown nested key suggests the nearest valid key of its section', rejects,
  edit(DESIGN_EXAMPLE, ['min_requests: 3', 'min_request: 3']),
  ['13 confirm.min_request: unknown key \'min_request\', did you mean \'min_requests\'?']);

test('an unknown key in a flow mapping suggests the nearest valid key despite a swap of letters', rejects,
  edit(DESIGN_EXAMPLE, ['interval_ms: 200', 'inetrval_ms: 200']),
  ['10 heartbeat.inetrval_ms: unknown key \'inetrval_ms\', did you mean \'interval_ms\'?']);

test('an unknown key far from every valid key lists the valid keys', rejects,
  `${DESIGN_EXAMPLE}colour: blue\n`,
  ['18 colour: unknown key \'colour\'; expected one of pair, node, listen, peer, secret_file, accept_secret_files, ' +
    'service, heartbeat, confirm, on_stop, state_dir, control_socket, health, hooks']);

test('a duplicate key names the line of its first occurrence', rejects,
  `${DESIGN_EXAMPLE}pair: other\n`,
  ['18 pair: expected each key once, got \'pair\' again (first at line 1)']);

test('a missing required top-level key is reported', rejects,
  edit(DESIGN_EXAMPLE, ['pair: web                      # pair id, the same on both hosts\n', '']),
  ['1 pair: expected a pair id of 1..32 characters from A-Z a-z 0-9 . _ -, got nothing (key missing)']);

test('a missing required nested key is reported at its section', rejects,
  edit(DESIGN_EXAMPLE, ['  interface: eth0\n', '']),
  ['6 service.interface: expected a Linux interface name (1..15 bytes, no \'/\', \':\', whitespace, control or shell ' +
    'characters), got nothing (key missing)']);

test('a missing required section is reported once, not key by key', rejects,
  edit(DESIGN_EXAMPLE, ['listen: { address: 192.0.2.11, port: 7411 }\n', '']),
  ['1 listen: expected a mapping like {address: 192.0.2.11, port: 7411}, got nothing (key missing)']);

test('a required key without a value is reported as empty', rejects,
  edit(DESIGN_EXAMPLE, ['pair: web ', 'pair:    ']),
  ['1 pair: expected a pair id of 1..32 characters from A-Z a-z 0-9 . _ -, got nothing (empty value)']);

test('a section that is not a mapping is reported', rejects,
  edit(DESIGN_EXAMPLE, ['heartbeat: { interval_ms: 200, dead_after_ms: 1000 }', 'heartbeat: 200']),
  ['10 heartbeat: expected a mapping like {interval_ms: 200}, got 200']);

test('a document that is a list is not a config', rejects,
  '- pair: web\n- node: primary\n',
  ['1 (document): expected a mapping of settings, got a list']);

test('a document that is a single word is not a config', rejects,
  'web\n',
  ['1 (document): expected a mapping of settings, got \'web\'']);

test('an empty file is not a config', rejects,
  '# nothing here\n',
  ['1 (document): expected a mapping of settings, got nothing (empty file)']);

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

test('a service address equal to the listen address is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['192.0.2.100/24', '192.0.2.11/24']),
  ['7 service.address: expected an address other than listen.address, got \'192.0.2.11/24\' ' +
    '(the service address moves between the hosts, their own addresses stay)']);

const BAD_INTERFACE = '8 service.interface: expected a Linux interface name ' +
  '(1..15 bytes, no \'/\', \':\', whitespace, control or shell characters), got';

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

test('dead_after_ms below 2 × interval_ms is rejected', rejects,
  edit(DESIGN_EXAMPLE, ['dead_after_ms: 1000', 'dead_after_ms: 300']),
  ['10 heartbeat.dead_after_ms: expected an integer >= 400, got 300 ' +
    '(2 × heartbeat.interval_ms 200: one lost beacon must not declare the peer dead)']);

test('dead_after_ms is checked against the default interval_ms too', rejects,
  edit(DESIGN_EXAMPLE, ['{ interval_ms: 200, dead_after_ms: 1000 }', '{ dead_after_ms: 399 }']),
  ['10 heartbeat.dead_after_ms: expected an integer >= 400, got 399 ' +
    '(2 × heartbeat.interval_ms 200: one lost beacon must not declare the peer dead)']);

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

test('accept_secret_files that is not a list is rejected', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files: /etc/baton/old-secret\n`,
  ['18 accept_secret_files: expected a list of absolute paths, got \'/etc/baton/old-secret\'']);

test('a relative path in accept_secret_files is rejected at its own line', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files:\n  - old-secret\n`,
  ['19 accept_secret_files[0]: expected an absolute path, got \'old-secret\'']);

test('accept_secret_files repeating secret_file is rejected', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files: [/etc/baton/secret]\n`,
  ['18 accept_secret_files[0]: expected a file not already listed in secret_file or accept_secret_files, ' +
    'got \'/etc/baton/secret\'']);

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

// ---- secret files ----

test('a missing default secret file says it is the default and how to create one', (t) => {
  const error = configError(t, () => parseConfig(MINIMAL, 'baton.yaml', secrets({}), PROGRAMS));

  t.is(error.message, problems('baton.yaml', [
    '1 secret_file: expected a readable secret file, got \'/etc/baton/secret\' (the default): no such file, ENOENT; ' +
      'create it on one host with `head -c 32 /dev/urandom > /etc/baton/secret && chmod 600 /etc/baton/secret` ' +
      'and copy it to the peer',
  ]));
});

/** Writes DESIGN's example with secret_file (and `extra` lines) into a temp dir; returns the paths. */
async function configWithSecret(t: ExecutionContext, secret: string | Uint8Array, mode: number, extra = '') {
  const dir = await tempDir(t);
  const secretFile = await writeFileWithMode(join(dir, 'secret'), secret, mode);
  const file = await writeFileWithMode(join(dir, 'baton.yaml'),
    edit(DESIGN_EXAMPLE, ['/etc/baton/secret', secretFile]) + extra, 0o644);
  return {dir, file, secretFile};
}

test('a missing secret file is reported with the fix', async (t) => {
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o600);
  await rm(secretFile);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a readable secret file, got '${secretFile}': no such file, ENOENT; create it on one ` +
      `host with \`head -c 32 /dev/urandom > ${secretFile} && chmod 600 ${secretFile}\` and copy it to the peer`,
  ]));
});

test('a secret file that is a directory is rejected', async (t) => {
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o600);
  await rm(secretFile);
  await mkdir(secretFile, {mode: 0o700});

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a readable secret file, got '${secretFile}': not a regular file; create it on one ` +
      `host with \`head -c 32 /dev/urandom > ${secretFile} && chmod 600 ${secretFile}\` and copy it to the peer`,
  ]));
});

test('a secret shorter than 32 bytes is rejected', async (t) => {
  const {file, secretFile} = await configWithSecret(t, SECRET.subarray(0, 31), 0o600);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a secret of at least 32 bytes, got 31 bytes in '${secretFile}'; replace it with ` +
      `\`head -c 32 /dev/urandom > ${secretFile} && chmod 600 ${secretFile}\` and copy it to the peer`,
  ]));
});

test('a secret readable by its group is rejected with the chmod to run', async (t) => {
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o640);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a file only its owner can read (mode 0600), got mode 0640 on '${secretFile}'; ` +
      `run \`chmod 600 ${secretFile}\``,
  ]));
});

test('a secret writable by others is rejected', async (t) => {
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o602);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a file only its owner can read (mode 0600), got mode 0602 on '${secretFile}'; ` +
      `run \`chmod 600 ${secretFile}\``,
  ]));
});

test('the secret is the file\'s bytes as they are, a trailing newline included', async (t) => {
  const text = `${'k'.repeat(31)}\n`;
  const {file} = await configWithSecret(t, text, 0o400);

  const config = await loadConfig(file);

  t.deepEqual(config.keyring.signing.secret, new TextEncoder().encode(text));
  t.is(config.keyring.signing.id, keyIdOf(new TextEncoder().encode(text)));
});

test('accepted secret files follow the signing key in the keyring, in order', async (t) => {
  const dir = await tempDir(t);
  const old = await writeFileWithMode(join(dir, 'old'), new Uint8Array(32).fill(1), 0o600);
  const older = await writeFileWithMode(join(dir, 'older'), new Uint8Array(40).fill(2), 0o600);
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o600, `accept_secret_files: [${old}, ${older}]\n`);

  const config = await loadConfig(file);

  t.deepEqual(config.acceptSecretFiles, [old, older]);
  t.deepEqual(config.keyring.accepted.map((key) => [key.file, key.id]), [
    [secretFile, keyIdOf(SECRET)],
    [old, keyIdOf(new Uint8Array(32).fill(1))],
    [older, keyIdOf(new Uint8Array(40).fill(2))],
  ]);
  t.is(config.keyring.accepted[0], config.keyring.signing);
});

test('accepted secret files get the same checks as the signing secret', async (t) => {
  const dir = await tempDir(t);
  const old = await writeFileWithMode(join(dir, 'old'), SECRET.subarray(0, 16), 0o644);
  const gone = join(dir, 'gone');
  const {file} = await configWithSecret(t, SECRET, 0o600, `accept_secret_files:\n  - ${old}\n  - ${gone}\n`);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `19 accept_secret_files[0]: expected a secret of at least 32 bytes, got 16 bytes in '${old}'; replace it with ` +
      `\`head -c 32 /dev/urandom > ${old} && chmod 600 ${old}\` and copy it to the peer`,
    `19 accept_secret_files[0]: expected a file only its owner can read (mode 0600), got mode 0644 on '${old}'; ` +
      `run \`chmod 600 ${old}\``,
    `20 accept_secret_files[1]: expected a readable secret file, got '${gone}': no such file, ENOENT; create it ` +
      `on one host with \`head -c 32 /dev/urandom > ${gone} && chmod 600 ${gone}\` and copy it to the peer`,
  ]));
});

test('secret file problems are reported together with the other problems', async (t) => {
  const dir = await tempDir(t);
  const secretFile = await writeFileWithMode(join(dir, 'secret'), SECRET.subarray(0, 8), 0o600);
  const file = await writeFileWithMode(join(dir, 'baton.yaml'), edit(DESIGN_EXAMPLE,
    ['/etc/baton/secret', secretFile],
    ['heartbeat:', 'heartbeet:'],
    ['192.0.2.100/24', '192.0.2.100/40']), 0o644);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `5 secret_file: expected a secret of at least 32 bytes, got 8 bytes in '${secretFile}'; replace it with ` +
      `\`head -c 32 /dev/urandom > ${secretFile} && chmod 600 ${secretFile}\` and copy it to the peer`,
    '7 service.address: expected an address with its prefix length, like 192.0.2.100/24, got \'192.0.2.100/40\' ' +
      '(the prefix length of an IPv4 address is 1..32)',
    '10 heartbeet: unknown key \'heartbeet\', did you mean \'heartbeat\'?',
  ]));
});

// ---- health checks ----

// Appended to DESIGN's example, so its first line is line 18.
const HEALTH = `health:
  interval_ms: 1000
  fall: 3
  rise: 2
  checks:
    - interface: eth0
    - http: { url: http://127.0.0.1/health, expect_status: 200, timeout_ms: 1000 }
    - command: { path: /usr/local/bin/check-db, args: [--quick], timeout_ms: 900 }
`;

const WITH_HEALTH = `${DESIGN_EXAMPLE}${HEALTH}`;

test('health checks load with every value as written', (t) => {
  const config = parseConfig(WITH_HEALTH, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.health, {
    intervalMs: 1000,
    fall: 3,
    rise: 2,
    checks: [
      {kind: 'interface', interface: 'eth0'},
      {kind: 'http', url: 'http://127.0.0.1/health', expectStatus: 200, timeoutMs: 1000},
      {kind: 'command', path: '/usr/local/bin/check-db', args: ['--quick'], timeoutMs: 900},
    ],
  } satisfies Config['health']);
});

test('a health check gets the defaults of its kind', (t) => {
  const config = parseConfig(`${MINIMAL}health:\n  checks:\n    - http: {url: "HTTPS://Example.COM:443/health"}\n` +
    '    - command: {path: /usr/local/bin/check-db}\n', 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.health, {
    intervalMs: 1000,
    fall: 3,
    rise: 2,
    checks: [
      {kind: 'http', url: 'https://example.com/health', expectStatus: 200, timeoutMs: 1000},
      {kind: 'command', path: '/usr/local/bin/check-db', args: [], timeoutMs: 1000},
    ],
  });
});

test('a check timeout equal to interval_ms is accepted', (t) => {
  const config = parseConfig(edit(WITH_HEALTH, ['interval_ms: 1000', 'interval_ms: 900'],
    ['expect_status: 200, timeout_ms: 1000', 'expect_status: 200, timeout_ms: 900']), 'baton.yaml',
  DEFAULT_SECRET, PROGRAMS);

  t.deepEqual(config.health.checks.map((check) => check.kind === 'interface' ? undefined : check.timeoutMs),
    [undefined, 900, 900]);
});

test('the health checks are frozen', (t) => {
  const config = parseConfig(WITH_HEALTH, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);

  for (const object of [config.health, config.health.checks, ...config.health.checks, config.hooks]) {
    t.true(Object.isFrozen(object));
  }
});

test('an unknown key in health suggests the nearest valid key', rejects,
  edit(WITH_HEALTH, ['interval_ms: 1000', 'intervall_ms: 1000']),
  ['19 health.intervall_ms: unknown key \'intervall_ms\', did you mean \'interval_ms\'?']);

test('an unknown check kind suggests the nearest kind and says nothing more', rejects,
  edit(WITH_HEALTH, ['- interface: eth0', '- interfce: eth0']),
  ['23 health.checks[0].interfce: unknown key \'interfce\', did you mean \'interface\'?']);

test('an unknown key in an http check suggests the nearest valid key', rejects,
  edit(WITH_HEALTH, ['expect_status: 200', 'expect_satus: 200']),
  ['24 health.checks[1].http.expect_satus: unknown key \'expect_satus\', did you mean \'expect_status\'?']);

test('a health interval below 100 ms is rejected', rejects,
  edit(WITH_HEALTH, ['interval_ms: 1000', 'interval_ms: 99']),
  ['19 health.interval_ms: expected an integer 100..60000, got 99']);

test('fall 0 is rejected', rejects,
  edit(WITH_HEALTH, ['fall: 3', 'fall: 0']),
  ['20 health.fall: expected an integer 1..100, got 0']);

test('rise above 100 is rejected', rejects,
  edit(WITH_HEALTH, ['rise: 2', 'rise: 101']),
  ['21 health.rise: expected an integer 1..100, got 101']);

test('health that is not a mapping is rejected', rejects,
  `${DESIGN_EXAMPLE}health: eth0\n`,
  ['18 health: expected a mapping like {interval_ms: 1000, checks: [...]}, got \'eth0\'']);

test('checks that is not a list is rejected', rejects,
  `${DESIGN_EXAMPLE}health:\n  checks: eth0\n`,
  ['19 health.checks: expected a list of checks, each like `- interface: eth0`, got \'eth0\'']);

test('a check that is not a mapping is rejected at its line', rejects,
  `${DESIGN_EXAMPLE}health:\n  checks:\n    - eth0\n`,
  ['20 health.checks[0]: expected a mapping with one of interface, http or command, like `- interface: eth0`, ' +
    'got \'eth0\'']);

test('a check with two kinds is rejected', rejects,
  `${DESIGN_EXAMPLE}health:\n  checks:\n    - {interface: eth0, command: {path: /usr/local/bin/check-db}}\n`,
  ['20 health.checks[0]: expected exactly one of interface, http or command, got interface and command']);

test('a check with no kind is rejected', rejects,
  `${DESIGN_EXAMPLE}health:\n  checks:\n    - {}\n`,
  ['20 health.checks[0]: expected exactly one of interface, http or command, got none']);

test('an interface check with an invalid name is rejected like service.interface', rejects,
  edit(WITH_HEALTH, ['- interface: eth0', '- interface: eth0;reboot']),
  ['23 health.checks[0].interface: expected a Linux interface name (1..15 bytes, no \'/\', \':\', whitespace, ' +
    'control or shell characters), got \'eth0;reboot\' (\';\' is not allowed)']);

test('an interface check without a name is rejected', rejects,
  edit(WITH_HEALTH, ['- interface: eth0', '- interface:']),
  ['23 health.checks[0].interface: expected a Linux interface name (1..15 bytes, no \'/\', \':\', whitespace, ' +
    'control or shell characters), got nothing (empty value)']);

test('an http check that is not a mapping is rejected', rejects,
  `${DESIGN_EXAMPLE}health:\n  checks:\n    - http: http://127.0.0.1/health\n`,
  ['20 health.checks[0].http: expected a mapping like {url: http://127.0.0.1/health}, ' +
    'got \'http://127.0.0.1/health\'']);

test('an http check without a url is rejected', rejects,
  edit(WITH_HEALTH, ['url: http://127.0.0.1/health, ', '']),
  ['24 health.checks[1].http.url: expected an absolute http:// or https:// URL, got nothing (key missing)']);

test('a relative url is rejected', rejects,
  edit(WITH_HEALTH, ['url: http://127.0.0.1/health', 'url: /health']),
  ['24 health.checks[1].http.url: expected an absolute http:// or https:// URL, got \'/health\' (not a URL)']);

test('a url of another scheme is rejected', rejects,
  edit(WITH_HEALTH, ['url: http://127.0.0.1/health', 'url: "ftp://127.0.0.1/health"']),
  ['24 health.checks[1].http.url: expected an absolute http:// or https:// URL, got \'ftp://127.0.0.1/health\' ' +
    '(the scheme \'ftp\' is neither http nor https)']);

test('an expected status outside 100..599 is rejected', rejects,
  edit(WITH_HEALTH, ['expect_status: 200', 'expect_status: 600']),
  ['24 health.checks[1].http.expect_status: expected an integer 100..599, got 600']);

test('a check timeout below 10 ms is rejected', rejects,
  edit(WITH_HEALTH, ['expect_status: 200, timeout_ms: 1000', 'expect_status: 200, timeout_ms: 9']),
  ['24 health.checks[1].http.timeout_ms: expected an integer 10..60000, got 9']);

test('a check timeout above interval_ms is rejected', rejects,
  edit(WITH_HEALTH, ['args: [--quick], timeout_ms: 900', 'args: [--quick], timeout_ms: 2000']),
  ['25 health.checks[2].command.timeout_ms: expected an integer <= 1000, got 2000 ' +
    '(health.interval_ms 1000: a check must end before the next round is due)']);

test('a default check timeout above a short interval_ms is rejected with the default named', rejects,
  `${DESIGN_EXAMPLE}health:\n  interval_ms: 500\n  checks:\n    - http: {url: http://127.0.0.1/}\n`,
  ['21 health.checks[0].http.timeout_ms: expected an integer <= 500, got nothing (key missing) ' +
    '(health.interval_ms 500: a check must end before the next round is due; the default is 1000)']);

test('a command check with a relative path is rejected', rejects,
  edit(WITH_HEALTH, ['path: /usr/local/bin/check-db', 'path: check-db']),
  ['25 health.checks[2].command.path: expected an absolute path, got \'check-db\'']);

test('a command check whose program is missing is rejected with the fix', rejects,
  edit(WITH_HEALTH, ['path: /usr/local/bin/check-db', 'path: /usr/local/bin/check-dbb']),
  ['25 health.checks[2].command.path: expected an executable file, got \'/usr/local/bin/check-dbb\': no such file, ' +
    'ENOENT; install it there or correct the path']);

test('a command check whose program is not executable is rejected with the chmod to run', rejects,
  edit(WITH_HEALTH, ['path: /usr/local/bin/check-db', 'path: /usr/local/bin/not-executable']),
  ['25 health.checks[2].command.path: expected an executable file, got mode 0644 on ' +
    '\'/usr/local/bin/not-executable\'; run `chmod +x /usr/local/bin/not-executable`']);

test('command args that are not a list are rejected', rejects,
  edit(WITH_HEALTH, ['args: [--quick]', 'args: --quick']),
  ['25 health.checks[2].command.args: expected a list of arguments, like [--quick], got \'--quick\'']);

test('a number among command args is rejected with the fix', rejects,
  edit(WITH_HEALTH, ['args: [--quick]', 'args: [--retries, 3]']),
  ['25 health.checks[2].command.args[1]: expected text, got 3 (not text; put it in quotes if you mean text)']);

test('every bad check is reported, each at its own line', rejects,
  edit(WITH_HEALTH,
    ['- interface: eth0', '- interface: eth0:1'],
    ['expect_status: 200', 'expect_status: 99'],
    ['path: /usr/local/bin/check-db', 'path: bin/check-db']),
  [
    '23 health.checks[0].interface: expected a Linux interface name (1..15 bytes, no \'/\', \':\', whitespace, ' +
      'control or shell characters), got \'eth0:1\' (\':\' is not allowed)',
    '24 health.checks[1].http.expect_status: expected an integer 100..599, got 99',
    '25 health.checks[2].command.path: expected an absolute path, got \'bin/check-db\'',
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

test('a missing hook program is rejected with the fix', rejects,
  `${DESIGN_EXAMPLE}hooks:\n  on_state_change: /usr/local/bin/baton-notiffy\n`,
  ['19 hooks.on_state_change: expected an executable file, got \'/usr/local/bin/baton-notiffy\': no such file, ' +
    'ENOENT; install it there or correct the path']);

test('a hook program that is not executable is rejected with the chmod to run, quoted for the shell', rejects,
  `${DESIGN_EXAMPLE}hooks:\n  on_state_change: /usr/local/bin/not-executable\n`,
  ['19 hooks.on_state_change: expected an executable file, got mode 0644 on \'/usr/local/bin/not-executable\'; ' +
    'run `chmod +x /usr/local/bin/not-executable`']);

/** Writes DESIGN's example plus `hooks.on_state_change: hook` into a temp dir, with a valid secret. */
async function configWithHook(t: ExecutionContext, hook: string) {
  const {file} = await configWithSecret(t, SECRET, 0o600, `hooks:\n  on_state_change: ${JSON.stringify(hook)}\n`);
  return file;
}

test('loadConfig accepts an executable hook in a directory with a space in its name', async (t) => {
  const dir = join(await tempDir(t), 'my hooks');
  await mkdir(dir);
  const hook = await writeFileWithMode(join(dir, 'notify it'), '#!/bin/sh\n', 0o700);

  const config = await loadConfig(await configWithHook(t, hook));

  t.is(config.hooks.onStateChange, hook);
});

test('loadConfig rejects a hook that is not executable, quoting the chmod for the shell', async (t) => {
  const dir = join(await tempDir(t), 'my hooks');
  await mkdir(dir);
  const hook = await writeFileWithMode(join(dir, 'notify'), '#!/bin/sh\n', 0o644);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    `19 hooks.on_state_change: expected an executable file, got mode 0644 on '${hook}'; run \`chmod +x '${hook}'\``,
  ]));
});

test('loadConfig rejects a hook that does not exist or is a directory', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'missing');
  const file = await configWithHook(t, missing);
  const directory = join(dir, 'directory');
  await mkdir(directory);
  const secondFile = await configWithHook(t, directory);

  const missingError = await configErrorAsync(t, () => loadConfig(file));
  const directoryError = await configErrorAsync(t, () => loadConfig(secondFile));

  t.is(missingError.message, problems(file, [
    `19 hooks.on_state_change: expected an executable file, got '${missing}': no such file, ENOENT; install it ` +
      'there or correct the path',
  ]));
  t.is(directoryError.message, problems(secondFile, [
    `19 hooks.on_state_change: expected an executable file, got '${directory}': not a regular file; install it ` +
      'there or correct the path',
  ]));
});
