// Config texts, in-memory secret files and programs, and the assertions the config tests share.

import test, {type ExecutionContext} from 'ava';
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {ProgramInspector} from '../../agent/config/program-files.js';
import {parseConfig} from '../../agent/config/schema.js';
import type {SecretFileInfo, SecretReader} from '../../agent/config/secret-files.js';
import {BatonError} from '../../agent/errors.js';

// DESIGN.md's example; line numbers in the expectations below refer to this text.
export const DESIGN_EXAMPLE = `pair: web                      # pair id, the same on both hosts
node: primary                  # primary | backup
listen: { address: 192.0.2.11, port: 7411 }
peer:   { address: 192.0.2.12, port: 7411 }
secret_file: /etc/baton/secret
service:
  address: 192.0.2.100/24
  interface: eth0
  mode: address                # address | link
heartbeat: { interval_ms: 200, dead_after_ms: 1000 }
confirm:
  access_log: /var/log/nginx/access.log
  min_requests: 3
  timeout_s: 30
on_stop: keep                  # keep | release
state_dir: /var/lib/baton
control_socket: /run/baton/control.sock
`;

export const MINIMAL = `pair: web
node: backup
listen: {address: 192.0.2.12}
peer: {address: 192.0.2.11}
service: {address: 192.0.2.100/24, interface: eth0}
`;

export const SECRET = Uint8Array.from({length: 32}, (_, index) => index);

export function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {code: 'ENOENT'});
}

/** A SecretReader over in-memory files; any other path does not exist. */
export function secrets(files: Readonly<Record<string, SecretFileInfo>>): SecretReader {
  return (path) => files[path] ?? enoent(path);
}

export const DEFAULT_SECRET = secrets({'/etc/baton/secret': {mode: 0o100600, content: SECRET}});

/** A ProgramInspector over in-memory files (path → st_mode); any other path does not exist. */
export function programs(modes: Readonly<Record<string, number>>): ProgramInspector {
  return (path) => {
    const mode = modes[path];
    return mode === undefined ? enoent(path) : {mode};
  };
}

export const PROGRAMS = programs({
  '/usr/local/bin/baton-notify': 0o100755,
  '/usr/local/bin/check-db': 0o100750,
  '/usr/local/bin/not-executable': 0o100644,
  '/opt/my hooks/it\'s "notify"': 0o100700,
});

/** `text` with `from` replaced by `to`; `from` must occur exactly once, so a stale edit cannot pass silently. */
export function edit(text: string, ...replacements: Array<[from: string, to: string]>): string {
  return replacements.reduce((result, [from, to]) => {
    if (result.split(from).length !== 2) throw new Error(`expected exactly one ${JSON.stringify(from)}`);
    return result.replace(from, to);
  }, text);
}

export function problems(file: string, lines: readonly string[]): string {
  const heading = `${file}: ${lines.length} problem${lines.length === 1 ? '' : 's'}`;
  return [heading, ...lines.map((line) => `  - ${file}:${line}`)].join('\n');
}

export function configError(t: ExecutionContext, run: () => unknown): BatonError {
  const error = t.throws(run, {instanceOf: BatonError});
  t.is(error.code, 'CONFIG_INVALID');
  return error;
}

export async function configErrorAsync(t: ExecutionContext, run: () => Promise<unknown>): Promise<BatonError> {
  const error = await t.throwsAsync(run, {instanceOf: BatonError});
  t.is(error.code, 'CONFIG_INVALID');
  return error;
}

/** Parses `yaml` as baton.yaml and expects exactly these problem lines ("<line> <key>: …"), in this order. */
export const rejects = test.macro((t, yaml: string, expected: readonly string[]) => {
  const error = configError(t, () => parseConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS));
  t.is(error.message, problems('baton.yaml', expected));
});

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-config-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

export async function writeFileWithMode(path: string, content: string | Uint8Array, mode: number): Promise<string> {
  await writeFile(path, content);
  await chmod(path, mode); // explicit, so the umask cannot change it
  return path;
}

export const BAD_INTERFACE = '8 service.interface: expected a Linux interface name ' +
  '(1..15 bytes, no \'/\', \':\', whitespace, control or shell characters), got';

/** Writes DESIGN's example with secret_file (and `extra` lines) into a temp dir; returns the paths. */
export async function configWithSecret(t: ExecutionContext, secret: string | Uint8Array, mode: number, extra = '') {
  const dir = await tempDir(t);
  const secretFile = await writeFileWithMode(join(dir, 'secret'), secret, mode);
  const file = await writeFileWithMode(join(dir, 'baton.yaml'),
    edit(DESIGN_EXAMPLE, ['/etc/baton/secret', secretFile]) + extra, 0o644);
  return {dir, file, secretFile};
}
