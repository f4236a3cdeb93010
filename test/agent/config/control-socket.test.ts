// The control socket read alone from a config file, for `baton status` and the other commands that only talk to
// the agent: the rest of the file is not validated.

import test from 'ava';
import {readControlSocket} from '../../../agent/config/control-socket.js';
import {DEFAULT_CONTROL_SOCKET} from '../../../agent/config/schema.js';
import {BatonError} from '../../../agent/errors.js';

const FILE = '/etc/baton/baton.yaml';

test('control_socket is read, whatever else the file gets wrong', (t) => {
  const text = 'pair: web\nnode: primery\nheartbeet: {}\nsecret_file: /nonexistent\ncontrol_socket: /run/baton-a/control.sock\n';
  t.deepEqual(readControlSocket(text, FILE), {socket: '/run/baton-a/control.sock', note: undefined});
});

test('without control_socket it is the default the agent uses', (t) => {
  t.deepEqual(readControlSocket('pair: web\nnode: primary\n', FILE), {socket: DEFAULT_CONTROL_SOCKET, note: undefined});
});

test('a file with YAML syntax errors still gives its control_socket, and says the file is broken', (t) => {
  const found = readControlSocket('control_socket: /run/b/control.sock\nlisten: { address: 192.0.2.11\n', FILE);
  t.is(found.socket, '/run/b/control.sock');
  t.is(found.note, `${FILE} has YAML syntax errors (\`baton check-config\` lists them); its control_socket read alone: /run/b/control.sock`);
  const without = readControlSocket('listen: { address: 192.0.2.11\n', FILE);
  t.is(without.socket, DEFAULT_CONTROL_SOCKET);
  t.regex(without.note ?? '', /has YAML syntax errors .*no control_socket found in it: trying the default \/run\/baton\/control\.sock$/);
});

test('a file that is no mapping at all falls back to the default socket and says so', (t) => {
  const found = readControlSocket('- just\n- a list\n', FILE);
  t.is(found.socket, DEFAULT_CONTROL_SOCKET);
  t.regex(found.note ?? '', /is not a mapping of settings .*trying the default control socket/);
});

test('a control_socket that is no socket path is refused with its line and the way out', (t) => {
  const error = t.throws(() => readControlSocket('pair: web\ncontrol_socket: run/control.sock\n', FILE), {instanceOf: BatonError});
  t.is(error?.code, 'CONFIG_INVALID');
  t.regex(error?.message ?? '', /^\/etc\/baton\/baton\.yaml:2 control_socket: expected an absolute path .*, got 'run\/control\.sock'.*; fix it, or pass --socket PATH$/);
});
