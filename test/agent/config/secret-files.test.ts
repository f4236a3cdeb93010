// Secret files: key ids, readable, long enough, private, every accepted secret checked like the signing one.

import test from 'ava';
import {mkdir, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {loadConfig, parseConfig} from '../../../agent/config/schema.js';
import {keyIdOf} from '../../../agent/config/secret-files.js';
import {
  DESIGN_EXAMPLE, MINIMAL, SECRET, secrets, PROGRAMS, edit, problems, configError, configErrorAsync, rejects,
  tempDir, writeFileWithMode, configWithSecret,
} from '../../fakes/config-fixtures.js';

test('keyIdOf is the first 4 bytes of SHA-256 as lowercase hex', (t) => {
  // sha256sum of the empty input and of 32 zero bytes
  t.is(keyIdOf(new Uint8Array(0)), 'e3b0c442');
  t.is(keyIdOf(new Uint8Array(32)), '66687aad');
});

test('accept_secret_files that is not a list is rejected', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files: /etc/baton/old-secret\n`,
  ['18 accept_secret_files: expected a list of absolute paths, or of {path, until}, got \'/etc/baton/old-secret\'']);

test('a relative path in accept_secret_files is rejected at its own line', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files:\n  - old-secret\n`,
  ['19 accept_secret_files[0]: expected an absolute path, got \'old-secret\'']);

test('accept_secret_files repeating secret_file is rejected', rejects,
  `${DESIGN_EXAMPLE}accept_secret_files: [/etc/baton/secret]\n`,
  ['18 accept_secret_files[0]: expected a file not already listed in secret_file or accept_secret_files, ' +
    'got \'/etc/baton/secret\'']);

// ---- secret files ----

test('a missing default secret file says it is the default and how to create one', (t) => {
  const error = configError(t, () => parseConfig(MINIMAL, 'baton.yaml', secrets({}), PROGRAMS));

  t.is(error.message, problems('baton.yaml', [
    '1 secret_file: expected a readable secret file, got \'/etc/baton/secret\' (the default): no such file, ENOENT; ' +
      'create it on one host with `head -c 32 /dev/urandom > /etc/baton/secret && chmod 600 /etc/baton/secret` ' +
      'and copy it to the peer',
  ]));
});


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

test('an accepted secret file may carry an end (a UTC date or timestamp) beside plain paths', async (t) => {
  const dir = await tempDir(t);
  const old = await writeFileWithMode(join(dir, 'old'), new Uint8Array(32).fill(1), 0o600);
  const older = await writeFileWithMode(join(dir, 'older'), new Uint8Array(40).fill(2), 0o600);
  const oldest = await writeFileWithMode(join(dir, 'oldest'), new Uint8Array(40).fill(3), 0o600);
  const {file, secretFile} = await configWithSecret(t, SECRET, 0o600,
    `accept_secret_files:\n  - {path: ${old}, until: 2027-01-31}\n  - ${older}\n  - path: ${oldest}\n    until: 2020-02-29T12:30:00Z\n`);

  const config = await loadConfig(file);

  t.deepEqual(config.acceptSecretFiles, [old, older, oldest]);
  t.deepEqual(config.keyring.accepted.map((key) => [key.file, key.until]), [
    [secretFile, undefined],
    [old, Date.UTC(2027, 0, 31)],
    [older, undefined],
    [oldest, Date.UTC(2020, 1, 29, 12, 30)],
  ], 'an end already past is no error: the key is simply refused');
});

test('an accepted secret file\'s end must be a real UTC date, and the path is still required', async (t) => {
  const dir = await tempDir(t);
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name, i) => writeFileWithMode(join(dir, name), new Uint8Array(32).fill(i), 0o600)));
  const {file} = await configWithSecret(t, SECRET, 0o600,
    `accept_secret_files:\n  - {path: ${a}, until: 31/01/2027}\n  - {path: ${b}, until: 2027-02-30}\n  - {until: 2027-01-31}\n  - {path: ${c}, until: 2027-01-31, after: 1}\n`);

  const error = await configErrorAsync(t, () => loadConfig(file));

  t.is(error.message, problems(file, [
    "19 accept_secret_files[0].until: expected a UTC date like 2027-01-31 or 2027-01-31T12:00:00Z, got '31/01/2027'",
    "20 accept_secret_files[1].until: expected a UTC date like 2027-01-31 or 2027-01-31T12:00:00Z, got '2027-02-30' (no such date or time)",
    '21 accept_secret_files[2].path: expected an absolute path, got nothing (key missing)',
    "22 accept_secret_files[3].after: unknown key 'after'; expected one of path, until",
  ]));
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
