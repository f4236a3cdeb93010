// No split brain under a broken heartbeat path or heavy beacon loss, and a health-check failure on the active
// host handed over through a confirmed switchover: real agents, real nginx, a client probing, namespaces.

import {chmod, mkdtemp, rm, unlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {judgeHolders, watchServiceAddress, type AddressHistory, type HolderJudgement} from '../../cli/lab/address-events.js';
import {labDown, labUp, type Lab} from '../../cli/lab/lab.js';
import {startProber, type Prober} from '../../cli/lab/probe-control.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';
import {servesAddress, settled, statusOf, until, whoServes} from './lab-helpers.js';

const runner = createExecaRunner();
const labs: Lab[] = [];
const probers: Prober[] = [];
let baseDir = '';

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-res-'));
  // The command check runs as script_user (nobody): it must be able to reach its script and the flag files.
  await chmod(baseDir, 0o755);
});

test.after.always(async () => {
  for (const prober of probers) await prober.stop().catch(() => undefined);
  for (const lab of labs) await labDown(runner, lab.prefix, baseDir);
  if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
});

async function newLab(options: Omit<Parameters<typeof labUp>[0], 'runner' | 'prefix' | 'baseDir'>): Promise<Lab> {
  const lab = await labUp({runner, prefix: integrationPrefix(), baseDir, ...options});
  labs.push(lab);
  await settled(lab);
  probers.push(await startProber({namespace: lab.client.namespace, url: 'http://192.0.2.100/', intervalMs: 20, timeoutMs: 200,
    durationS: 150, maxProbes: 7500, out: join(baseDir, `${lab.prefix}-probes.jsonl`)}));
  return lab;
}

/**
 * Watches both kernels for `ms`: every change of the service address (and of the service link) on each host, timed.
 * "Never both holding" is judged from these events, which a poll of one host and then the other could miss.
 */
async function watchHolders(lab: Lab, ms: number): Promise<{history: AddressHistory; judged: HolderJudgement}> {
  const watch = await watchServiceAddress(lab);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const history = await watch.stop();
  return {history, judged: judgeHolders(history)};
}

test.serial('link mode, heartbeat path cut while the service path stays up: never both holding, the primary keeps serving', async (t) => {
  const lab = await newLab({web: 'nginx', mode: 'link'});
  const port = 'primary-mgmt';
  await execa('ip', ['-n', `${lab.prefix}-sw`, 'link', 'set', 'dev', port, 'down']);
  try {
    const {history, judged} = await watchHolders(lab, 6000);
    t.log(`kernel events: ${JSON.stringify(history.events)}`);
    t.deepEqual(judged.overlaps, [], 'never both holding');
    t.deepEqual(judged.final, ['primary']);
    const backup = await statusOf(lab.hosts.backup);
    t.false(backup.peer.alive);
    t.is(backup.self.state, 'standby');
    t.regex(backup.self.reason, /peer silent but service IP alive/);
    t.is(await whoServes(lab), 'primary');
  } finally {
    await execa('ip', ['-n', `${lab.prefix}-sw`, 'link', 'set', 'dev', port, 'up']);
  }
  const after = await settled(lab);
  t.true(after.primary.self.holdsIp);
  t.true(after.backup.peer.alive);
});

test.serial('30 % of beacons dropped both ways for 60 s: never both holding the IP', async (t) => {
  const lab = await newLab({web: 'nginx'});
  // A random 30 % of the datagrams arriving at the beacon port are dropped, in each host's namespace. nft is
  // named by its full path: npm scripts put node_modules/.bin first on PATH, and ava brings a JS tool called nft.
  const rules = 'table inet batonloss {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport 7411 numgen random mod 100 < 30 drop\n  }\n}\n';
  for (const host of [lab.hosts.primary, lab.hosts.backup]) {
    await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', '-f', '-'], {input: rules});
    const {stdout} = await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', 'list', 'table', 'inet', 'batonloss']);
    if (!stdout.includes('numgen random mod 100 < 30 drop')) throw new Error(`the drop rule is not in place in ${host.namespace}: ${stdout}`);
  }
  try {
    const {history, judged} = await watchHolders(lab, 60_000);
    const backup = await statusOf(lab.hosts.backup);
    t.log(`kernel events: ${JSON.stringify(history.events)}; loss seen by the backup ${((backup.peer.loss ?? 0) * 100).toFixed(0)} %`);
    t.deepEqual(judged.overlaps, [], 'never both holding');
    t.is(judged.final.length, 1, 'and one host still serves');
    t.true((backup.peer.loss ?? 0) > 0.15, 'the drop rule really dropped beacons');
  } finally {
    for (const host of [lab.hosts.primary, lab.hosts.backup]) {
      await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', 'delete', 'table', 'inet', 'batonloss']);
    }
  }
});

test.serial('a failing health check on the active host: planned handover to the standby, confirmed; healthy again, it stands by', async (t) => {
  const script = join(baseDir, 'check-app.sh');
  const flag = join(baseDir, 'primary-sick');
  await writeFile(script, '#!/bin/sh\n# Fails while the flag file given as $1 exists.\n[ ! -e "$1" ]\n');
  await chmod(script, 0o755);
  const health = (flagFile: string): string =>
    `health:\n  interval_ms: 500\n  fall: 2\n  rise: 2\n  checks:\n    - command: { path: ${script}, args: [${flagFile}], timeout_ms: 400 }\n`;
  const lab = await newLab({web: 'nginx', hostConfig: {primary: health(flag), backup: health(join(baseDir, 'backup-sick'))}});
  await writeFile(flag, '');
  await until('the backup serves', 30_000, async () => ((await whoServes(lab)) === 'backup' ? true : undefined));
  const {primary, backup} = await settled(lab);
  t.is(primary.self.state, 'fault');
  t.is(primary.self.health, 'failing');
  t.regex(primary.self.reason, /handed the service IP over because health checks fail/);
  t.is(backup.self.state, 'active');
  t.regex(backup.lastSwitch?.reason ?? '', /request\(s\) confirmed/);
  t.false(await servesAddress(lab.hosts.primary));

  await unlink(flag);
  await until('the primary is healthy and standby', 10_000, async () => ((await statusOf(lab.hosts.primary)).self.state === 'standby' ? true : undefined));
  t.is(await whoServes(lab), 'backup', 'no preemption');
});
