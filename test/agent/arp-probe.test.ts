// The long-lived duplicate-address prober against the real perl, in the root namespace but only on interfaces that do
// not exist or take no ARP (lo), so nothing is ever sent here: requests it refuses, arping's refusals in arping's
// words, and a helper that is missing, exits or hangs. Its answers on a real bridge, free and taken, and its frame
// against arping -D's, are tested in network namespaces (test/integration/namespaces.test.ts).

import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {ArpProber, MAX_LISTEN_MS} from '../../agent/adapters/arp-probe.js';
import {isBatonError} from '../../agent/errors.js';

async function script(t: ExecutionContext, body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-probe-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'helper');
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

test('requests that would change the command line, addresses that are neither IPv4 nor IPv6 without a zone, and odd listening times are refused before anything is sent', async (t) => {
  const prober = new ArpProber();
  try {
    for (const [iface, address, listenMs] of [['eth0 x', '192.0.2.100', 150], ['eth0\nprobe lo 192.0.2.1 1', '192.0.2.100', 150],
      ['', '192.0.2.100', 150], ['a/b', '192.0.2.100', 150], ['abcdefghijklmnop', '192.0.2.100', 150], ['eth0', '2001:db8::1%eth0', 150], ['eth0', 'fe80::1 x', 150],
      ['eth0', '192.0.2.100 x', 150], ['eth0', '', 150], ['eth0', '192.0.2.100', 0], ['eth0', '192.0.2.100', 1.5],
      ['eth0', '192.0.2.100', MAX_LISTEN_MS + 1]] as const) {
      const error = await t.throwsAsync(prober.probe(iface, address, listenMs));
      t.regex(error?.message ?? '', /^not a duplicate-address probe to make: /, `${JSON.stringify(iface)} ${JSON.stringify(address)} ${listenMs}`);
    }
  } finally {
    await prober.close();
  }
});

test('a missing interface is the kernel\'s "No such device", one without ARP is refused as arping refuses it, and the helper goes on answering', async (t) => {
  const prober = new ArpProber();
  try {
    for (const name of ['nosuch8', 'nosuch9']) {
      const error = await t.throwsAsync(prober.probe(name, '192.0.2.100', 150));
      t.true(isBatonError(error, 'COMMAND_FAILED'));
      t.is(error?.message, `duplicate-address probe (probe ${name} 192.0.2.100 150) failed: ${name}: No such device`);
      t.is(isBatonError(error) ? error.details?.stderr : undefined, `${name}: No such device`);
    }
    // arping -D -I lo exits 0 without sending ("Interface "lo" is not ARPable"): never an answer of "free".
    const loopback = await t.throwsAsync(prober.probe('lo', '192.0.2.100', 150));
    t.is(isBatonError(loopback) ? loopback.details?.stderr : undefined, 'Interface "lo" is not ARPable');
    t.is(prober.unusable, undefined);
  } finally {
    await prober.close();
  }
});

test('a helper program that cannot be started makes the prober unusable, with the reason, and nothing is retried', async (t) => {
  const prober = new ArpProber({command: ['/nonexistent/perl']});
  const error = await t.throwsAsync(prober.probe('eth0', '192.0.2.100', 150));
  t.regex(error?.message ?? '', /^cannot run `the duplicate-address probe helper \(perl\)`: spawn \/nonexistent\/perl ENOENT/);
  t.regex(prober.unusable ?? '', /ENOENT/);
  const again = await t.throwsAsync(prober.probe('eth0', '192.0.2.100', 150));
  t.is(again?.message, prober.unusable ?? 'unusable is set');
});

test('a helper that exits fails the probe with its words; one that hangs is replaced after the listening time and the margin', async (t) => {
  const exits = new ArpProber({command: [await script(t, 'echo "perl: cannot open a packet socket" >&2; exit 3')]});
  const error = await t.throwsAsync(exits.probe('eth0', '192.0.2.100', 150));
  t.regex(error?.message ?? '', /^`the duplicate-address probe helper \(perl\)` exited \(3\)/);
  t.is(exits.unusable, undefined, 'it could start: the next probe tries again');

  const hangs = new ArpProber({command: [await script(t, 'exec sleep 30')], stuckAfterMs: 100});
  for (let attempt = 0; attempt < 2; attempt++) {
    const timeout = await t.throwsAsync(hangs.probe('eth0', '192.0.2.100', 150));
    t.true(isBatonError(timeout, 'COMMAND_TIMEOUT'));
    t.is(timeout?.message, 'the duplicate-address probe for 192.0.2.100 on eth0 did not answer within 250 ms; the helper is restarted');
  }
  await hangs.close();
});

test('answers that are neither free, taken with a MAC, nor an error are failures, never "free"', async (t) => {
  const prober = new ArpProber({command: [await script(t, 'n=0; while read -r line; do n=$((n + 1)); if [ $n = 1 ]; then echo "taken 02:00"; else echo "maybe"; fi; done')]});
  t.teardown(() => prober.close());
  for (const expected of ['taken 02:00', 'maybe']) {
    const error = await t.throwsAsync(prober.probe('eth0', '192.0.2.100', 150));
    t.is(isBatonError(error) ? error.details?.stderr : undefined, expected);
  }
});

test('each family has its own helper, so a dual-stack service\'s two probes run side by side, not one behind the other', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-probe-log-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  const log = join(dir, 'requests');
  // Each helper process writes its PID beside every request it gets, then answers "free".
  const prober = new ArpProber({command: [await script(t, `while read -r line; do echo "$$ $line" >> ${log}; echo free; done`)]});
  t.teardown(() => prober.close());
  t.deepEqual(await Promise.all([prober.probe('eth0', '192.0.2.100', 150), prober.probe('eth0', '2001:db8::100', 150), prober.probe('eth0', '192.0.2.101', 150)]),
    [{inUse: false}, {inUse: false}, {inUse: false}]);
  const lines = (await readFile(log, 'utf8')).trim().split('\n').map((line) => line.split(' '));
  const v4 = lines.filter((words) => words[1] === 'probe').map((words) => words[0]);
  const v6 = lines.filter((words) => words[1] === 'probe6').map((words) => words[0]);
  t.is(new Set(v4).size, 1, 'the IPv4 probes go to one helper');
  t.is(v6.length, 1);
  t.not(v6[0], v4[0], 'the IPv6 probe goes to another');
});
