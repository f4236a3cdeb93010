// `npm run package`: the Debian package of this built checkout, dist-package/baton_VERSION_ARCH.deb, its path printed
// last. The program is the production copy `baton install` makes (cli/install/program-files.ts), run before it is
// packed; the man pages and the bash completion are generated from the help texts, the docs and the parser's tables.

import {createHash} from 'node:crypto';
import {chmod, copyFile, lstat, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {dirname, join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';
import {gzipSync} from 'node:zlib';
import {createExecaRunner} from '../agent/adapters/execa-runner.js';
import {describeError} from '../agent/errors.js';
import type {CommandRunner} from '../agent/ports.js';
import {
  AGENT_ENTRY, BUNDLED_NODE, CLI_ENTRY, CONFIG_FILE, CONTROL_SOCKET, INSTALL_DIR, PACKAGED_AGENT, PACKAGED_CLI, PACKAGED_UNIT,
  SECRET_FILE, STATE_DIR, UNIT_TEMPLATE,
} from '../cli/install/layout.js';
import {checkProgram, selectProductionPackages, stageProgram} from '../cli/install/program-files.js';
import {renderBashCompletion} from './completion.js';
import {
  COMPLETION_FILE, DEBIAN_REVISION, DEFAULT_MAINTAINER, DOC_DIR, libraryDepends, LINTIAN_OVERRIDES, PACKAGE_NAME,
  renderChangelog, renderCommand, renderControl, renderCopyright, renderLintianOverrides, renderPostinst, renderPostrm, renderPrerm,
  type BundledPackage,
} from './deb-texts.js';
import {renderConfigPage, renderHelpPage} from './man-pages.js';

/** Where the package is written, under the checkout (git-ignored like dist/). */
export const PACKAGE_OUT_DIR = 'dist-package';
// Node's process.arch → Debian's architecture name (dpkg-architecture -L).
const DEBIAN_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64', arm64: 'arm64', arm: 'armhf', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', ia32: 'i386',
};
// gzip, not dpkg's default xz: the bundled Node is 127 MB, which xz takes minutes to pack on a busy machine and gzip
// seconds, for a package about half again as large.
const COMPRESSION = ['-Zgzip', '-z9'] as const;
// Packing 130 MB, and the program's own --version and --help, on a busy host.
const COMMAND_TIMEOUT_MS = 300_000;

const SEE_ALSO_DOCS = `${INSTALL_DIR}/docs/`;

async function main(): Promise<number> {
  const sourceDir = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
  const runner = createExecaRunner();
  const manifest = JSON.parse(await readFile(join(sourceDir, 'package.json'), 'utf8')) as
    {version: string; license: string; description: string};
  const outDir = join(sourceDir, PACKAGE_OUT_DIR);
  const version = `${manifest.version}-${DEBIAN_REVISION}`;
  const tree = join(outDir, `${PACKAGE_NAME}_${version}`);
  await rm(tree, {recursive: true, force: true});
  try {
    return await build(sourceDir, tree, outDir, {...manifest, version}, runner);
  } finally {
    await rm(tree, {recursive: true, force: true});
  }
}

async function build(sourceDir: string, tree: string, outDir: string,
  manifest: {version: string; license: string; description: string}, runner: CommandRunner): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // As dch(1) and dpkg's tools name the maintainer.
  const maintainer = process.env['DEBFULLNAME'] !== undefined && process.env['DEBEMAIL'] !== undefined
    ? `${process.env['DEBFULLNAME']} <${process.env['DEBEMAIL']}>` : DEFAULT_MAINTAINER;
  const program = join(tree, INSTALL_DIR);
  const staged = await stageProgram(sourceDir, program);
  const check = await checkProgram(program, runner);
  const node = join(program, BUNDLED_NODE);
  const run = (args: readonly string[]) => runner.run(node, args, {timeoutMs: COMMAND_TIMEOUT_MS});
  const architecture = DEBIAN_ARCH[(await run(['-p', 'process.arch'])).trim()];
  if (architecture === undefined) throw new Error(`${node}: no Debian architecture for its process.arch`);
  say(`program: ${INSTALL_DIR} with ${staged.packages} production packages, Node ${check.nodeVersion}, ` +
    `${check.agentVersion} runs from it; architecture ${architecture}`);

  await writeExecutable(join(tree, PACKAGED_CLI), renderCommand('baton'));
  await writeExecutable(join(tree, PACKAGED_AGENT), renderCommand('baton-agent'));
  await mkdir(dirname(join(tree, PACKAGED_UNIT)), {recursive: true});
  await copyFile(join(sourceDir, UNIT_TEMPLATE), join(tree, PACKAGED_UNIT));

  const date = new Date();
  const source = `${PACKAGE_NAME} ${manifest.version}`;
  const day = date.toISOString().slice(0, 10);
  const seeDocs = ['install.md', 'operator-guide.md', 'runbook-upgrade.md'].map((doc) => `${SEE_ALSO_DOCS}${doc}`);
  const commonFiles: [string, string][] = [
    [CONFIG_FILE, 'the configuration (baton.yaml(5)), written by baton install'],
    [SECRET_FILE, 'the pair\'s shared secret, mode 0600'],
    [PACKAGED_UNIT, 'the systemd unit; baton install writes its allow-list drop-in beside it in /etc'],
    [STATE_DIR, 'the agent\'s epoch and switch journal'],
    [CONTROL_SOCKET, 'the control socket baton talks to'],
    [INSTALL_DIR, 'the program and its own Node runtime'],
  ];
  const pages: [string, string][] = [
    ['man8/baton.8', renderHelpPage({
      name: 'baton', section: 8, summary: 'move a web service\'s IP address between a primary and a backup host',
      source, date: day, files: commonFiles, seeAlso: ['baton-agent(8)', 'baton.yaml(5)', ...seeDocs],
    }, await run([join(program, CLI_ENTRY), '--help']))],
    ['man8/baton-agent.8', renderHelpPage({
      name: 'baton-agent', section: 8, summary: 'the baton IP failover agent, one on each host of a pair',
      source, date: day, files: commonFiles, seeAlso: ['baton(8)', 'baton.yaml(5)', 'systemctl(1)', ...seeDocs],
    }, await run([join(program, AGENT_ENTRY), '--help']))],
    ['man5/baton.yaml.5', renderConfigPage({
      name: 'baton.yaml', section: 5, summary: 'configuration of baton-agent', source, date: day,
      files: [[CONFIG_FILE, 'the default location (--config FILE elsewhere)']],
      seeAlso: ['baton(8)', 'baton-agent(8)', `${SEE_ALSO_DOCS}configuration.md`],
    }, await readFile(join(sourceDir, 'docs/configuration.md'), 'utf8'))],
  ];
  for (const [path, text] of pages) await writeGzip(join(tree, '/usr/share/man', `${path}.gz`), text);
  await mkdir(dirname(join(tree, COMPLETION_FILE)), {recursive: true});
  await writeFile(join(tree, COMPLETION_FILE), renderBashCompletion());

  const lockFile = join(sourceDir, 'package-lock.json');
  const {required, optional} = selectProductionPackages(JSON.parse(await readFile(lockFile, 'utf8')), lockFile);
  const bundled = await bundledPackages(program, [...required, ...optional]);
  await mkdir(join(tree, DOC_DIR), {recursive: true});
  await writeFile(join(tree, DOC_DIR, 'copyright'), renderCopyright(manifest.license, date.getUTCFullYear(), bundled));
  await writeGzip(join(tree, DOC_DIR, 'changelog.Debian.gz'), renderChangelog(manifest.version, maintainer, rfc5322(date)));
  await mkdir(dirname(join(tree, LINTIAN_OVERRIDES)), {recursive: true});
  await writeFile(join(tree, LINTIAN_OVERRIDES), renderLintianOverrides());
  say(`man pages: baton(8), baton-agent(8), baton.yaml(5); bash completion; copyright of ${bundled.length} bundled packages`);

  await normalizeModes(tree);
  const debian = join(tree, 'DEBIAN');
  await mkdir(debian, {mode: 0o755});
  const {md5sums, installedSizeKib} = await listFiles(tree);
  await writeFile(join(debian, 'md5sums'), md5sums, {mode: 0o644});
  await writeFile(join(debian, 'control'), renderControl({
    version: manifest.version, architecture, maintainer, installedSizeKib,
    libraryDepends: libraryDepends(await readFile(join(program, 'node_modules/node/bin/node'))),
    description: `IP failover pair with planned, traffic-confirmed switchover\n${manifest.description}`,
  }), {mode: 0o644});
  for (const [name, text] of [['postinst', renderPostinst(manifest.version)], ['prerm', renderPrerm()],
    ['postrm', renderPostrm()]] as const) await writeExecutable(join(debian, name), text);

  const deb = join(outDir, `${PACKAGE_NAME}_${manifest.version}_${architecture}.deb`);
  // --root-owner-group: every file root:root in the archive, without fakeroot.
  await runner.run('dpkg-deb', ['--root-owner-group', ...COMPRESSION, '--build', tree, deb], {timeoutMs: COMMAND_TIMEOUT_MS});
  say(`built ${relative(sourceDir, deb)} (${installedSizeKib} KiB installed): dpkg -i it, then see baton(8)`);
  say(deb);
  return 0;
}

async function writeExecutable(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), {recursive: true});
  await writeFile(path, text, {mode: 0o755});
  await chmod(path, 0o755);
}

/** gzip -9n: no name or time in the header, so the same page gives the same bytes (lintian checks it). */
async function writeGzip(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), {recursive: true});
  await writeFile(path, gzipSync(text, {level: 9}));
}

/** The usual modes whatever the checkout's umask was: directories 0755, files 0755 if executable, else 0644. */
async function normalizeModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, {withFileTypes: true, recursive: true})) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) await chmod(path, 0o755);
    else if (entry.isFile()) await chmod(path, ((await lstat(path)).mode & 0o111) === 0 ? 0o644 : 0o755);
  }
}

/** DEBIAN/md5sums and Installed-Size (KiB per file rounded up, one per directory, as dpkg-gencontrol counts). */
async function listFiles(tree: string): Promise<{md5sums: string; installedSizeKib: number}> {
  const lines: string[] = [];
  let kib = 0;
  const entries = await readdir(tree, {withFileTypes: true, recursive: true});
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    const inside = relative(tree, path);
    if (inside === 'DEBIAN' || inside.startsWith('DEBIAN/')) continue;
    if (entry.isDirectory() || entry.isSymbolicLink()) {
      kib += 1;
    } else if (entry.isFile()) {
      const data = await readFile(path);
      kib += Math.ceil(data.length / 1024);
      lines.push(`${createHash('md5').update(data).digest('hex')}  ${inside}`);
    }
  }
  return {md5sums: `${lines.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join('\n')}\n`, installedSizeKib: kib};
}

/** The bundled packages with the licence each package.json names. */
async function bundledPackages(program: string, paths: readonly string[]): Promise<BundledPackage[]> {
  const out: BundledPackage[] = [];
  for (const path of paths) {
    try {
      const manifest = JSON.parse(await readFile(join(program, path, 'package.json'), 'utf8')) as
        {name?: string; license?: string};
      out.push({path, name: manifest.name ?? path, license: manifest.license ?? 'unknown'});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return out;
}

/** `date -R`: "Sun, 06 Dec 2026 08:30:00 +0000". */
function rfc5322(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`npm run package: ${describeError(error)}\n`);
  process.exitCode = 1;
}
