// The real HostProbe: this host's interfaces and addresses (`ip -j address show`), stat(2) with
// the names of /etc/passwd and /etc/group, a log's last lines, programs on PATH. Also who reads files: this process
// (the agent at start) or the agent as its systemd unit will run it (check-config and install, which run outside it).

import {constants, readFileSync} from 'node:fs';
import {access, readdir, readFile, stat} from 'node:fs/promises';
import {networkInterfaces} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {type FileAccess, type FileFacts, parseUnitFileAccess} from '../config/unit-file-access.js';
import {SANDBOX_DROP_IN} from '../config/unit-sandbox.js';
import type {CommandRunner, HostProbe} from '../ports.js';
import {readLastLines} from './access-log-tail.js';
import {createExecaRunner} from './execa-runner.js';

/** The unit `baton install` writes, and the template it is written from (in this baton's own tree). */
export const INSTALLED_UNIT = '/etc/systemd/system/baton-agent.service';
export const UNIT_TEMPLATE = fileURLToPath(new URL('../../../systemd/baton-agent.service', import.meta.url));
const UNIT_NAME = 'baton-agent.service';
// Linux capability numbers (linux/capability.h).
const CAP_DAC_OVERRIDE = 1n;
const CAP_DAC_READ_SEARCH = 2n;

/**
 * @param path the PATH programs are looked up in (the agent's own, or the operator's for check-config)
 * @param runner runs `ip` for the interfaces and their addresses
 */
export function createSystemHostProbe(options: {readonly path: string; readonly runner?: CommandRunner}): HostProbe {
  const ids = {users: names('/etc/passwd'), groups: names('/etc/group')};
  const runner = options.runner ?? createExecaRunner();
  return {
    path: options.path,
    async interfaces() {
      // `ip -j address show`: every interface with every address, down or without carrier too (libuv's list, Node's
      // networkInterfaces(), has only those that are up and running). Without ip (itself a problem the check names):
      // the names from /proc/net/dev (this process's network namespace's, whatever /sys shows) and libuv's addresses.
      try {
        return parseIpAddressJson(await runner.run('ip', ['-j', 'address', 'show']));
      } catch {
        const listed = networkInterfaces();
        const names = await readFile('/proc/net/dev', 'utf8').then(parseNetDev, () => Object.keys(listed));
        return new Map(names.toSorted().map((name) => [name, (listed[name] ?? []).map((entry) => entry.address)]));
      }
    },
    async stat(path) {
      try {
        const found = await stat(path);
        const facts: FileFacts = {
          kind: found.isFile() ? 'file' : found.isDirectory() ? 'directory' : 'other',
          uid: found.uid, gid: found.gid, mode: found.mode,
          owner: ids.users.get(found.uid), group: ids.groups.get(found.gid),
        };
        return facts;
      } catch (error) {
        return asError(error);
      }
    },
    async lastLines(path) {
      try {
        return await readLastLines(path);
      } catch (error) {
        // The tail's own error names the fix for a switch; the file system's code is what the check words itself.
        const cause = (error as {cause?: unknown}).cause;
        return asError(cause instanceof Error ? cause : error);
      }
    },
    async ipv6Disabled(iface) {
      // This network namespace's view, like the interfaces above. No IPv6 in the kernel: no net/ipv6 at all.
      const text = await readFile(`/proc/sys/net/ipv6/conf/${iface}/disable_ipv6`, 'utf8').catch(() => undefined);
      return text?.trim() !== '0';
    },
    async findProgram(name) {
      for (const dir of options.path.split(':').filter((entry) => entry.startsWith('/'))) {
        const candidate = join(dir, name);
        const found = await stat(candidate).catch(() => undefined);
        if (found?.isFile() !== true) continue;
        if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
      }
      return undefined;
    },
  };
}

/** Who this process reads files as: the agent at start, in whatever sandbox it runs (the kernel applies it). */
export async function processFileAccess(): Promise<FileAccess> {
  const uid = process.geteuid?.() ?? -1;
  const gids = [process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])];
  const effective = await readFile('/proc/self/status', 'utf8').then((text) => /^CapEff:\s*([0-9a-f]+)$/m.exec(text)?.[1], () => undefined);
  const set = effective === undefined ? 0n : BigInt(`0x${effective}`);
  const readsAnything = ((set >> CAP_DAC_OVERRIDE) & 1n) === 1n || ((set >> CAP_DAC_READ_SEARCH) & 1n) === 1n;
  return {uid, gids, readsAnything, hidden: [],
    described: `this agent: uid ${uid}, ${readsAnything ? 'reading past file modes' : 'without CAP_DAC_OVERRIDE'}`};
}

/**
 * Who the agent reads files as under its unit: the installed one and its drop-ins; or, when none is installed or
 * `dropIns` are given (what install is about to write), `unitText` (default: this baton's template) with `dropIns`
 * and the operator's own drop-ins beside them.
 */
export async function unitFileAccess(options: {readonly unitText?: string; readonly dropIns?: readonly string[]} = {}): Promise<FileAccess> {
  const installed = await readFile(INSTALLED_UNIT, 'utf8').catch(() => undefined);
  const dropInDir = `${INSTALLED_UNIT}.d`;
  let texts: string[];
  if (installed !== undefined && options.dropIns === undefined) {
    const files = (await readdir(dropInDir).catch(() => [] as string[])).filter((name) => name.endsWith('.conf')).toSorted();
    texts = [installed, ...await Promise.all(files.map((name) => readFile(join(dropInDir, name), 'utf8').catch(() => '')))];
  } else {
    // Other drop-ins (the operator's override.conf) stay beside the one install rewrites.
    const files = (await readdir(dropInDir).catch(() => [] as string[]))
      .filter((name) => name.endsWith('.conf') && join(dropInDir, name) !== SANDBOX_DROP_IN).toSorted();
    texts = [options.unitText ?? await readFile(UNIT_TEMPLATE, 'utf8'), ...(options.dropIns ?? []),
      ...await Promise.all(files.map((name) => readFile(join(dropInDir, name), 'utf8').catch(() => '')))];
  }
  const users = entries('/etc/passwd');
  const groups = entries('/etc/group');
  return parseUnitFileAccess(texts, {
    user: (name) => {
      const fields = users.find((line) => line[0] === name);
      return fields === undefined ? undefined : {uid: Number(fields[2]), gid: Number(fields[3])};
    },
    group: (name) => {
      const fields = groups.find((line) => line[0] === name);
      return fields === undefined ? undefined : Number(fields[2]);
    },
  }, installed === undefined || options.dropIns !== undefined ? `${UNIT_NAME} as \`baton install\` writes it` : UNIT_NAME);
}

/**
 * Interface → addresses from `ip -j address show`, sorted by name. Throws on output that is not its JSON.
 * In code-unit order, as the /proc/net/dev fallback sorts, not localeCompare: the agent runs this at start, and one
 * localeCompare loads ICU's collation data, 3 MB of RSS kept for the agent's life (measured --jitless).
 */
export function parseIpAddressJson(stdout: string): Map<string, string[]> {
  const links = JSON.parse(stdout) as Array<{ifname?: unknown; addr_info?: Array<{local?: unknown}>}>;
  if (!Array.isArray(links)) throw new Error('`ip -j address show` printed no list');
  return new Map(links.filter((link) => typeof link.ifname === 'string')
    .map((link) => [link.ifname as string, (link.addr_info ?? []).map((info) => info.local).filter((local): local is string => typeof local === 'string')] as const)
    .toSorted(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** The interface names of /proc/net/dev: two heading lines, then `  eth0: 1234 …` per interface. */
export function parseNetDev(text: string): string[] {
  return text.split('\n').slice(2).map((line) => line.split(':')[0]?.trim() ?? '').filter((name) => name !== '');
}

/** The colon-separated fields of each line of /etc/passwd or /etc/group (local entries; NSS is not asked). */
function entries(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => line.split(':'));
  } catch {
    return [];
  }
}

/** id → name from /etc/passwd or /etc/group. */
function names(file: string): Map<number, string> {
  return new Map(entries(file).filter((fields) => /^\d+$/.test(fields[2] ?? '')).map((fields) => [Number(fields[2]), fields[0] ?? '']));
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
