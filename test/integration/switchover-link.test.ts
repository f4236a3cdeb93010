// Planned switchover in link mode, the runbook's literal procedure: each host has a dedicated service interface
// (eth0) that goes down and up, while beacons travel on a separate management LAN (eth1).

import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {labDown, labUp, type Lab, type LabHost} from '../../cli/lab/lab.js';
import {startProber, type Prober} from '../../cli/lab/probe-control.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';
import {baton, servesAddress, settled, whoServes} from './lab-helpers.js';

const runner = createExecaRunner();
let lab: Lab | undefined;
let baseDir = '';
let prober: Prober | undefined;

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-link-'));
  lab = await labUp({runner, prefix: integrationPrefix(), baseDir, web: 'nginx', mode: 'link'});
  await settled(lab);
  // Confirmation needs real requests: a client probes every 20 ms, bounded in time and count.
  prober = await startProber({namespace: lab.client.namespace, url: 'http://192.0.2.100/', intervalMs: 20, timeoutMs: 200,
    durationS: 120, maxProbes: 6000, out: join(baseDir, 'probes.jsonl')});
});

test.after.always(async () => {
  await prober?.stop().catch(() => undefined);
  if (lab !== undefined) await labDown(runner, lab.prefix, baseDir);
  if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
});

async function linkUp(host: LabHost, iface: string): Promise<boolean> {
  const {stdout} = await execa('ip', ['-n', host.namespace, '-j', 'link', 'show', 'dev', iface]);
  return (JSON.parse(stdout) as Array<{flags: string[]}>)[0]?.flags.includes('UP') ?? false;
}

test.serial('link mode: beacons use the management LAN, and the primary holds the IP on its service interface', async (t) => {
  if (lab === undefined) return t.fail('the lab was not built');
  const {primary, backup} = await settled(lab);
  t.regex(primary.self.listen, /^192\.0\.2\.141:/);
  t.is(primary.service.mode, 'link');
  t.true(backup.peer.alive);
  t.true(await servesAddress(lab.hosts.primary));
  t.is(await whoServes(lab), 'primary');
});

test.serial('link mode: switchover brings the primary\'s service interface down and the backup\'s up, confirmed', async (t) => {
  if (lab === undefined) return t.fail('the lab was not built');
  const result = await baton(lab.hosts.backup, 'switchover');
  t.log(String(result.stdout));
  t.is(result.exitCode, 0, String(result.stderr));
  t.regex(String(result.stdout), /confirm-traffic +on backup +ok/);
  t.regex(String(result.stdout), /primary \([^)]+\) is free to upgrade$/);
  t.true(await servesAddress(lab.hosts.backup));
  t.false(await linkUp(lab.hosts.primary, 'eth0'), 'the released primary keeps its service interface down');
  t.true(await linkUp(lab.hosts.primary, 'eth1'), 'its management link stays up');
  t.is(await whoServes(lab), 'backup');
  const {primary} = await settled(lab);
  t.is(primary.self.state, 'released');
  t.true(primary.peer.alive, 'beacons still flow on the management LAN');
});

test.serial('link mode: switchback restores the primary', async (t) => {
  if (lab === undefined) return t.fail('the lab was not built');
  const result = await baton(lab.hosts.primary, 'switchover');
  t.log(String(result.stdout));
  t.is(result.exitCode, 0, String(result.stderr));
  t.true(await servesAddress(lab.hosts.primary));
  t.false(await linkUp(lab.hosts.backup, 'eth0'));
  t.is(await whoServes(lab), 'primary');
  const {backup} = await settled(lab);
  t.is(backup.self.state, 'released');
});
