// health.checks: each kind of check with its defaults, and every wrong check reported at its own line.

import test from 'ava';
import {type Config, parseConfig} from '../../../agent/config/schema.js';
import {DESIGN_EXAMPLE, MINIMAL, DEFAULT_SECRET, PROGRAMS, edit, rejects} from '../../fakes/config-fixtures.js';

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
