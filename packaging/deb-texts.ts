// Pure text of the Debian package's own files: control, the maintainer scripts, the two commands, copyright and
// changelog. What they do is decided here; packaging/main.ts only writes them.

import {
  AGENT_ENTRY, BUNDLED_NODE, CLI_ENTRY, CONFIG_DIR, CONFIG_FILE, DROP_IN_FILE, INSTALL_DIR, STATE_DIR, UNIT_NAME,
} from '../cli/install/layout.js';
import {wrapWords} from '../cli/format.js';
import {DROP_IN_MARKER} from '../cli/install/texts.js';

export const PACKAGE_NAME = 'baton';
export const COMPLETION_FILE = '/usr/share/bash-completion/completions/baton';
export const DOC_DIR = '/usr/share/doc/baton';
// What the agent runs besides itself (docs/install.md): ip, arping, and perl for its ARP sender and netlink helper.
// nftables only for the drain, without which a switch still works and says so: recommended, not required.
export const DEPENDS = ['iproute2', 'iputils-arping', 'perl-base'] as const;
export const RECOMMENDS = ['nftables'] as const;
// No real person maintains a package built from a checkout: whoever ships it to hosts names themselves with
// DEBFULLNAME and DEBEMAIL, as for dch(1).
export const DEFAULT_MAINTAINER = 'baton maintainers <baton@example.org>';
/** The Debian revision of a package built from the source tree as it is (no Debian patches). */
export const DEBIAN_REVISION = '1';
export const LINTIAN_OVERRIDES = `/usr/share/lintian/overrides/${PACKAGE_NAME}`;

export interface ControlFields {
  readonly version: string;
  readonly architecture: string;
  readonly maintainer: string;
  /** Installed size in KiB, as dpkg counts it. */
  readonly installedSizeKib: number;
  /** The bundled Node's shared libraries, as Depends entries (libc6 (>= 2.28), …). */
  readonly libraryDepends: readonly string[];
  readonly description: string;
}

export function renderControl(fields: ControlFields): string {
  const [summary = '', ...rest] = fields.description.trim().split('\n');
  const body = rest.join(' ').trim().replace(/\s+/g, ' ');
  return [
    `Package: ${PACKAGE_NAME}`,
    `Version: ${fields.version}`,
    `Architecture: ${fields.architecture}`,
    `Maintainer: ${fields.maintainer}`,
    `Installed-Size: ${fields.installedSizeKib}`,
    `Depends: ${[...fields.libraryDepends, ...DEPENDS].join(', ')}`,
    `Recommends: ${RECOMMENDS.join(', ')}`,
    'Section: net',
    'Priority: optional',
    `Description: ${summary}`,
    ...wrapWords(body, 79).map((line) => ` ${line}`),
    '',
  ].join('\n');
}

/** A command of the package: the program in INSTALL_DIR on its own Node (dist/*.js's `#!/usr/bin/env node` would
 *  take the system's, Node 18 on Debian 12, too old), so a shell script rather than a symbolic link. */
export function renderCommand(name: 'baton' | 'baton-agent'): string {
  const entry = name === 'baton' ? CLI_ENTRY : AGENT_ENTRY;
  return [
    '#!/bin/sh',
    `# ${name}, from the Debian package ${PACKAGE_NAME}: runs ${INSTALL_DIR}/${entry} on the Node bundled in ${INSTALL_DIR}.`,
    `exec ${INSTALL_DIR}/${BUNDLED_NODE} ${INSTALL_DIR}/${entry} "$@"`,
    '',
  ].join('\n');
}

// sd_booted(3), as install's isLiveSystem: systemctl is run only where systemd is the running init; elsewhere (a
// container, a chroot, an image being built) there is nothing to reload, stop or start.
const SYSTEMD_RUNNING = '[ -d /run/systemd/system ]';

/**
 * postinst: tells systemd about the unit, and never starts the agent: without /etc/baton/baton.yaml it has nothing
 * to run, and on an upgrade a restart is the operator's (standby first; on_stop: release would hand the IP over).
 */
export function renderPostinst(version: string): string {
  return [
    '#!/bin/sh',
    `# postinst of ${PACKAGE_NAME} ${version}: systemd learns the unit; the agent is never started or restarted here.`,
    'set -e',
    'if [ "$1" = configure ]; then',
    `  if ${SYSTEMD_RUNNING}; then systemctl daemon-reload; fi`,
    `  if [ ! -e ${CONFIG_FILE} ]; then`,
    `    echo "baton: installed; ${UNIT_NAME} is not started, ${CONFIG_FILE} does not exist yet. On this host, as root:"`,
    '    echo "  baton install --role primary|backup --listen ADDR --peer ADDR --service-ip CIDR --interface IF"',
    `    echo "writes the config, the shared secret and the unit's allow-lists, and starts ${UNIT_NAME}: see baton(8)."`,
    `  elif ${SYSTEMD_RUNNING} && systemctl is-active --quiet ${UNIT_NAME}; then`,
    `    echo "baton: ${version} installed; the running ${UNIT_NAME} keeps the previous program until"`,
    `    echo "  systemctl restart ${UNIT_NAME}   (the standby first, then the active host; see baton(8))"`,
    '  else',
    `    echo "baton: installed; ${CONFIG_FILE} is kept. \\\`baton install --keep-config\\\` checks it, writes the unit's"`,
    `    echo "allow-lists again and starts ${UNIT_NAME}."`,
    '  fi',
    'fi',
    'exit 0',
    '',
  ].join('\n');
}

/** prerm: on removal the agent stops and is disabled (no enable link is left pointing at a removed unit). An
 *  upgrade leaves it running: dpkg replaces files by rename, so it keeps the program it started with. */
export function renderPrerm(): string {
  return [
    '#!/bin/sh',
    `# prerm of ${PACKAGE_NAME}: removal stops and disables ${UNIT_NAME}; an upgrade leaves it running.`,
    'set -e',
    'case "$1" in',
    '  remove|deconfigure)',
    `    if ${SYSTEMD_RUNNING}; then systemctl stop ${UNIT_NAME}.service; fi`,
    `    if command -v systemctl >/dev/null; then systemctl disable --quiet ${UNIT_NAME}.service; fi`,
    '    ;;',
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

/**
 * postrm: purge removes what `baton install` wrote for the package (the config and secret, the allow-list drop-in
 * if it carries install's mark) and the agent's state; a plain remove keeps them, as `baton uninstall` does.
 */
export function renderPostrm(): string {
  const dropInDir = DROP_IN_FILE.slice(0, DROP_IN_FILE.lastIndexOf('/'));
  return [
    '#!/bin/sh',
    `# postrm of ${PACKAGE_NAME}: purge removes ${CONFIG_DIR}, ${STATE_DIR} and the unit's allow-list drop-in.`,
    'set -e',
    'if [ "$1" = purge ]; then',
    `  rm -rf ${CONFIG_DIR} ${STATE_DIR}`,
    `  if [ -f ${DROP_IN_FILE} ] && grep -qF '${DROP_IN_MARKER}' ${DROP_IN_FILE}; then rm -f ${DROP_IN_FILE}; fi`,
    `  if [ -d ${dropInDir} ]; then rmdir --ignore-fail-on-non-empty ${dropInDir}; fi`,
    'fi',
    'case "$1" in',
    `  remove|purge) if ${SYSTEMD_RUNNING}; then systemctl daemon-reload; fi ;;`,
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

/**
 * The shared libraries the bundled Node links against, as Depends: libc6 at the newest GLIBC_ symbol version it
 * names, libstdc++6 and libgcc-s1 when it needs them (official Node builds do).
 */
export function libraryDepends(binary: Uint8Array): string[] {
  const text = Buffer.from(binary).toString('latin1');
  const glibc = [...new Set([...text.matchAll(/GLIBC_2\.(\d+)/g)].map((match) => Number(match[1])))]
    .sort((a, b) => a - b).at(-1);
  return [
    glibc === undefined ? 'libc6' : `libc6 (>= 2.${glibc})`,
    ...(text.includes('libstdc++.so.6') ? ['libstdc++6'] : []),
    ...(text.includes('libgcc_s.so.1') ? ['libgcc-s1'] : []),
  ];
}

/** One bundled package and its licence, as its package.json says. */
export interface BundledPackage {
  readonly path: string;
  readonly name: string;
  readonly license: string;
}

/** debian/copyright in the machine-readable format (DEP-5): baton's own licence and each bundled package's. */
export function renderCopyright(license: string, year: number, bundled: readonly BundledPackage[]): string {
  const stanzas = [
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      `Upstream-Name: ${PACKAGE_NAME}`,
      'Comment: The program in /opt/baton carries its run-time npm packages, Node.js among them, in',
      ' /opt/baton/node_modules; each keeps its own licence text in its directory.',
    ],
    ['Files: *', `Copyright: ${year} the baton authors`, `License: ${license}`],
    ...bundled.map((item) => [
      `Files: ${INSTALL_DIR.slice(1)}/${item.path}/*`,
      `Copyright: the authors of ${item.name}, see ${INSTALL_DIR}/${item.path}`,
      `License: ${item.license}`,
    ]),
  ];
  const licenses = [...new Set([license, ...bundled.map((item) => item.license)])].sort();
  for (const name of licenses) {
    stanzas.push([`License: ${name}`, ` The text of the ${name} licence is in each package's directory named above`,
      ' (LICENSE or LICENSE.md), and for Node.js in node_modules/node.',
      ...(COMMON_LICENSES.has(name) ? [` On Debian systems it is also in /usr/share/common-licenses/${name}.`] : [])]);
  }
  return `${stanzas.map((lines) => lines.join('\n')).join('\n\n')}\n`;
}

// Licences Debian keeps in /usr/share/common-licenses (base-files), which the copyright file must point at.
const COMMON_LICENSES: ReadonlySet<string> = new Set(['Apache-2.0', 'Artistic', 'BSD', 'GPL-2', 'GPL-3', 'LGPL-2.1',
  'LGPL-3', 'MPL-2.0']);

/**
 * Lintian's findings that stay, each with why (lintian prints the comment above an override with it). All come from
 * one decision: the package carries baton as `baton install` lays it out, /opt/baton with npm's packages and the
 * Node.js project's own build of Node 24, rather than Debian's Node 18 and Debian-packaged libraries.
 */
export function renderLintianOverrides(): string {
  return [
    '# /opt/baton is the layout `baton install` uses too, and this is a local package, not one for the Debian archive:',
    '# the FHS gives /opt to add-on application software packages.',
    'baton: dir-or-file-in-opt *',
    '# The Node.js project\'s release binary of Node 24, as npm\'s `node` package installs it: built by them with its',
    '# own zlib (and OpenSSL, ICU) linked in, not position-independent, with its symbols for post-mortem tools.',
    '# Debian 12\'s nodejs is 18 and baton needs 22 or later.',
    'baton: embedded-library zlib [opt/baton/node_modules/node/bin/node]',
    'baton: unstripped-binary-or-object [opt/baton/node_modules/node/bin/node]',
    'baton: hardening-no-pie [opt/baton/node_modules/node/bin/node]',
    '# Command-line entry points of bundled npm packages and of baton itself: only ever run by the bundled Node',
    '# (/usr/bin/baton, /usr/sbin/baton-agent and the unit name it), never through their #!/usr/bin/env node, which',
    '# would pick a system Node that may be too old.',
    'baton: missing-dep-for-interpreter node (does not satisfy nodejs:any) *',
    'baton: script-not-executable *',
    '# Essential, but named because the agent runs /usr/bin/perl (its ARP sender and netlink address helper): an image',
    '# stripped of perl-base would otherwise fail at the first takeover, not at install.',
    'baton: depends-on-essential-package-without-using-version Depends: perl-base',
    '# npm\'s layout: the `node` package keeps its installer\'s dependency in its own node_modules.',
    'baton: repeated-path-segment node_modules [opt/baton/node_modules/node/node_modules/]',
    '# A local package, never uploaded to Debian: there is no ITP bug for its first changelog entry to close.',
    'baton: initial-upload-closes-no-bugs *',
    '',
  ].join('\n');
}

/** changelog.Debian: one entry for this build; `date` in RFC 5322 form (`date -R`). */
export function renderChangelog(version: string, maintainer: string, date: string): string {
  return [
    `${PACKAGE_NAME} (${version}) unstable; urgency=medium`,
    '',
    `  * Built from the baton source tree by \`npm run package\`.`,
    '',
    ` -- ${maintainer}  ${date}`,
    '',
  ].join('\n');
}
