// `baton install`: the program with its own Node, the validated config, the shared secret, the unit and the `baton`
// command, on this host (then enabled under systemd) or into a tree for another system (--root). Where the Debian
// package put the program, the unit and the command, only the config, the secret and the drop-in are written.

import {readFile, realpath, stat} from 'node:fs/promises';
import {join, resolve} from 'node:path';
import {type AnyConfig, isEtcdConfig, loadAnyConfig, parseAnyConfig} from '../../agent/config/schema.js';
import {planUnitSandbox, socketBindUnsupported, type UnitSandbox} from '../../agent/config/unit-sandbox.js';
import {readSecretFile} from '../../agent/config/secret-files.js';
import {BatonError, describeError, isBatonError} from '../../agent/errors.js';
import {formatCommandLine} from '../../agent/adapters/execa-runner.js';
import {describeAddresses} from '../../agent/net/service-addresses.js';
import {ensureDirectory, formatBytes, inspect, treeBytes, writeFileAtomic} from '../install/files.js';
import {
  BUNDLED_NODE, CLI_ENTRY, CONFIG_DIR, CONFIG_DIR_MODE, CONFIG_FILE, CONFIG_FILE_MODE, DROP_IN_FILE, DROP_IN_FILE_MODE,
  formatMode, INSTALL_DIR, PACKAGE_FILE_LIST, PACKAGED_CLI, PACKAGED_UNIT,
  SECRET_FILE, SECRET_FILE_MODE, UNIT_FILE, UNIT_FILE_MODE, UNIT_NAME, UNIT_TEMPLATE, underRoot, WRAPPER_FILE,
  WRAPPER_MODE,
} from '../install/layout.js';
import {
  checkProgram, checkSource, isBatonProgram, removeLeftovers, stageDirFor, stageProgram, swapProgram,
  type ProgramCheck,
} from '../install/program-files.js';
import {
  installedSecretReader, planSecret, targetProgramInspector, targetSecretReader, type SecretPlan,
} from '../install/secret.js';
import {
  createSystemDeps, DAEMON_RELOAD, ENABLE_NOW, IS_ACTIVE, requireRootUser, runSystemctl, systemctlLine, VERSION, whyNotLive,
  type InstallDeps,
} from '../install/system.js';
import {
  explainProblems, OPTION_OF_KEY, renderConfig, renderSandboxDropIn, renderUnit, renderWrapper, type ConfigAnswers,
} from '../install/texts.js';
import {checkHostOfAll, gatherHostFacts, type HostProblem, subjectsOfConfig} from '../../agent/host-check.js';
import type {Output} from '../output.js';

export interface InstallOptions {
  /** Absolute; `/` is this system. */
  readonly root: string;
  /** What the config is written from; undefined with --keep-config (the installed config stays as it is). */
  readonly answers: ConfigAnswers | undefined;
  /** The other host's secret file, to install the same key here. */
  readonly secretFrom: string | undefined;
  /** Rewrite an existing config from the answers (the old one kept as baton.yaml.bak). */
  readonly force: boolean;
  /** Check everything and print what would be written (the sandbox drop-in in full), change nothing. */
  readonly dryRun?: boolean;
  /** Install although the host check finds errors (an interface or a log that comes later). */
  readonly skipHostCheck?: boolean;
}

/** Where each part goes, as seen from here (under --root). */
interface Paths {
  readonly installDir: string;
  readonly configDir: string;
  readonly configFile: string;
  readonly configBackup: string;
  readonly secretFile: string;
  readonly unitFile: string;
  readonly dropIn: string;
  readonly wrapper: string;
}

/** Everything decided and checked before the first change: a refusal leaves the target exactly as it was. */
interface InstallPlan {
  readonly root: string;
  readonly paths: Paths;
  readonly live: boolean;
  readonly sourceDir: string;
  /** The CLI runs from the install dir itself (`baton install` of the installed copy): the program is left as is. */
  readonly programInPlace: boolean;
  /** The Debian package owns the program, the unit and the command: they are left as they are. */
  readonly packaged: boolean;
  readonly programExisted: boolean;
  readonly version: string;
  readonly config: {readonly action: 'write' | 'rewrite' | 'keep'; readonly text: string; readonly parsed: AnyConfig};
  /** An etcd host has no secret: nothing is written or kept for it. */
  readonly secret: SecretPlan | {readonly action: 'none'};
  readonly unitText: string;
  /** The sandbox the config needs, and the drop-in that gives it (written again on every install). */
  readonly sandbox: UnitSandbox;
  readonly dropInText: string;
  /** The drop-in on disk differs from dropInText (or is missing): a running agent has the old one until a restart. */
  readonly dropInChanges: boolean;
  readonly wrapperText: string;
  /** What the host check found and did not refuse: its warnings, and its errors under --skip-host-check. Undefined
   *  when it did not run (--root: not this host). */
  readonly host: readonly HostProblem[] | undefined;
}

export async function run(out: Output, options: InstallOptions, deps: InstallDeps = createSystemDeps()): Promise<number> {
  const plan = await planInstall(options, deps);
  if (options.dryRun === true) {
    out.stdout(formatDryRun(plan));
    return 0;
  }
  let done: Applied;
  try {
    done = await applyInstall(plan, deps);
  } catch (error) {
    if (isBatonError(error)) throw error;
    // A file operation failed halfway (disk full, read-only mount): say so, and how to finish.
    throw new BatonError('COMMAND_FAILED', `install into ${plan.root} stopped: ${describeError(error)}; fix that and ` +
      'run the same command again (add --keep-config if it then finds the config already written)', {cause: error});
  }
  out.stdout(await formatReport(plan, done, options));
  return 0;
}

async function planInstall(options: InstallOptions, deps: InstallDeps): Promise<InstallPlan> {
  const {root} = options;
  requireRootUser(root, deps.uid, 'install');
  if ((await inspect(root)).kind !== 'directory') {
    throw new BatonError('BAD_REQUEST', `--root ${root}: not a directory; create it (mkdir -p ${root}) or correct ` +
      'the path');
  }
  const paths: Paths = {
    installDir: underRoot(root, INSTALL_DIR),
    configDir: underRoot(root, CONFIG_DIR),
    configFile: underRoot(root, CONFIG_FILE),
    configBackup: underRoot(root, `${CONFIG_FILE}.bak`),
    secretFile: underRoot(root, SECRET_FILE),
    unitFile: underRoot(root, UNIT_FILE),
    dropIn: underRoot(root, DROP_IN_FILE),
    wrapper: underRoot(root, WRAPPER_FILE),
  };
  const sourceDir = deps.sourceDir;
  await checkSource(sourceDir);
  const installed = await inspect(paths.installDir);
  if (installed.kind !== 'missing' && !(installed.kind === 'directory' && await isBatonProgram(paths.installDir))) {
    throw new BatonError('BAD_REQUEST', `${paths.installDir} exists and is not a baton install (no package.json ` +
      'named baton in it); nothing was changed. Move it away and install again');
  }
  const programInPlace = installed.kind === 'directory' &&
    await realpath(sourceDir) === await realpath(paths.installDir);
  const packaged = (await inspect(underRoot(root, PACKAGE_FILE_LIST))).kind === 'file';
  if (packaged) await checkPackagedTarget(root, paths, sourceDir, programInPlace);

  const secret = planSecret(readSecretFile(paths.secretFile), paths.secretFile,
    options.secretFrom === undefined ? undefined : resolve(options.secretFrom), deps.randomBytes);
  const config = await planConfig(options, paths, secret);
  // An etcd host's file names no secret unless it has beacons: none is generated for it then, nor reported.
  const template = await readFile(join(sourceDir, UNIT_TEMPLATE), 'utf8');
  const manifest = JSON.parse(await readFile(join(sourceDir, 'package.json'), 'utf8')) as {version?: unknown};
  const sandbox = planUnitSandbox(config.parsed);
  const dropInText = renderSandboxDropIn(sandbox);
  const dropIn = await inspect(paths.dropIn);
  if (dropIn.kind !== 'missing' && dropIn.kind !== 'file') {
    throw new BatonError('BAD_REQUEST', `${paths.dropIn} is not a file (${dropIn.kind}); nothing was changed. Move it ` +
      'away and install again');
  }
  const dropInChanges = dropIn.kind === 'missing' || await readFile(paths.dropIn, 'utf8') !== dropInText;
  const unitText = renderUnit(template, INSTALL_DIR);
  const host = root === '/' ? await checkThisHost(config.parsed, options, deps, unitText, dropInText) : undefined;
  return {
    root, paths, live: deps.isLiveSystem(root), sourceDir, programInPlace, packaged,
    programExisted: installed.kind !== 'missing',
    version: typeof manifest.version === 'string' ? manifest.version : 'unknown',
    // An etcd host needs the secret only for the hosts' beacons (keep-while-peers-agree), then as a pair does.
    config, secret: isEtcdConfig(config.parsed) && config.parsed.coordination.beacons === undefined ? {action: 'none'} : secret,
    // The unit and the wrapper name the install dir as the target system sees it: /opt/baton, also under --root.
    unitText,
    sandbox, dropInText, dropInChanges,
    wrapperText: renderWrapper(INSTALL_DIR),
    host,
  };
}

/**
 * On a system with the Debian package, the package's files are dpkg's: only its own `baton` may configure it, and
 * files of an earlier install from a checkout that would hide the package's unit or command must go first.
 */
async function checkPackagedTarget(root: string, paths: Paths, sourceDir: string, programInPlace: boolean): Promise<void> {
  if (!programInPlace) {
    throw new BatonError('BAD_REQUEST', `${paths.installDir} belongs to the Debian package baton ` +
      `(${underRoot(root, PACKAGE_FILE_LIST)}); nothing was changed. Configure it with the package's own command ` +
      `(${PACKAGED_CLI} install …), or remove the package (\`apt remove baton\`) to install from ${sourceDir}`);
  }
  const hiding = [];
  for (const path of [paths.unitFile, paths.wrapper]) {
    if ((await inspect(path)).kind !== 'missing') hiding.push(path);
  }
  if (hiding.length > 0) {
    throw new BatonError('BAD_REQUEST', `${hiding.join(' and ')}, left by an install from a checkout, would take the ` +
      `place of the Debian package's ${PACKAGED_UNIT} and ${PACKAGED_CLI}; nothing was changed. Remove ` +
      `${hiding.length > 1 ? 'them' : 'it'} (rm ${hiding.join(' ')}), then install again`);
  }
}

/**
 * The host check (host-check.ts) of the config on this host, as the unit about to be written will run the agent:
 * refuses on an error unless --skip-host-check, before anything is written. Each problem names the option that gave
 * its key, where one did.
 */
async function checkThisHost(config: AnyConfig, options: InstallOptions, deps: InstallDeps, unitText: string,
  dropInText: string): Promise<HostProblem[]> {
  const found = await checkHostOfAll(subjectsOfConfig(config), (subject) => gatherHostFacts(subject, deps.hostProbe),
    await deps.fileAccess(unitText, [dropInText]));
  const problems = found.map((problem) => {
    const option = options.answers === undefined || problem.key === undefined ? undefined : OPTION_OF_KEY[problem.key];
    return option === undefined ? problem : {...problem, message: problem.message.replace(`${problem.key}:`, `${problem.key} (${option}):`)};
  });
  const errors = problems.filter((problem) => problem.severity === 'error');
  if (errors.length > 0 && options.skipHostCheck !== true) {
    throw new BatonError('CONFIG_INVALID', `this host cannot run the config as it is, so nothing was installed:\n` +
      `${errors.map((problem) => `  - ${problem.message}`).join('\n')}\n` +
      'Fix each, or install anyway with --skip-host-check (an interface or a log that comes later); ' +
      '`baton check-config` checks the host again');
  }
  return problems;
}

/** The host check's findings that did not refuse the install, one line each. */
function hostNotes(plan: InstallPlan): string[] {
  // An access log not set has its own note, with what to do about it at install.
  const found = (plan.host ?? []).filter((problem) => problem.kind !== 'access-log-unset');
  if (found.length === 0) return [];
  return ['', 'The host check found (`baton check-config` checks again):',
    ...found.map((problem) => `  ${problem.severity === 'error' ? 'ERROR (--skip-host-check)' : 'WARNING'} ${problem.message}`)];
}

async function planConfig(options: InstallOptions, paths: Paths, secret: SecretPlan): Promise<InstallPlan['config']> {
  const existing = await inspect(paths.configFile);
  const validate = (text: string) => parseAnyConfig(text, paths.configFile, targetSecretReader(options.root, secret),
    targetProgramInspector(options.root));
  if (options.answers === undefined) {
    if (existing.kind === 'missing') {
      throw new BatonError('CONFIG_INVALID', `--keep-config: there is no ${paths.configFile} to keep; install with ` +
        '--role, --listen, --peer, --service-ip and --interface to write one');
    }
    const text = await readFile(paths.configFile, 'utf8');
    try {
      return {action: 'keep', text, parsed: validate(text)};
    } catch (error) {
      if (!isBatonError(error, 'CONFIG_INVALID')) throw error;
      throw new BatonError('CONFIG_INVALID', `--keep-config: the installed config is not valid, so nothing was ` +
        `installed; fix it, or write it anew with --force and the options:\n${error.message}`, {cause: error});
    }
  }
  if (existing.kind !== 'missing' && !options.force) {
    throw new BatonError('BAD_REQUEST', `${paths.configFile} exists; nothing was changed. To upgrade the program and ` +
      'keep this config: `baton install --keep-config`. To write the config anew from these options (the old one is ' +
      `kept as ${paths.configBackup}): add --force`);
  }
  const text = renderConfig(options.answers);
  try {
    return {action: existing.kind === 'missing' ? 'write' : 'rewrite', text, parsed: validate(text)};
  } catch (error) {
    if (!isBatonError(error, 'CONFIG_INVALID')) throw error;
    throw new BatonError('CONFIG_INVALID', 'the options do not make a valid configuration, so nothing was installed; ' +
      `fix the option named on each line:\n${explainProblems(error.message)}`, {cause: error});
  }
}

/** What applying the plan observed. */
interface Applied {
  readonly leftovers: readonly string[];
  readonly program: {readonly packages: number; readonly skippedOptional: readonly string[]} | undefined;
  readonly check: ProgramCheck;
  readonly bytes: number;
  readonly validatedAs: AnyConfig;
  readonly systemctl: readonly string[];
  /** On a running system, why its systemd does not enforce the drop-in's port allow-list; undefined when it does. */
  readonly socketBindUnsupported: string | undefined;
}

async function applyInstall(plan: InstallPlan, deps: InstallDeps): Promise<Applied> {
  const {paths} = plan;
  let program: Applied['program'];
  let check: ProgramCheck;
  let leftovers: string[] = [];
  if (plan.programInPlace) {
    check = await checkProgram(paths.installDir, deps.runner);
  } else {
    leftovers = await removeLeftovers(paths.installDir);
    const stage = stageDirFor(paths.installDir);
    try {
      const staged = await stageProgram(plan.sourceDir, stage);
      // The copy must run on its own before it replaces anything: a broken copy never takes a working one's place.
      check = await checkProgram(stage, deps.runner);
      await swapProgram(stage, paths.installDir);
      program = {packages: staged.packages, skippedOptional: staged.skippedOptional};
    } finally {
      await removeLeftovers(paths.installDir);
    }
  }
  const bytes = await treeBytes(paths.installDir);

  await ensureDirectory(paths.configDir, CONFIG_DIR_MODE);
  if (plan.secret.action !== 'keep' && plan.secret.action !== 'none') await writeFileAtomic(paths.secretFile, plan.secret.content, SECRET_FILE_MODE);
  if (plan.config.action === 'rewrite') {
    await writeFileAtomic(paths.configBackup, await readFile(paths.configFile), CONFIG_FILE_MODE);
  }
  if (plan.config.action !== 'keep') await writeFileAtomic(paths.configFile, plan.config.text, CONFIG_FILE_MODE);
  // Observed, not commanded: the files now on disk are what the agent will read. On this system that is exactly
  // loadAnyConfig; under --root, secret_file (/etc/baton/secret) and the programs it names are looked up in the root.
  const validatedAs = plan.root === '/'
    ? await loadAnyConfig(paths.configFile)
    : parseAnyConfig(await readFile(paths.configFile, 'utf8'), paths.configFile, installedSecretReader(plan.root),
      targetProgramInspector(plan.root));

  if (!plan.packaged) await writeFileAtomic(paths.unitFile, plan.unitText, UNIT_FILE_MODE);
  await writeFileAtomic(paths.dropIn, plan.dropInText, DROP_IN_FILE_MODE);
  if (!plan.packaged) await writeFileAtomic(paths.wrapper, plan.wrapperText, WRAPPER_MODE);

  const systemctl: string[] = [];
  if (plan.live) {
    await runSystemctl(deps.runner, DAEMON_RELOAD);
    systemctl.push(`${systemctlLine(DAEMON_RELOAD)}: done`);
    await runSystemctl(deps.runner, ENABLE_NOW);
    systemctl.push(`${systemctlLine(ENABLE_NOW)}: done`);
    let state: string;
    try {
      state = (await runSystemctl(deps.runner, IS_ACTIVE)).trim();
    } catch (error) {
      throw new BatonError('COMMAND_FAILED', `${UNIT_NAME} was enabled but is not running: ${describeError(error)}; ` +
        `see why with \`journalctl -u ${UNIT_NAME}\`, fix it, then \`systemctl restart ${UNIT_NAME}\``, {cause: error});
    }
    systemctl.push(`${systemctlLine(IS_ACTIVE)}: ${state}`);
    let version: string;
    try {
      version = await runSystemctl(deps.runner, VERSION);
    } catch (error) {
      version = describeError(error);
    }
    return {leftovers, program, check, bytes, validatedAs, systemctl, socketBindUnsupported: socketBindUnsupported(version)};
  }
  return {leftovers, program, check, bytes, validatedAs, systemctl, socketBindUnsupported: undefined};
}

async function formatReport(plan: InstallPlan, done: Applied, options: InstallOptions): Promise<string> {
  const {paths} = plan;
  const config = done.validatedAs;
  const target = plan.root === '/' ? 'this system' : `${plan.root} (a tree for another system: inside it the paths ` +
    `are ${INSTALL_DIR}, ${CONFIG_DIR}, …)`;
  const rows: [string, string][] = [];
  const programWhat = plan.packaged
    ? `program: the Debian package's, kept; ${formatBytes(done.bytes)}`
    : done.program === undefined
    ? `program: already in place (this command runs from it), kept; ${formatBytes(done.bytes)}`
    : `program from ${plan.sourceDir}: dist/ (without tests), docs/, systemd/, package.json, package-lock.json, ` +
      `node_modules/ with its ${done.program.packages} production packages; ${formatBytes(done.bytes)}` +
      (plan.programExisted ? '; the previous program replaced' : '');
  rows.push([paths.installDir, programWhat]);
  rows.push([join(paths.installDir, BUNDLED_NODE), `Node ${done.check.nodeVersion}, the agent's own runtime; ` +
    `${done.check.agentVersion} runs on it from the copy alone`]);
  rows.push([paths.configDir, plan.secret.action === 'none' ? 'directory of the config' : 'directory of the config and the secret']);
  const configWhat = {
    write: 'written',
    rewrite: `written anew (--force); the previous one kept as ${paths.configBackup}`,
    keep: 'kept as it was (--keep-config)',
  }[plan.config.action];
  rows.push([paths.configFile, `${configWhat}: ${describeConfig(config, false)}; valid`]);
  if (plan.config.action === 'rewrite') rows.push([paths.configBackup, 'the previous config']);
  if (plan.secret.action !== 'none') {
    const secretWhat = {
      keep: 'kept: the one already installed',
      copy: `copied from ${plan.secret.action === 'copy' ? plan.secret.from : ''}`,
      generate: 'generated: 32 random bytes as 64 hex characters',
    }[plan.secret.action];
    rows.push([paths.secretFile, `${secretWhat}; key id ${plan.secret.keyId}`]);
  }
  if (plan.packaged) {
    rows.push([underRoot(plan.root, PACKAGED_UNIT), 'the unit, the Debian package\'s: kept']);
  } else {
    rows.push([paths.unitFile, `the unit: runs ${INSTALL_DIR}/${BUNDLED_NODE} … ${INSTALL_DIR}/dist/agent/main.js`]);
  }
  rows.push([paths.dropIn, `its sandbox for this config: ${describeSandbox(plan.sandbox)}`]);
  if (plan.packaged) {
    rows.push([underRoot(plan.root, PACKAGED_CLI), 'the `baton` command, the Debian package\'s: kept']);
  } else {
    rows.push([paths.wrapper, `the \`baton\` command: runs ${INSTALL_DIR}/${CLI_ENTRY} on the bundled Node`]);
  }
  // Modes as observed now; of a link's target (.bin/node is npm's link to node/bin/node), which is what runs.
  const modes = await Promise.all(rows.map(async ([path]) => formatMode((await stat(path)).mode)));
  const width = Math.max(...rows.map(([path]) => path.length));
  const lines = [`baton ${plan.version} installed into ${target}:`];
  rows.forEach(([path, what], index) => lines.push(`  ${modes[index]}  ${path.padEnd(width)}  ${what}`));
  for (const leftover of done.leftovers) lines.push(`  removed ${leftover}, left by an interrupted install`);
  for (const skipped of done.program?.skippedOptional ?? []) lines.push(`  (optional ${skipped} not installed by npm: not copied)`);

  lines.push('');
  if (plan.live) {
    lines.push('systemd:', ...done.systemctl.map((line) => `  ${line}`));
  } else {
    lines.push(`systemd: not touched, ${whyNotLive(plan.root)}. On the target system, run:`,
      `  ${systemctlLine(DAEMON_RELOAD)}`, `  ${systemctlLine(ENABLE_NOW)}`);
  }
  const unconfirmed = isEtcdConfig(config) ? config.services.filter((s) => s.confirm.accessLog === undefined).map((s) => s.name)
    : config.confirm.accessLog === undefined ? [config.pair] : [];
  if (isEtcdConfig(config) && unconfirmed.length > 0) {
    lines.push('', `Note: confirm.access_log is not set for ${unconfirmed.join(', ')}: \`baton switchover\` of ${unconfirmed.length === 1 ? 'it' : 'them'} ` +
      `to this host refuses until it names this host's web-server access log in ${CONFIG_FILE}.`);
  } else if (unconfirmed.length > 0) {
    lines.push('', `Note: confirm.access_log is not set: \`baton switchover\` refuses until it names this host's ` +
      `web-server access log in ${CONFIG_FILE} (or install again with --force and --access-log PATH).`);
  }
  lines.push(...sandboxNotes(plan, config, done));
  lines.push(...hostNotes(plan));
  if (plan.programExisted && !plan.programInPlace) {
    lines.push('', `A baton-agent already running keeps the previous program until \`systemctl restart ${UNIT_NAME}\`` +
      (isEtcdConfig(config)
        ? '. In etcd mode a restart of the host holding the service hands it to the next host.'
        : config.onStop === 'keep'
        ? ' (on_stop: keep: the service IP stays where it is during the restart); then `baton status`.'
        : '. Careful: on_stop is release here, so a restart of the active host hands the service IP to the peer.'));
  }
  lines.push('', ...nextSteps(plan, config, options), '');
  return lines.join('\n');
}

/** One line: what the drop-in allows. */
function describeSandbox(sandbox: UnitSandbox): string {
  const ip = sandbox.ipAllow === undefined
    ? 'no IP allow-list (a health check names its host)'
    : `IP only with ${sandbox.ipAllow.map(({address}) => address).join(' ')}`;
  return `${ip}; binds ${sandbox.bindAllow.join(' ')} only` +
    (sandbox.changesUser ? '' : '; no CAP_SETUID/CAP_SETGID and no privileged system call (nothing runs as script_user)');
}

/** What the operator must know about the sandbox of this install. */
function sandboxNotes(plan: InstallPlan, config: AnyConfig, done: Applied): string[] {
  const notes: string[] = [];
  if (done.socketBindUnsupported !== undefined) {
    notes.push('', `Note: no port allow-list on this host: ${done.socketBindUnsupported}, so the drop-in's ` +
      'SocketBindAllow= is not enforced (the IP allow-list is). baton adds no firewall rule in its place; see ' +
      '"The port allow-list needs systemd\'s BPF framework" in docs/security.md.');
  }
  for (const {key, host} of plan.sandbox.namedHosts) {
    notes.push('', `Note: ${key} names its host (${host}), so the sandbox has no IP allow-list (its addresses can ` +
      `change, and a name needs a name server): write the URL with an address to get one; see ${plan.paths.dropIn}.`);
  }
  if (plan.sandbox.ipAllow !== undefined && (config.hooks.onStateChange !== undefined ||
    config.health.checks.some((check) => check.kind === 'command'))) {
    notes.push('', 'Note: the hook and the command checks run inside the IP allow-list too; one that talks to ' +
      'another host needs it added with `systemctl edit baton-agent` (IPAddressAllow=ADDRESS).');
  }
  if (plan.live && plan.dropInChanges && plan.programExisted) {
    notes.push('', `The sandbox changed: a running baton-agent has the old one until \`systemctl restart ${UNIT_NAME}\`.`);
  }
  return notes;
}

/** --dry-run: every check passed, nothing written; what would be, with the drop-in in full. */
function formatDryRun(plan: InstallPlan): string {
  const {paths} = plan;
  const config = plan.config.parsed;
  const program = plan.packaged
    ? 'keep the program (the Debian package\'s)'
    : plan.programInPlace
    ? 'keep the program (this command runs from it)'
    : `${plan.programExisted ? 'replace' : 'write'} the program from ${plan.sourceDir}`;
  const configWhat = {
    write: 'write', rewrite: `write anew (the previous one kept as ${paths.configBackup})`, keep: 'keep',
  }[plan.config.action];
  const secretWhat = plan.secret.action === 'none' ? undefined : {
    keep: 'keep the installed secret',
    copy: `copy the secret from ${plan.secret.action === 'copy' ? plan.secret.from : ''}`,
    generate: 'generate a secret',
  }[plan.secret.action];
  const rows: [string, string][] = [
    [paths.installDir, program],
    [paths.configFile, `${configWhat} the config: ${describeConfig(config, true)}; valid`],
    ...plan.secret.action === 'none' ? [] : [[paths.secretFile, `${secretWhat}; key id ${plan.secret.keyId}`] as [string, string]],
    plan.packaged ? [underRoot(plan.root, PACKAGED_UNIT), 'keep the unit (the Debian package\'s)'] : [paths.unitFile, 'write the unit'],
    [paths.dropIn, `${plan.dropInChanges ? 'write' : 'write again, unchanged,'} the sandbox for this config: ` +
      describeSandbox(plan.sandbox)],
    plan.packaged ? [underRoot(plan.root, PACKAGED_CLI), 'keep the `baton` command (the Debian package\'s)']
      : [paths.wrapper, 'write the `baton` command'],
  ];
  const width = Math.max(...rows.map(([path]) => path.length));
  const lines = [`baton install --dry-run: the options, the config and the secret are valid` +
    `${plan.host === undefined ? '' : ', and so is this host for it (the host check)'}; nothing was changed. ` +
    `It would, on ${plan.root === '/' ? 'this system' : plan.root}:`];
  for (const [path, what] of rows) lines.push(`  ${path.padEnd(width)}  ${what}`);
  lines.push('', plan.live
    ? `and run: ${[DAEMON_RELOAD, ENABLE_NOW, IS_ACTIVE].map((args) => systemctlLine(args)).join('; ')}`
    : `and print, not run (${whyNotLive(plan.root)}): ${systemctlLine(DAEMON_RELOAD)}; ${systemctlLine(ENABLE_NOW)}`);
  lines.push('', `${paths.dropIn}:`, ...plan.dropInText.trimEnd().split('\n').map((line) => `  ${line}`));
  lines.push(...hostNotes(plan), '');
  return lines.join('\n');
}

/** The config in one line: a pair's role and beacons, or an etcd host's place; the service IP. */
function describeConfig(config: AnyConfig, ports: boolean): string {
  if (isEtcdConfig(config)) {
    return `host ${config.coordination.host} of ${config.coordination.hosts.join(', ')} in etcd mode, ` +
      config.services.map((s) => `service ${s.name} (${describeAddresses(s.service.ips)} on ${s.service.interface})`).join(', ');
  }
  const service = `service IP ${describeAddresses(config.service.ips)} on ${config.service.interface}`;
  const at = (endpoint: {address: string; port: number}): string => ports ? `${endpoint.address}:${endpoint.port}` : endpoint.address;
  return `${config.node} of pair ${config.pair}, beacons ${at(config.listen)} -> ${at(config.peer)}, ${service}`;
}

function nextSteps(plan: InstallPlan, config: AnyConfig, options: InstallOptions): string[] {
  if (isEtcdConfig(config)) {
    const others = config.coordination.hosts.filter((host) => host !== config.coordination.host);
    return [`Next: on ${others.join(' and ')}, write the same file with coordination.host changed to that host's name, ` +
      'run `baton install --keep-config` there, then `baton status` on any host: one holds the service, the others stand by.'];
  }
  if (plan.secret.action === 'none') return [];
  const other = config.node === 'primary' ? 'backup' : 'primary';
  const keyId = plan.secret.keyId;
  const status = 'Once both agents run, `baton status` on either host shows the peer alive, one host active and the ' +
    'other standby.';
  if (plan.secret.action !== 'generate' || options.answers === undefined) {
    return [`Next: ${status}`, `The secret's key id (${keyId}) must be the same on both hosts (\`baton check-config\` ` +
      `prints it); if it differs, copy ${SECRET_FILE} from one host to the other and restart both agents.`];
  }
  const answers = options.answers;
  const peer = config.peer.address;
  const scpHost = peer.includes(':') ? `[${peer}]` : peer;
  const args = ['install', '--role', other,
    '--pair', config.pair, '--listen', peer, '--peer', config.listen.address, ...config.service.ips.flatMap((ip) => ['--service-ip', ip.cidr]),
    '--interface', config.service.interface,
    ...(answers.accessLog === undefined ? [] : ['--access-log', answers.accessLog]),
    '--secret-from', '/root/baton-secret'];
  // The package's `baton` there; a checkout's own build otherwise.
  const install = plan.packaged
    ? formatCommandLine('baton', args)
    : formatCommandLine('node_modules/.bin/node', [CLI_ENTRY, ...args]);
  return [
    `Next, on the other host (the ${other}, ${peer}):`,
    '  1. Copy the secret there, byte for byte (it signs every beacon; with another key the hosts ignore each other):',
    `       scp ${SECRET_FILE} root@${scpHost}:/root/baton-secret`,
    plan.packaged
      ? '  2. There, with the same Debian package installed (dpkg -i), install with the addresses swapped'
      : '  2. There, in a build of the same baton (npm ci && npm run build), install with the addresses swapped',
    `     (--interface: the interface's name on that host), then delete the copy:`,
    `       ${install}`,
    '       rm /root/baton-secret',
    `     It must report key id ${keyId} for the secret, as here.`,
    `  3. ${status}`,
  ];
}
