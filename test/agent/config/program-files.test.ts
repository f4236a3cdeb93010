// Programs the config names (the state-change hook): present, a regular file, executable, at load.

import test, {type ExecutionContext} from 'ava';
import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {loadConfig} from '../../../agent/config/schema.js';
import {
  DESIGN_EXAMPLE, SECRET, problems, configErrorAsync, rejects, tempDir, writeFileWithMode, configWithSecret,
} from '../../fakes/config-fixtures.js';

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
