// The help texts. `baton --help` and `baton help` print them all (and baton(8) is made from that); `baton help
// COMMAND` and `baton COMMAND --help` print that command's alone, with the shared options it takes and its exit
// statuses. One text per command, so the two never differ.

import {DEFAULT_CONFIG_FILE} from '../agent/config/schema.js';
import {COMMAND_NAMES, OPTIONS_OF, type CommandName} from './args.js';
import {wrapWords} from './format.js';

/** Each command's entry in the help: its synopsis and what it does, then its own options. */
const COMMAND_HELP: Readonly<Record<CommandName, string>> = {
  'status': `  status [--json]            both hosts: state, who holds the service IP (as
                             observed), beacon RTT and loss, rejected datagrams,
                             both agents' versions. The first line and the exit
                             status are a monitoring check: 0 OK, 1 WARNING (no
                             failover ready), 2 CRITICAL (the IP on both hosts
                             or neither, the agent not answering), 3 UNKNOWN`,
  'switchover': `  switchover [--to HOST] [--service NAME] [--dry-run] [--strict] [--min-requests N]
             [--confirm-timeout S]
                             move the service IP to the other host: preflight,
                             backup-net-down, assign-ip, primary-net-down,
                             backup-net-up, then wait for N real requests in the
                             new host's access log; anything wrong rolls back.
                             In address mode the old host's open connections
                             finish there first (the drain). Run it again to
                             switch back
      --to HOST              etcd mode: the host to move the service to (it runs
                             the switch); a pair moves it to the peer
      --service NAME         etcd mode: which of the host's services to move
                             (needed when its file lists several)
      --dry-run              print each host's exact commands, change nothing
      --strict               refuse when the two hosts' software differs
      --pause-after STEP[:S] hold S seconds (default 10) after STEP: a rehearsal
                             aid to look at the pair mid-switch (needs
                             rehearsal.enabled in the agent's config)`,
  'resume': `  resume                     a released host (after a switchover) becomes
                             standby again, ready to take over; in etcd mode,
                             a drained host may take the service again`,
  'drain': `  drain HOST                 etcd mode: HOST no longer takes any service (until
                             \`baton resume\` there) and each service it holds
                             moves to the first other host of the service that
                             takes it (a switchover each)`,
  'rehearse': `  rehearse [--with-failure] [--client HOST] [--report FILE] [--url URL]
           [--interval-ms N] [--json]
                             the drill on the configured pair (spare machines):
                             preflight, status, switchover, switchback, resume;
                             with --with-failure the active host drops its
                             service link for a while and the other takes over.
                             This machine probes the service IP throughout (run
                             it on the standby), or HOST with --client: over ssh
                             (key, no password; --ssh-config FILE), with baton
                             installed there (--client-baton DIR, /opt/baton)`,
  'check-config': `  check-config [FILE] [--json] [--file-only]
                             validate a configuration file and its secret files,
                             and this host as the agent will see it: the
                             service interface, listen.address, the access log
                             (readable under the unit's sandbox, in its format),
                             the secrets' owner, ip, arping and perl, no IPv6
                             service address yet. Every problem at once, each an
                             error or a warning. FILE is --config's
      --json                 the result for machines: {file, valid, errors,
                             warnings, problems: [{severity, check, kind, key,
                             line, message}], config}
      --file-only            the file and its secrets only: for a config
                             written for another machine`,
  'lab': `  lab up|status|down|run     a two-host pair plus a client in network namespaces
                             on this machine (needs root, iproute2, arping):
                               up      build it: namespaces, a web server and a
                                       baton-agent on each host
                               status  print baton status from both hosts
                               down    remove every lab whose builder has
                                       exited (lab up, an interrupted or a
                                       crashed run); labs of runs still going
                                       are named and left. down NAME: that
                                       lab only
                               run     up, the drill (preflight, switchover,
                                       switchback, link cut and takeover, the
                                       old primary's return), the report, down
      --web builtin|nginx    the lab's web servers (default builtin)
      --ipv6                 lab up, lab run: the service address, the beacons
                             and the client in IPv6 (2001:db8:0:1::100/64)
                             instead of IPv4 (192.0.2.100/25); every lab LAN
                             has both
      --dual-stack           lab up, lab run: a dual-stack service, both
                             192.0.2.100/25 and 2001:db8:0:1::100/64 moving
                             together; the client probes both; beacons IPv4
      --report FILE          where lab run writes its HTML timeline (default
                             ./baton-drill-report.html; the JSON goes beside it)
      --hosts 3 --coordination etcd
                             lab up, lab run: three hosts (a, b, c) in etcd
                             mode with three etcd members and a client; lab
                             status then shows each host; the drill is
                             switchover to b, back to a, a's agent killed and
                             link cut, its return, never two holders (JSON
                             report only)
      --prefix STEM          lab up, lab run: the lab's name starts with STEM
                             ("bl" and up to 5 more), the rest random`,
  'install': `  install --role primary|backup --listen ADDR --peer ADDR --service-ip CIDR
          --interface IF [--pair NAME] [--access-log PATH] [--secret-from FILE]
          [--root DIR] [--force | --keep-config] [--skip-host-check] [--dry-run]
                             run baton on this host under systemd: the program
                             and its own Node 24 in /opt/baton, the config
                             /etc/baton/baton.yaml written from the options and
                             validated, the shared secret /etc/baton/secret,
                             baton-agent.service with a drop-in of the address
                             and port allow-lists for that config, and
                             /usr/local/bin/baton; then systemctl enable --now
                             (as root, under systemd; else it prints the
                             commands)
      --listen ADDR          this host's beacon address; --peer ADDR the other's
      --service-ip CIDR      the address that moves, e.g. 192.0.2.100/24, on
                             --interface IF; given twice, an IPv4 and an IPv6
                             address that move together (dual stack);
                             --pair NAME the pair id (default web);
                             --access-log PATH the web server's log that
                             confirms a switchover
      --secret-from FILE     install this copy of the other host's secret
                             instead of generating one; a secret already
                             installed is always kept
      --force                write the config anew (the old one is kept as
                             baton.yaml.bak); without it an existing config
                             makes install refuse and change nothing
      --keep-config          upgrade: replace the program, the unit and the
                             command, keep the installed config (no --role)
      --skip-host-check      install although the host check (see
                             check-config) finds errors: an interface or an
                             access log that comes later. Into / install
                             refuses on them, before writing anything; with
                             --root (not this host) it does not check
      --root DIR             install into DIR (an image, a chroot) instead of
                             /; systemctl is then only printed
      --dry-run              check the options, config and secret, and print
                             what would be written, the allow-list drop-in in
                             full; change nothing`,
  'uninstall': `  uninstall [--root DIR] [--purge] [--force]
                             stop and disable baton-agent, remove its unit and
                             its drop-in, /usr/local/bin/baton and /opt/baton;
                             keeps /etc/baton and /var/lib/baton unless --purge;
                             refuses while this host holds the service IP
                             unless --force (switch over first)`,
};

/** What a command's first line shows after `baton NAME`: its arguments (its options follow in the text). */
const ARGUMENTS: Partial<Readonly<Record<CommandName, string>>> = {'check-config': ' [FILE]', 'lab': ' up|status|down|run'};

/** The options several commands share, each with its text; a command's own help lists those it takes. */
const SHARED_OPTIONS: ReadonlyArray<readonly [option: string, text: string]> = [
  ['config', `  --config FILE    configuration file (default ${DEFAULT_CONFIG_FILE}); the
                   control socket is found from it`],
  ['socket', '  --socket PATH    control socket, overriding the one in the config'],
  ['json', `  --json           machine-readable output (status, switchover, resume,
                   rehearse, check-config, lab status, lab run)`],
];

/** Each command's exit statuses (exit-codes.ts); a usage error is EXIT_USAGE everywhere but in status. */
const EXIT_STATUS: Readonly<Record<CommandName, string>> = {
  'status': '0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a mistake in the command line too)',
  'switchover': '0 done, 1 refused or error, 2 rolled back (the pair is safe, nothing moved), 64 usage error',
  'resume': '0 done, 1 refused or error, 64 usage error',
  'drain': '0 drained (and every service HOST held moved), 1 refused or error, 2 drained but a service could not be moved, 64 usage error',
  'rehearse': '0 the drill passed, 1 it failed or could not run, 130 stopped by Ctrl-C, 64 usage error',
  'check-config': '0 valid (warnings allowed), 1 any error, 64 usage error',
  'lab': '0 done (lab run: the drill passed), 1 error or a failed drill, 130 stopped by Ctrl-C, 64 usage error',
  'install': '0 installed (or, with --dry-run, would install), 1 refused or error, 64 usage error',
  'uninstall': '0 removed or nothing installed, 1 refused or error, 64 usage error',
};

export const USAGE = `Usage: baton <command> [options]

Moves a web service's IP address between a primary and a backup host, and lets
you watch and rehearse it. Talks to the local baton-agent on its control socket.

Commands:
${COMMAND_NAMES.map((name) => COMMAND_HELP[name]).join('\n')}
  help [COMMAND]             this help, or one command's alone (as COMMAND
                             --help)

Options:
${SHARED_OPTIONS.map(([, text]) => text).join('\n')}
  -h, --help       show this help; after a command, that command's alone
  --version        print the version

Exit status: 0 done, 1 error, 2 rolled back (switchover), 64 usage error (a
mistake in the command line), 130 stopped by Ctrl-C (lab run, rehearse);
status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.`;

/** `baton help NAME`, `baton NAME --help`: that command's entry, the shared options it takes and its exit statuses. */
export function commandHelp(name: CommandName): string {
  const shared = SHARED_OPTIONS.filter(([option]) => OPTIONS_OF[option]?.includes(name)).map(([, text]) => text);
  return `Usage: baton ${name}${ARGUMENTS[name] ?? ''} [options]

${COMMAND_HELP[name]}

Options:
${[...shared, '  -h, --help       show this help'].join('\n')}

${wrapWords(`Exit status: ${EXIT_STATUS[name]}.`, 80).join('\n')}
Every command: baton --help`;
}
