// The package's control file and maintainer scripts: valid shell, the dependencies the agent runs, and what each
// script does to the agent and to the configuration.

import {spawnSync} from 'node:child_process';
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {readFile} from 'node:fs/promises';
import {
  libraryDepends, renderControl, renderLintianOverrides, renderPostinst, renderPostrm, renderPrerm,
} from '../../packaging/deb-texts.js';

test('the maintainer scripts are valid sh', (t) => {
  for (const [name, text] of [['postinst', renderPostinst('0.1.0-1')], ['prerm', renderPrerm()], ['postrm', renderPostrm()]]) {
    const result = spawnSync('sh', ['-n'], {input: text, encoding: 'utf8'});
    t.is(result.status, 0, `${name}: ${result.stderr}`);
  }
});

test('postinst never starts or restarts the agent; prerm stops it only on removal; postrm purges config and state', (t) => {
  const commands = renderPostinst('0.1.0-1').split('\n').filter((line) => !line.trim().startsWith('echo'));
  t.notRegex(commands.join('\n'), /systemctl (start|restart|enable|try-restart)/);
  t.regex(commands.join('\n'), /systemctl daemon-reload/);
  t.regex(renderPrerm(), /remove\|deconfigure\)\n.*systemctl stop baton-agent\.service/);
  // Run with a systemctl that records its calls (this machine's /run/systemd/system decides whether stop runs).
  const dir = mkdtempSync(join(tmpdir(), 'baton-prerm-'));
  t.teardown(() => rmSync(dir, {recursive: true, force: true}));
  writeFileSync(join(dir, 'systemctl'), `#!/bin/sh\necho "$*" >> ${dir}/calls\n`, {mode: 0o755});
  const prerm = (action: string): string[] => {
    rmSync(join(dir, 'calls'), {force: true});
    const result = spawnSync('sh', ['-c', renderPrerm(), 'prerm', action], {env: {PATH: `${dir}:/usr/bin:/bin`}, encoding: 'utf8'});
    t.is(result.status, 0, result.stderr);
    return existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : [];
  };
  t.deepEqual(prerm('upgrade'), [], 'an upgrade leaves the agent alone');
  t.true(prerm('remove').includes('disable --quiet baton-agent.service'), 'removal disables it');
  t.regex(renderPostrm(), /if \[ "\$1" = purge \]; then\n {2}rm -rf \/etc\/baton \/var\/lib\/baton\n/);
});

test('control names the agent\'s programs and the bundled Node\'s libraries as dependencies', (t) => {
  const control = renderControl({version: '0.1.0-1', architecture: 'amd64', maintainer: 'A <a@example.org>',
    installedSizeKib: 1, libraryDepends: ['libc6 (>= 2.28)'], description: 'summary\nlong text'});
  t.regex(control, /^Depends: libc6 \(>= 2\.28\), iproute2, iputils-arping, perl-base$/m);
  t.regex(control, /^Recommends: nftables$/m);
  t.regex(control, /^Description: summary\n long text\n$/m);
});

test('the libc dependency is the newest GLIBC_ version the binary names', (t) => {
  const binary = new TextEncoder().encode('\0GLIBC_2.17\0GLIBC_2.28\0GLIBC_2.3\0libstdc++.so.6\0');
  t.deepEqual(libraryDepends(binary), ['libc6 (>= 2.28)', 'libstdc++6']);
});

test('docs/install.md explains exactly the lintian findings the package overrides', async (t) => {
  const overridden = new Set(renderLintianOverrides().split('\n').filter((line) => line.startsWith('baton: '))
    .map((line) => line.split(' ')[1]));
  const doc = await readFile(new URL('../../../docs/install.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('### lintian')).split('\n\n')[2] ?? '';
  const explained = new Set([...table.matchAll(/^\| ([^|]+) \|/gm)].slice(1)
    .flatMap((row) => [...(row[1] ?? '').matchAll(/`([a-z0-9-]+)[^`]*`/g)].map((tag) => tag[1])));
  t.true(overridden.size >= 5, 'found the overrides');
  t.deepEqual([...explained].sort(), [...overridden].sort());
});
