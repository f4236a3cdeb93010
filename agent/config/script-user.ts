// script_user: the unprivileged user the hook and command health checks run as, looked up at load.

import {readFileSync} from 'node:fs';
import {quote} from './messages.js';
import {Rejection, textSpec} from './value-specs.js';
import type {Field, Reader} from './yaml-reader.js';

/** Who the configured programs run as: numeric ids, resolved once at load, so a run never looks a name up. */
export interface ScriptUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** A user's ids by name, undefined when there is no such user, or the Error that prevented the lookup. */
export type UserLookup = (name: string) => {readonly uid: number; readonly gid: number} | undefined | Error;

// keepalived runs its scripts as `keepalived_script` when that user exists and otherwise as root. A default that
// depends on the host is a surprise, and root is what this key exists to avoid, so the default is the one
// unprivileged user every Debian host has. It is shared with other software: a dedicated user is better (docs).
export const DEFAULT_SCRIPT_USER = 'nobody';

// useradd's default NAME_REGEX on Debian, 32 bytes at most.
const USER_NAME = textSpec('a user name like nobody or baton-script', (value) =>
  /^[a-z_][a-z0-9_-]{0,30}\$?$/.test(value) ? value : new Rejection());

/**
 * Reads script_user when a program will run (`needed`), or when the key is set, and looks it up. Root is refused:
 * the point is that a hook cannot do what the agent can.
 */
export function readScriptUser(reader: Reader, field: Field, needed: boolean,
  lookupUser: UserLookup): ScriptUser | undefined {
  const name = reader.optional(field, USER_NAME, DEFAULT_SCRIPT_USER);
  if (name === undefined || (!needed && field.value === undefined)) return undefined;
  const found = lookupUser(name);
  const key = field.value === undefined ? `${field.path} (default ${quote(name)})` : field.path;
  if (found instanceof Error) {
    reader.problem(field.line, `${key}: cannot look up user ${quote(name)}: ${found.message}`);
    return undefined;
  }
  if (found === undefined) {
    reader.problem(field.line, `${key}: expected a user in /etc/passwd, got ${quote(name)}; create it with ` +
      `\`useradd --system --no-create-home --shell /usr/sbin/nologin ${name}\` or name another`);
    return undefined;
  }
  if (found.uid === 0) {
    reader.problem(field.line, `${key}: expected an unprivileged user, got ${quote(name)} (uid 0): the hook and ` +
      'command checks would keep the power of the agent');
    return undefined;
  }
  return {name, uid: found.uid, gid: found.gid};
}

/** Looks a user up in /etc/passwd (local users: a system user made by useradd is one; NSS sources are not read). */
export function lookupLocalUser(name: string, passwdFile = '/etc/passwd'): {uid: number; gid: number} | undefined | Error {
  let text: string;
  try {
    text = readFileSync(passwdFile, 'utf8');
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined && /^\d+$/.test(uid) && /^\d+$/.test(gid)) {
      return {uid: Number(uid), gid: Number(gid)};
    }
  }
  return undefined;
}
