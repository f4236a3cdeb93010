// `baton install` and `baton uninstall`: the real CLI into temporary roots (files, modes, the installed copy running
// on its own Node, refusals that change nothing), systemctl through a recording runner, systemd-analyze verify.

import {createHash} from 'node:crypto';
import {existsSync} from 'node:fs';
import {
  cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile,
} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {delimiter, dirname, join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext, type Implementation} from 'ava';
import {execa} from 'execa';
import {VERSION} from '../../agent/version.js';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {keyIdOf} from '../../agent/config/secret-files.js';
import {isBatonError} from '../../agent/errors.js';
import type {CommandOptions, CommandRunner} from '../../agent/ports.js';
import * as install from '../../cli/commands/install.js';
import * as uninstall from '../../cli/commands/uninstall.js';
import {createSystemDeps, type ServiceIpHere} from '../../cli/install/system.js';
import {renderWrapper, type ConfigAnswers} from '../../cli/install/texts.js';
import type {Output} from '../../cli/output.js';
import type {FileAccess} from '../../agent/config/unit-file-access.js';
import {FakeHostProbe} from '../fakes/fake-host-probe.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
// Copying the 130 MB program takes about a second on a quiet machine; two minutes means a hung copy or a wedged
// child, not a busy machine (the suite's install tests timed out at one minute at load 25 on 2 cores).
const CLI_TIMEOUT_MS = 120_000;

const PRIMARY = ['--role', 'primary', '--listen', '192.0.2.11', '--peer', '192.0.2.12', '--service-ip',
  '192.0.2.100/24', '--interface', 'eth0', '--access-log', '/var/log/nginx/access.log'];
const BACKUP = ['--role', 'backup', '--listen', '192.0.2.12', '--peer', '192.0.2.11', '--service-ip',
  '192.0.2.100/24', '--interface', 'eth0', '--access-log', '/var/log/nginx/access.log'];
const ANSWERS: ConfigAnswers = {
  node: 'primary', pair: 'web', listen: '192.0.2.11', peer: '192.0.2.12', serviceIps: ['192.0.2.100/24'],
  interface: 'eth0', accessLog: undefined,
};

function baton(...args: string[]) {
  return execa(process.execPath, [CLI, ...args], {reject: false, timeout: CLI_TIMEOUT_MS});
}

async function tempRoot(t: {teardown(fn: () => Promise<void>): void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-install-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

async function installInto(t: ExecutionContext, root: string, ...args: string[]) {
  const result = await baton('install', '--root', root, ...args);
  t.is(result.exitCode, 0, result.stderr);
  return result;
}

// One primary install shared by the tests that only look at it: each install copies the whole program.
let sharedRoot: Promise<string> | undefined;
let sharedDir: string | undefined;
let sharedOutput = '';
function installedPrimary(t: ExecutionContext): Promise<string> {
  sharedRoot ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'baton-install-shared-'));
    sharedDir = root;
    const result = await baton('install', '--root', root, ...PRIMARY);
    if (result.exitCode !== 0) throw new Error(`install failed: ${result.stderr}`);
    sharedOutput = result.stdout;
    return root;
  })();
  return sharedRoot;
}
test.after.always(async () => {
  if (sharedDir !== undefined) await rm(sharedDir, {recursive: true, force: true});
});

async function modeOf(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Every entry under `root` (and root itself): type, mode, size, mtime, content hash or link target. */
async function snapshotTree(root: string): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  async function visit(path: string): Promise<void> {
    const info = await lstat(path);
    let what = `${info.mode.toString(8)} ${info.size} ${info.mtimeMs}`;
    if (info.isSymbolicLink()) {
      what += ` -> ${await readlink(path)}`;
    } else if (info.isFile()) {
      what += ` sha256 ${createHash('sha256').update(await readFile(path)).digest('hex')}`;
    } else if (info.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
    snapshot[relative(root, path) || '.'] = what;
  }
  await visit(root);
  return snapshot;
}

function captureOutput(): {out: Output; text: () => string} {
  let text = '';
  return {out: {stdout: (chunk) => { text += chunk; }, stderr: (chunk) => { text += chunk; }}, text: () => text};
}

// `systemctl --version` on Debian 12.
const DEBIAN_12_SYSTEMD = 'systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS ' +
  '+OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT ' +
  '+QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified\n';

/** Records systemctl and answers like a running systemd; runs everything else (the installed Node) for real. */
class SystemctlRecorder implements CommandRunner {
  readonly systemctl: string[] = [];
  readonly #real = createExecaRunner();

  async run(file: string, args: readonly string[], options?: CommandOptions): Promise<string> {
    if (file !== 'systemctl') return this.#real.run(file, args, options);
    this.systemctl.push(args.join(' '));
    if (args[0] === '--version') return DEBIAN_12_SYSTEMD;
    return args[0] === 'is-active' ? 'active\n' : '';
  }
}

// ---- the installed tree ----

test('install --root puts the program, config, secret, unit and wrapper in place with their modes', async (t) => {
  const root = await installedPrimary(t);
  t.is(await modeOf(join(root, 'opt/baton')), '0755');
  t.is(await modeOf(join(root, 'etc/baton')), '0700');
  t.is(await modeOf(join(root, 'etc/baton/baton.yaml')), '0600');
  t.is(await modeOf(join(root, 'etc/baton/secret')), '0600');
  t.is(await modeOf(join(root, 'etc/systemd/system/baton-agent.service')), '0644');
  t.is(await modeOf(join(root, 'usr/local/bin/baton')), '0755');
  const secret = await readFile(join(root, 'etc/baton/secret'));
  t.regex(secret.toString('latin1'), /^[0-9a-f]{64}$/, '32 random bytes as 64 hex characters, no newline');
  for (const path of ['dist/agent/main.js', 'dist/cli/main.js', 'package.json', 'package-lock.json',
    'systemd/baton-agent.service', 'docs/configuration.md', 'node_modules/yaml/package.json',
    'node_modules/execa/package.json', 'node_modules/node/bin/node']) {
    t.true(existsSync(join(root, 'opt/baton', path)), path);
  }
  for (const path of ['dist/test', 'node_modules/ava', 'node_modules/typescript', 'node_modules/@types/node',
    'node_modules/.bin/tsc', 'node_modules/.bin/ava']) {
    t.false(existsSync(join(root, 'opt/baton', path)), `${path} is dev-only`);
  }
  // Each file with its observed mode, and the key id to compare with the other host.
  t.regex(sharedOutput, new RegExp(`0600  ${root}/etc/baton/secret +generated: .*key id ${keyIdOf(secret)}`));
  t.regex(sharedOutput, new RegExp(`0700  ${root}/etc/baton +directory`));
  t.regex(sharedOutput, /systemd: not touched, .* is not the running system\. On the target system, run:\n {2}systemctl daemon-reload\n {2}systemctl enable --now baton-agent\n/);
  t.regex(sharedOutput, /scp \/etc\/baton\/secret root@192\.0\.2\.12:\/root\/baton-secret/);
  t.regex(sharedOutput, /install --role backup --pair web --listen 192\.0\.2\.12 --peer 192\.0\.2\.11 .*--secret-from \/root\/baton-secret/);
});

const DROP_IN = 'etc/systemd/system/baton-agent.service.d/50-baton-config.conf';

/** The drop-in's settings, without its comments. */
async function dropInDirectives(root: string): Promise<string[]> {
  return (await readFile(join(root, DROP_IN), 'utf8')).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

test('install writes the unit\'s address and port allow-lists for the config into a drop-in', async (t) => {
  const root = await installedPrimary(t);
  t.is(await modeOf(join(root, DROP_IN)), '0644');
  t.deepEqual(await dropInDirectives(root), [
    '[Service]',
    'IPAddressDeny=any',
    'IPAddressAllow=localhost 192.0.2.11 192.0.2.12',
    'SocketBindDeny=any',
    'SocketBindAllow=udp:7411',
    'CapabilityBoundingSet=~CAP_SETUID CAP_SETGID',
    'SystemCallFilter=~capset setuid setgid setresuid setresgid setgroups',
    'Environment=BATON_IP_ALLOW=localhost,192.0.2.11,192.0.2.12 BATON_BIND_ALLOW=udp:7411',
  ]);
  t.regex(sharedOutput, new RegExp(`0644  ${root}/${DROP_IN} +its sandbox for this config: IP only with localhost ` +
    '192\\.0\\.2\\.11 192\\.0\\.2\\.12; binds udp:7411 only; no CAP_SETUID/CAP_SETGID and no privileged system call ' +
    '\\(nothing runs as script_user\\)'));
});

test('install --dry-run checks everything, prints the drop-in, and writes nothing', async (t) => {
  const root = await tempRoot(t);
  const result = await baton('install', '--root', root, ...PRIMARY, '--dry-run');
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual(await readdir(root), [], 'nothing written');
  t.regex(result.stdout, /^baton install --dry-run: the options, the config and the secret are valid; nothing was changed\. It would, on /);
  t.regex(result.stdout, new RegExp(`${root}/${DROP_IN} +write the sandbox for this config: IP only with localhost`));
  t.true(result.stdout.includes(`\n${root}/${DROP_IN}:\n  # /etc/systemd/system/baton-agent.service.d/50-baton-config.conf: ` +
    'written by `baton install` from /etc/baton/baton.yaml;'));
  for (const line of ['IPAddressDeny=any', 'IPAddressAllow=localhost 192.0.2.11 192.0.2.12', 'SocketBindAllow=udp:7411']) {
    t.true(result.stdout.includes(`\n  ${line}\n`), line);
  }
  // Bad input is refused as without --dry-run.
  const refused = await baton('install', '--root', root, ...PRIMARY.map((arg) => arg === 'eth0' ? 'eth0;reboot' : arg), '--dry-run');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /service\.interface \(--interface\): expected a Linux interface name/);
  t.deepEqual(await readdir(root), []);
});

test('install --dry-run of a dual-stack service names both addresses and allows the same as for one', async (t) => {
  const root = await tempRoot(t);
  const result = await baton('install', '--root', root, ...PRIMARY, '--service-ip', '2001:db8::100/64', '--dry-run');
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual(await readdir(root), [], 'nothing written');
  t.regex(result.stdout, /write the config: primary of pair web, beacons .*, service IP 192\.0\.2\.100\/24 and 2001:db8::100\/64 on eth0; valid/);
  for (const line of ['IPAddressAllow=localhost 192.0.2.11 192.0.2.12', 'Environment=BATON_IP_ALLOW=localhost,192.0.2.11,192.0.2.12 BATON_BIND_ALLOW=udp:7411']) {
    t.true(result.stdout.split('\n').includes(`  ${line}`), line);
  }
  const refused = await baton('install', '--root', root, ...PRIMARY, '--service-ip', '192.0.2.101/24', '--dry-run');
  t.is(refused.exitCode, 64);
  t.regex(refused.stderr, /--service-ip: 192\.0\.2\.100\/24 and 192\.0\.2\.101\/24 are both IPv4 addresses/);
});

test('the installed copy runs on its own Node 24, without the system\'s node or this checkout', async (t) => {
  const root = await installedPrimary(t);
  const node = join(root, 'opt/baton/node_modules/.bin/node');
  t.true((await realpath(node)).startsWith(await realpath(root)), '.bin/node points inside the copy');
  // No PATH (no system node to fall back on), started from / (no checkout's node_modules above it).
  const env = {PATH: '/nonexistent'};
  const version = await execa(node, ['--version'], {cwd: '/', env, extendEnv: false, reject: false});
  t.regex(version.stdout, /^v24\./);
  const help = await execa(node, [join(root, 'opt/baton/dist/agent/main.js'), '--help'],
    {cwd: '/', env, extendEnv: false, reject: false});
  t.is(help.exitCode, 0, help.stderr);
  t.regex(help.stdout, /Usage: baton-agent/);
});

test('the baton wrapper execs the CLI with the bundled Node', async (t) => {
  const root = await installedPrimary(t);
  const wrapper = await readFile(join(root, 'usr/local/bin/baton'), 'utf8');
  t.is(wrapper, renderWrapper('/opt/baton'));
  t.regex(wrapper, /^#!\/bin\/sh\n/);
  t.true(wrapper.includes('\nexec /opt/baton/node_modules/.bin/node /opt/baton/dist/cli/main.js "$@"\n'));
  // The wrapper names /opt/baton of the target system; run the same script with that one path moved into the root.
  const relocated = join(root, 'baton-relocated');
  await writeFile(relocated, wrapper.replaceAll('/opt/baton', join(root, 'opt/baton')), {mode: 0o755});
  t.teardown(() => rm(relocated, {force: true}));
  const result = await execa('/bin/sh', [relocated, '--version'], {cwd: '/', env: {PATH: '/nonexistent'},
    extendEnv: false, reject: false});
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `baton ${VERSION}`);
});

test('the installed config is valid: check-config passes once its secret_file points into the root', async (t) => {
  const root = await installedPrimary(t);
  const config = await readFile(join(root, 'etc/baton/baton.yaml'), 'utf8');
  for (const line of ['pair: web', 'node: primary', 'listen:\n  address: 192.0.2.11', 'peer:\n  address: 192.0.2.12',
    'secret_file: /etc/baton/secret', 'service:\n  address: 192.0.2.100/24\n  interface: eth0',
    'confirm:\n  access_log: /var/log/nginx/access.log', 'on_stop: keep', 'state_dir: /var/lib/baton',
    'control_socket: /run/baton/control.sock']) {
    t.true(config.includes(`\n${line}\n`), line);
  }
  t.regex(config, /^# The pair id: the same on both hosts/m, 'keys are explained by comments');
  // The file says /etc/baton/secret, as the target system will have it; here that file is under the root.
  const copy = join(await tempRoot(t), 'baton.yaml');
  await writeFile(copy, config.replace('secret_file: /etc/baton/secret', `secret_file: ${root}/etc/baton/secret`));
  const keyId = keyIdOf(await readFile(join(root, 'etc/baton/secret')));
  // This checkout's CLI, and the installed one on its own Node.
  for (const [node, cli] of [[process.execPath, CLI],
    [join(root, 'opt/baton/node_modules/.bin/node'), join(root, 'opt/baton/dist/cli/main.js')]] as const) {
    // The file alone: the config is for another machine (this one has no 192.0.2.11).
    const result = await execa(node, [cli, 'check-config', '--file-only', copy], {reject: false});
    t.is(result.exitCode, 0, result.stderr);
    t.regex(result.stdout, /valid\n {2}primary of pair web; beacons 192\.0\.2\.11:7411 -> 192\.0\.2\.12:7411/);
    t.true(result.stdout.includes(`key id ${keyId}`));
  }
});

// ---- refusals, --force, --keep-config, the second host ----

test('a second install without --force refuses and changes nothing', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const before = await snapshotTree(root);
  const result = await baton('install', '--root', root, ...PRIMARY);
  t.is(result.exitCode, 1);
  t.is(result.stderr, `baton: ${root}/etc/baton/baton.yaml exists; nothing was changed. To upgrade the program and ` +
    'keep this config: `baton install --keep-config`. To write the config anew from these options (the old one is ' +
    `kept as ${root}/etc/baton/baton.yaml.bak): add --force`);
  t.deepEqual(await snapshotTree(root), before);
});

test('--force rewrites the config, keeps the old one as .bak, and keeps the secret', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const secret = await readFile(join(root, 'etc/baton/secret'));
  const edited = `${await readFile(join(root, 'etc/baton/baton.yaml'), 'utf8')}# hand edit\n`;
  await writeFile(join(root, 'etc/baton/baton.yaml'), edited);
  const result = await installInto(t, root, ...PRIMARY, '--pair', 'shop', '--force');
  t.regex(await readFile(join(root, 'etc/baton/baton.yaml'), 'utf8'), /\npair: shop\n/);
  t.is(await readFile(join(root, 'etc/baton/baton.yaml.bak'), 'utf8'), edited);
  t.is(await modeOf(join(root, 'etc/baton/baton.yaml.bak')), '0600');
  t.deepEqual(await readFile(join(root, 'etc/baton/secret')), secret);
  t.regex(result.stdout, /secret +kept: the one already installed; key id/);
  t.regex(result.stdout, /baton\.yaml +written anew \(--force\)/);
});

test('--keep-config replaces the program and keeps the config and the secret byte for byte', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  // A hand edit that moves the peer and the beacon port: the allow-lists must follow the config kept.
  const installed = await readFile(join(root, 'etc/baton/baton.yaml'), 'utf8');
  const edited = installed.replace('listen:\n  address: 192.0.2.11\n', 'listen:\n  address: 192.0.2.11\n  port: 7500\n')
    .replace('peer:\n  address: 192.0.2.12\n', 'peer:\n  address: 203.0.113.12\n');
  t.not(edited, installed);
  await writeFile(join(root, 'etc/baton/baton.yaml'), `${edited}# hand edit\n`);
  const before = await snapshotTree(root);
  const shown = await baton('install', '--root', root, '--keep-config', '--dry-run');
  t.is(shown.exitCode, 0, shown.stderr);
  t.true(shown.stdout.includes('\n  IPAddressAllow=localhost 192.0.2.11 203.0.113.12\n'), shown.stdout);
  t.deepEqual(await snapshotTree(root), before, '--dry-run changed nothing');
  const config = await readFile(join(root, 'etc/baton/baton.yaml'));
  const secret = await readFile(join(root, 'etc/baton/secret'));
  await writeFile(join(root, 'opt/baton/stale-file'), 'from the old version');
  const result = await installInto(t, root, '--keep-config');
  t.false(existsSync(join(root, 'opt/baton/stale-file')), 'the program directory is the new copy');
  t.deepEqual(await readFile(join(root, 'etc/baton/baton.yaml')), config);
  t.deepEqual(await readFile(join(root, 'etc/baton/secret')), secret);
  t.regex(result.stdout, /kept as it was \(--keep-config\)/);
  t.regex(result.stdout, /keeps the previous program until `systemctl restart baton-agent` \(on_stop: keep/);
  t.deepEqual((await dropInDirectives(root)).filter((line) => /^(IPAddressAllow|SocketBindAllow)=/.test(line)),
    ['IPAddressAllow=localhost 192.0.2.11 203.0.113.12', 'SocketBindAllow=udp:7500']);
  t.deepEqual((await readdir(join(root, 'opt'))).sort(), ['baton'], 'no staged or old copy left behind');
});

test('an etcd host installs from its own file with --keep-config: no secret, the members in the allow-list, no port', async (t) => {
  const root = await tempRoot(t);
  await mkdir(join(root, 'etc/baton'), {recursive: true});
  await writeFile(join(root, 'etc/baton/baton.yaml'), 'pair: web\nservice: {address: 192.0.2.100/24, interface: eth0}\n' +
    'coordination:\n  mode: etcd\n  endpoints: [http://192.0.2.31:2379, http://192.0.2.32:2379, http://192.0.2.33:2379]\n' +
    '  host: web-b\n  hosts: [web-a, web-b, web-c]\n');
  const result = await installInto(t, root, '--keep-config');
  t.regex(result.stdout, /kept as it was \(--keep-config\): host web-b of web-a, web-b, web-c in etcd mode, service web \(192\.0\.2\.100\/24 on eth0\); valid/);
  t.false(existsSync(join(root, 'etc/baton/secret')), 'an etcd host has no secret, and none is written');
  t.false(result.stdout.includes('secret'), result.stdout);
  t.regex(result.stdout, /Next: on web-a and web-c, write the same file with coordination\.host changed/);
  t.deepEqual((await dropInDirectives(root)).filter((line) => /^(IPAddressAllow|SocketBindAllow|SocketBindDeny)=/.test(line)),
    ['IPAddressAllow=localhost 192.0.2.31 192.0.2.32 192.0.2.33', 'SocketBindDeny=any'], 'it binds no port at all');
});

test('the backup installs with a copy of the primary\'s secret', async (t) => {
  const primary = await tempRoot(t);
  const backup = await tempRoot(t);
  await installInto(t, primary, ...PRIMARY);
  const secret = await readFile(join(primary, 'etc/baton/secret'));
  // As after `scp`: a copy with whatever mode the transfer gave it.
  const copy = join(backup, 'baton-secret');
  await writeFile(copy, secret, {mode: 0o644});
  const result = await installInto(t, backup, ...BACKUP, '--secret-from', copy);
  t.deepEqual(await readFile(join(backup, 'etc/baton/secret')), secret);
  t.is(await modeOf(join(backup, 'etc/baton/secret')), '0600');
  t.regex(result.stdout, new RegExp(`secret +copied from ${copy}; key id ${keyIdOf(secret)}`));
  const config = await readFile(join(backup, 'etc/baton/baton.yaml'), 'utf8');
  t.true(config.includes('\nnode: backup\n'));
  t.true(config.includes('\nlisten:\n  address: 192.0.2.12\n'));
  t.true(config.includes('\npeer:\n  address: 192.0.2.11\n'));
  t.regex(result.stdout, /Next: Once both agents run, `baton status`/);
});

test('--secret-from a short file refuses and installs nothing', async (t) => {
  const root = await tempRoot(t);
  const short = join(await tempRoot(t), 'short');
  await writeFile(short, 'too short');
  const before = await snapshotTree(root);
  const result = await baton('install', '--root', root, ...BACKUP, '--secret-from', short);
  t.is(result.exitCode, 1);
  t.is(result.stderr, `baton: --secret-from ${short}: expected a secret of at least 32 bytes, got 9; pass a copy of ` +
    'the other host\'s /etc/baton/secret, or leave --secret-from out to generate one here');
  t.deepEqual(await snapshotTree(root), before);
});

test('--secret-from that differs from the installed secret refuses: a secret is never replaced', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const other = join(await tempRoot(t), 'other');
  await writeFile(other, 'x'.repeat(40));
  const before = await snapshotTree(root);
  const result = await baton('install', '--root', root, ...PRIMARY, '--force', '--secret-from', other);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /secret already holds a secret \(key id [0-9a-f]{8}\) that differs from --secret-from .* an install never replaces a secret/);
  t.deepEqual(await snapshotTree(root), before);
});

test('options that make an invalid config install nothing and name the option to fix', async (t) => {
  const root = await tempRoot(t);
  const result = await baton('install', '--root', root, '--role', 'primary', '--listen', '192.0.2.11', '--peer',
    '192.0.2.12', '--service-ip', '192.0.2.0/24', '--interface', 'eth0;reboot');
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^baton: the options do not make a valid configuration, so nothing was installed/);
  t.regex(result.stderr, /service\.address \(--service-ip\): expected .* got '192\.0\.2\.0\/24' \(192\.0\.2\.0 is the network address/);
  t.regex(result.stderr, /service\.interface \(--interface\): expected a Linux interface name/);
  t.deepEqual(await readdir(root), []);
});

// ---- uninstall ----

test('uninstall removes the unit, the wrapper and the program, and keeps config and state', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  // What the agent and `systemctl enable` would have left on the target.
  await mkdir(join(root, 'var/lib/baton'), {recursive: true});
  await writeFile(join(root, 'var/lib/baton/state.json'), '{"epoch":3}');
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'));
  await symlink('/etc/systemd/system/baton-agent.service',
    join(root, 'etc/systemd/system/multi-user.target.wants/baton-agent.service'));
  // The operator's own drop-in (`systemctl edit`) stays, and with it the directory.
  await writeFile(join(root, 'etc/systemd/system/baton-agent.service.d/override.conf'), '[Service]\nIPAddressAllow=192.0.2.25\n');
  const config = await readFile(join(root, 'etc/baton/baton.yaml'));
  const secret = await readFile(join(root, 'etc/baton/secret'));

  // `baton uninstall` as the wrapper runs it: the installed copy removes itself.
  const result = await execa(join(root, 'opt/baton/node_modules/.bin/node'),
    [join(root, 'opt/baton/dist/cli/main.js'), 'uninstall', '--root', root], {reject: false, timeout: CLI_TIMEOUT_MS});
  t.is(result.exitCode, 0, result.stderr);
  for (const path of ['opt/baton', 'usr/local/bin/baton', 'etc/systemd/system/baton-agent.service',
    'etc/systemd/system/multi-user.target.wants/baton-agent.service', DROP_IN]) {
    t.false(existsSync(join(root, path)), path);
  }
  t.deepEqual(await readdir(join(root, 'etc/systemd/system/baton-agent.service.d')), ['override.conf']);
  t.regex(result.stdout, /removed .*50-baton-config\.conf\n {2}kept .*baton-agent\.service\.d: it holds override\.conf, not written by `baton install`\n/);
  t.deepEqual(await readFile(join(root, 'etc/baton/baton.yaml')), config);
  t.deepEqual(await readFile(join(root, 'etc/baton/secret')), secret);
  t.is(await readFile(join(root, 'var/lib/baton/state.json'), 'utf8'), '{"epoch":3}');
  t.regex(result.stdout, /removed .*\/opt\/baton \(\d+\.\d MB\)/);
  t.regex(result.stdout, /kept .*\/etc\/baton \(config and secret/);
  t.regex(result.stdout, /systemd: not touched, .*\n {2}systemctl stop baton-agent\n {2}systemctl daemon-reload$/);

  const purge = await baton('uninstall', '--root', root, '--purge');
  t.is(purge.exitCode, 0, purge.stderr);
  t.false(existsSync(join(root, 'etc/baton')));
  t.false(existsSync(join(root, 'var/lib/baton')));
  t.regex(purge.stdout, /removed .*\/etc\/baton \(--purge\)/);
});

test('uninstall removes the drop-in directory with the drop-in when nothing else is in it', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const result = await baton('uninstall', '--root', root);
  t.is(result.exitCode, 0, result.stderr);
  t.false(existsSync(join(root, 'etc/systemd/system/baton-agent.service.d')));
  t.regex(result.stdout, /removed .*50-baton-config\.conf\n {2}removed .*baton-agent\.service\.d\n/);
});

test('uninstall refuses to remove a drop-in that install did not write, and changes nothing', async (t) => {
  const root = await tempRoot(t);
  await mkdir(dirname(join(root, DROP_IN)), {recursive: true});
  await writeFile(join(root, DROP_IN), '[Service]\nIPAddressAllow=192.0.2.25\n');
  const before = await snapshotTree(root);
  const result = await baton('uninstall', '--root', root);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /50-baton-config\.conf was not written by `baton install`; nothing was changed/);
  t.deepEqual(await snapshotTree(root), before);
});

test('uninstall refuses to remove an /opt/baton that is not baton, and changes nothing', async (t) => {
  const root = await tempRoot(t);
  await mkdir(join(root, 'opt/baton'), {recursive: true});
  await writeFile(join(root, 'opt/baton/package.json'), '{"name":"something-else"}');
  const before = await snapshotTree(root);
  const result = await baton('uninstall', '--root', root);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /opt\/baton is not a baton install .*nothing was changed/);
  t.deepEqual(await snapshotTree(root), before);
});

// ---- a system where the Debian package put the program, the unit and the command ----

/** A root as `dpkg -i baton_….deb` leaves it: the program in /opt/baton, the unit in /lib, /usr/bin/baton, dpkg's list. */
async function packagedRoot(t: ExecutionContext): Promise<string> {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  await mkdir(join(root, 'lib/systemd/system'), {recursive: true});
  await rename(join(root, 'etc/systemd/system/baton-agent.service'), join(root, 'lib/systemd/system/baton-agent.service'));
  await mkdir(join(root, 'usr/bin'), {recursive: true});
  await rename(join(root, 'usr/local/bin/baton'), join(root, 'usr/bin/baton'));
  await mkdir(join(root, 'var/lib/dpkg/info'), {recursive: true});
  await writeFile(join(root, 'var/lib/dpkg/info/baton.list'), '/opt/baton\n/usr/bin/baton\n/lib/systemd/system/baton-agent.service\n');
  return root;
}

test('on a packaged system install writes the config, the secret and the drop-in, and leaves the package\'s files', async (t) => {
  const root = await packagedRoot(t);
  await rm(join(root, DROP_IN));
  await rm(join(root, 'etc/baton'), {recursive: true});
  const program = await snapshotTree(join(root, 'opt/baton'));
  const unit = await readFile(join(root, 'lib/systemd/system/baton-agent.service'), 'utf8');
  const runner = new SystemctlRecorder();
  const deps = {...createSystemDeps(), runner, isLiveSystem: () => true, sourceDir: join(root, 'opt/baton')};
  const output = captureOutput();
  // A dual-stack service, as two --service-ip give it: the command for the other host repeats both.
  await install.run(output.out, {root, answers: {...ANSWERS, serviceIps: ['192.0.2.100/24', '2001:db8::100/64']}, secretFrom: undefined, force: false}, deps);
  for (const path of [DROP_IN, 'etc/baton/baton.yaml', 'etc/baton/secret']) t.true(existsSync(join(root, path)), `${path} is written`);
  t.regex(await readFile(join(root, 'etc/baton/baton.yaml'), 'utf8'), /\n {2}address: \[192\.0\.2\.100\/24, 2001:db8::100\/64\]\n/);
  t.false(existsSync(join(root, 'etc/systemd/system/baton-agent.service')), 'no unit in /etc to hide the package\'s');
  t.false(existsSync(join(root, 'usr/local/bin/baton')), 'no /usr/local/bin/baton to hide the package\'s');
  t.deepEqual(await snapshotTree(join(root, 'opt/baton')), program, 'the program is untouched');
  t.is(await readFile(join(root, 'lib/systemd/system/baton-agent.service'), 'utf8'), unit);
  // --version: whether this systemd enforces the port allow-list, said after the next steps.
  t.deepEqual(runner.systemctl, ['daemon-reload', 'enable --now baton-agent', 'is-active baton-agent', '--version']);
  t.regex(output.text(), /program: the Debian package's, kept/);
  t.regex(output.text(), /lib\/systemd\/system\/baton-agent\.service +the unit, the Debian package's: kept/);
  t.regex(output.text(), /There, with the same Debian package installed \(dpkg -i\)[^\n]*\n.*\n {7}baton install --role backup --pair web --listen 192\.0\.2\.12 /);
  t.regex(output.text(), / --service-ip 192\.0\.2\.100\/24 --service-ip 2001:db8::100\/64 --interface eth0 /);
  t.regex(output.text(), /service IP 192\.0\.2\.100\/24 and 2001:db8::100\/64 on eth0; valid/);
});

test('on a packaged system an install from a checkout, or over files of an earlier one, refuses and changes nothing', async (t) => {
  const root = await packagedRoot(t);
  const before = await snapshotTree(root);
  const fromCheckout = await baton('install', '--root', root, '--keep-config');
  t.is(fromCheckout.exitCode, 1);
  t.regex(fromCheckout.stderr, /opt\/baton belongs to the Debian package baton .*nothing was changed. Configure it with the package's own command \(\/usr\/bin\/baton install …\), or remove the package/);
  t.deepEqual(await snapshotTree(root), before);
  await writeFile(join(root, 'usr/local/bin/baton'), renderWrapper('/opt/baton'));
  const withLeftover = await snapshotTree(root);
  const deps = {...createSystemDeps(), runner: new SystemctlRecorder(), isLiveSystem: () => false, sourceDir: join(root, 'opt/baton')};
  await t.throwsAsync(install.run(captureOutput().out, {root, answers: undefined, secretFrom: undefined, force: false}, deps),
    {message: /usr\/local\/bin\/baton, left by an install from a checkout, would take the place of the Debian package's .*nothing was changed/});
  t.deepEqual(await snapshotTree(root), withLeftover);
});

test('on a packaged system uninstall refuses and names apt remove and apt purge', async (t) => {
  const root = await packagedRoot(t);
  const before = await snapshotTree(root);
  const result = await baton('uninstall', '--root', root);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /baton is installed by the Debian package .*nothing was changed.*`apt remove baton` stops and disables baton-agent/);
  t.deepEqual(await snapshotTree(root), before);
});

// ---- the running system: systemctl through the runner, root required ----

/** Where the service IP is, as uninstall's question about it is answered on a host. */
function serviceIp(here: ServiceIpHere): () => Promise<ServiceIpHere> {
  return async () => here;
}
const NOT_HERE: ServiceIpHere = {holds: false, cidr: '192.0.2.100/24', interface: 'eth0', onStop: 'keep'};

test('on a running system install enables the unit and uninstall disables it, through the runner', async (t) => {
  const root = await tempRoot(t);
  const runner = new SystemctlRecorder();
  const deps = {...createSystemDeps(), runner, isLiveSystem: () => true, serviceIpHere: serviceIp(NOT_HERE)};
  const installed = captureOutput();
  await install.run(installed.out, {root, answers: ANSWERS, secretFrom: undefined, force: false}, deps);
  t.deepEqual(runner.systemctl, ['daemon-reload', 'enable --now baton-agent', 'is-active baton-agent', '--version']);
  // Debian 12's systemd has no BPF framework: the operator hears that the port allow-list is not enforced.
  t.regex(installed.text(), /Note: no port allow-list on this host: systemd 252 is built without its BPF framework \(-BPF_FRAMEWORK\), so the drop-in's SocketBindAllow= is not enforced \(the IP allow-list is\)\. baton adds no firewall rule in its place/);
  t.regex(installed.text(), /systemd:\n {2}systemctl daemon-reload: done\n {2}systemctl enable --now baton-agent: done\n {2}systemctl is-active baton-agent: active\n/);
  t.regex(installed.text(), /confirm\.access_log is not set: `baton switchover` refuses/);

  runner.systemctl.length = 0;
  const removed = captureOutput();
  await uninstall.run(removed.out, {root, purge: false}, deps);
  t.deepEqual(runner.systemctl, ['disable --now baton-agent', 'daemon-reload']);
  t.regex(removed.text(), /systemctl disable --now baton-agent: done/);
});

test('uninstall refuses while this host holds the service IP, or cannot tell, and changes nothing; --force goes on', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const before = await snapshotTree(root);
  const runner = new SystemctlRecorder();
  const live = {...createSystemDeps(), runner, isLiveSystem: () => true};
  const held = {...live, serviceIpHere: serviceIp({...NOT_HERE, holds: true})};
  await t.throwsAsync(uninstall.run(captureOutput().out, {root, purge: false}, held), {message:
    'this host holds the service IP 192.0.2.100/24 on eth0: uninstall stops its agent, which leaves the address here with no ' +
    'agent and no failover (on_stop: keep). Nothing was changed. Move the service first (`baton switchover`), then ' +
    'uninstall; `baton uninstall --force` uninstalls anyway'});
  const releasing = {...live, serviceIpHere: serviceIp({...NOT_HERE, holds: true, onStop: 'release'})};
  await t.throwsAsync(uninstall.run(captureOutput().out, {root, purge: false}, releasing), {message: /the peer takes it over unplanned/});
  const unknown = {...live, serviceIpHere: serviceIp({unknown: '/etc/baton/baton.yaml cannot be read as a config (gone)'})};
  await t.throwsAsync(uninstall.run(captureOutput().out, {root, purge: false}, unknown), {message: /^cannot tell whether this host holds the service IP: .*run `baton uninstall --force`$/});
  t.deepEqual(await snapshotTree(root), before);
  t.deepEqual(runner.systemctl, []);

  const forced = captureOutput();
  await uninstall.run(forced.out, {root, purge: false, force: true}, held);
  t.deepEqual(runner.systemctl, ['disable --now baton-agent', 'daemon-reload']);
  t.regex(forced.text(), /^baton uninstalled from /);
});

test('uninstall where nothing is installed says so; --purge still removes config and state', async (t) => {
  const root = await tempRoot(t);
  const empty = captureOutput();
  await uninstall.run(empty.out, {root, purge: false}, {...createSystemDeps(), isLiveSystem: () => false});
  t.is(empty.text(), `baton is not installed on ${root}: no unit, no program, no \`baton\` command.\n`);
  await mkdir(join(root, 'etc/baton'), {recursive: true});
  await writeFile(join(root, 'etc/baton/baton.yaml'), 'pair: web\n');
  const kept = captureOutput();
  await uninstall.run(kept.out, {root, purge: false}, {...createSystemDeps(), isLiveSystem: () => false});
  t.regex(kept.text(), new RegExp(`kept ${join(root, 'etc/baton')} \\(config and secret: .*\\); to remove it: rm -r ${join(root, 'etc/baton')}, or uninstall --purge\n`));
  const purged = captureOutput();
  await uninstall.run(purged.out, {root, purge: true}, {...createSystemDeps(), isLiveSystem: () => false});
  t.regex(purged.text(), /removed .*etc\/baton \(--purge\)/);
  t.false(existsSync(join(root, 'etc/baton')));
});

test('install and uninstall into / refuse without root, before touching anything', async (t) => {
  const deps = {...createSystemDeps(), uid: 1000, runner: new SystemctlRecorder(), isLiveSystem: () => true};
  const {out, text} = captureOutput();
  const refused = await t.throwsAsync(install.run(out, {root: '/', answers: ANSWERS, secretFrom: undefined, force: false}, deps));
  t.true(isBatonError(refused));
  t.is(refused?.message, 'baton install changes /opt, /etc and /usr/local/bin of this system and needs root, but ' +
    'runs as uid 1000: run it with sudo, or pass --root DIR to prepare a tree for another system');
  await t.throwsAsync(uninstall.run(out, {root: '/', purge: true}, deps), {message: /needs root, but runs as uid 1000: run it with sudo$/});
  t.is(text(), '');
});

// ---- the host check: into / only, before anything is written ----

/** Install into / as a dry run (it never writes, whatever the host check says) on a fake host without arping or eth0. */
async function dryRunIntoThisSystem(skipHostCheck: boolean) {
  const probe = new FakeHostProbe();
  probe.programs.delete('arping');
  probe.interfaceList.delete('eth0');
  probe.interfaceList.set('ens18', ['192.0.2.11']);
  const access: FileAccess = {uid: 0, gids: [0, 4], readsAnything: false, hidden: [], described: 'root without CAP_DAC_OVERRIDE'};
  const deps = {...createSystemDeps(), uid: 0, runner: new SystemctlRecorder(), isLiveSystem: () => false,
    hostProbe: probe, fileAccess: async () => access};
  const {out, text} = captureOutput();
  const answers = {...ANSWERS, accessLog: '/var/log/nginx/access.log'};
  const done = install.run(out, {root: '/', answers, secretFrom: undefined, force: false, dryRun: true, skipHostCheck}, deps);
  return {done, text};
}

test('install into this system refuses on the host check\'s errors, naming the option to fix, before anything', async (t) => {
  const {done, text} = await dryRunIntoThisSystem(false);
  const refused = await t.throwsAsync(done);
  t.true(isBatonError(refused, 'CONFIG_INVALID'));
  const lines = refused?.message.split('\n') ?? [];
  t.is(lines[0], 'this host cannot run the config as it is, so nothing was installed:');
  t.regex(lines[1] ?? '', /^ {2}- service\.interface \(--interface\): this host has no interface eth0 \(it has ens18, lo\)/);
  t.regex(lines[2] ?? '', /^ {2}- arping \(iputils-arping\) is not on PATH .*; install it: `apt-get install iputils-arping`$/);
  t.regex(lines[3] ?? '', /^ {2}- confirm\.access_log \(--access-log\): \/var\/log\/nginx\/access\.log does not exist/);
  t.regex(lines.at(-1) ?? '', /^Fix each, or install anyway with --skip-host-check/);
  t.is(text(), '');
});

test('install --skip-host-check goes on, and lists what the host check found', async (t) => {
  const {done, text} = await dryRunIntoThisSystem(true);
  t.is(await done, 0);
  t.regex(text(), /\nThe host check found \(`baton check-config` checks again\):\n {2}ERROR \(--skip-host-check\) service\.interface \(--interface\): this host has no interface eth0/);
});

// ---- systemd-analyze verify ----

const SYSTEMD_ANALYZE = process.env['PATH']?.split(delimiter).map((dir) => join(dir, 'systemd-analyze'))
  .find((path) => existsSync(path));

/** Needs systemd-analyze: skipped with the reason where it is missing, except under CI=true, where that fails. */
function systemdTest(title: string, implementation: Implementation<[]>): void {
  if (SYSTEMD_ANALYZE !== undefined) {
    test(title, implementation);
  } else if (process.env['CI'] === 'true') {
    test(title, (t) => {
      t.fail('CI=true but systemd-analyze is not on PATH: apt-get install -y systemd');
    });
  } else {
    test.skip(`${title} (skipped: systemd-analyze is not on PATH; apt-get install -y systemd)`, implementation);
  }
}

systemdTest('systemd-analyze verify --root accepts the installed unit, and fails without the bundled Node', async (t) => {
  const root = await tempRoot(t);
  await installInto(t, root, ...PRIMARY);
  const unit = await readFile(join(root, 'etc/systemd/system/baton-agent.service'), 'utf8');
  t.true(unit.includes('/opt/baton/node_modules/.bin/node'), 'the unit names the target\'s path, not the root\'s');
  t.false(unit.includes(root));
  // verify --root resolves every path inside the root, as on the target system: the units the agent's unit pulls
  // in (sysinit.target, network-online.target, …) and the other programs it names (/bin/kill) are the host's.
  const hostUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((dir) => existsSync(dir));
  if (hostUnits === undefined) throw new Error('no /usr/lib/systemd/system on this host');
  await cp(hostUnits, join(root, 'usr/lib/systemd/system'), {recursive: true, verbatimSymlinks: true});
  for (const line of unit.split('\n')) {
    const program = /^Exec\w*=[-@:+!]*(\/\S+)/.exec(line)?.[1];
    if (program === undefined || program.startsWith('/opt/baton/')) continue;
    await mkdir(join(root, dirname(program)), {recursive: true});
    await cp(await realpath(program), join(root, program));
  }
  const verify = (): Promise<{exitCode?: number; stderr: string}> => execa(SYSTEMD_ANALYZE!,
    ['verify', `--root=${root}`, '/etc/systemd/system/baton-agent.service'], {reject: false, timeout: CLI_TIMEOUT_MS});
  const ok = await verify();
  t.is(ok.exitCode, 0, ok.stderr);
  t.is(ok.stderr, '');
  // Not vacuous: without the bundled runtime in the root, the same check fails on ExecStart.
  const node = join(root, 'opt/baton/node_modules/node/bin/node');
  await rename(node, `${node}.away`);
  const missing = await verify();
  await rename(`${node}.away`, node);
  t.not(missing.exitCode, 0);
  t.regex(missing.stderr, /\/opt\/baton\/node_modules\/\.bin\/node is not executable/);
});
