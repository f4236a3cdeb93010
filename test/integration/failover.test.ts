// Unplanned failover between two real agents with real nginx in namespaces: link cut, a killed agent whose IP
// still answers (no split brain), the old primary's return, clean restarts with on_stop keep and release,
// a healed split brain, and SIGHUP with a broken config.

import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import {judgeHolders, watchServiceAddress, type AddressHistory} from '../../cli/lab/address-events.js';
import {signalAgent, startAgent, type Lab, type LabHost} from '../../cli/lab/lab.js';
import {summarizeProbes} from '../../cli/lab/probe-report.js';
import {isProcessAlive} from '../../cli/lab/web.js';
import {baton, servesAddress, settled, statusOf, servedBy, until, useLab, whoServes} from './lab-helpers.js';

// A dead timer of 2 s keeps the on_stop: release test's takeover (on the stopping beacon) apart from the dead timer's.
const DEAD_AFTER_MS = 2000;

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const fixture = useLab({web: 'nginx', extraConfig: `heartbeat: { interval_ms: 200, dead_after_ms: ${DEAD_AFTER_MS} }`}, {probe: true});
const requireLab = fixture.lab;

function setLink(host: LabHost, up: boolean): Promise<unknown> {
  return execa('ip', ['-n', host.namespace, 'link', 'set', 'dev', 'eth0', up ? 'up' : 'down']);
}

/** Ends with the primary active and the backup standby, whatever the test before left. */
async function primaryServes(l: Lab): Promise<void> {
  let {primary, backup} = await settled(l);
  if (backup.self.holdsIp === true) {
    const result = await baton(l.hosts.primary, 'switchover');
    if (result.exitCode !== 0) throw new Error(`switching back to the primary failed: ${String(result.stdout)}`);
    ({primary, backup} = await settled(l));
  }
  if (backup.self.state === 'released') await baton(l.hosts.backup, 'resume');
  if (primary.self.state !== 'active') throw new Error(`the primary is ${primary.self.state}`);
}

test.serial('the primary\'s service link cut: the backup takes over and serves; back up, the old primary stays standby', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  const cutAt = Date.now();
  await setLink(l.hosts.primary, false);
  await until('the backup serves the client', 15_000, async () => ((await whoServes(l)) === 'backup' ? true : undefined));
  t.log(`client served by the backup ${Date.now() - cutAt} ms after the cut (dead timer ${DEAD_AFTER_MS} ms)`);
  const backup = await statusOf(l.hosts.backup);
  t.is(backup.self.state, 'active');
  t.true(backup.self.holdsIp);

  await setLink(l.hosts.primary, true);
  // Back from fault only once its health checks pass again, which may be a moment after its beacons are heard.
  const after = await until('the returning primary leaves fault', 10_000, async () => {
    const pair = await settled(l);
    return pair.primary.self.state === 'fault' ? undefined : pair;
  });
  t.is(after.primary.self.state, 'standby', 'no preemption: the returning primary does not take the IP back');
  t.false(after.primary.self.holdsIp);
  t.true(after.backup.self.holdsIp);
  t.is(await servedBy(l, 'backup'), 'backup');
});

test.serial('the primary\'s agent killed while its IP stays up: no takeover; then its link cut too: the backup takes over', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  await signalAgent(l.hosts.primary, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS + 2000));
  const backup = await statusOf(l.hosts.backup);
  t.false(backup.peer.alive);
  t.is(backup.self.state, 'standby');
  t.regex(backup.self.reason, /peer silent but service IP alive/);
  t.false(await servesAddress(l.hosts.backup));
  t.is(await servedBy(l, 'primary'), 'primary', 'the primary host still serves without its agent');

  await setLink(l.hosts.primary, false);
  await until('the backup takes over', 10_000, async () => ((await whoServes(l)) === 'backup' ? true : undefined));
  t.is((await statusOf(l.hosts.backup)).self.state, 'active');

  // The old primary comes back: agent and link. It finds its address, sees the backup's higher epoch, lets go.
  await setLink(l.hosts.primary, true);
  await startAgent(l.hosts.primary, l);
  const after = await settled(l);
  t.is(after.primary.self.state, 'standby');
  t.false(await servesAddress(l.hosts.primary));
  t.is(await servedBy(l, 'backup'), 'backup');
});

test.serial('IP forced onto both hosts (a healed split brain): one holder again, the one with the higher epoch', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  const before = await settled(l);
  // The kernels' own account of the address, so the judgement cannot race the repair it judges (a status read
  // just after the add may already find the address released).
  const watch = await watchServiceAddress(l);
  let history: AddressHistory;
  let after: Awaited<ReturnType<typeof settled>>;
  try {
    await execa('ip', ['-n', l.hosts.backup.namespace, 'addr', 'add', '192.0.2.100/25', 'dev', 'eth0']);
    // One holder is not enough: the loser says 'active' until its release plan has ended, after the address is gone.
    after = await until('one holder and the other standing by', 20_000, async () => {
      const pair = await settled(l, 20_000);
      return pair.primary.self.state === 'active' && pair.backup.self.state === 'active' ? undefined : pair;
    });
  } finally {
    history = await watch.stop();
  }
  t.log(`kernel events: ${JSON.stringify(history.events)}`);
  const changes = (host: string): string[] => history.events.filter((e) => e.host === host).map((e) => e.change);
  t.deepEqual(changes('backup'), ['address-added', 'address-removed'], 'the forced address, then the backup agent\'s release');
  t.deepEqual(changes('primary'), [], 'the primary kept its address throughout');
  const judged = judgeHolders(history);
  t.deepEqual(judged.final, ['primary'], 'exactly one holder at the end, the primary');
  t.is(judged.overlaps.length, 1, 'the one overlap is the forced one');
  t.not(judged.overlaps[0]?.toMs, undefined, 'and it ended');
  t.regex(after.backup.self.reason, /released the service IP/);
  t.is(after.primary.self.state, 'active');
  t.true(after.primary.self.holdsIp);
  t.is(after.backup.self.state, 'standby');
  t.false(after.backup.self.holdsIp);
  t.true(after.primary.self.epoch >= after.backup.self.epoch,
    `the primary had epoch ${before.primary.self.epoch}, the backup ${before.backup.self.epoch}`);
  t.is(await servedBy(l, 'primary'), 'primary');
});

test.serial('restarting the active agent with on_stop: keep: no failed request, the IP does not move', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  const from = Date.now();
  await signalAgent(l.hosts.primary, 'SIGTERM');
  await startAgent(l.hosts.primary, l);
  const {primary, backup} = await settled(l);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const summary = summarizeProbes(await fixture.prober()?.read() ?? [], from, Date.now());
  t.log(`${summary.probes} probes during the restart, ${summary.failed} failed, longest gap ${Math.round(summary.longestGapMs)} ms`);
  t.is(summary.failed, 0);
  t.true(summary.probes > 10);
  t.deepEqual(Object.keys(summary.hosts), ['primary']);
  t.is(primary.self.state, 'active');
  t.is(backup.self.state, 'standby');
});

test.serial('stopping the active agent with on_stop: release: the standby takes over on the stopping primary\'s word, not its silence', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  const config = l.hosts.primary.configFile;
  const original = await readFile(config, 'utf8');
  await signalAgent(l.hosts.primary, 'SIGTERM');
  await writeFile(config, `${original}on_stop: release\n`);
  await startAgent(l.hosts.primary, l);
  await settled(l);
  const watch = await watchServiceAddress(l);
  try {
    const stoppedAt = Date.now();
    await signalAgent(l.hosts.primary, 'SIGTERM');
    const backup = await until('the backup is active', 20_000, async () => {
      const status = await statusOf(l.hosts.backup);
      return status.self.state === 'active' ? status : undefined;
    });
    const history = await watch.stop();
    // Released first, then taken: never both holding.
    t.deepEqual(history.events.map((e) => `${e.host} ${e.change}`), ['primary address-removed', 'backup address-added']);
    t.deepEqual(judgeHolders(history), {final: ['backup'], partly: [], overlaps: []});
    t.log(`the backup was active ${Date.now() - stoppedAt} ms after SIGTERM (dead timer ${DEAD_AFTER_MS} ms)`);
    // "Well before the dead timer" is judged by why the backup took over, not by a stopwatch: it saw the stopping
    // primary's beacon, not the primary's silence (that would be the dead timer's takeover).
    t.regex(backup.self.reason, /nobody holds the service IP and the peer is stopping: taking it/);
    t.notRegex(backup.self.reason, /peer is silent/);
    t.regex(await readFile(l.hosts.primary.logFile, 'utf8'), /released 192\.0\.2\.100\/25 \(on_stop: release\)/);
    t.true(await servesAddress(l.hosts.backup));
    t.false(await servesAddress(l.hosts.primary));
    t.is(await servedBy(l, 'backup'), 'backup');
  } finally {
    // Also when the wait above gave up: the kernels' account is what explains it.
    const history = await watch.stop().catch((error: unknown) => String(error));
    t.log(`kernel events: ${typeof history === 'string' ? history : JSON.stringify(history.events)}`);
    await writeFile(config, original);
    await startAgent(l.hosts.primary, l);
  }
});

test.serial('SIGUSR1 writes a full status dump to the log', async (t) => {
  const l = requireLab();
  const host = l.hosts.backup;
  process.kill(host.pid, 'SIGUSR1');
  const line = await until('the dump is logged', 5000, async () =>
    (await readFile(host.logFile, 'utf8')).split('\n').findLast((entry) => entry.includes('(status) {')));
  const dump = JSON.parse(line.slice(line.indexOf('{'))) as {self: {role: string}; peer: {alive: boolean}; beacons: {sent: number}};
  t.is(dump.self.role, 'backup');
  t.true(dump.peer.alive);
  t.true(dump.beacons.sent > 0);
});

test.serial('SIGHUP with a valid config applies it in place: same PID, new timers, the IP does not move, no failed request', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  const host = l.hosts.primary;
  const original = await readFile(host.configFile, 'utf8');
  const pid = host.pid;
  const from = Date.now();
  await writeFile(host.configFile, original.replace(`interval_ms: 200, dead_after_ms: ${DEAD_AFTER_MS}`, `interval_ms: 100, dead_after_ms: ${DEAD_AFTER_MS}`));
  try {
    process.kill(pid, 'SIGHUP');
    const status = await until('the new interval is in force and the agent decided', 10_000, async () => {
      const s = await statusOf(host);
      return s.timers.intervalMs === 100 && s.self.state !== 'starting' ? s : undefined;
    });
    t.is(status.self.pid, pid, 'restarted in place: systemd keeps its main PID');
    t.is(status.self.state, 'active');
    t.true(status.self.holdsIp);
    await settled(l);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const records = await fixture.prober()?.read() ?? [];
    const summary = summarizeProbes(records, from, Date.now());
    t.log(`${summary.probes} probes during the reload, ${summary.failed} failed` +
      `${JSON.stringify(records.filter((r) => !r.ok && r.sentAt >= from).map((r) => ({at: r.sentAt - from, error: r.error})))}`);
    t.is(summary.failed, 0);
    t.deepEqual(Object.keys(summary.hosts), ['primary']);
    t.regex(await readFile(host.logFile, 'utf8'), /SIGHUP: .* is valid; restarting in place \(same PID\)/);
  } finally {
    await writeFile(host.configFile, original);
    process.kill(host.pid, 'SIGHUP');
    await until('the old interval is back', 10_000, async () => {
      const s = await statusOf(host);
      return s.timers.intervalMs === 200 && s.self.state !== 'starting' ? true : undefined;
    });
  }
});

test.serial('SIGHUP with a broken config keeps the agent running on the old one, and says so', async (t) => {
  const l = requireLab();
  await settled(l);
  const host = l.hosts.primary;
  const original = await readFile(host.configFile, 'utf8');
  await writeFile(host.configFile, `${original}on_stop: sometimes\n`);
  try {
    process.kill(host.pid, 'SIGHUP');
    await until('the agent logs that it keeps its config', 5000, async () =>
      ((await readFile(host.logFile, 'utf8')).includes('keeping the running config') ? true : undefined));
    t.true(isProcessAlive(host.pid));
    const log = await readFile(host.logFile, 'utf8');
    t.regex(log, /SIGHUP: keeping the running config, the new file is invalid: .*on_stop: expected 'keep' or 'release', got 'sometimes'/);
    const status = await statusOf(host);
    t.true(status.peer.alive);
    t.is(status.timers.intervalMs, 200);
  } finally {
    await writeFile(host.configFile, original);
  }
});

test.serial('SIGHUP with a config this host cannot start with (no such interface) keeps the agent running on the old one', async (t) => {
  const l = requireLab();
  await settled(l);
  const host = l.hosts.primary;
  const original = await readFile(host.configFile, 'utf8');
  const from = (await readFile(host.logFile, 'utf8')).length;
  t.regex(original, /\n {2}interface: \S+\n/);
  await writeFile(host.configFile, original.replace(/\n {2}interface: \S+\n/, '\n  interface: eth9\n'));
  try {
    process.kill(host.pid, 'SIGHUP');
    await until('the agent logs that it keeps its config', 10_000, async () =>
      ((await readFile(host.logFile, 'utf8')).slice(from).includes('keeping the running config') ? true : undefined));
    const log = (await readFile(host.logFile, 'utf8')).slice(from);
    t.regex(log, /SIGHUP: keeping the running config, this host cannot run the new one: service\.interface: this host has no interface eth9/);
    t.false(log.includes('restarting in place'), log);
    t.true(isProcessAlive(host.pid));
    const status = await statusOf(host);
    t.true(status.peer.alive);
  } finally {
    await writeFile(host.configFile, original);
  }
});

test.serial('upgrading baton on a running pair (installed copy, standby first, then the active host): the IP never moves, no failed request', async (t) => {
  const l = requireLab();
  await primaryServes(l);
  // The "new version": baton install puts a complete copy, with its own Node, under ROOT/opt/baton.
  const root = await mkdtemp(join(tmpdir(), 'baton-upgrade-'));
  t.teardown(() => rm(root, {recursive: true, force: true}));
  const install = await execa(process.execPath, [CLI, 'install', '--root', root, '--role', 'primary', '--listen', '192.0.2.11',
    '--peer', '192.0.2.12', '--service-ip', '192.0.2.100/25', '--interface', 'eth0'], {reject: false, timeout: 120_000});
  t.is(install.exitCode, 0, String(install.stderr));
  const program = {node: join(root, 'opt/baton/node_modules/.bin/node'), script: join(root, 'opt/baton/dist/agent/main.js')};
  const from = Date.now();
  for (const host of [l.hosts.backup, l.hosts.primary]) {
    await signalAgent(host, 'SIGTERM');
    await startAgent(host, l, program);
    await settled(l);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  const summary = summarizeProbes(await fixture.prober()?.read() ?? [], from, Date.now());
  t.log(`${summary.probes} probes during the upgrade, ${summary.failed} failed, longest gap ${Math.round(summary.longestGapMs)} ms`);
  t.is(summary.failed, 0);
  t.deepEqual(Object.keys(summary.hosts), ['primary'], 'the IP never moved');
  const {primary, backup} = await settled(l);
  t.is(primary.self.state, 'active');
  t.is(backup.self.state, 'standby');
  t.regex((await readFile(`/proc/${l.hosts.primary.pid}/cmdline`, 'utf8')), new RegExp(root), 'the primary runs the installed copy');
});
