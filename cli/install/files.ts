// File effects of install and uninstall: atomic writes with their mode from the start, directories, and what is there.

import {randomBytes} from 'node:crypto';
import {chmod, lstat, mkdir, open, readdir, rename, rm} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {PARENT_DIR_MODE} from './layout.js';

/** What a path is, as lstat saw it. */
export type Entry =
  | {readonly kind: 'missing'}
  | {readonly kind: 'file' | 'directory' | 'symlink' | 'other'; readonly mode: number; readonly size: number};

export async function inspect(path: string): Promise<Entry> {
  try {
    const stat = await lstat(path);
    const kind = stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : 'other';
    return {kind, mode: stat.mode & 0o7777, size: stat.size};
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return {kind: 'missing'};
    throw error;
  }
}

/**
 * Replaces `path` with `data`: a temp file beside it, created with `mode` (so a secret is never readable by others,
 * not even for a moment), fsynced, then renamed over the old one, so a crash leaves the old file or the new one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  await ensureParents(path);
  const temp = join(dirname(path), `.${path.split('/').at(-1) ?? 'file'}.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    // The umask may have taken bits away from `mode`; the mode asked for is the mode meant.
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, {force: true});
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, {force: true});
    throw error;
  }
}

/** Creates `path` (and its parents, 0755) if missing, and sets its mode either way. */
export async function ensureDirectory(path: string, mode: number): Promise<void> {
  await ensureParents(path);
  try {
    await mkdir(path, {mode});
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  await chmod(path, mode);
}

async function ensureParents(path: string): Promise<void> {
  await mkdir(dirname(path), {recursive: true, mode: PARENT_DIR_MODE});
}

/** Total size in bytes of the regular files under `path` (symbolic links not followed). */
export async function treeBytes(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, {withFileTypes: true, recursive: true})) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** "126.9 MB" (decimal megabytes, as df -H and package registries count). */
export function formatBytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as {code?: unknown} | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
