// A HostProbe in memory: interfaces with their addresses, files with owner and mode (every directory above a file
// added as root:root 0755), log lines, programs on PATH. Anything not added does not exist.

import type {FileFacts} from '../../agent/config/unit-file-access.js';
import type {HostProbe} from '../../agent/ports.js';

export const ROOT = 0;
export const ADM = 4;
export const WWW_DATA = 33;
export const NOBODY = 65534;
const NAMES: Readonly<Record<number, string>> = {0: 'root', 4: 'adm', 33: 'www-data', 1000: 'alice', 65534: 'nobody'};

export function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, stat '${path}'`), {code: 'ENOENT'});
}

export function facts(kind: FileFacts['kind'], uid: number, gid: number, mode: number): FileFacts {
  return {kind, uid, gid, mode: (kind === 'file' ? 0o100000 : kind === 'directory' ? 0o040000 : 0o010000) | mode,
    owner: NAMES[uid], group: NAMES[gid === NOBODY ? NOBODY : gid]};
}

export class FakeHostProbe implements HostProbe {
  readonly path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';
  readonly interfaceList = new Map<string, string[]>([['eth0', ['192.0.2.11', 'fe80::1']], ['lo', ['127.0.0.1', '::1']]]);
  readonly files = new Map<string, FileFacts | Error>([['/', facts('directory', ROOT, ROOT, 0o755)]]);
  readonly logs = new Map<string, readonly string[] | Error>();
  readonly programs = new Map<string, string>([['ip', '/usr/sbin/ip'], ['arping', '/usr/sbin/arping'], ['perl', '/usr/bin/perl']]);

  /** A file (and the directories above it, root:root 0755 unless already there). */
  addFile(path: string, file: FileFacts | Error, lines?: readonly string[] | Error): this {
    const parts = path.split('/').filter((part) => part !== '');
    for (let depth = 1; depth < parts.length; depth++) {
      const dir = `/${parts.slice(0, depth).join('/')}`;
      if (!this.files.has(dir)) this.files.set(dir, facts('directory', ROOT, ROOT, 0o755));
    }
    this.files.set(path, file);
    if (lines !== undefined) this.logs.set(path, lines);
    return this;
  }

  async interfaces(): Promise<ReadonlyMap<string, readonly string[]>> {
    return this.interfaceList;
  }

  async stat(path: string): Promise<FileFacts | Error> {
    return this.files.get(path) ?? enoent(path);
  }

  async lastLines(path: string): Promise<readonly string[] | Error> {
    return this.logs.get(path) ?? enoent(path);
  }

  /** Interfaces whose IPv6 is off. */
  readonly ipv6Off = new Set<string>();

  async ipv6Disabled(iface: string): Promise<boolean> {
    return this.ipv6Off.has(iface);
  }

  async findProgram(name: string): Promise<string | undefined> {
    return this.programs.get(name);
  }
}
