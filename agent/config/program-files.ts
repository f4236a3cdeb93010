// The programs the config names (hooks, command checks): present, a regular file, executable, checked at load.

import {statSync} from 'node:fs';
import {describeFsError, quote, shellQuote} from './messages.js';
import type {Field, Reader} from './yaml-reader.js';

/** What parseConfig needs to know about a program it will run (hooks, command checks). */
export interface ProgramFileInfo {
  /** st_mode of the file (symbolic links followed); only the execute bits are looked at. */
  readonly mode: number;
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
  if ((info.mode & 0o111) === 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    reader.problem(field.line, `${field.path}: expected an executable file, got mode ${mode} on ${quote(path)}; ` +
      `run \`chmod +x ${shellQuote(path)}\``);
  }
}

export function inspectProgramFile(path: string): ProgramFileInfo | Error {
  try {
    const stat = statSync(path);
    return stat.isFile() ? {mode: stat.mode} : new Error('not a regular file');
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
