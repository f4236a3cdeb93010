import test from 'ava';
import {decodeDatagram, encodeMessage, type Message} from '../../../agent/peer/beacon-codec.js';
import {sanitizePeerJson, sanitizePeerText} from '../../../agent/peer/peer-text.js';
import {formatProgress, formatSwitchResult} from '../../../cli/format.js';
import {createFakePair} from '../../fakes/fake-pair.js';
import type {FakeTransport} from '../../fakes/fake-transport.js';
import {switchover} from '../../fakes/switch-driver.js';
import {testKeyring} from '../../fakes/test-config.js';

const sanitizes = test.macro((t, input: string, shown: string) => {
  t.is(sanitizePeerText(input), shown);
});

test('an ANSI escape shows as text', sanitizes, 'a\u001b[2Jb', 'a\\x1b[2Jb');
test('a newline and a carriage return show as escapes', sanitizes, 'one\r\ntwo', 'one\\r\\ntwo');
test('DEL, C1 controls and line separators show as escapes', sanitizes, 'x\u007f\u009b31m\u2028y', 'x\\x7f\\x9b31m\\u2028y');
test('ordinary text and accents pass unchanged', sanitizes, 'ip addr add 192.0.2.100/24 dev eth0 exited 2: Opération', 'ip addr add 192.0.2.100/24 dev eth0 exited 2: Opération');

test('peer text is cut to its cap with an ellipsis', (t) => {
  t.is(sanitizePeerText('x'.repeat(700)).length, 600);
  t.true(sanitizePeerText('x'.repeat(700)).endsWith('…'));
  t.is(sanitizePeerText('abcdef', 4), 'abc…');
});

test('every string of a peer result is escaped, keys included, numbers kept', (t) => {
  t.deepEqual(sanitizePeerJson({state: 'standby', reason: 'r\u001b[31m', 'k\n': [1, 'a\u0007'], n: 3, b: true, z: null}),
    {state: 'standby', reason: 'r\\x1b[31m', 'k\\n': [1, 'a\\x07'], n: 3, b: true, z: null});
});

// What a key holder (or a peer quoting hostile stderr) could send: a screen clear and a forged next line.
const EVIL_ERROR = 'disk on fire\u001b[2J\nFAKE (switch x) done: primary is free to upgrade';
const SHOWN_ERROR = 'disk on fire\\x1b[2J\\nFAKE (switch x) done: primary is free to upgrade';
const EVIL_REASON = 'operator says\u001b]0;owned\u0007\nFAKE ok';
const SHOWN_REASON = 'operator says\\x1b]0;owned\\x07\\nFAKE ok';
const HOOK = '/usr/local/bin/baton-notify';

/** Rewrites what `transport` sends, re-signed with the pair's key: a forged but validly signed datagram. */
function forge(transport: FakeTransport, change: (message: Message) => Message | undefined): void {
  const keyring = testKeyring();
  const send = transport.send.bind(transport);
  transport.send = async (datagram: Uint8Array): Promise<void> => {
    const decoded = decodeDatagram(datagram, keyring, 'web', Date.now());
    const changed = decoded.ok ? change(decoded.message) : undefined;
    return send(changed === undefined ? datagram : encodeMessage(changed, keyring.signing));
  };
}

test('control characters in a forged peer reply and finish reason reach no log line, hook argument or CLI text', async (t) => {
  const pair = createFakePair(t, {primary: {hookPath: HOOK}, backup: {hookPath: HOOK}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  // The primary's first apply on the backup is answered with the forged error; its finish request carries the
  // forged reason to the backup.
  let firstApply: string | undefined;
  forge(pair.primary.transport, (message) => {
    if (message.kind !== 'request') return undefined;
    if (message.request.op === 'apply') firstApply ??= message.request.id;
    if (message.request.op !== 'finish') return undefined;
    return {kind: 'request', request: {...message.request, params: {...message.request.params, reason: EVIL_REASON}}};
  });
  forge(pair.backup.transport, (message) => {
    if (message.kind !== 'reply' || message.reply.id !== firstApply) return undefined;
    return {kind: 'reply', reply: {...message.reply, ok: false, error: {code: 'STEP_FAILED', message: EVIL_ERROR}, result: undefined}};
  });

  const {result, progress} = await switchover(pair, pair.primary);
  await pair.clock.advance(2000);
  t.is(result.outcome, 'rolled-back');

  const cli = [...progress.map(formatProgress), formatSwitchResult(result)].join('\n');
  t.true(cli.includes(SHOWN_ERROR), cli);
  t.false(cli.includes('\u001b'));
  t.false(cli.includes('\nFAKE'));

  for (const [host, shown] of [[pair.primary, SHOWN_ERROR], [pair.backup, SHOWN_REASON]] as const) {
    t.true(host.logs.some((line) => line.includes(shown)), `${host.role} logs: ${host.logs.join('')}`);
    t.false(host.logs.some((line) => line.includes('\u001b') || line.includes('\u0007')));
    const hookReasons = host.runner.calls.filter((call) => call.file === HOOK).map((call) => call.args[2] ?? '');
    t.true(hookReasons.some((reason) => reason.includes(shown)), `${host.role} hook reasons: ${hookReasons.join(' / ')}`);
    t.false(hookReasons.some((reason) => /[\u0000-\u001f]/u.test(reason)));
  }
});
