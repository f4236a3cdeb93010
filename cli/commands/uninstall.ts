// `baton uninstall`: stops and disables the agent, removes the unit, the `baton` command and the program; the config,
// the secret and the state stay unless --purge.

import {readdir, readFile, readlink, rm, rmdir} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {BatonError, describeError, isBatonError} from '../../agent/errors.js';
import {formatBytes, inspect, treeBytes} from '../install/files.js';
import {
  CONFIG_DIR, CONFIG_FILE, DROP_IN_FILE, INSTALL_DIR, PACKAGE_FILE_LIST, STATE_DIR, UNIT_FILE, underRoot, WRAPPER_FILE,
} from '../install/layout.js';
import {isBatonProgram, removeLeftovers} from '../install/program-files.js';
import {
  createSystemDeps, DAEMON_RELOAD, DISABLE_NOW, requireRootUser, STOP, runSystemctl, systemctlLine, whyNotLive,
  type ServiceIpHere, type SystemDeps,
} from '../install/system.js';
import {DROP_IN_MARKER, WRAPPER_MARKER} from '../install/texts.js';
import type {Output} from '../output.js';

export interface UninstallOptions {
  /** Absolute; `/` is this system. */
  readonly root: string;
  /** Also remove /etc/baton (config and secret) and /var/lib/baton (state). */
  readonly purge: boolean;
  /** Uninstall even while this host holds the service IP (or when that cannot be told). */
  readonly force?: boolean;
}

export async function run(out: Output, options: UninstallOptions, deps: SystemDeps = createSystemDeps()): Promise<number> {
  try {
    return await uninstall(out, options, deps);
  } catch (error) {
    if (isBatonError(error)) throw error;
    // A file operation failed halfway: what is left is what a second run removes.
    throw new BatonError('COMMAND_FAILED', `uninstall from ${options.root} stopped: ${describeError(error)}; fix ` +
      'that and run the same command again', {cause: error});
  }
}

async function uninstall(out: Output, options: UninstallOptions, deps: SystemDeps): Promise<number> {
  const {root} = options;
  requireRootUser(root, deps.uid, 'uninstall');
  if ((await inspect(root)).kind !== 'directory') {
    throw new BatonError('BAD_REQUEST', `--root ${root}: not a directory; correct the path`);
  }
  const installDir = underRoot(root, INSTALL_DIR);
  const unitFile = underRoot(root, UNIT_FILE);
  const wrapper = underRoot(root, WRAPPER_FILE);
  const dropIn = underRoot(root, DROP_IN_FILE);
  const configDir = underRoot(root, CONFIG_DIR);
  const stateDir = underRoot(root, STATE_DIR);

  // The Debian package's files are dpkg's to remove; its prerm and postrm do what uninstall would.
  if ((await inspect(underRoot(root, PACKAGE_FILE_LIST))).kind === 'file') {
    throw new BatonError('BAD_REQUEST', `baton is installed by the Debian package (${underRoot(root, PACKAGE_FILE_LIST)}); ` +
      'nothing was changed. Move the service IP away first if this host holds it (`baton switchover`), then remove ' +
      `the package: \`apt remove baton\` stops and disables baton-agent and keeps ${CONFIG_DIR} and ${STATE_DIR}; ` +
      '`apt purge baton` removes them too');
  }
  // Checked before any change: only what install put there is removed.
  const program = await inspect(installDir);
  if (program.kind !== 'missing' && !(program.kind === 'directory' && await isBatonProgram(installDir))) {
    throw new BatonError('BAD_REQUEST', `${installDir} is not a baton install (no package.json named baton in it); ` +
      'nothing was changed. Remove it yourself if it is to go');
  }
  const wrapperEntry = await inspect(wrapper);
  if (wrapperEntry.kind !== 'missing' &&
    !(wrapperEntry.kind === 'file' && (await readFile(wrapper, 'utf8')).includes(WRAPPER_MARKER))) {
    throw new BatonError('BAD_REQUEST', `${wrapper} was not written by \`baton install\`; nothing was changed. ` +
      'Remove or move it yourself, then uninstall again');
  }
  const dropInEntry = await inspect(dropIn);
  if (dropInEntry.kind !== 'missing' &&
    !(dropInEntry.kind === 'file' && (await readFile(dropIn, 'utf8')).includes(DROP_IN_MARKER))) {
    throw new BatonError('BAD_REQUEST', `${dropIn} was not written by \`baton install\`; nothing was changed. ` +
      'Remove or move it yourself, then uninstall again');
  }
  const unitPresent = (await inspect(unitFile)).kind !== 'missing';
  const live = deps.isLiveSystem(root);
  if (live && unitPresent && options.force !== true) await refuseWhileServing(await deps.serviceIpHere(underRoot(root, CONFIG_FILE)));
  if (program.kind === 'missing' && !unitPresent && wrapperEntry.kind === 'missing' && dropInEntry.kind === 'missing') {
    return nothingInstalled(out, options, keptDirs(configDir, stateDir));
  }

  const lines: string[] = [];
  if (live && unitPresent) {
    await runSystemctl(deps.runner, DISABLE_NOW);
    lines.push(`${systemctlLine(DISABLE_NOW)}: done, the agent is stopped and disabled`);
  }
  // What `systemctl disable` removes, for a system that is not running: no enable link may point at a missing unit.
  for (const link of await enableLinks(unitFile)) {
    await rm(link, {force: true});
    lines.push(`removed ${link}`);
  }
  lines.push(unitPresent ? `removed ${unitFile}` : `${unitFile}: not there`);
  if (unitPresent) await rm(unitFile, {force: true});
  if (dropInEntry.kind !== 'missing') {
    await rm(dropIn, {force: true});
    lines.push(`removed ${dropIn}`);
    lines.push(await removeIfEmpty(dirname(dropIn)));
  }
  lines.push(wrapperEntry.kind === 'missing' ? `${wrapper}: not there` : `removed ${wrapper}`);
  await rm(wrapper, {force: true});
  if (program.kind === 'missing') {
    lines.push(`${installDir}: not there`);
  } else {
    const bytes = await treeBytes(installDir);
    await rm(installDir, {recursive: true, force: true});
    lines.push(`removed ${installDir} (${formatBytes(bytes)})`);
  }
  for (const leftover of await removeLeftovers(installDir)) lines.push(`removed ${leftover}, left by an interrupted install`);
  if (live && unitPresent) {
    await runSystemctl(deps.runner, DAEMON_RELOAD);
    lines.push(`${systemctlLine(DAEMON_RELOAD)}: done`);
  }
  lines.push(...await keepOrPurge(keptDirs(configDir, stateDir), options.purge, true));
  const text = [`baton uninstalled from ${root === '/' ? 'this system' : root}:`, ...lines.map((line) => `  ${line}`)];
  if (!live) {
    // The enable links went with the unit (what `disable` does); what is left is for a manager that still runs it.
    text.push('', `systemd: not touched, ${whyNotLive(root)}. Where baton-agent still runs, stop it and let systemd ` +
      'forget the unit:', `  ${systemctlLine(STOP)}`, `  ${systemctlLine(DAEMON_RELOAD)}`);
  }
  out.stdout(`${text.join('\n')}\n`);
  return 0;
}

/**
 * Stopping the agent of the host that serves ends the pair's failover (on_stop: keep) or moves the service unplanned
 * (release): refused before any change, with the planned way out.
 */
async function refuseWhileServing(here: ServiceIpHere): Promise<void> {
  if ('unknown' in here) {
    throw new BatonError('BAD_REQUEST', `cannot tell whether this host holds the service IP: ${here.unknown}. Nothing was ` +
      'changed; if the service IP is not here (`ip address show`), run `baton uninstall --force`');
  }
  if (!here.holds) return;
  const after = here.onStop === 'keep'
    ? 'which leaves the address here with no agent and no failover (on_stop: keep)'
    : 'which releases the address, and the peer takes it over unplanned, with the service gap of a failover (on_stop: release)';
  throw new BatonError('BAD_REQUEST', `this host holds the service IP ${here.cidr} on ${here.interface}: uninstall stops its ` +
    `agent, ${after}. Nothing was changed. Move the service first (\`baton switchover\`), then uninstall; ` +
    '`baton uninstall --force` uninstalls anyway');
}

/** Nothing of the program is here: say so rather than "uninstalled"; --purge still removes config and state. */
async function nothingInstalled(out: Output, options: UninstallOptions, dirs: readonly KeptDir[]): Promise<number> {
  const lines = [`baton is not installed on ${options.root === '/' ? 'this system' : options.root}: no unit, no program, no \`baton\` command.`];
  lines.push(...(await keepOrPurge(dirs, options.purge, false)).map((line) => `  ${line}`));
  out.stdout(`${lines.join('\n')}\n`);
  return 0;
}

/** What uninstall keeps unless --purge, each with what it holds. */
type KeptDir = readonly [dir: string, holds: string];

function keptDirs(configDir: string, stateDir: string): KeptDir[] {
  return [[configDir, 'config and secret: a later install reuses them with --keep-config'],
    [stateDir, 'the agent\'s epoch and switch journal']];
}

/** Removes the kept directories under --purge, else keeps them; a line for each (and for a missing one, if asked). */
async function keepOrPurge(dirs: readonly KeptDir[], purge: boolean, sayMissing: boolean): Promise<string[]> {
  const lines: string[] = [];
  for (const [dir, holds] of dirs) {
    const present = (await inspect(dir)).kind !== 'missing';
    if (!present) {
      if (sayMissing && purge) lines.push(`${dir}: not there`);
    } else if (purge) {
      await rm(dir, {recursive: true, force: true});
      lines.push(`removed ${dir} (--purge)`);
    } else {
      lines.push(`kept ${dir} (${holds}); to remove it: rm -r ${dir}, or uninstall --purge`);
    }
  }
  return lines;
}

/** The drop-in directory goes with the unit, unless the operator's own drop-ins (override.conf) are in it. */
async function removeIfEmpty(dir: string): Promise<string> {
  const left = await readdir(dir).catch(() => []);
  if (left.length > 0) return `kept ${dir}: it holds ${left.join(', ')}, not written by \`baton install\``;
  await rmdir(dir);
  return `removed ${dir}`;
}

/** Links in the *.wants/ and *.requires/ directories beside the unit that point at it (what `enable` made). */
async function enableLinks(unitFile: string): Promise<string[]> {
  const unitDir = dirname(unitFile);
  const name = unitFile.split('/').at(-1) ?? '';
  let dirs: string[];
  try {
    dirs = (await readdir(unitDir)).filter((dir) => dir.endsWith('.wants') || dir.endsWith('.requires'));
  } catch {
    return [];
  }
  const links: string[] = [];
  for (const dir of dirs) {
    const link = join(unitDir, dir, name);
    try {
      await readlink(link);
      links.push(link);
    } catch {
      // Not there, or not a link: nothing of ours.
    }
  }
  return links;
}
