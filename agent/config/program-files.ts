// The programs the config names (hooks, command checks, the drain's graceful command): present, a regular file,
// executable, and changeable by root alone, file and every directory on the way (keepalived's
// enable_script_security), checked at load.

import {lstatSync, readlinkSync, statSync, type Stats} from 'node:fs';
import {dirname, isAbsolute, join, resolve} from 'node:path';
import {describeFsError, quote, shellQuote} from './messages.js';
import type {Field, Reader} from './yaml-reader.js';

/** Why a program is not safe to run: a path anyone but root can change, and the command that fixes it. */
export interface UnsafePath {
  /** The file or directory at fault (as reached, symbolic links resolved). */
  readonly path: string;
  readonly why: string;
  readonly fix: string;
}

/** What parseConfig needs to know about a program it will run (hooks, command checks). */
export interface ProgramFileInfo {
  /** st_mode of the file (symbolic links followed); only the execute bits are looked at. */
  readonly mode: number;
  /** The first file or directory on the way to the program that someone other than root could change. */
  readonly unsafe?: UnsafePath;
}

/** Looks at a program file; returns the Error that prevented it (missing, not a regular file) instead of throwing. */
export type ProgramInspector = (path: string) => ProgramFileInfo | Error;

// Checked at load, like the secret files: a missing or non-executable program would otherwise show up only at the
// first state change or health round, when nobody is watching the config.
export function checkProgram(reader: Reader, field: Field, path: string, inspectProgram: ProgramInspector): void {
  const info = inspectProgram(path);
  if (info instanceof Error) {
    reader.problem(field.line, `${field.path}: expected an executable file, got ${quote(path)}: ` +
      `${describeFsError(info)}; install it there or correct the path`);
    return;
  }
  if (info.unsafe !== undefined) {
    const {unsafe} = info;
    const where = unsafe.path === path ? '' : ` on the way to ${quote(path)}`;
    reader.problem(field.line, `${field.path}: expected a program only root can change, got ${quote(unsafe.path)}` +
      `${where}, which ${unsafe.why}: someone other than root could make the agent run their code; ` +
      `run \`${unsafe.fix}\``);
    return;
  }
  if ((info.mode & 0o111) === 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    reader.problem(field.line, `${field.path}: expected an executable file, got mode ${mode} on ${quote(path)}; ` +
      `run \`chmod +x ${shellQuote(path)}\``);
  }
}

/** The real inspector; `root` is where the file system the program will run on is mounted (`baton install --root`). */
export function inspectProgramFile(path: string, root = '/'): ProgramFileInfo | Error {
  const onDisk = (p: string) => root === '/' ? p : join(root, p);
  try {
    const stat = statSync(onDisk(path));
    if (!stat.isFile()) return new Error('not a regular file');
    const unsafe = findUnsafePath(path, {
      lstat: (p) => lstatSync(onDisk(p)),
      readlink: (p) => readlinkSync(onDisk(p)),
      trustedUids: TRUSTED_UIDS,
    });
    return unsafe === undefined ? {mode: stat.mode} : {mode: stat.mode, unsafe};
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

// root, and the agent's own user when that is not root (tests, a lab run without root): whoever the agent runs as
// can change what it runs anyway.
const TRUSTED_UIDS: ReadonlySet<number> = new Set([0, process.geteuid?.() ?? 0]);
// Linux's own limit (MAXSYMLINKS), after which path resolution fails with ELOOP.
const MAX_SYMLINKS = 40;
const S_ISVTX = 0o1000;
const GROUP_OR_OTHER_WRITE = 0o022;

export interface PathWalker {
  lstat(path: string): Pick<Stats, 'mode' | 'uid' | 'isDirectory' | 'isSymbolicLink'>;
  readlink(path: string): string;
  readonly trustedUids: ReadonlySet<number>;
}

/**
 * Walks `path` from / one name at a time, as the kernel resolves it, and returns the first file or directory that
 * someone other than a trusted user could change: one owned by another user, or group- or world-writable. A
 * symbolic link is followed where it stands, so the directories holding each link and every directory of each
 * target are judged (a link itself has no permissions of its own: whoever may write its directory may replace it).
 * A world-writable directory with the sticky bit (/tmp) is accepted when root owns it, as keepalived does: in it
 * only an entry's owner may rename or remove that entry, so root's program there cannot be swapped.
 */
export function findUnsafePath(path: string, walker: PathWalker): UnsafePath | undefined {
  let links = 0;
  const walk = (from: string, names: readonly string[]): {at: string} | UnsafePath => {
    let at = from;
    for (const name of names) {
      if (name === '' || name === '.') continue;
      if (name === '..') {
        at = dirname(at);
        continue;
      }
      const next = join(at, name);
      const stat = walker.lstat(next);
      if (stat.isSymbolicLink()) {
        links += 1;
        if (links > MAX_SYMLINKS) throw Object.assign(new Error(`too many symbolic links at ${next}`), {code: 'ELOOP'});
        const target = walker.readlink(next);
        const reached = isAbsolute(target) ? walk('/', ['', ...target.split('/')]) : walk(at, target.split('/'));
        if ('why' in reached) return reached;
        at = reached.at;
      } else {
        const unsafe = judge(next, stat, walker.trustedUids);
        if (unsafe !== undefined) return unsafe;
        at = next;
      }
    }
    return {at};
  };
  const rootUnsafe = judge('/', walker.lstat('/'), walker.trustedUids);
  if (rootUnsafe !== undefined) return rootUnsafe;
  const result = walk('/', resolve('/', path).split('/'));
  return 'why' in result ? result : undefined;
}

function judge(path: string, stat: Pick<Stats, 'mode' | 'uid' | 'isDirectory'>,
  trustedUids: ReadonlySet<number>): UnsafePath | undefined {
  const kind = stat.isDirectory() ? 'directory' : 'file';
  if (!trustedUids.has(stat.uid)) {
    return {path, why: `is owned by uid ${stat.uid}, not root`, fix: `chown root ${shellQuote(path)}`};
  }
  if ((stat.mode & GROUP_OR_OTHER_WRITE) === 0) return undefined;
  if (stat.isDirectory() && (stat.mode & S_ISVTX) !== 0 && stat.uid === 0) return undefined;
  const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
  const who = (stat.mode & 0o002) !== 0 ? 'world' : 'group';
  return {path, why: `is a ${who}-writable ${kind} (mode ${mode})`, fix: `chmod go-w ${shellQuote(path)}`};
}
