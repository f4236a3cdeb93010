// Where `baton install` puts things on the target system, and how a target path maps under --root.

import {join} from 'node:path';
import {DEFAULT_CONFIG_FILE} from '../../agent/config/schema.js';
import {SANDBOX_DROP_IN} from '../../agent/config/unit-sandbox.js';

/** The program: dist/, its production node_modules/ (with Node 24) and the unit template. */
export const INSTALL_DIR = '/opt/baton';
export const CONFIG_DIR = '/etc/baton';
export const CONFIG_FILE = DEFAULT_CONFIG_FILE;
export const SECRET_FILE = '/etc/baton/secret';
// The agent's state_dir and control_socket: the directories the unit asks systemd to create (StateDirectory=baton,
// RuntimeDirectory=baton), so the config and the unit agree without install creating either.
export const STATE_DIR = '/var/lib/baton';
export const CONTROL_SOCKET = '/run/baton/control.sock';
export const UNIT_NAME = 'baton-agent';
export const UNIT_FILE = '/etc/systemd/system/baton-agent.service';
/** The sandbox's allow-lists for the installed config (agent/config/unit-sandbox.ts). */
export const DROP_IN_FILE = SANDBOX_DROP_IN;
export const WRAPPER_FILE = '/usr/local/bin/baton';
/** Inside INSTALL_DIR: the runtime npm's `node` package put there, and the two entry points. */
export const BUNDLED_NODE = 'node_modules/.bin/node';
export const AGENT_ENTRY = 'dist/agent/main.js';
export const CLI_ENTRY = 'dist/cli/main.js';
export const UNIT_TEMPLATE = 'systemd/baton-agent.service';
// The Debian package (npm run package, packaging/) puts the program in INSTALL_DIR too, and these beside it: dpkg owns
// them, and `baton install` of a packaged system writes only the config, the secret and the drop-in.
/** dpkg's list of the package's files: present exactly when the package is installed (or removed, not purged). */
export const PACKAGE_FILE_LIST = '/var/lib/dpkg/info/baton.list';
export const PACKAGED_CLI = '/usr/bin/baton';
export const PACKAGED_AGENT = '/usr/sbin/baton-agent';
/** Debian's place for a package's units (Debian 12: /lib; with merged /usr the same as /usr/lib). */
export const PACKAGED_UNIT = `/lib/systemd/system/${UNIT_NAME}.service`;
// sd_booted(3): systemd is the running init exactly when this directory exists.
export const SYSTEMD_RUNNING_MARKER = '/run/systemd/system';

// Modes. The agent runs as root; nothing else on the host needs to read its config or key.
/** /etc/baton: the secret's directory is closed to everyone but root, whatever the modes of the files inside. */
export const CONFIG_DIR_MODE = 0o700;
/** The config names no secret, but it is root's business alone, like the directory it lives in. */
export const CONFIG_FILE_MODE = 0o600;
/** The agent refuses a secret that its group or others can read (config.ts). */
export const SECRET_FILE_MODE = 0o600;
/** systemd reads units as any user (`systemctl cat` without root). */
export const UNIT_FILE_MODE = 0o644;
/** Like the unit: `systemctl cat` shows it to any user. */
export const DROP_IN_FILE_MODE = 0o644;
export const WRAPPER_MODE = 0o755;
/** Parents created on the way (/opt, /etc/systemd/system, /usr/local/bin): the usual system modes. */
export const PARENT_DIR_MODE = 0o755;

/** A target path as seen from here: `path` itself when root is /, else the same path inside root. */
export function underRoot(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

/** 0600 style, as ls and chmod write it. */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
