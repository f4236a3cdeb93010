// A dual-stack service in namespaces (issue 16): 192.0.2.100/25 and 2001:db8:0:1::100/64 move together as one
// service. `baton lab run --dual-stack`'s drill passes whole with a client probing both addresses and keep-alive
// clients and transfers over each, both switches drain both addresses, never two holders (by the kernels' address
// events: neither address on two hosts, nor the two split between them), and both end on the same host, which the
// client reaches at each.

import {mkdir, mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import {runDrill} from '../../cli/drill/drill.js';
import {createLabTarget} from '../../cli/drill/lab-target.js';
import {formatDrillReport, type DrillReport} from '../../cli/drill/report.js';
import {judgeHolders, watchServiceAddress} from '../../cli/lab/address-events.js';
import {holdingsOf, soleHolder} from '../../cli/lab/observe.js';
import {labDown, labStatus, labUp, waitForSettledPair} from '../../cli/lab/lab.js';
import {labServiceAddress, labServiceCidr} from '../../cli/lab/topology-plan.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';
import {runner, servesAddress, until, whoServes} from './lab-helpers.js';

let dir = '';
let available = false;

test.before(async (t) => {
  available = await skipUnlessIntegration(t);
  dir = await mkdtemp(join(tmpdir(), 'baton-dual-'));
});

test.after.always(async () => {
  if (dir !== '') await rm(dir, {recursive: true, force: true});
});

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const PHASES = ['preflight', 'status', 'switchover', 'switchback', 'failure', 'return'];
const ADDRESSES = [labServiceAddress(4), labServiceAddress(6)];

test.serial('lab run --dual-stack: the whole drill, both addresses moving together, never two holders', async (t) => {
  if (!available) return t.pass();
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin', serviceFamily: 'dual', heartbeatFamily: 4});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  t.deepEqual(lab.serviceIps, [labServiceCidr(4), labServiceCidr(6)]);
  for (const address of ADDRESSES) {
    t.true(await servesAddress(lab.hosts.primary, 'eth0', address), `the primary serves ${address}`);
    t.false(await servesAddress(lab.hosts.backup, 'eth0', address), `the backup does not serve ${address}`);
  }
  const status = await labStatus(lab);
  t.deepEqual(status.primary.service.addresses, [labServiceCidr(4), labServiceCidr(6)]);
  t.true(status.primary.self.holdsIp);

  t.is(await whoServes(lab), 'primary', 'the client reaches the primary at both addresses');

  // One watch of both addresses: a host with either counts as a holder.
  const watch = await watchServiceAddress(lab);
  const lines: string[] = [];
  let report;
  try {
    report = await runDrill(createLabTarget(lab, 1000), {
      title: 'baton lab drill (builtin web servers, dual stack)', withFailure: true, probeIntervalMs: 20, say: (l) => lines.push(l),
      signal: new AbortController().signal,
    });
  } catch (error) {
    await watch.stop();
    throw error;
  }
  t.log(formatDrillReport(report));
  t.is(report.pair.serviceIp, `${labServiceCidr(4)} and ${labServiceCidr(6)}`);
  t.true(lines.includes('client probing http://192.0.2.100/ and http://[2001:db8:0:1::100]/ every 20 ms'), lines.slice(0, 5).join('\n'));
  t.deepEqual(report.phases.map((p) => p.name), PHASES, 'the report names every phase, in order');
  for (const phase of report.phases) {
    // A missed gap target on a busy machine is a figure for the report, not a failed test (drill.test.ts).
    t.true(phase.ok || phase.target?.met === false, `${phase.name}: ${phase.problem ?? ''}`);
  }
  for (const name of ['switchover', 'switchback']) {
    const phase = report.phases.find((p) => p.name === name);
    t.true(phase?.steps.some((s) => s.name === 'confirm-traffic' && s.status === 'ok'), `${name}: confirmed once`);
    // Both addresses drained: the giver held each on lo, the taker handed each one's strays on.
    for (const step of ['forward-strays', 'hold-connections', 'drain-connections', 'end-forwarding', 'end-hold']) {
      t.true(phase?.steps.some((s) => s.name === step && s.status === 'ok'), `${name}: ${step} ran`);
    }
    // Keep-alive clients, downloads and uploads over each address (half over each): none of them is cut.
    const clients = phase?.clients;
    t.truthy(clients, `${name}: the clients ran`);
    if (clients === undefined) continue;
    t.true(clients.keepAlive.ok > 50 && clients.downloads.ok > 2 && clients.uploads.ok > 2, `${name}: the clients really ran`);
    t.deepEqual([clients.keepAlive.failed, clients.downloads.failed, clients.uploads.failed], [0, 0, 0],
      `${name}: nothing cut: ${JSON.stringify([clients.keepAlive.failures, clients.downloads.failures, clients.uploads.failures])}`);
  }
  for (const stream of ['IPv4', 'IPv6']) {
    const probes = report.probes.filter((p) => p.stream === stream);
    t.true(probes.some((p) => p.ok && p.host === 'primary') && probes.some((p) => p.ok && p.host === 'backup'),
      `the ${stream} client was served by both hosts`);
  }
  // The old primary's link comes back with its IPv4 address still on it (IPv4 stays on a downed link, IPv6 goes):
  // it releases it at its first look, which the watch may not see before the drill ends.
  await until('the old primary has let both addresses go', 10_000, async () =>
    (await Promise.all(ADDRESSES.map((address) => servesAddress(lab.hosts.primary, 'eth0', address)))).every((serves) => !serves) || undefined);
  for (const address of ADDRESSES) t.true(await servesAddress(lab.hosts.backup, 'eth0', address), `the backup serves ${address}`);
  t.is(soleHolder(await holdingsOf(lab)), 'backup', 'the backup holds both addresses, the primary neither');
  t.is(await whoServes(lab), 'backup', 'the client reaches the backup at both addresses');
  const cutAt = report.phases.find((p) => p.name === 'failure')?.startedAtWallMs ?? Infinity;
  const judged = judgeHolders(await watch.stop());
  t.deepEqual(judged.overlaps.filter((o) => o.fromMs < cutAt), [], 'never two holders in the planned switches, by the kernels\' address events');
  // After the cut: the returning host's IPv4 address answers until its agent releases it (as for an IPv4-only pair).
  for (const o of judged.overlaps.filter((o) => o.fromMs >= cutAt)) t.log(`${o.hosts.join(' and ')} from ${Math.round(o.fromMs - cutAt)} ms after the cut`);
  t.deepEqual([judged.final, judged.partly], [['backup'], []], 'at the end the backup holds the whole service, and nobody a part');
});

test.serial('baton rehearse on a configured dual-stack pair probes both addresses, each its own stream', async (t) => {
  if (!available) return t.pass();
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir: dir, web: 'builtin', serviceFamily: 'dual', heartbeatFamily: 4});
  t.teardown(() => labDown(runner, lab.prefix, dir));
  await waitForSettledPair(lab, 15_000);
  const html = join(dir, 'rehearsal.html');
  const temp = join(dir, 'rehearse-tmp');
  await mkdir(temp);
  // From the client namespace, which reaches the primary's control socket as a file (drill.test.ts).
  const result = await execa('ip', ['netns', 'exec', lab.client.namespace, process.execPath, CLI, 'rehearse',
    '--socket', lab.hosts.primary.socket, '--report', html], {reject: false, timeout: 180_000, env: {TMPDIR: temp}});
  t.log(String(result.stdout));
  const text = await readFile(join(dir, 'rehearsal.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return t.fail(`no report: exit ${String(result.exitCode)}, stderr:\n${String(result.stderr).slice(-3000)}`);
  const report = JSON.parse(text) as DrillReport;
  t.is(report.pair.serviceIp, `${labServiceCidr(4)} and ${labServiceCidr(6)}`);
  t.regex(String(result.stderr), /client probing http:\/\/192\.0\.2\.100\/ and http:\/\/\[2001:db8:0:1::100\]\/ every 50 ms/);
  t.deepEqual(report.phases.map((p) => p.name), ['preflight', 'status', 'switchover', 'switchback']);
  for (const phase of report.phases) t.true(phase.ok || phase.target?.met === false, `${phase.name}: ${phase.problem ?? ''}`);
  for (const stream of ['IPv4', 'IPv6']) {
    const probes = report.probes.filter((p) => p.stream === stream);
    t.true(probes.some((p) => p.ok && p.host === 'primary') && probes.some((p) => p.ok && p.host === 'backup'),
      `the ${stream} client was served by both hosts`);
  }
  t.deepEqual(await readdir(temp), [], 'the rehearsal left files in TMPDIR');
});
