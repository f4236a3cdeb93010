// Programs the config names (the state-change hook): present, a regular file, executable, at load.

import test, {type ExecutionContext} from 'ava';
import {chmod, chown, mkdir, symlink} from 'node:fs/promises';
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

// ---- who can change the program (keepalived's enable_script_security) ----

const isRoot = process.geteuid?.() === 0;
// chown to another user needs root; as another user every file the test makes is that user's own.
const rootTest = isRoot ? test : test.skip;

const unsafe = (hook: string, at: string, why: string, fix: string) => `19 hooks.on_state_change: expected a ` +
  `program only root can change, got '${at}'${at === hook ? '' : ` on the way to '${hook}'`}, which ${why}: ` +
  `someone other than root could make the agent run their code; run \`${fix}\``;

test('loadConfig rejects a world-writable hook, naming the fix', async (t) => {
  const hook = await writeFileWithMode(join(await tempDir(t), 'notify'), '#!/bin/sh\n', 0o777);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [unsafe(hook, hook, 'is a world-writable file (mode 0777)', `chmod go-w ${hook}`)]));
});

test('loadConfig rejects a hook in a group-writable directory, naming the directory', async (t) => {
  const dir = join(await tempDir(t), 'hooks');
  await mkdir(dir);
  await chmod(dir, 0o775);
  const hook = await writeFileWithMode(join(dir, 'notify'), '#!/bin/sh\n', 0o755);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [unsafe(hook, dir, 'is a group-writable directory (mode 0775)', `chmod go-w ${dir}`)]));
});

rootTest('loadConfig rejects a hook owned by another user', async (t) => {
  const hook = await writeFileWithMode(join(await tempDir(t), 'notify'), '#!/bin/sh\n', 0o755);
  await chown(hook, 65534, 0);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [unsafe(hook, hook, 'is owned by uid 65534, not root', `chown root ${hook}`)]));
});

test('loadConfig judges a symbolic link where it stands: a safe target behind a link in a world-writable directory is refused', async (t) => {
  const dir = await tempDir(t);
  const target = await writeFileWithMode(join(dir, 'real-notify'), '#!/bin/sh\n', 0o755);
  const open = join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const hook = join(open, 'notify');
  await symlink(target, hook);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [unsafe(hook, open, 'is a world-writable directory (mode 0777)', `chmod go-w ${open}`)]));
});

test('loadConfig judges what a symbolic link leads to: a link in a safe directory to a program in an unsafe one is refused', async (t) => {
  const dir = await tempDir(t);
  const open = join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o757);
  const target = await writeFileWithMode(join(open, 'real-notify'), '#!/bin/sh\n', 0o755);
  const hook = join(dir, 'notify');
  await symlink('open/real-notify', hook);
  const file = await configWithHook(t, hook);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.not(target, hook);
  t.is(error.message, problems(file, [unsafe(hook, open, 'is a world-writable directory (mode 0757)', `chmod go-w ${open}`)]));
});

rootTest('loadConfig accepts root\'s program in a root-owned sticky world-writable directory, as /tmp is', async (t) => {
  const sticky = join(await tempDir(t), 'tmp');
  await mkdir(sticky);
  await chmod(sticky, 0o1777);
  const hook = await writeFileWithMode(join(sticky, 'notify'), '#!/bin/sh\n', 0o755);

  const config = await loadConfig(await configWithHook(t, hook));

  t.is(config.hooks.onStateChange, hook);
  t.deepEqual(config.scriptUser, {name: 'nobody', uid: 65534, gid: 65534});
});

test('a command health check in a world-writable directory is refused like a hook', async (t) => {
  const open = join(await tempDir(t), 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const check = await writeFileWithMode(join(open, 'check-db'), '#!/bin/sh\n', 0o755);
  const {file} = await configWithSecret(t, SECRET, 0o600, `health:\n  checks:\n    - command: {path: ${check}}\n`);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [`20 health.checks[0].command.path: expected a program only root can change, ` +
    `got '${open}' on the way to '${check}', which is a world-writable directory (mode 0777): someone other than ` +
    `root could make the agent run their code; run \`chmod go-w ${open}\``]));
});
