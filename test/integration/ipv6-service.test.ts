// A pair whose service address is IPv6 (2001:db8:0:1::100/64) and whose beacons are IPv4, with real nginx and a
// client probing http://[2001:db8:0:1::100]/ every 20 ms: the address usable at once, a switchover confirmed by the
// IPv6 client's requests in the access log and a switchback, no takeover while the silent primary's address still
// answers the duplicate-address probe, and a takeover once its link is cut; each judged from the kernels' address
// events (never two holders) and the client's answers.

import {readFile} from 'node:fs/promises';
import test from 'ava';
import {judgeHolders} from '../../cli/lab/address-events.js';
import {setHostLink, signalAgent, startAgent, type Lab} from '../../cli/lab/lab.js';
import {summarizeProbes} from '../../cli/lab/probe-report.js';
import {LAB_ADDRESSES6} from '../../cli/lab/topology-plan.js';
import {baton, servesAddress, servedBy, settled, statusOf, until, useLab, watched} from './lab-helpers.js';

// As failover.test.ts: a dead timer of 2 s.
const DEAD_AFTER_MS = 2000;

const fixture = useLab({web: 'nginx', serviceFamily: 6, extraConfig: `heartbeat: { interval_ms: 200, dead_after_ms: ${DEAD_AFTER_MS} }`},
  {probe: true});
const requireLab = fixture.lab;

const serves = (l: Lab, role: 'primary' | 'backup'): Promise<boolean> => servesAddress(l.hosts[role], 'eth0', l.serviceAddress);

test.serial('the primary holds the IPv6 service address, usable at once, and the IPv6 client is served and logged', async (t) => {
  const l = requireLab();
  t.is(l.serviceIp, '2001:db8:0:1::100/64');
  t.is(l.serviceUrl, 'http://[2001:db8:0:1::100]/');
  t.is(l.client.address, LAB_ADDRESSES6.client.svc);
  const {primary, backup} = await settled(l);
  t.is(primary.self.state, 'active');
  t.is(backup.self.state, 'standby');
  t.true(await serves(l, 'primary'), 'on eth0, not tentative');
  t.false(await serves(l, 'backup'));
  t.is(await servedBy(l, 'primary'), 'primary');
  const log = await readFile(l.hosts.primary.web?.accessLog ?? '', 'utf8');
  t.regex(log, /^2001:db8:0:1::20 - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 /m);
});

test.serial('switchover and switchback of the IPv6 address: confirmed by the IPv6 client, followed by it, never two holders', async (t) => {
  const l = requireLab();
  t.is(await servedBy(l, 'primary'), 'primary');
  const from = Date.now();
  const {history} = await watched(l, async () => {
    const over = await baton(l.hosts.primary, 'switchover');
    t.log(String(over.stdout));
    t.is(over.exitCode, 0, String(over.stderr));
    t.regex(String(over.stdout), /request\(s\) in the access log/);
    t.true(await serves(l, 'backup'));
    t.false(await serves(l, 'primary'));
    t.is(await servedBy(l, 'backup'), 'backup');
    const back = await baton(l.hosts.primary, 'switchover');
    t.is(back.exitCode, 0, String(back.stderr));
    t.is(await servedBy(l, 'primary'), 'primary');
  });
  const summary = summarizeProbes(await fixture.prober()?.read() ?? [], from, Date.now());
  t.log(`client (IPv6): ${summary.probes} probes, ${summary.failed} failed, longest gap ${Math.round(summary.longestGapMs)} ms, hosts ${JSON.stringify(summary.hosts)}`);
  t.true((summary.hosts['backup'] ?? 0) > 0, 'the IPv6 client reached the backup between the two switches');
  const changes = (host: string): string[] => history.events.filter((e) => e.host === host && e.change.startsWith('address')).map((e) => e.change);
  t.deepEqual(changes('backup'), ['address-added', 'address-removed']);
  t.deepEqual(changes('primary'), ['address-removed', 'address-added']);
  const judged = judgeHolders(history);
  t.deepEqual(judged.overlaps, [], 'never two holders');
  t.deepEqual(judged.final, ['primary']);
  t.is((await baton(l.hosts.backup, 'resume')).exitCode, 0);
  t.is((await settled(l)).backup.self.state, 'standby');
});

test.serial('the primary\'s agent killed while its IPv6 address stays up: the duplicate-address probe finds it, no takeover', async (t) => {
  const l = requireLab();
  const {history} = await watched(l, async () => {
    await signalAgent(l.hosts.primary, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS + 2000));
    const backup = await statusOf(l.hosts.backup);
    t.false(backup.peer.alive);
    t.is(backup.self.state, 'standby');
    t.regex(backup.self.reason, /peer silent but service IP alive/);
    t.false(await serves(l, 'backup'));
    t.is(await servedBy(l, 'primary'), 'primary', 'the primary host still serves without its agent');
    await startAgent(l.hosts.primary, l);
    await settled(l);
  });
  t.deepEqual(history.events.filter((e) => e.host === 'backup' && e.change.startsWith('address')), [], 'the backup never added the address');
  t.deepEqual(judgeHolders(history).final, ['primary']);
});

test.serial('the primary\'s link cut: the backup takes the IPv6 address over and serves, never two holders', async (t) => {
  const l = requireLab();
  t.is((await settled(l)).primary.self.state, 'active');
  const {history} = await watched(l, async () => {
    const cutAt = Date.now();
    await setHostLink(l.hosts.primary, 'eth0', false);
    t.is(await servedBy(l, 'backup'), 'backup');
    t.log(`IPv6 client served by the backup ${Date.now() - cutAt} ms after the cut (dead timer ${DEAD_AFTER_MS} ms)`);
    const backup = await statusOf(l.hosts.backup);
    t.is(backup.self.state, 'active');
    t.true(backup.self.holdsIp);
  });
  t.log(`kernel events: ${JSON.stringify(history.events)}`);
  const judged = judgeHolders(history);
  t.deepEqual(judged.final, ['backup']);
  t.deepEqual(judged.overlaps, [], 'never two holders');
  t.false(await serves(l, 'primary'), 'the link down flushed the primary\'s IPv6 addresses, the service address with them');
});

// The link down flushed the primary's IPv6 addresses (keep_addr_on_down=0), the service address with them: its agent
// saw its interface stop running and went to fault without a doomed takeover; when the link runs again it stands by.
test.serial('back up, the old primary hears the backup and stands by (no preemption)', async (t) => {
  const l = requireLab();
  await setHostLink(l.hosts.primary, 'eth0', true);
  const after = await until('the returning primary stands by', 20_000, async () => {
    const pair = await settled(l, 20_000);
    return pair.primary.self.state === 'standby' ? pair : undefined;
  }).catch(async (error: unknown) => {
    t.log(`the primary: ${JSON.stringify((await statusOf(l.hosts.primary)).self)}`);
    throw error;
  });
  t.false(after.primary.self.holdsIp);
  t.true(after.backup.self.holdsIp);
  t.false(await serves(l, 'primary'));
  t.is(await servedBy(l, 'backup'), 'backup');
});
