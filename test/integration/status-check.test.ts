// `baton status` as a monitoring system runs it, against two real agents in network namespaces: its exit status
// and first line when the service IP is on both hosts, and when the peer's agent is dead.

import {execa} from 'execa';
import test from 'ava';
import type {StatusJson} from '../../cli/commands/status.js';
import {signalAgent, type LabHost} from '../../cli/lab/lab.js';
import {holdingsOf} from '../../cli/lab/observe.js';
import {baton, settled, statusOf, until, useLab} from './lab-helpers.js';

const fixture = useLab({});
// A bound for the pair to reach the state under test (a dead timer, a 1 s look at the interface, the CLI's Node
// starting on a loaded machine), not a target.
const REACH_MS = 30_000;
// nft by its full path: npm scripts put node_modules/.bin first on PATH, and ava brings a JS tool called nft.
const NFT = '/usr/sbin/nft';

/** `baton status` on `host` until it exits `code`; its stdout then. */
async function statusExiting(host: LabHost, code: number, ...args: string[]): Promise<string> {
  return await until(`baton status on the ${host.role} exits ${code}`, REACH_MS, async () => {
    const result = await baton(host, 'status', ...args);
    return result.exitCode === code ? String(result.stdout) : undefined;
  });
}

/** `host` stops hearing `from`'s beacons: they are dropped as they arrive. */
async function deafen(host: LabHost, from: LabHost): Promise<void> {
  const rules = `table inet batondeaf {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${from.address} udp dport 7411 drop\n  }\n}\n`;
  await execa('ip', ['netns', 'exec', host.namespace, NFT, '-f', '-'], {input: rules});
}

async function undeafen(host: LabHost): Promise<void> {
  await execa('ip', ['netns', 'exec', host.namespace, NFT, 'delete', 'table', 'inet', 'batondeaf']).catch(() => undefined);
}

test.serial('the service IP on both hosts: baton status exits 2, CRITICAL, and says so on its first line', async (t) => {
  const lab = fixture.lab();
  const {primary, backup} = lab.hosts;
  const cidr = (await statusOf(primary)).service.address;
  try {
    // Two hosts that hear each other settle a double holding within a beacon (the lower epoch lets go), so the
    // one with the lower epoch must not hear the other. First the backup gets the higher epoch: deaf to the
    // primary, it tries a takeover (a new epoch) that the primary's live address stops.
    await deafen(backup, primary);
    await until('the backup has an epoch above the primary\'s', REACH_MS, async () => {
      const [p, b] = [await statusOf(primary), await statusOf(backup)];
      return b.self.epoch > p.self.epoch ? true : undefined;
    });
    await undeafen(backup);
    await deafen(primary, backup);
    await execa('ip', ['-n', backup.namespace, 'addr', 'add', cidr, 'dev', 'eth0']);
    // The backup wins the conflict it sees and keeps the address; the primary, hearing nothing of it, keeps it too.
    const text = await statusExiting(backup, 2);
    t.regex(text.split('\n')[0] ?? '', /^CRITICAL: the service IP 192\.0\.2\.100\/\d+ is on both hosts: observed here, and the primary \(\S+\) reports holding it$/);
    t.deepEqual((await holdingsOf(lab)).map((h) => h.host), ['primary', 'backup'], 'the kernels agree: both hold it');
    const json = JSON.parse(await statusExiting(backup, 2, '--json')) as StatusJson;
    t.is(json.check.level, 'critical');
    t.true(json.check.problems.some((p) => p.code === 'ip-on-both'));
  } finally {
    await undeafen(backup);
    await undeafen(primary);
  }
  // Hearing each other again, the lower epoch releases: one holder, and status OK on both hosts.
  await settled(lab, REACH_MS);
  t.is((await holdingsOf(lab)).length, 1);
  for (const host of [primary, backup]) t.regex((await statusExiting(host, 0)).split('\n')[0] ?? '', /^OK: /);
});

test.serial('the standby\'s agent killed: baton status on the active host exits 1, WARNING, naming the silent peer', async (t) => {
  const lab = fixture.lab();
  const both = await settled(lab, REACH_MS);
  const [active, standby] = both.primary.self.holdsIp === true
    ? [lab.hosts.primary, lab.hosts.backup] : [lab.hosts.backup, lab.hosts.primary];
  await signalAgent(standby, 'SIGKILL');
  const text = await statusExiting(active, 1);
  t.regex(text.split('\n')[0] ?? '', new RegExp(`^WARNING: no valid beacon from the ${standby.role} \\(\\S+\\) for [\\d.]+ (s|min): no failover$`));
  t.deepEqual((await holdingsOf(lab)).map((h) => h.host), [active.role], 'the active host still serves');
  // And on the host whose agent is gone: CRITICAL, the agent does not answer.
  const gone = await baton(standby, 'status');
  t.is(gone.exitCode, 2);
  t.regex(String(gone.stdout), /^CRITICAL: baton-agent is not running: /);
});
