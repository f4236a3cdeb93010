// The long-lived gratuitous ARP sender against the real perl, in the root namespace but with interfaces that do not
// exist, so nothing is ever sent here: requests it refuses, the kernel's answer for a missing interface, and a
// helper that is missing, exits or hangs. That its packets move a client's neighbour entry is tested in network
// namespaces (test/integration/namespaces.test.ts).

import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {GarpSender} from '../../agent/adapters/garp-sender.js';
import {isBatonError} from '../../agent/errors.js';

async function script(t: ExecutionContext, body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-garp-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'helper');
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

test('requests that would change the command line, and addresses that are neither IPv4 nor IPv6 without a zone, are refused before anything is sent', async (t) => {
  const sender = new GarpSender();
  try {
    for (const [iface, address] of [['eth0 x', '192.0.2.100'], ['eth0\ngarp lo 192.0.2.1', '192.0.2.100'], ['', '192.0.2.100'],
      ['a/b', '192.0.2.100'], ['abcdefghijklmnop', '192.0.2.100'], ['eth0', '2001:db8::1%eth0'], ['eth0', '2001:db8::g'], ['eth0', '192.0.2.100 x'], ['eth0', '']] as const) {
      const error = await t.throwsAsync(sender.send(iface, address));
      t.regex(error?.message ?? '', /^not an announcement to send/, `${JSON.stringify(iface)} ${JSON.stringify(address)}`);
    }
  } finally {
    await sender.close();
  }
});

test('a missing interface is the kernel\'s "No such device", and the helper goes on answering', async (t) => {
  const sender = new GarpSender();
  try {
    for (const name of ['nosuch8', 'nosuch9']) {
      const error = await t.throwsAsync(sender.send(name, '192.0.2.100'));
      t.true(isBatonError(error, 'COMMAND_FAILED'));
      t.is(error?.message, `gratuitous ARP (garp ${name} 192.0.2.100) failed: ${name}: No such device`);
      t.is(isBatonError(error) ? error.details?.stderr : undefined, `${name}: No such device`);
    }
    t.is(sender.unusable, undefined);
  } finally {
    await sender.close();
  }
});

test('a helper program that cannot be started makes the sender unusable, with the reason, and nothing is retried', async (t) => {
  const sender = new GarpSender({command: ['/nonexistent/perl']});
  const error = await t.throwsAsync(sender.send('eth0', '192.0.2.100'));
  t.regex(error?.message ?? '', /^cannot run `the gratuitous ARP helper \(perl\)`: spawn \/nonexistent\/perl ENOENT/);
  t.regex(sender.unusable ?? '', /ENOENT/);
  const again = await t.throwsAsync(sender.send('eth0', '192.0.2.100'));
  t.is(again?.message, sender.unusable ?? 'unusable is set');
});

test('a helper that exits fails what was pending with its words; one that hangs is replaced after the timeout', async (t) => {
  const exits = new GarpSender({command: [await script(t, 'echo "perl: cannot open a packet socket" >&2; exit 3')]});
  const error = await t.throwsAsync(exits.send('eth0', '192.0.2.100'));
  t.regex(error?.message ?? '', /^`the gratuitous ARP helper \(perl\)` exited \(3\)/);
  t.is(exits.unusable, undefined, 'it could start: the next send tries again');

  const hangs = new GarpSender({command: [await script(t, 'exec sleep 30')], timeoutMs: 200});
  for (let attempt = 0; attempt < 2; attempt++) {
    const timeout = await t.throwsAsync(hangs.send('eth0', '192.0.2.100'));
    t.true(isBatonError(timeout, 'COMMAND_TIMEOUT'));
    t.is(timeout?.message, 'gratuitous ARP for 192.0.2.100 on eth0 was not sent within 200 ms; the helper is restarted');
  }
  await hangs.close();
});
