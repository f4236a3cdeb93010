// The pair's shared secret at install: kept when there is one, copied with --secret-from, else generated; and the
// readers that let the config be validated against the secret about to be installed, under --root.

import {BatonError} from '../../agent/errors.js';
import {inspectProgramFile, type ProgramInspector} from '../../agent/config/program-files.js';
import type {SecretFileInfo, SecretReader} from '../../agent/config/secret-files.js';
import {keyIdOf, readSecretFile} from '../../agent/config/secret-files.js';
import {SECRET_FILE, SECRET_FILE_MODE, underRoot} from './layout.js';

// HMAC-SHA256 wants a key of at least its output size, 32 bytes (RFC 2104 §3); config.ts refuses shorter ones.
const MIN_SECRET_BYTES = 32;
const GENERATED_RANDOM_BYTES = 32;

export type SecretPlan =
  /** The target already has one: changing it would cut the pair apart, so it is never replaced. */
  | {readonly action: 'keep'; readonly content: Uint8Array; readonly mode: number; readonly keyId: string}
  | {readonly action: 'copy'; readonly from: string; readonly content: Uint8Array; readonly keyId: string}
  | {readonly action: 'generate'; readonly content: Uint8Array; readonly keyId: string};

/**
 * Decides the secret: `existing` is the target's secret file (read through readSecretFile), `secretFrom` the file of
 * --secret-from. Throws CONFIG_INVALID when --secret-from is unusable or differs from a secret already installed.
 */
export function planSecret(existing: SecretFileInfo | Error, existingPath: string, secretFrom: string | undefined,
  random: (size: number) => Uint8Array): SecretPlan {
  const present = !(existing instanceof Error && (existing as {code?: unknown}).code === 'ENOENT');
  if (present && existing instanceof Error) {
    throw new BatonError('CONFIG_INVALID', `${existingPath}: cannot read the installed secret: ${existing.message}; ` +
      'fix it (a regular file, mode 0600) or move it away to install a new one', {cause: existing});
  }
  const from = secretFrom === undefined ? undefined : readSecretFrom(secretFrom);
  if (present && !(existing instanceof Error)) {
    const keyId = keyIdOf(existing.content);
    if (from !== undefined && !Buffer.from(from).equals(Buffer.from(existing.content))) {
      throw new BatonError('CONFIG_INVALID', `${existingPath} already holds a secret (key id ${keyId}) that differs ` +
        `from --secret-from ${secretFrom} (key id ${keyIdOf(from)}); an install never replaces a secret. If this ` +
        `host must take the other one, move ${existingPath} away first (the two hosts must end with the same file)`);
    }
    return {action: 'keep', content: existing.content, mode: existing.mode, keyId};
  }
  if (from !== undefined && secretFrom !== undefined) return {action: 'copy', from: secretFrom, content: from, keyId: keyIdOf(from)};
  // Hex text rather than raw bytes: it survives copy and paste and configuration-management tools; the file's bytes
  // are the key (config.ts), 64 characters carrying 256 random bits, with no newline to lose or add.
  const content = new TextEncoder().encode(Buffer.from(random(GENERATED_RANDOM_BYTES)).toString('hex'));
  return {action: 'generate', content, keyId: keyIdOf(content)};
}

function readSecretFrom(path: string): Uint8Array {
  const info = readSecretFile(path);
  if (info instanceof Error) {
    throw new BatonError('CONFIG_INVALID', `--secret-from ${path}: cannot read it: ${info.message}; copy the other ` +
      `host's ${SECRET_FILE} here first (scp), then pass its path`, {cause: info});
  }
  if (info.content.length < MIN_SECRET_BYTES) {
    throw new BatonError('CONFIG_INVALID', `--secret-from ${path}: expected a secret of at least ${MIN_SECRET_BYTES} ` +
      `bytes, got ${info.content.length}; pass a copy of the other host's ${SECRET_FILE}, or leave --secret-from out ` +
      'to generate one here');
  }
  return info.content;
}


/**
 * Secret files as the target system will see them: the installed secret is the one planned (not yet written when
 * the config is validated), any other path is read under `root`.
 */
export function targetSecretReader(root: string, planned: SecretPlan): SecretReader {
  return (path) => path === SECRET_FILE
    ? {mode: planned.action === 'keep' ? planned.mode : SECRET_FILE_MODE, content: planned.content}
    : readSecretFile(underRoot(root, path));
}

/** Secret files as installed under `root`, read from disk: for checking the config once everything is written. */
export function installedSecretReader(root: string): SecretReader {
  return (path) => readSecretFile(underRoot(root, path));
}

/** Programs named by the config (hooks, command checks), looked at under `root`. */
export function targetProgramInspector(root: string): ProgramInspector {
  return (path) => inspectProgramFile(path, root);
}
