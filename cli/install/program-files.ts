// The program part of an install: which packages the agent needs at run time (read from the lockfile), a staged
// copy of them and of dist/ beside the install dir, a check that the copy runs on its own Node, and the swap.

import {randomBytes} from 'node:crypto';
import {cp, mkdir, readdir, readFile, readlink, rename, rm, symlink} from 'node:fs/promises';
import {dirname, join, normalize, relative, sep} from 'node:path';
import {BatonError, describeError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import {errorCode, inspect} from './files.js';
import {AGENT_ENTRY, BUNDLED_NODE, CLI_ENTRY, UNIT_TEMPLATE} from './layout.js';

// package.json's engines: execa 10, ava 8 and nanoid 6 need Node 22 or later.
const MIN_NODE_MAJOR = 22;
// `node --version` answers in milliseconds and the agent's `--version` (loading all its modules) in under a second;
// 30 s leaves room for a host busy copying, and still ends a copy that hangs.
const CHECK_TIMEOUT_MS = 30_000;
// What a built checkout must hold for an install; node_modules/ is chosen package by package from the lockfile.
const REQUIRED_SOURCE = ['package.json', 'package-lock.json', AGENT_ENTRY, CLI_ENTRY, BUNDLED_NODE, UNIT_TEMPLATE];
/** Copied whole: [path, required]. dist/test is left out: the tests need ava and the other dev-only packages. */
const TOP_ITEMS: readonly (readonly [string, boolean])[] = [
  ['dist', true], ['package.json', true], ['package-lock.json', true], ['systemd', true], ['docs', false],
  ['README.md', false],
];
const EXCLUDED = ['dist/test'];
// Beside the install dir, on the same filesystem, so that putting the copy in place is one rename.
const STAGE_PREFIX = '.baton-new-';
const OLD_PREFIX = '.baton-old-';

/** One package of package-lock.json's `packages` map (lockfile v2/v3), as far as choosing what to copy goes. */
interface LockEntry {
  readonly dev?: unknown;
  readonly optional?: unknown;
  readonly devOptional?: unknown;
  readonly peer?: unknown;
  readonly link?: unknown;
}

export interface ProductionPackages {
  /** node_modules paths (node_modules/execa, node_modules/a/node_modules/b), the run-time packages, in lock order. */
  readonly required: readonly string[];
  /** Optional ones: copied when npm installed them (platform-specific builds), skipped when not. */
  readonly optional: readonly string[];
}

/**
 * The packages the program needs at run time: every entry of the lockfile that npm did not mark `dev` (needed only
 * by devDependencies). This is the set `npm ci --omit=dev` would install, so the copy is what npm would give.
 */
export function selectProductionPackages(lock: unknown, lockFile: string): ProductionPackages {
  const packages = (lock as {packages?: unknown} | null)?.packages;
  if (typeof packages !== 'object' || packages === null) {
    throw new BatonError('CONFIG_INVALID', `${lockFile}: no "packages" map (lockfileVersion 2 or 3); ` +
      'regenerate it with npm 7 or later: `npm install --package-lock-only`');
  }
  const required: string[] = [];
  const optional: string[] = [];
  for (const [path, value] of Object.entries(packages as Record<string, unknown>)) {
    // '' is the project itself; other paths outside node_modules/ are workspace folders.
    if (!path.startsWith('node_modules/')) continue;
    const entry = (value ?? {}) as LockEntry;
    if (entry.dev === true) continue;
    if (entry.link === true) {
      throw new BatonError('CONFIG_INVALID', `${lockFile}: ${path} is a link (a workspace or \`npm link\`), which an ` +
        'install cannot copy; install it from the registry and run `npm ci`');
    }
    (entry.optional === true || entry.devOptional === true || entry.peer === true ? optional : required).push(path);
  }
  return {required, optional};
}

/** Throws when `sourceDir` is not a built checkout (or an install) of baton, naming what is missing and the fix. */
export async function checkSource(sourceDir: string): Promise<void> {
  const missing: string[] = [];
  for (const path of REQUIRED_SOURCE) {
    if ((await inspect(join(sourceDir, path))).kind === 'missing') missing.push(path);
  }
  if (missing.length > 0) {
    throw new BatonError('CONFIG_INVALID', `${sourceDir} is not a built baton to install from: ${missing.join(', ')} ` +
      `missing; run \`npm ci && npm run build\` in ${sourceDir} and install again`);
  }
}

/** Whether `dir` holds a baton program (its package.json is baton's): what uninstall and install may replace. */
export async function isBatonProgram(dir: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {name?: unknown};
    return manifest.name === 'baton';
  } catch {
    return false;
  }
}

export interface StagedProgram {
  readonly dir: string;
  /** Production packages copied. */
  readonly packages: number;
  readonly skippedOptional: readonly string[];
}

/** The directory a new copy is staged in, beside `installDir`. */
export function stageDirFor(installDir: string): string {
  return join(dirname(installDir), `${STAGE_PREFIX}${randomBytes(6).toString('hex')}`);
}

/**
 * Copies the program from `sourceDir` into `stageDir` (which must not exist): dist/ without its tests, package.json,
 * the lockfile, systemd/ and docs/, and node_modules/ with the production packages only, their .bin links included
 * (.bin/node is the bundled runtime). Modes and symbolic links are copied as they are.
 */
export async function stageProgram(sourceDir: string, stageDir: string): Promise<StagedProgram> {
  const lockFile = join(sourceDir, 'package-lock.json');
  const {required, optional} = selectProductionPackages(JSON.parse(await readFile(lockFile, 'utf8')), lockFile);
  const skippedOptional: string[] = [];
  const copied: string[] = [];
  await mkdir(dirname(stageDir), {recursive: true, mode: 0o755});
  await mkdir(stageDir, {mode: 0o755});
  for (const [item, isRequired] of TOP_ITEMS) {
    const from = join(sourceDir, item);
    if (!isRequired && (await inspect(from)).kind === 'missing') continue;
    await copyTree(from, join(stageDir, item), (path) => !EXCLUDED.some((excluded) =>
      path === join(sourceDir, excluded) || path.startsWith(join(sourceDir, excluded) + sep)));
  }
  for (const path of [...required, ...optional]) {
    const from = join(sourceDir, path);
    if ((await inspect(from)).kind === 'missing') {
      if (optional.includes(path)) {
        skippedOptional.push(path);
        continue;
      }
      throw new BatonError('CONFIG_INVALID', `${from} is missing but package-lock.json needs it at run time; ` +
        `run \`npm ci\` in ${sourceDir} and install again`);
    }
    // A package's own node_modules/ holds its nested dependencies, which the lockfile lists (and marks) separately.
    const nested = join(from, 'node_modules');
    await mkdir(dirname(join(stageDir, path)), {recursive: true, mode: 0o755});
    await copyTree(from, join(stageDir, path), (file) => file !== nested && !file.startsWith(nested + sep));
    copied.push(path);
  }
  await copyBinLinks(sourceDir, stageDir, copied);
  return {dir: stageDir, packages: copied.length, skippedOptional};
}

/** What the copy runs as, observed by running it. */
export interface ProgramCheck {
  /** `v24.21.0`: the bundled Node's own answer. */
  readonly nodeVersion: string;
  /** `baton-agent 0.1.0`: the agent's answer, proving its dependencies resolve inside the copy. */
  readonly agentVersion: string;
}

/**
 * Runs the program in `dir` on its own Node: `node --version` (22 or later) and the agent's `--version`, which loads
 * every module the agent imports. Throws COMMAND_FAILED naming what did not run.
 */
export async function checkProgram(dir: string, runner: CommandRunner): Promise<ProgramCheck> {
  const node = join(dir, BUNDLED_NODE);
  const nodeVersion = (await runChecked(runner, node, ['--version'], dir)).trim();
  const major = /^v(\d+)\./.exec(nodeVersion)?.[1];
  if (major === undefined || Number(major) < MIN_NODE_MAJOR) {
    throw new BatonError('COMMAND_FAILED', `${node} is Node ${nodeVersion}, baton needs ${MIN_NODE_MAJOR} or ` +
      'later: reinstall the `node` package (`npm ci`) in the directory you install from');
  }
  const agentVersion = (await runChecked(runner, node, [join(dir, AGENT_ENTRY), '--version'], dir)).trim();
  if (!agentVersion.startsWith('baton-agent ')) {
    throw new BatonError('COMMAND_FAILED', `${node} ${join(dir, AGENT_ENTRY)} --version printed '${agentVersion}' ` +
      'instead of `baton-agent VERSION`: the copy is not a working baton; rebuild (`npm run build`) and install again');
  }
  return {nodeVersion, agentVersion};
}

async function runChecked(runner: CommandRunner, file: string, args: readonly string[], dir: string): Promise<string> {
  try {
    return await runner.run(file, args, {timeoutMs: CHECK_TIMEOUT_MS});
  } catch (error) {
    throw new BatonError('COMMAND_FAILED', `the program copied to ${dir} does not run on its own: ` +
      `${describeError(error)}; nothing was replaced`, {cause: error});
  }
}

/**
 * Puts `stageDir` in place as `installDir` by renames, so a running agent keeps the files it has open (overwriting
 * its node binary in place would fail with ETXTBSY) and the old program is gone only once the new one is there.
 * Returns whether an old program was replaced.
 */
export async function swapProgram(stageDir: string, installDir: string): Promise<boolean> {
  const old = join(dirname(installDir), `${OLD_PREFIX}${randomBytes(6).toString('hex')}`);
  let replaced = true;
  try {
    await rename(installDir, old);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
    replaced = false;
  }
  try {
    await rename(stageDir, installDir);
  } catch (error) {
    if (replaced) await rename(old, installDir);
    throw error;
  }
  if (replaced) await rm(old, {recursive: true, force: true});
  return replaced;
}

/** Removes what an interrupted install left beside `installDir` (staged and old copies); returns their paths. */
export async function removeLeftovers(installDir: string): Promise<string[]> {
  const parent = dirname(installDir);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }
  const leftovers = names.filter((name) => name.startsWith(STAGE_PREFIX) || name.startsWith(OLD_PREFIX))
    .map((name) => join(parent, name));
  for (const path of leftovers) await rm(path, {recursive: true, force: true});
  return leftovers;
}

async function copyTree(from: string, to: string, filter: (path: string) => boolean): Promise<void> {
  // verbatimSymlinks: npm's relative links (.bin/node -> ../node/bin/node) must stay relative to work in the copy.
  await cp(from, to, {recursive: true, verbatimSymlinks: true, preserveTimestamps: true, errorOnExist: true,
    force: false, filter});
}

/**
 * Recreates the `.bin` links of node_modules/ (and of nested node_modules/) whose targets were copied; links to
 * dev-only packages (tsc, ava) are left out, so no link in the copy points nowhere.
 */
async function copyBinLinks(sourceDir: string, stageDir: string, copied: readonly string[]): Promise<void> {
  for (const modules of ['node_modules', ...copied.map((path) => `${path}/node_modules`)]) {
    const binDir = join(sourceDir, modules, '.bin');
    let names: string[];
    try {
      names = await readdir(binDir);
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') continue;
      throw error;
    }
    for (const name of names) {
      let target: string;
      try {
        target = await readlink(join(binDir, name));
      } catch (error) {
        if (errorCode(error) === 'EINVAL') continue;
        throw error;
      }
      const resolved = relative(sourceDir, normalize(join(binDir, target)));
      if (!copied.some((path) => resolved.startsWith(`${path}/`))) continue;
      await mkdir(join(stageDir, modules, '.bin'), {recursive: true, mode: 0o755});
      await symlink(target, join(stageDir, modules, '.bin', name));
    }
  }
}
