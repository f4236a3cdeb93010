// The command line: an option a command would ignore is refused with one line naming the option and the command,
// never ignored; check-config takes its file once, and --json.

import test from 'ava';
import {parseCommandLine, UsageError} from '../../cli/args.js';

const refused = test.macro({
  exec(t, argv: readonly string[], message: string) {
    const error = t.throws(() => parseCommandLine(argv), {instanceOf: UsageError});
    t.is(error?.message, message);
    t.false(error?.showUsage, 'one line, not the whole usage');
  },
  title: (_, argv: readonly string[]) => `baton ${argv.join(' ')} is refused`,
});

const INSTALL = ['install', '--role', 'primary', '--listen', '192.0.2.11', '--peer', '192.0.2.12', '--service-ip', '192.0.2.100/24', '--interface', 'eth0'];

test(refused, [...INSTALL, '--config', '/etc/baton/other.yaml'],
  '--config is an option of status, switchover, resume, drain, rehearse and check-config, not of install: install always writes ' +
  '/etc/baton/baton.yaml (the unit runs that file); --root DIR installs into another tree');
test(refused, ['uninstall', '--config', '/etc/baton/baton.yaml'],
  '--config is an option of status, switchover, resume, drain, rehearse and check-config, not of uninstall: uninstall removes what install put in its fixed places');
test(refused, ['lab', 'up', '--config', 'x.yaml'],
  '--config is an option of status, switchover, resume, drain, rehearse and check-config, not of lab: the lab writes a config for each of its hosts');
test(refused, ['check-config', '--socket', '/run/baton/control.sock'], '--socket is an option of status, switchover, resume, drain and rehearse, not of check-config');
test(refused, [...INSTALL, '--socket', '/run/x.sock'], '--socket is an option of status, switchover, resume, drain and rehearse, not of install');
test(refused, ['lab', 'run', '--socket', '/run/x.sock'], '--socket is an option of status, switchover, resume, drain and rehearse, not of lab');
test(refused, [...INSTALL, '--json'], '--json is an option of status, switchover, resume, drain, rehearse, check-config and lab, not of install');
test(refused, ['uninstall', '--json'], '--json is an option of status, switchover, resume, drain, rehearse, check-config and lab, not of uninstall');
test(refused, ['lab', 'up', '--json'], '--json is an option of lab status and lab run, not of lab up');
test(refused, ['lab', 'down', '--json'], '--json is an option of lab status and lab run, not of lab down');
test(refused, ['lab', 'status', '--web', 'nginx'], '--web is an option of lab up and lab run, not of lab status');
test(refused, ['lab', 'down', '--web', 'nginx'], '--web is an option of lab up and lab run, not of lab down');
test(refused, ['lab', 'status', '--ipv6'], '--ipv6 is an option of lab up and lab run, not of lab status');
test(refused, ['switchover', '--ipv6'], '--ipv6 is an option of lab, not of switchover');
test(refused, ['lab', 'down', '--dual-stack'], '--dual-stack is an option of lab up and lab run, not of lab down');
test(refused, ['lab', 'run', '--ipv6', '--dual-stack'], '--ipv6 and --dual-stack: expected one of them (--dual-stack moves an IPv4 and an IPv6 service address, with IPv4 beacons)');
test(refused, ['lab', 'up', '--report', 'r.html'], '--report is an option of lab run, not of lab up');
test(refused, ['lab', 'status', '--coordination', 'etcd'], '--coordination is an option of lab up and lab run, not of lab status');
test(refused, ['lab', 'up', '--hosts', '3', '--coordination', 'etcd', '--dual-stack'], "--coordination etcd: the etcd lab's service is IPv4 (192.0.2.100/25); leave out --dual-stack");
test(refused, ['lab', 'run', '--coordination', 'raft'], "--coordination: expected pair or etcd, got 'raft'");
test(refused, ['lab', 'run', '--hosts', '4'], '--hosts 4: the etcd lab has 3 hosts (a, b, c) for now; use --hosts 3');
test(refused, ['lab', 'run', '--hosts', '3', '--coordination', 'pair'],
  '--hosts 3: a pair has 2 hosts; more than two coordinate through etcd (--hosts 3 --coordination etcd)');
test(refused, ['lab', 'run', '--hosts', 'three'], "--hosts: expected a number of hosts, got 'three'");
test(refused, ['lab', 'run', '--coordination', 'etcd', '--ipv6'], "--coordination etcd: the etcd lab's service is IPv4 (192.0.2.100/25); leave out --ipv6");
test(refused, ['lab', 'run', '--prefix', 'xyz'], '--prefix: expected "bl" and at most 5 more lowercase letters or digits, got \'xyz\'');
test(refused, ['rehearse', '--ssh-config', '/root/.ssh/config'], '--ssh-config is for --client HOST: without it this machine probes, and no ssh runs');
test(refused, ['rehearse', '--ssh-config', 'c', '--client-baton', '/opt/b'], '--ssh-config and --client-baton are for --client HOST: without it this machine probes, and no ssh runs');
test(refused, ['switchover', '--dry-run', '--min-requests', '5'], '--min-requests does nothing with --dry-run, which moves nothing: leave it out, or drop --dry-run');
test(refused, ['switchover', '--dry-run', '--confirm-timeout', '60', '--pause-after', 'assign-ip'],
  '--confirm-timeout and --pause-after do nothing with --dry-run, which moves nothing: leave it out, or drop --dry-run');
test(refused, ['status', '--file-only'], '--file-only is an option of check-config, not of status');
test(refused, ['check-config', '--skip-host-check'], '--skip-host-check is an option of install, not of check-config');
test(refused, ['check-config', '--config', 'a.yaml', 'b.yaml'], 'check-config: give the file once, as --config a.yaml or as b.yaml, not both');
test(refused, ['check-config', 'a.yaml', 'b.yaml'], 'check-config takes at most one file, got 2');

test('check-config takes its file as --config or as an argument, and --json and --file-only', (t) => {
  t.deepEqual(parseCommandLine(['check-config']), {name: 'check-config', file: '/etc/baton/baton.yaml', json: false, fileOnly: false});
  t.deepEqual(parseCommandLine(['check-config', '--config', 'a.yaml']), {name: 'check-config', file: 'a.yaml', json: false, fileOnly: false});
  t.deepEqual(parseCommandLine(['check-config', 'b.yaml', '--json', '--file-only']), {name: 'check-config', file: 'b.yaml', json: true, fileOnly: true});
});

test('the options a command uses are still taken', (t) => {
  t.like(parseCommandLine(['status', '--config', 'a.yaml', '--socket', '/run/a.sock', '--json']), {name: 'status', config: 'a.yaml', socket: '/run/a.sock', json: true});
  t.like(parseCommandLine(['lab', 'status', '--json']), {name: 'lab', action: 'status', json: true});
  t.like(parseCommandLine(['lab', 'run', '--web', 'nginx', '--report', 'r.html', '--json']), {name: 'lab', action: 'run', web: 'nginx', report: 'r.html', json: true});
  t.like(parseCommandLine(['lab', 'run', '--ipv6']), {name: 'lab', action: 'run', ipv6: true});
  t.like(parseCommandLine(['lab', 'up', '--ipv6']), {name: 'lab', action: 'up', ipv6: true});
  t.like(parseCommandLine(['lab', 'run']), {name: 'lab', action: 'run', ipv6: false, dualStack: false});
  t.like(parseCommandLine(['lab', 'run', '--dual-stack']), {name: 'lab', action: 'run', ipv6: false, dualStack: true});
  t.like(parseCommandLine(['lab', 'run']), {coordination: 'pair'});
  t.like(parseCommandLine(['lab', 'run', '--hosts', '3', '--coordination', 'etcd', '--prefix', 'blu']), {action: 'run', coordination: 'etcd', prefixStem: 'blu'});
  t.like(parseCommandLine(['lab', 'up', '--hosts', '3', '--coordination', 'etcd']), {action: 'up', coordination: 'etcd'});
  t.like(parseCommandLine(['lab', 'run', '--hosts', '3']), {coordination: 'etcd'});
  t.like(parseCommandLine(['lab', 'run', '--coordination', 'etcd']), {coordination: 'etcd'});
  t.like(parseCommandLine(['lab', 'up', '--prefix', 'blx1']), {action: 'up', prefixStem: 'blx1'});
  t.like(parseCommandLine(['lab', 'up', '--dual-stack']), {name: 'lab', action: 'up', dualStack: true});
  t.like(parseCommandLine(['rehearse', '--client', 'web-c', '--ssh-config', 'c']), {client: 'web-c', sshConfig: 'c'});
});

const usage = (argv: readonly string[]) => {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`baton ${argv.join(' ')} was accepted`);
};

test('a misspelt option is named with the option of that command it most likely meant', (t) => {
  t.is(usage(['switchover', '--dryrun']), 'unknown option --dryrun for switchover; did you mean --dry-run?');
  t.is(usage(['switchover', '--min-request', '3']), 'unknown option --min-request for switchover; did you mean --min-requests?');
  t.is(usage(['status', '--sokcet', '/run/x']), 'unknown option --sokcet for status; did you mean --socket?');
  t.is(usage(['install', '--servce-ip', '192.0.2.1/24']), 'unknown option --servce-ip for install; did you mean --service-ip?');
  // Nothing of switchover's is near: another command's option is, and it is said whose.
  t.is(usage(['switchover', '--purg']), 'unknown option --purg for switchover; did you mean --purge (an option of uninstall)?');
  t.is(usage(['switchover', '--frobnicate']), 'unknown option --frobnicate for switchover: `baton help switchover` lists its options');
  t.is(usage(['-x']), 'unknown option -x');
});

test('an option without its value, or a flag given one, says which', (t) => {
  t.is(usage(['status', '--socket']), '--socket needs a value');
  t.is(usage(['status', '--json=yes']), '--json takes no value');
});

test('help: all of it, or one command\'s by `help NAME` or `NAME --help`; anything else is named', (t) => {
  t.deepEqual(parseCommandLine(['--help']), {name: 'help'});
  t.deepEqual(parseCommandLine(['help']), {name: 'help'});
  t.deepEqual(parseCommandLine(['help', 'lab']), {name: 'help', command: 'lab'});
  t.deepEqual(parseCommandLine(['lab', 'run', '--web', 'nginx', '-h']), {name: 'help', command: 'lab'});
  t.deepEqual(parseCommandLine(['switchover', '--strict', '--help']), {name: 'help', command: 'switchover'});
  t.is(usage(['help', 'swichover']), 'unknown command \'swichover\'; did you mean \'switchover\'?');
  t.is(usage(['nosuch', '--help']), 'unknown command \'nosuch\'');
  t.is(usage(['help', 'lab', 'run']), 'help takes one command\'s name, got \'lab run\'');
  t.is(usage(['help', '--json']), 'help takes a command\'s name and no option, got --json');
});

test('a command is guessed from its beginning or a slip of two letters at most, never from nothing alike', (t) => {
  t.is(usage(['stauts']), 'unknown command \'stauts\'; did you mean \'status\'?');
  t.is(usage(['swi']), 'unknown command \'swi\'; did you mean \'switchover\'?');
  t.is(usage(['chek-config']), 'unknown command \'chek-config\'; did you mean \'check-config\'?');
  t.is(usage(['reboot']), 'unknown command \'reboot\'');
  t.is(usage(['la']), 'unknown command \'la\'; did you mean \'lab\'?');
});
