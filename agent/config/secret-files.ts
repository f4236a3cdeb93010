// The shared secrets: reading a secret file safely, checking its size and mode, the keyring and key ids.

import {createHash} from 'node:crypto';
import {isMap} from 'yaml';
import {closeSync, constants, fstatSync, openSync, readFileSync} from 'node:fs';
import {describeFsError, quote, shellQuote} from './messages.js';
import {ABSOLUTE_PATH, UTC_DATE} from './value-specs.js';
import type {Field, Reader} from './yaml-reader.js';

/** A shared secret and its key id (first 4 bytes of SHA-256 over the secret, as 8 hex digits). */
export interface Key {
  readonly id: string;
  readonly secret: Uint8Array;
  readonly file: string;
  /** Wall-clock ms from which datagrams signed with it are refused (`expired-key`); undefined: no end. */
  readonly until?: number;
}

export interface Keyring {
  /** Signs everything we send. */
  readonly signing: Key;
  /** Accepted on receipt: the signing key first, then the `accept_secret_files` (key rotation). */
  readonly accepted: readonly Key[];
}

/** What parseConfig needs to know about a secret file. */
export interface SecretFileInfo {
  /** st_mode of the file; only the permission bits are looked at. */
  readonly mode: number;
  readonly content: Uint8Array;
}

/** Reads a secret file; returns the Error that prevented it instead of throwing. */
export type SecretReader = (path: string) => SecretFileInfo | Error;

// HMAC-SHA256 key: no shorter than the hash output, 32 bytes (RFC 2104 §3).
const MIN_SECRET_BYTES = 32;

/** Key id of a secret: the first 4 bytes of its SHA-256, as 8 lowercase hex digits. */
export function keyIdOf(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest().subarray(0, 4).toString('hex');
}

// The secret is the file's bytes exactly as they are, a trailing newline included and counted in the length: both
// hosts must sign with identical bytes, and a binary secret (head -c 32 /dev/urandom) may end in 0x0a by chance.
export function readKey(reader: Reader, field: Field, file: string, readSecret: SecretReader): Key | undefined {
  const shown = field.value === undefined ? `${quote(file)} (the default)` : quote(file);
  const create = `head -c ${MIN_SECRET_BYTES} /dev/urandom > ${shellQuote(file)} && chmod 600 ${shellQuote(file)}`;
  const info = readSecret(file);
  if (info instanceof Error) {
    reader.problem(field.line, `${field.path}: expected a readable secret file, got ${shown}: ` +
      `${describeFsError(info)}; create it on one host with \`${create}\` and copy it to the peer`);
    return undefined;
  }
  let ok = true;
  if (info.content.length < MIN_SECRET_BYTES) {
    ok = false;
    reader.problem(field.line, `${field.path}: expected a secret of at least ${MIN_SECRET_BYTES} bytes, ` +
      `got ${info.content.length} bytes in ${quote(file)}; replace it with \`${create}\` and copy it to the peer`);
  }
  if ((info.mode & 0o077) !== 0) {
    ok = false;
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    reader.problem(field.line, `${field.path}: expected a file only its owner can read (mode 0600), ` +
      `got mode ${mode} on ${quote(file)}; run \`chmod 600 ${shellQuote(file)}\``);
  }
  // A private copy: a Uint8Array cannot be frozen, so nobody else may hold a reference to it.
  return ok ? {id: keyIdOf(info.content), secret: new Uint8Array(info.content), file} : undefined;
}

const ACCEPT_KEYS = ['path', 'until'] as const;

/**
 * accept_secret_files: each item a path, or `{path, until}` where `until` ends the key's acceptance (key rotation
 * with an end: once the peer signs with the new key, the old one should stop opening the door). An entry already
 * past its `until` is no error: a restart after the end must not fail, the key is simply refused.
 */
export function readAcceptedKeys(reader: Reader, field: Field, secretFile: string | undefined, readSecret: SecretReader): {
  readonly files: readonly string[] | undefined; readonly keys: readonly (Key | undefined)[];
} {
  const items = reader.items(field, 'a list of absolute paths, or of {path, until}');
  if (items === undefined) return {files: undefined, keys: []};
  const files: (string | undefined)[] = [];
  const keys = items.map((item) => {
    const entry = isMap(item.value)
      ? reader.section(item, ACCEPT_KEYS, 'a mapping like {path: /etc/baton/secret.old, until: 2027-01-31}')
      : undefined;
    const pathField = entry?.field('path') ?? item;
    const until = entry === undefined ? undefined : reader.required(entry.field('until'), UTC_DATE);
    const path = reader.required(pathField, ABSOLUTE_PATH);
    files.push(path);
    if (path === undefined) return undefined;
    if (path === secretFile || files.slice(0, -1).includes(path)) {
      reader.expected(pathField, 'a file not already listed in secret_file or accept_secret_files');
      return undefined;
    }
    const key = readKey(reader, pathField, path, readSecret);
    // An entry with a broken `until` has been reported; it yields no key rather than one that never ends.
    if (entry === undefined || key === undefined) return key;
    return until === undefined ? undefined : {...key, until};
  });
  return {files: files.some((f) => f === undefined) ? undefined : files as string[], keys};
}

/** Reads a secret file without ever hanging; the Error (with its `code`) when it cannot. Shared with `baton install`. */
export function readSecretFile(path: string): SecretFileInfo | Error {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the agent; fstat then refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) return new Error('not a regular file');
    return {mode: stat.mode, content: readFileSync(fd)};
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
