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
  '--config is an option of status, switchover, resume, rehearse and check-config, not of install: install always writes ' +
  '/etc/baton/baton.yaml (the unit runs that file); --root DIR installs into another tree');
test(refused, ['uninstall', '--config', '/etc/baton/baton.yaml'],
  '--config is an option of status, switchover, resume, rehearse and check-config, not of uninstall: uninstall removes what install put in its fixed places');
test(refused, ['lab', 'up', '--config', 'x.yaml'],
  '--config is an option of status, switchover, resume, rehearse and check-config, not of lab: the lab writes a config for each of its hosts');
test(refused, ['check-config', '--socket', '/run/baton/control.sock'], '--socket is an option of status, switchover, resume and rehearse, not of check-config');
test(refused, [...INSTALL, '--socket', '/run/x.sock'], '--socket is an option of status, switchover, resume and rehearse, not of install');
test(refused, ['lab', 'run', '--socket', '/run/x.sock'], '--socket is an option of status, switchover, resume and rehearse, not of lab');
test(refused, [...INSTALL, '--json'], '--json is an option of status, switchover, resume, rehearse, check-config and lab, not of install');
test(refused, ['uninstall', '--json'], '--json is an option of status, switchover, resume, rehearse, check-config and lab, not of uninstall');
test(refused, ['lab', 'up', '--json'], '--json is an option of lab status and lab run, not of lab up');
test(refused, ['lab', 'down', '--json'], '--json is an option of lab status and lab run, not of lab down');
test(refused, ['lab', 'status', '--web', 'nginx'], '--web is an option of lab up and lab run, not of lab status');
test(refused, ['lab', 'down', '--web', 'nginx'], '--web is an option of lab up and lab run, not of lab down');
test(refused, ['lab', 'up', '--report', 'r.html'], '--report is an option of lab run, not of lab up');
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
  t.like(parseCommandLine(['rehearse', '--client', 'web-c', '--ssh-config', 'c']), {client: 'web-c', sshConfig: 'c'});
});
