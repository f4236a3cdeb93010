// baton-agent.service under a real systemd: systemd as PID 1 of its own PID, mount and cgroup namespaces inside the
// lab primary's network namespace, `baton install` run in there as an operator runs it, then what the unit promises:
// READY=1 and STATUS= through NotifyAccess=main, the watchdog fed, a reload in place, the IP allow-list, secrets out
// of reach, switchovers both ways under the drop-in's filter without a single privileged system call (the probe and
// the announcements from the agent's packet helpers, no arping), then with a hook, which brings setpriv's calls back,
// run as script_user through setpriv, and switchovers both ways again.
//
// Every write of that systemd lands in tmpfs: /etc, /opt, /var and /usr/local are overlays whose upper layers are
// in a tmpfs of the namespace, /run and /tmp are its own, and the host's enabled units are masked away (whiteouts),
// so nothing of the host changes and nothing of it (nginx, ssh, timers) starts in the namespace. The lab's files are
// under /var/lib, not /tmp: the unit's PrivateTmp= would hide them from the agent. Where systemd already runs the
// machine, where there is no systemd binary or no cgroup2 hierarchy to delegate, the test skips and says why.

import {spawn, spawnSync} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import {mkdtemp, readdir, readFile, rm, rmdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import type {StatusReport} from '../../agent/control-protocol.js';
import {callAgent} from '../../cli/control-client.js';
import {labDown, labUp, type Lab} from '../../cli/lab/lab.js';
import {integrationPrefix, integrationUnavailableReason} from './helpers.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const SYSTEMD = '/lib/systemd/systemd';
// Bounds for a hung step, not targets: a jitless agent start on a loaded machine takes seconds.
const BOOT_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 120_000;
const POLL_MS = 200;
// WatchdogSec=10s in the unit: a stopped agent is killed after 10 s; 15 s of pings must advance the timestamp and
// leave the same MainPID.
const WATCHDOG_WATCH_MS = 15_000;

const INIT = String.raw`#!/bin/sh
set -eu
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /mnt
for d in etc opt var usr/local; do
  n=$(echo $d | tr / _)
  mkdir -p /mnt/$n-up /mnt/$n-work
  mount -t overlay overlay -o lowerdir=/$d,upperdir=/mnt/$n-up,workdir=/mnt/$n-work /$d
done
rm -rf /etc/systemd/system/*.wants
# Global kernel settings and modules are the host's business, not this namespace's.
for unit in systemd-sysctl systemd-modules-load systemd-remount-fs systemd-binfmt; do
  ln -sf /dev/null /etc/systemd/system/$unit.service
done
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
umount -R /sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec env -i container=baton-test PATH=/usr/sbin:/usr/bin:/sbin:/bin ${SYSTEMD} --system --unit=basic.target
`;

// The hook: who it runs as, with which capabilities and seccomp state, and whether it can read /etc/shadow.
const HOOK = `#!/bin/sh
{ echo "hook: $*"; id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; cat /etc/shadow 2>&1 | head -1; } >> /tmp/hook.out 2>&1
`;
const HOOK_PATH = '/usr/local/sbin/baton-test-hook';

/** A cgroup2 directory this test may create its namespace's root under: the hybrid layout's, or the root's. */
function cgroup2Parent(): string | undefined {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const cgroup2 = mounts.map((line) => line.split(' - ')).filter(([, fs]) => fs?.startsWith('cgroup2 '))
    .map(([head]) => head?.split(' ')[4]).filter((path): path is string => path !== undefined);
  return cgroup2.find((path) => path === '/sys/fs/cgroup/unified') ?? cgroup2.find((path) => path === '/sys/fs/cgroup');
}

function unavailableReason(): string | undefined {
  const shared = integrationUnavailableReason();
  if (shared !== undefined) return shared;
  if (existsSync('/run/systemd/system')) {
    return 'systemd already runs this machine; this test boots a systemd of its own where none does';
  }
  if (!existsSync(SYSTEMD)) return `no ${SYSTEMD} (Debian package systemd)`;
  const missing = ['unshare', 'nsenter', 'curl'].filter((file) => spawnSync(file, ['--version'], {stdio: 'ignore'}).error !== undefined);
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian packages util-linux, curl)`;
  if (cgroup2Parent() === undefined) return 'no cgroup2 hierarchy mounted to give the namespace\'s systemd a cgroup of its own';
  return undefined;
}

const reason = unavailableReason();
// A machine that systemd itself runs is not a broken one: the test cannot boot a second systemd there, even in CI.
const byDesign = existsSync('/run/systemd/system');
const title = 'under systemd as PID 1, baton install gives a unit that notifies, is watched, hides secrets, filters IP, runs hooks as script_user and switches';
if (reason === undefined) {
  test.serial(title, run);
} else if (process.env['CI'] === 'true' && !byDesign) {
  test.serial(title, (t) => {
    t.fail(`CI=true but systemd as PID 1 cannot run here: ${reason}`);
  });
} else {
  test.serial.skip(`${title} (skipped: ${reason})`, run);
}

async function run(t: ExecutionContext): Promise<void> {
  t.timeout(10 * 60_000);
  const runner = createExecaRunner();
  const prefix = integrationPrefix();
  const baseDir = await mkdtemp('/var/lib/baton-pid1-');
  t.teardown(() => rm(baseDir, {recursive: true, force: true}));
  const lab = await labUp({runner, prefix, baseDir, web: 'builtin'});
  t.teardown(() => labDown(runner, prefix, baseDir).catch(() => undefined));
  const {primary, backup} = lab.hosts;

  // Once the lab's primary serves and its backup stands by, its agent steps aside (on_stop: keep: the service IP
  // stays, and the backup does not take it while it answers); systemd's agent takes its place.
  const settled = async (host: typeof primary, state: string): Promise<boolean> => {
    const status = await callAgent(host.socket, {id: 'settle', type: 'status'}, 1000).catch(() => undefined) as StatusReport | undefined;
    return status?.self.state === state;
  };
  await until(async () => await settled(primary, 'active') && await settled(backup, 'standby'), STEP_TIMEOUT_MS,
    'the lab\'s primary to serve and its backup to stand by');
  process.kill(primary.pid, 'SIGTERM');
  await until(() => !isAlive(primary.pid), STEP_TIMEOUT_MS, 'the lab\'s primary agent to stop');

  const systemd = await bootSystemd(t, lab, baseDir);
  const inside = (args: readonly string[], options: {reject?: boolean} = {}) => execa('nsenter',
    ['-t', String(systemd), '-m', '-p', '-n', '-u', '-i', '-C', '--', ...args], {reject: options.reject ?? true, timeout: STEP_TIMEOUT_MS});
  const show = async (property: string): Promise<string> =>
    (await inside(['systemctl', 'show', '-p', property, '--value', 'baton-agent'])).stdout.trim();
  const journal = async (): Promise<string> => (await inside(['journalctl', '-u', 'baton-agent', '--no-pager', '-o', 'cat'])).stdout;
  // Switchovers both ways while a client asks the service IP: the giver's and the taker's steps run in the unit.
  // The client is bounded in count (1200 requests) and time (120 s) whatever happens to the test; ended by its PID.
  const switchBothWays = async (when: string): Promise<void> => {
    const client = spawn('ip', ['netns', 'exec', lab.client.namespace, 'timeout', '120', 'sh', '-c',
      `i=0; while [ $i -lt 1200 ]; do curl -s -o /dev/null -m 1 http://${lab.serviceIp.split('/')[0] ?? ''}/; sleep 0.05; i=$((i+1)); done`], {stdio: 'ignore'});
    t.teardown(() => {
      client.kill('SIGKILL');
    });
    for (const to of ['backup', 'primary']) {
      const switched = await inside(['/usr/local/bin/baton', 'switchover'], {reject: false});
      t.is(switched.exitCode, 0, `${when}, switchover to the ${to}:\n${switched.stdout}${switched.stderr}`);
      // The primary's preflight forks its host-info child under the unit (--jitless for MemoryDenyWriteExecute=, the
      // system call filter); a child that dies there is only a warning in the switch's output. A timeout on a
      // loaded machine is not this test's business, so only a failed child is.
      t.notRegex(switched.stdout, /collecting host info failed/, `${when}, switchover to the ${to}:\n${switched.stdout}`);
    }
    client.kill('SIGKILL');
    // STATUS= follows the state within a second (agent/main.ts STATUS_REFRESH_MS).
    await until(async () => await show('StatusText') === `primary active, holds ${lab.serviceIp}`, STEP_TIMEOUT_MS,
      `${when}, STATUS= to say the primary is active again`);
  };

  // Install as an operator would, from this checkout; systemd runs here, so install enables and starts the unit.
  const interfaceName = /\n {2}interface: (\S+)\n/.exec(await readFile(primary.configFile, 'utf8'))?.[1] ?? '';
  const installed = await inside([process.execPath, CLI, 'install', '--role', 'primary', '--pair', 'lab',
    '--listen', primary.address, '--peer', backup.address, '--service-ip', lab.serviceIp, '--interface', interfaceName,
    '--access-log', primary.web?.accessLog ?? '', '--secret-from', join(lab.dir, 'secret')], {reject: false});
  t.is(installed.exitCode, 0, installed.stderr);
  t.regex(installed.stdout, /systemctl is-active baton-agent: active/);

  // READY=1 with STATUS= came through the agent's own socket (NotifyAccess=main), after it decided its state.
  t.is(await show('NotifyAccess'), 'main');
  t.is(await show('StatusText'), `primary active, holds ${lab.serviceIp}`);
  t.deepEqual((await show('IPAddressAllow')).split(' ').sort(),
    [`${primary.address}/32`, `${backup.address}/32`, '127.0.0.0/8', '::1/128'].sort());

  // The watchdog is fed: its timestamp moves on, and the same process runs past WatchdogSec.
  const mainPid = await show('MainPID');
  const fedAt = Number(await show('WatchdogTimestampMonotonic'));
  await sleep(WATCHDOG_WATCH_MS);
  t.true(Number(await show('WatchdogTimestampMonotonic')) > fedAt, 'WATCHDOG=1 keeps arriving');
  t.is(await show('MainPID'), mainPid);
  t.is(await show('NRestarts'), '0');

  // Files: /etc/shadow is an empty inaccessible node for the agent; the secret is readable.
  const seen = await inside(['nsenter', '-t', mainPid, '-m', 'stat', '-c', '%n %a %s', '/etc/shadow', '/etc/baton/secret']);
  t.regex(seen.stdout, /^\/etc\/shadow 0 0\n\/etc\/baton\/secret 600 \d+$/);

  // IP allow-list: from the unit's cgroup the peer answers, the client (not in the list) does not.
  const pings = await inside(['sh', '-c', 'echo $$ > /sys/fs/cgroup/system.slice/baton-agent.service/cgroup.procs; ' +
    `ping -c1 -W1 ${backup.address} >/dev/null && echo peer-ok; ping -c1 -W1 ${lab.client.address} >/dev/null || echo client-blocked`]);
  t.is(pings.stdout.trim(), 'peer-ok\nclient-blocked');

  // No hook, no command check: the drop-in takes the unit's exceptions to ~@privileged out again, and still the agent
  // probed and took the IP at start, and switches both ways (its prober and sender are perl, not arping).
  const filtered = (await show('SystemCallFilter')).split(' ');
  t.false(filtered.includes('capset') || filtered.includes('setuid') || filtered.includes('setresuid'),
    'no capset, setuid or setresuid without a hook');
  t.true(filtered.includes('sendto') && filtered.includes('bind'), 'the filter is an allow-list systemd reads back');
  await switchBothWays('without a hook, no privileged system call');
  t.false((await journal()).includes('arping'), 'no arping was needed, nor failed');

  // A hook added by hand: the drop-in took CAP_SETUID away, so the reload is refused until install has run again.
  await inside(['sh', '-c', `printf '%s' '${HOOK}' > ${HOOK_PATH} && chmod 755 ${HOOK_PATH} && ` +
    `printf 'script_user: nobody\\nhooks:\\n  on_state_change: ${HOOK_PATH}\\n' >> /etc/baton/baton.yaml`]);
  const checked = await inside(['/usr/local/bin/baton', 'check-config'], {reject: false});
  t.is(checked.exitCode, 1, 'a config the agent would refuse is an error');
  t.regex(checked.stderr, /\n {2}- hooks\.on_state_change or a command check runs as script_user, .*: the agent refuses this config until \S+50-baton-config\.conf allows it; run `baton install --keep-config`/);
  // systemctl reload fails (ExecReload= checks before it signals), the journal says why, the agent is untouched.
  const refused = await inside(['systemctl', 'reload', 'baton-agent'], {reject: false});
  t.not(refused.exitCode, 0, `systemctl reload of a config the agent refuses:\n${refused.stdout}${refused.stderr}`);
  await until(async () => (await journal()).includes('needs what this agent\'s systemd sandbox does not allow'), STEP_TIMEOUT_MS,
    'the reload check\'s reason in the journal');
  t.false((await journal()).includes('SIGHUP'), 'the agent was not signalled');
  t.is(await show('MainPID'), mainPid);
  t.is(await show('ActiveState'), 'active');
  const reinstalled = await inside(['/usr/local/bin/baton', 'install', '--keep-config']);
  t.regex(reinstalled.stdout, /The sandbox changed: a running baton-agent has the old one until `systemctl restart baton-agent`/);
  await inside(['systemctl', 'restart', 'baton-agent']);
  t.is(await show('ActiveState'), 'active');
  t.is(await show('CapabilityBoundingSet'), 'cap_setgid cap_setuid cap_net_admin cap_net_raw');
  t.true((await show('SystemCallFilter')).split(' ').includes('setresuid'), 'setpriv\'s calls are back');

  // A reload in place keeps the PID and says READY=1 again (the new image notifies through a socket of its own).
  const restartedPid = await show('MainPID');
  const readies = async (): Promise<number> => (await journal()).split('\n').filter((line) => line.includes('(systemd) ready:')).length;
  const readyCount = await readies();
  await inside(['systemctl', 'reload', 'baton-agent']);
  await until(async () => await readies() > readyCount, STEP_TIMEOUT_MS, 'READY=1 after the reload');
  t.is(await show('MainPID'), restartedPid);
  t.false((await journal()).includes('could not report ready'));

  // A file that does not parse: the reload fails and names the line, the agent runs on.
  const good = (await inside(['cat', '/etc/baton/baton.yaml'])).stdout;
  await inside(['sh', '-c', 'printf "heartbeat: [unclosed\\n" >> /etc/baton/baton.yaml']);
  const broken = await inside(['systemctl', 'reload', 'baton-agent'], {reject: false});
  t.not(broken.exitCode, 0, 'systemctl reload of a file that does not parse');
  await until(async () => /baton\.yaml:\d+:\d+ YAML syntax error/.test(await journal()), STEP_TIMEOUT_MS, 'the parse error in the journal');
  t.is(await show('MainPID'), restartedPid);
  await inside(['sh', '-c', `cat > /etc/baton/baton.yaml <<'EOF'\n${good}\nEOF`]);

  await switchBothWays('with a hook');

  // The hook ran on each change, as nobody, without capabilities, under seccomp, and /etc/shadow was not readable.
  const hook = (await inside(['nsenter', '-t', await show('MainPID'), '-m', 'cat', '/tmp/hook.out'])).stdout;
  t.regex(hook, /hook: active switching /);
  t.regex(hook, /hook: switching active /);
  t.regex(hook, /uid=65534\(nobody\)/);
  t.false(/uid=0\(/.test(hook), 'never as root');
  t.regex(hook, /CapEff:\t0000000000000000/);
  t.regex(hook, /NoNewPrivs:\t1/);
  t.regex(hook, /Seccomp:\t2/);
  t.regex(hook, /cat: \/etc\/shadow: Permission denied/);
}

/** Starts systemd as PID 1 of new PID, mount and cgroup namespaces in the primary's network namespace; its host PID. */
async function bootSystemd(t: ExecutionContext, lab: Lab, baseDir: string): Promise<number> {
  const parent = cgroup2Parent();
  if (parent === undefined) throw new Error('unreachable: checked before the test');
  const cgroup = join(parent, `baton-test-${lab.prefix}`);
  const init = join(baseDir, 'init.sh');
  await writeFile(init, INIT, {mode: 0o755});
  const launcher = spawn('sh', ['-c', `mkdir -p ${cgroup} && echo $$ > ${cgroup}/cgroup.procs && exec ip netns exec ` +
    `${lab.hosts.primary.namespace} unshare --pid --fork --mount-proc --mount --uts --ipc --cgroup sh ${init}`],
  {stdio: ['ignore', 'ignore', 'pipe'], detached: true});
  let log = '';
  launcher.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
  });
  t.teardown(async () => {
    // SIGKILL to a namespace's PID 1 ends every process in it; then the cgroups it made can go.
    if (launcher.pid !== undefined) {
      for (const pid of childrenOf(launcher.pid)) process.kill(pid, 'SIGKILL');
      launcher.kill('SIGKILL');
    }
    // A cgroup goes only once its last process has been reaped: try again until it is gone.
    await until(async () => {
      if ((await subtreeProcs(cgroup)) > 0) return false;
      await removeCgroup(cgroup);
      return !existsSync(cgroup);
    }, STEP_TIMEOUT_MS, `${cgroup} to be removed`).catch((error: unknown) => t.log(String(error)));
  });
  let systemd: number | undefined;
  await until(() => {
    systemd = launcher.pid === undefined ? undefined : childrenOf(launcher.pid)[0];
    try {
      return systemd !== undefined && readFileSync(`/proc/${systemd}/comm`, 'utf8').trim() === 'systemd';
    } catch {
      return false; // between unshare's fork and the exec of systemd, or gone
    }
  }, BOOT_TIMEOUT_MS, `systemd to start (its log: ${log})`);
  if (systemd === undefined) throw new Error('unreachable');
  const pid = systemd;
  await until(async () => {
    const state = await execa('nsenter', ['-t', String(pid), '-m', '-p', '-n', '-u', '-i', '-C', '--', 'systemctl',
      'is-system-running'], {reject: false});
    return ['running', 'degraded'].includes(state.stdout.trim());
  }, BOOT_TIMEOUT_MS, `systemd to finish booting (its log: ${log})`);
  return pid;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((p) => p !== '').map(Number);
  } catch {
    return [];
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function subtreeProcs(dir: string): Promise<number> {
  let count = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).trim().split('\n').filter((l) => l !== '').length;
  for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    count += await subtreeProcs(join(dir, entry.name));
  }
  return count;
}

/** Removes a cgroup directory and the ones systemd made below it, deepest first. */
async function removeCgroup(dir: string): Promise<void> {
  for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    if (entry.isDirectory()) await removeCgroup(join(dir, entry.name));
  }
  await rmdir(dir).catch(() => undefined);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs} ms for ${what}`);
    await sleep(POLL_MS);
  }
}
