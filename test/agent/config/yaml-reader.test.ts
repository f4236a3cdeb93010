// The YAML as config keys: syntax errors with positions, unknown and duplicate keys, missing keys, structure.

import test from 'ava';
import {parseConfig} from '../../../agent/config/schema.js';
import {DESIGN_EXAMPLE, DEFAULT_SECRET, PROGRAMS, edit, configError, rejects} from '../../fakes/config-fixtures.js';

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
    'service, heartbeat, confirm, drain, on_stop, state_dir, control_socket, health, hooks, rehearsal, metrics, script_user, coordination, services']);

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
