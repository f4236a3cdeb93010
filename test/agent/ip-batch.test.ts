// The long-lived `ip -batch` helper against the real iproute2, with commands that only read (link show): each
// command's success or failure, ip's own message, order under concurrency, and a helper that is missing, dies or
// hangs.

import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {IpBatch} from '../../agent/adapters/ip-batch.js';
import {isBatonError} from '../../agent/errors.js';

test('a command that works resolves; one that fails rejects with ip\'s own words, and the helper goes on', async (t) => {
  const batch = new IpBatch();
  try {
    await t.notThrowsAsync(batch.run(['link', 'show', 'dev', 'lo']));
    const error = await t.throwsAsync(batch.run(['link', 'show', 'dev', 'nosuch9']));
    t.true(isBatonError(error, 'COMMAND_FAILED'));
    t.regex(error?.message ?? '', /^`ip link show dev nosuch9` failed: Device "nosuch9" does not exist\.$/);
    t.regex(isBatonError(error) ? error.details?.stderr ?? '' : '', /Device "nosuch9" does not exist/);
    await t.notThrowsAsync(batch.run(['link', 'show', 'dev', 'lo']), 'a failure does not end the helper');
  } finally {
    await batch.close();
  }
});

test('commands sent at once each get their own answer, in order', async (t) => {
  const batch = new IpBatch();
  try {
    const names = ['lo', 'nosuch1', 'lo', 'nosuch2', 'lo'];
    const results = await Promise.allSettled(names.map((name) => batch.run(['link', 'show', 'dev', name])));
    t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    t.regex(String((results[3] as PromiseRejectedResult).reason), /nosuch2/);
  } finally {
    await batch.close();
  }
});

test('words that would change the command line are refused before anything is sent', async (t) => {
  const batch = new IpBatch();
  for (const word of ['lo\nlink set dev eth0 down', 'a b', '', '"x"', '#']) {
    await t.throwsAsync(batch.run(['link', 'show', 'dev', word]), {message: /^not a batch command/});
  }
  await batch.close();
});

test('a missing program, and a helper that hangs, are errors that say so; a hung helper is replaced', async (t) => {
  const missing = new IpBatch({program: '/nonexistent/ip'});
  const error = await t.throwsAsync(missing.run(['link', 'show', 'dev', 'lo']));
  t.regex(error?.message ?? '', /cannot run `\/nonexistent\/ip -batch`|exited/);

  const dir = await mkdtemp(join(tmpdir(), 'baton-batch-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  const hang = join(dir, 'hang');
  await writeFile(hang, '#!/bin/sh\nexec sleep 30\n');
  await chmod(hang, 0o755);
  const hung = new IpBatch({program: hang, timeoutMs: 200});
  const timeout = await t.throwsAsync(hung.run(['link', 'show', 'dev', 'lo']));
  t.true(isBatonError(timeout, 'COMMAND_TIMEOUT'));
  t.regex(timeout?.message ?? '', /did not finish within 200 ms; the helper is restarted/);
  await hung.close();
});
