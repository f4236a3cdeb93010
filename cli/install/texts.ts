// Pure text of what `baton install` writes: the commented config, the unit for an install dir, the `baton` wrapper.

import {stringify} from 'yaml';
import type {Role} from '../../agent/state-machine.js';
import {
  BIND_ALLOW_VARIABLE, bindAllowValue, IP_ALLOW_VARIABLE, ipAllowValue, PRIVILEGED_EXCEPTIONS, SANDBOX_DROP_IN,
  SOCKET_BIND_MIN_SYSTEMD, type UnitSandbox,
} from '../../agent/config/unit-sandbox.js';
import {BUNDLED_NODE, CLI_ENTRY, CONFIG_FILE, CONTROL_SOCKET, INSTALL_DIR, SECRET_FILE, STATE_DIR} from './layout.js';

/** The operator's answers, as given on the command line; checked by validating the text they produce. */
export interface ConfigAnswers {
  readonly pair: string;
  readonly node: Role;
  readonly listen: string;
  readonly peer: string;
  /** One address, or an IPv4 and an IPv6 one (a dual-stack service), as --service-ip gave them. */
  readonly serviceIps: readonly string[];
  readonly interface: string;
  readonly accessLog: string | undefined;
}

/** Which command-line option gave each config key: problems found in the generated text name the option to fix. */
export const OPTION_OF_KEY: Readonly<Record<string, string>> = {
  'pair': '--pair',
  'node': '--role',
  'listen.address': '--listen',
  'peer.address': '--peer',
  'service.address': '--service-ip',
  'service.interface': '--interface',
  'confirm.access_log': '--access-log',
  'secret_file': '--secret-from',
};

/**
 * The config file for these answers, every key with a comment that says what it is for. Keys whose default is
 * right for an install (ports, heartbeat timers, confirm counts) are left out, so that defaults stay in config.ts and
 * a later version's better default applies; the comments show them for tuning.
 */
export function renderConfig(answers: ConfigAnswers): string {
  const other = answers.node === 'primary' ? 'backup' : 'primary';
  const accessLog = answers.accessLog === undefined
    ? [
      '  # Not set at install: `baton switchover` refuses until it is. Name the web server\'s access log, e.g.',
      '  # access_log: /var/log/nginx/access.log',
    ]
    : [`  access_log: ${scalar(answers.accessLog)}`];
  return [
    `# ${CONFIG_FILE}: baton-agent's configuration on this host, written by \`baton install\`.`,
    `# Every key is explained in ${INSTALL_DIR}/docs/configuration.md. After an edit: \`baton check-config\`, then`,
    '# `systemctl restart baton-agent` (with on_stop: keep the service IP stays where it is meanwhile).',
    '',
    '# The pair id: the same on both hosts. Beacons of another pair are rejected.',
    `pair: ${scalar(answers.pair)}`,
    `# This host's role; the other host is the ${other}. The primary takes the service IP when both start.`,
    `node: ${answers.node}`,
    '',
    '# Beacons (authenticated UDP datagrams) leave from this address of this host. Not the service IP: that one',
    '# moves, this one stays. The port is 7411 unless set here with `port:`.',
    'listen:',
    `  address: ${scalar(answers.listen)}`,
    `# The ${other}'s beacon address (its listen.address); datagrams from any other address are rejected.`,
    'peer:',
    `  address: ${scalar(answers.peer)}`,
    '',
    '# The shared key that signs every beacon (HMAC-SHA256): byte for byte the same file on both hosts, mode 0600.',
    `secret_file: ${SECRET_FILE}`,
    '',
    ...answers.serviceIps.length === 1 ? [
      '# The address that moves between the hosts, with its prefix length, and the interface that carries it here.',
      '# mode: address adds and removes it as a secondary address; link brings a dedicated interface down and up.',
    ] : [
      '# The addresses that move between the hosts, with their prefix lengths: one IPv4 and one IPv6 address moving',
      '# together (a dual-stack service), and the interface that carries them here. mode: address adds and removes',
      '# them as secondary addresses; link brings a dedicated interface down and up.',
    ],
    'service:',
    `  address: ${answers.serviceIps.length === 1 ? scalar(answers.serviceIps[0] ?? '') : `[${answers.serviceIps.map(scalar).join(', ')}]`}`,
    `  interface: ${scalar(answers.interface)}`,
    '  mode: address',
    '',
    '# Timers, left at their defaults: a beacon every 200 ms, the peer dead after 1000 ms without one (4 lost',
    '# beacons tolerated). Faster failover, e.g. for a takeover within 300 ms:',
    '# heartbeat:',
    '#   interval_ms: 50',
    '#   dead_after_ms: 250',
    '',
    '# A planned switchover is done only when real requests reach the new host: min_requests (default 3) in this',
    '# host\'s web-server access log within timeout_s (default 30), or it rolls back.',
    'confirm:',
    ...accessLog,
    '',
    '# What stopping the agent does to the service IP. keep: leaves it where it is, so restarting or upgrading',
    '# baton never moves it (a host that really goes down is still taken over). release: hands it to the peer.',
    'on_stop: keep',
    '',
    '# Prometheus metrics (HTTP GET /metrics), off unless enabled; on, on 127.0.0.1:7412 for this host only. To be',
    '# scraped from a Prometheus elsewhere, listen on this host\'s address and allow the Prometheus, then run',
    '# `baton install --keep-config` (the sandbox must let it in). Every metric: docs/operator-guide.md, Monitoring.',
    '# metrics:',
    '#   enabled: true',
    `#   listen: ${answers.listen.includes(':') ? `'[${answers.listen}]:7412'` : `${answers.listen}:7412`}`,
    '#   allow_from: [192.0.2.50]',
    '',
    '# The epoch and the switch journal (systemd creates the directory: StateDirectory=baton).',
    `state_dir: ${STATE_DIR}`,
    '# The unix socket `baton` talks to, root only (systemd creates /run/baton: RuntimeDirectory=baton).',
    `control_socket: ${CONTROL_SOCKET}`,
    '',
  ].join('\n');
}

/**
 * The problems of a generated config, each line naming the option that gave the key (`service.address
 * (--service-ip): …`), so the operator fixes the command line rather than a file that was never written.
 */
export function explainProblems(message: string): string {
  return message.replace(/^(\s+- \S+ )([\w.]+):/gm, (line, head: string, key: string) => {
    const option = OPTION_OF_KEY[key];
    return option === undefined ? line : `${head}${key} (${option}):`;
  });
}

/** The unit for a program installed in `installDir`: the template names /opt/baton, rewritten only if that differs. */
export function renderUnit(template: string, installDir: string): string {
  return installDir === INSTALL_DIR ? template : template.replaceAll(INSTALL_DIR, installDir);
}

/** Marks the sandbox drop-in as ours: uninstall removes it only if it carries this. */
export const DROP_IN_MARKER = 'written by `baton install` from';

/**
 * The drop-in beside the unit with the sandbox this config needs: the IP and port allow-lists, and no change of user
 * when nothing runs as script_user. Every line says which config key it comes from, so an operator reading
 * `systemctl cat baton-agent` sees why an address is there.
 */
export function renderSandboxDropIn(sandbox: UnitSandbox): string {
  const lines = [
    `# ${SANDBOX_DROP_IN}: ${DROP_IN_MARKER} ${CONFIG_FILE}; each`,
    '# `baton install` (also --keep-config) writes it again, `baton uninstall` removes it. Do not edit it: add your own',
    '# settings with `systemctl edit baton-agent` (override.conf); IPAddressAllow= and SocketBindAllow= lines there add',
    '# to the lists below. baton-agent refuses, at start and on SIGHUP, a config that needs more than this allows.',
    '[Service]',
  ];
  if (sandbox.ipAllow === undefined) {
    const named = sandbox.namedHosts.map(({key, host}) => `${key} (${host})`).join(', ');
    lines.push(
      `# No IP allow-list: ${named} names its host, whose addresses`,
      '# can change under a fixed list and need a name server besides. Write the URL with an address to get one,',
      '# or list the addresses yourself in override.conf: IPAddressDeny=any and IPAddressAllow=localhost, both beacon',
      '# addresses, the host\'s addresses and your name servers.',
    );
  } else {
    const width = Math.max(...sandbox.ipAllow.map(({address}) => address.length));
    lines.push(
      '# IP traffic of the agent and of everything it runs (hooks, command checks) only with these addresses:',
      ...sandbox.ipAllow.map(({address, keys}) => `#   ${address.padEnd(width)}  ${keys.join(', ')}`),
      '# ARP and neighbour advertisements (packet sockets), `ip` and `nft` (netlink) are not IP traffic. A hook or',
      '# check that talks to another host needs that host in override.conf.',
      'IPAddressDeny=any',
      `IPAddressAllow=${sandbox.ipAllow.map(({address}) => address).join(' ')}`,
    );
  }
  lines.push(
    '# The only ports it (or anything it runs) may bind: a pair\'s listen.port (the beacons\'), and metrics.listen\'s when metrics',
    '# are on. Enforced by systemd ' + `${SOCKET_BIND_MIN_SYSTEMD} and later`,
    '# when built with its BPF framework (`systemctl --version` shows +BPF_FRAMEWORK); Debian 12\'s systemd 252 is',
    '# not, and ignores these two: no port allow-list there (the IP allow-list above holds). docs/security.md.',
    'SocketBindDeny=any',
    ...sandbox.bindAllow.map((entry) => `SocketBindAllow=${entry}`),
  );
  if (!sandbox.changesUser) {
    lines.push(
      '# No hook and no command check: nothing runs as script_user, so nothing needs to change user, and the',
      '# system calls the unit allows back for it and for arping go out again: the duplicate-address probe and the',
      '# gratuitous ARP are the agent\'s own packet helpers (perl), which need none of them.',
      'CapabilityBoundingSet=~CAP_SETUID CAP_SETGID',
      `SystemCallFilter=~${PRIVILEGED_EXCEPTIONS.join(' ')}`,
    );
  }
  lines.push(
    '# What baton-agent compares its config with.',
    `Environment=${IP_ALLOW_VARIABLE}=${ipAllowValue(sandbox)} ${BIND_ALLOW_VARIABLE}=${bindAllowValue(sandbox)}`,
    '',
  );
  return lines.join('\n');
}

/** Marks the wrapper as ours: uninstall removes a /usr/local/bin/baton only if it carries this. */
export const WRAPPER_MARKER = 'written by `baton install`';

/**
 * /usr/local/bin/baton: a shell script, not a symbolic link to dist/cli/main.js, because that file's
 * `#!/usr/bin/env node` would pick the system's Node, and Debian 12 and Ubuntu 24.04 ship Node 18 (baton needs 22+).
 */
export function renderWrapper(installDir: string): string {
  return [
    '#!/bin/sh',
    `# baton: the operator's command, ${WRAPPER_MARKER}. It runs the CLI with the Node 24 bundled in ${installDir},`,
    '# never the system\'s node (it may be too old). `baton uninstall` removes this file.',
    `exec ${shellWord(`${installDir}/${BUNDLED_NODE}`)} ${shellWord(`${installDir}/${CLI_ENTRY}`)} "$@"`,
    '',
  ].join('\n');
}

/** A value as one YAML scalar on one line: plain when YAML reads it back as the same string, else double-quoted. */
function scalar(value: string): string {
  // JSON strings are valid YAML double-quoted scalars and never span lines.
  if (/\p{Cc}/u.test(value)) return JSON.stringify(value);
  const text = stringify(value).trimEnd();
  return text.includes('\n') ? JSON.stringify(value) : text;
}

function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll('\'', '\'\\\'\'')}'`;
}
