// `baton lab run`, the project's main job, end to end: the drill passes with the built-in web server and with
// nginx, runs on an IPv6 pair with an IPv6 client (lab run --ipv6), leaves nothing behind, reports a failed
// confirmation as a failed phase while the pair keeps serving,
// Ctrl-C mid-switch leaves exactly one host serving for `baton lab down` to clean, and `baton rehearse --with-failure`
// runs on a pair whose hosts both enable the rehearsal aids and is refused before any step when one does not.

import {mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import {runDrill, type DrillTarget} from '../../cli/drill/drill.js';
import {createLabTarget} from '../../cli/drill/lab-target.js';
import {formatDrillReport, type DrillReport} from '../../cli/drill/report.js';
import {judgeHolders, watchServiceAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {labDown, labUp, labStatus, LAB_BASE_DIR, signalAgent, startAgent, waitForSettledPair, type Lab} from '../../cli/lab/lab.js';
import {spawnInNamespace} from '../../cli/lab/namespaces.js';
import {newLabPrefix} from '../../cli/lab/topology-plan.js';
import {stopProcessByPid} from '../../cli/lab/web.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';
import {runner, servesAddress, until, whoServes} from './lab-helpers.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
let dir = '';
let available = false;

test.before(async (t) => {
  available = await skipUnlessIntegration(t);
  dir = await mkdtemp(join(tmpdir(), 'baton-drill-'));
});

test.after.always(async () => {
  if (dir !== '') await rm(dir, {recursive: true, force: true});
});

/** Namespaces and processes of a CLI lab (prefix "bl…"), read from the report's host names. */
async function leftovers(prefix: string): Promise<string[]> {
  const {stdout} = await execa('ip', ['netns', 'list']);
  const namespaces = stdout.split('\n').filter((line) => line.startsWith(`${prefix}-`));
  const {stdout: ps} = await execa('ps', ['-eo', 'args']);
  const processes = ps.split('\n').filter((line) => line.includes(join(LAB_BASE_DIR, prefix)));
  const netnsEtc = (await readdir('/etc/netns').catch(() => [] as string[])).filter((name) => name.startsWith(`${prefix}-`));
  return [...namespaces, ...processes, ...netnsEtc.map((name) => `/etc/netns/${name}`)];
}

function prefixOf(report: DrillReport): string {
  return /^(bl[0-9a-z]{6})-/.exec(report.pair.primary)?.[1] ?? 'unknown';
}

const PHASES = ['preflight', 'status', 'switchover', 'switchback', 'failure', 'return'];

/**
 * The drill's outcome, whatever the figures: every phase did its work (the switches were done, the takeover and the
 * return happened), the phases with a target state it and whether it was met, and the verdict (report.ok, the
 * PASSED/FAILED line, the exit status) follows from the phases. A missed gap target on a busy machine makes the
 * drill say FAILED, as it should, but is a figure for the drill's report and `npm run bench`, not a failed test.
 */
function assertDrillOutcome(t: ExecutionContext, report: DrillReport, result: {exitCode?: number; stdout: unknown; stderr: unknown},
  phases: readonly string[]): void {
  assertDrillPhases(t, report, phases);
  t.regex(String(result.stdout), report.ok ? /: PASSED/ : /: FAILED/);
  t.is(result.exitCode, report.ok ? 0 : 1, String(result.stderr).slice(-3000));
}

/** assertDrillOutcome's judgement of the report alone, for a drill run in this process. */
function assertDrillPhases(t: ExecutionContext, report: DrillReport, phases: readonly string[]): void {
  t.deepEqual(report.phases.map((p) => p.name), [...phases], 'the report names every phase, in order');
  for (const phase of report.phases) {
    const missedOnlyItsTarget = !phase.ok && phase.target?.met === false;
    t.true(phase.ok || missedOnlyItsTarget, `${phase.name}: ${phase.problem ?? ''}`);
    if (['switchover', 'switchback', 'failure'].includes(phase.name)) {
      t.regex(phase.target?.text ?? '', /^longest gap <= \d+ ms/, `${phase.name} states its target`);
      t.is(typeof phase.target?.met, 'boolean', `${phase.name} says whether it was met`);
      t.is(typeof phase.longestGapMs, 'number', phase.name);
      t.true(phase.probes > 0, phase.name);
      t.is(typeof phase.failedProbes, 'number');
    }
    if (phase.target !== undefined) t.log(`${phase.name}: longest gap ${Math.round(phase.longestGapMs ?? NaN)} ms, target ${phase.target.met ? 'met' : 'MISSED'} (${phase.target.text})`);
  }
  t.is(report.ok, report.phases.every((p) => p.ok));
}

/** The report the command wrote; without one, the command's exit and stderr say why (and the test fails). */
async function readReport(path: string, result: {exitCode?: number; stderr: unknown}): Promise<DrillReport> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) throw new Error(`no report at ${path}: exit ${String(result.exitCode)}, stderr:\n${String(result.stderr).slice(-3000)}`);
  return JSON.parse(text) as DrillReport;
}

const labRun = test.macro(async (t, web: 'builtin' | 'nginx') => {
  if (!available) return t.pass();
  const html = join(dir, `${web}.html`);
  const result = await execa(process.execPath, [CLI, 'lab', 'run', '--web', web, '--report', html], {reject: false, timeout: 240_000});
  t.log(String(result.stdout));
  const report = await readReport(join(dir, `${web}.json`), result);
  assertDrillOutcome(t, report, result, PHASES);
  t.true((await readFile(html, 'utf8')).includes('<svg'));
  t.deepEqual(await leftovers(prefixOf(report)), [], 'no namespace, bridge, veth or process of the lab remains');
});

test.serial('baton lab run with the built-in web server: every phase does its work, the report has the figures, nothing remains', labRun, 'builtin');
test.serial('baton lab run --web nginx: the same with real nginx', labRun, 'nginx');

/** A lab as `baton lab run --ipv6` builds it (cli/commands/lab.ts), under this test's prefix, settled. */
async function ipv6Lab(t: ExecutionContext): Promise<Lab> {
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin', serviceFamily: 6, heartbeatFamily: 6});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  return lab;
}

/** The drill on `target`, with the kernels' address events recorded throughout. */
async function drillWatched(lab: Lab, target: DrillTarget, withFailure: boolean): Promise<{report: DrillReport; history: AddressHistory; lines: string[]}> {
  const watch = await watchServiceAddress(lab);
  const lines: string[] = [];
  try {
    const report = await runDrill(target, {
      title: 'baton lab drill (builtin web servers, IPv6)', withFailure, probeIntervalMs: 20, say: (l) => lines.push(l), signal: new AbortController().signal,
    });
    return {report, history: await watch.stop(), lines};
  } finally {
    await watch.stop(); // once: stops the monitors when the drill threw
  }
}

test.serial('lab run --ipv6: the IPv6 client probes [2001:db8:0:1::100] and confirms the switch; connections it cuts without a drain fail the phase', async (t) => {
  if (!available) return t.pass();
  const lab = await ipv6Lab(t);
  const {report, history, lines} = await drillWatched(lab, createLabTarget(lab, 1000), true);
  t.log(formatDrillReport(report));
  t.is(report.pair.serviceIp, '2001:db8:0:1::100/64');
  t.true(lines.includes('client probing http://[2001:db8:0:1::100]/ every 20 ms'));
  const over = report.phases.find((p) => p.name === 'switchover');
  t.true(over?.steps.some((s) => s.name === 'confirm-traffic' && s.status === 'ok'), 'the IPv6 client\'s requests confirmed the switch');
  if (over?.ok === false && /keep-alive request\(s\), download\(s\) or upload\(s\) failed during the switch/.test(over.problem ?? '')) {
    // The drain handles IPv4 only (the switch says "no drain"): keep-alive requests and transfers open at the move are
    // cut, and the drill says so and stops there, as it should.
    t.deepEqual(report.phases.map((p) => p.name), ['preflight', 'status', 'switchover']);
    t.false(report.ok);
  } else {
    assertDrillPhases(t, report, PHASES);
  }
  t.deepEqual(judgeHolders(history).overlaps, [], 'never two holders, by the kernels\' address events');
});

test.serial('the drill on an IPv6 pair, probes only: switchover and switchback followed by the IPv6 client, never two holders', async (t) => {
  if (!available) return t.pass();
  const lab = await ipv6Lab(t);
  // Without the keep-alive clients and transfers, which an IPv6 switch cuts until the drain handles IPv6 (above).
  const {report, history} = await drillWatched(lab, {...createLabTarget(lab, 1000), startClients: undefined}, false);
  t.log(formatDrillReport(report));
  assertDrillPhases(t, report, ['preflight', 'status', 'switchover', 'switchback']);
  for (const name of ['switchover', 'switchback']) {
    const phase = report.phases.find((p) => p.name === name);
    t.true(phase?.steps.some((s) => s.name === 'confirm-traffic' && s.status === 'ok'), `${name}: confirmed by the IPv6 client`);
  }
  t.true(report.probes.some((p) => p.ok && p.host === 'backup') && report.probes.some((p) => p.ok && p.host === 'primary'),
    'the IPv6 client was served by both hosts');
  const judged = judgeHolders(history);
  t.deepEqual(judged.overlaps, [], 'never two holders, by the kernels\' address events');
  t.deepEqual(judged.final, ['primary']);
  const changes = (host: string): string[] => history.events.filter((e) => e.host === host && e.change.startsWith('address')).map((e) => e.change);
  t.deepEqual(changes('backup'), ['address-added', 'address-removed']);
  t.deepEqual(changes('primary'), ['address-removed', 'address-added']);
  t.is(await whoServes(lab), 'primary');
});

test.serial('a drill whose confirmation must fail reports the rollback as a failed phase and leaves the pair serving', async (t) => {
  if (!available) return t.pass();
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin'});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  const web = lab.hosts.backup.web;
  if (web === undefined) return t.fail('no web server');
  await stopProcessByPid(web.pid);
  const lines: string[] = [];
  const report = await runDrill(createLabTarget(lab, 1000), {
    title: 'drill with the backup\'s web server stopped', withFailure: true, probeIntervalMs: 20, say: (l) => lines.push(l), signal: new AbortController().signal,
  });
  t.false(report.ok);
  const over = report.phases.find((p) => p.name === 'switchover');
  t.false(over?.ok);
  t.regex(over?.problem ?? '', /rolled back: confirm-traffic failed on the backup/);
  t.regex(over?.fix ?? '', /web server/);
  t.false(report.phases.some((p) => p.name === 'switchback'), 'the drill stops at the failed phase');
  const status = await labStatus(lab);
  t.true(status.primary.self.holdsIp);
  t.false(status.backup.self.holdsIp);
  t.true(await servesAddress(lab.hosts.primary));
});

test.serial('Ctrl-C during a switch leaves exactly one host serving, and baton lab down cleans everything', async (t) => {
  if (!available) return t.pass();
  const child = execa(process.execPath, [CLI, 'lab', 'run', '--report', join(dir, 'interrupted.html')], {reject: false, timeout: 240_000});
  let stderr = '';
  let interrupted = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.includes('backup-net-down') && !interrupted) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  const result = await child;
  t.log(stderr.slice(-2000));
  t.is(result.exitCode, 130);
  t.regex(stderr, /interrupted: lab (bl[0-9a-z]{6}) left up, exactly one host serves/);
  const prefix = /interrupted: lab (bl[0-9a-z]{6})/.exec(stderr)?.[1] ?? '';
  const status = await execa(process.execPath, [CLI, 'lab', 'status', '--json']);
  const both = JSON.parse(status.stdout) as {primary: {self: {holdsIp: boolean}}; backup: {self: {holdsIp: boolean}}};
  t.is([both.primary.self.holdsIp, both.backup.self.holdsIp].filter(Boolean).length, 1);
  // What the campaign's DNS fault leaves for a namespace, had it been interrupted too: lab down removes it.
  const hadNetnsEtc = await readdir('/etc/netns').then(() => true, () => false);
  t.teardown(async () => {
    if (!hadNetnsEtc) await rmdir('/etc/netns').catch(() => undefined);
  });
  await mkdir(`/etc/netns/${prefix}-backup`, {recursive: true});
  await writeFile(`/etc/netns/${prefix}-backup/resolv.conf`, 'nameserver 192.0.2.53\n');
  // A lab of a run still going beside it (this test process builds it, as a campaign does): left alone, and named.
  const busy = await labUp({runner, prefix: newLabPrefix(), baseDir: dir});
  t.teardown(() => labDown(runner, busy.prefix, dir));
  const down = await execa(process.execPath, [CLI, 'lab', 'down']);
  t.regex(down.stdout, new RegExp(`lab ${prefix} removed`));
  t.deepEqual(await leftovers(prefix), []);
  t.regex(down.stdout, new RegExp(`lab ${busy.prefix} left up: in use by process ${process.pid} `));
  t.true((await execa('ip', ['netns', 'list'])).stdout.includes(`${busy.prefix}-primary`));
  await waitForSettledPair(busy, 15_000);
  // Named, it goes even so.
  const named = await execa(process.execPath, [CLI, 'lab', 'down', busy.prefix]);
  t.regex(named.stdout, new RegExp(`lab ${busy.prefix} removed`));
  t.false((await execa('ip', ['netns', 'list'])).stdout.includes(`${busy.prefix}-`));
});

test.serial('baton rehearse on a configured pair, run from a client machine, with failure: every phase does its work', async (t) => {
  if (!available) return t.pass();
  // Both hosts of a lab enable the rehearsal aids: the check before the first step asks the backup and lets it run.
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin'});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  const html = join(dir, 'rehearsal.html');
  // The client namespace plays a client machine that can reach the primary's control socket (a unix socket
  // is a file: it crosses network namespaces).
  // A temp directory of its own, to see that the rehearsal leaves nothing in it.
  const temp = join(dir, 'rehearse-tmp');
  await mkdir(temp);
  const result = await execa('ip', ['netns', 'exec', lab.client.namespace, process.execPath, CLI, 'rehearse',
    '--socket', lab.hosts.primary.socket, '--with-failure', '--report', html], {reject: false, timeout: 180_000, env: {TMPDIR: temp}});
  t.log(String(result.stdout));
  const report = await readReport(join(dir, 'rehearsal.json'), result);
  assertDrillOutcome(t, report, result, PHASES);
  t.deepEqual(await readdir(temp), [], 'the rehearsal left files in TMPDIR');
  const status = await labStatus(lab);
  t.is([status.primary.self.holdsIp, status.backup.self.holdsIp].filter(Boolean).length, 1);
  t.is(await whoServes(lab), 'backup', 'after the failure and the old primary\'s return, the backup serves');
});

test.serial('baton rehearse --with-failure whose other host does not enable the rehearsal aids is refused before any step, naming that host', async (t) => {
  if (!available) return t.pass();
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin'});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  const backup = lab.hosts.backup;
  const config = await readFile(backup.configFile, 'utf8');
  t.true(config.includes('rehearsal: { enabled: true }'), 'the lab enables the aids');
  await writeFile(backup.configFile, config.replace('rehearsal: { enabled: true }', 'rehearsal: { enabled: false }'));
  await signalAgent(backup, 'SIGTERM');
  await startAgent(backup, lab);
  await waitForSettledPair(lab, 15_000);
  const html = join(dir, 'refused.html');
  // Run on the primary, whose own configuration enables the aids: only the backup's answer can refuse it.
  const result = await execa('ip', ['netns', 'exec', lab.client.namespace, process.execPath, CLI, 'rehearse',
    '--socket', lab.hosts.primary.socket, '--with-failure', '--report', html], {reject: false, timeout: 60_000});
  t.is(result.exitCode, 1, String(result.stderr));
  t.log(result.stderr.split('\n')[0]);
  t.regex(result.stderr.split('\n')[0] ?? '', /^baton: --with-failure needs the rehearsal aids on both hosts, and the backup \(\S+\) does not enable them: set `rehearsal: \{enabled: true\}` \(rehearsal\.enabled\) in its configuration .*; nothing was done$/);
  t.notRegex(result.stderr, /primary \(/, 'the primary, which enables them, is not named');
  await t.throwsAsync(readFile(join(dir, 'refused.json'), 'utf8'), undefined, 'no report: no phase ran');
  const status = await labStatus(lab);
  t.is(status.primary.lastSwitch, undefined, 'no switch was run');
  t.is(status.backup.lastSwitch, undefined);
  t.true(status.primary.self.holdsIp);
  t.true(status.primary.self.rehearsal);
  t.false(status.backup.self.rehearsal);
  t.is(await whoServes(lab), 'primary');
});

test.serial('baton rehearse --client HOST: the probes come from a third machine over ssh', async (t) => {
  if (!available) return t.pass();
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin'});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  // The client namespace plays the third machine: sshd there, with keys made for this test only.
  const ssh = join(dir, `${lab.prefix}-ssh`);
  await mkdir(ssh, {mode: 0o700});
  for (const key of ['host_key', 'client_key']) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, key)]);
  await writeFile(join(ssh, 'authorized_keys'), await readFile(join(ssh, 'client_key.pub')), {mode: 0o600});
  await writeFile(join(ssh, 'sshd_config'), [
    'ListenAddress 192.0.2.20', `HostKey ${join(ssh, 'host_key')}`, `PidFile ${join(ssh, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`, 'StrictModes no', 'PermitRootLogin prohibit-password',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'LogLevel ERROR', '',
  ].join('\n'));
  await writeFile(join(ssh, 'ssh_config'), [
    'Host client', '  HostName 192.0.2.20', '  User root', `  IdentityFile ${join(ssh, 'client_key')}`,
    '  StrictHostKeyChecking no', '  UserKnownHostsFile /dev/null', '  LogLevel ERROR', '',
  ].join('\n'));
  // sshd wants its privilege-separation directory, as Debian's own service creates it.
  await mkdir('/run/sshd', {recursive: true, mode: 0o755});
  const sshd = await spawnInNamespace(lab.client.namespace, '/usr/sbin/sshd', ['-D', '-e', '-f', join(ssh, 'sshd_config')], join(ssh, 'sshd.log'));
  t.teardown(() => stopProcessByPid(sshd));
  // Spawned is not listening: the rehearsal's first ssh raced sshd's start-up ("Connection refused").
  await until('sshd listens on the client', 20_000, async () => {
    const {stdout} = await execa('ip', ['netns', 'exec', lab.client.namespace, 'ss', '-Hltn', 'sport = :22']);
    return stdout.trim() === '' ? undefined : true;
  }).catch(async (error: unknown) => {
    throw new Error(`${String(error)}; sshd's log: ${await readFile(join(ssh, 'sshd.log'), 'utf8').catch(() => 'none')}`);
  });

  const repo = fileURLToPath(new URL('../../../', import.meta.url));
  const result = await execa('ip', ['netns', 'exec', lab.hosts.backup.namespace, process.execPath, CLI, 'rehearse',
    '--socket', lab.hosts.backup.socket, '--client', 'client', '--ssh-config', join(ssh, 'ssh_config'), '--client-baton', repo,
    '--report', join(dir, 'ssh-rehearsal.html')], {reject: false, timeout: 180_000});
  t.log(String(result.stdout));
  const report = await readReport(join(dir, 'ssh-rehearsal.json'), result);
  assertDrillOutcome(t, report, result, ['preflight', 'status', 'switchover', 'switchback']);
  t.true(report.probes.length > 20);
  t.is(await whoServes(lab), 'primary', 'after the switchback, the primary serves');
  // The backup's web server saw the client machine's address: the probes really came from there.
  const log = await readFile(lab.hosts.backup.web?.accessLog ?? '', 'utf8');
  t.regex(log, /^192\.0\.2\.20 - - \[/m);
});
