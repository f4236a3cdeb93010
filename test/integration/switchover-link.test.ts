// Planned switchover in link mode, the runbook's literal procedure: each host has a dedicated service interface
// (eth0) that goes down and up, while beacons travel on a separate management LAN (eth1).

import test from 'ava';
import {execa} from 'execa';
import type {LabHost} from '../../cli/lab/lab.js';
import {baton, servesAddress, settled, useLab, whoServes} from './lab-helpers.js';

// Confirmation needs real requests: the fixture's client probes every 20 ms throughout.
const fixture = useLab({web: 'nginx', mode: 'link'}, {probe: true});


async function linkUp(host: LabHost, iface: string): Promise<boolean> {
  const {stdout} = await execa('ip', ['-n', host.namespace, '-j', 'link', 'show', 'dev', iface]);
  return (JSON.parse(stdout) as Array<{flags: string[]}>)[0]?.flags.includes('UP') ?? false;
}

test.serial('link mode: beacons use the management LAN, and the primary holds the IP on its service interface', async (t) => {
  const lab = fixture.lab();
  const {primary, backup} = await settled(lab);
  t.regex(primary.self.listen, /^192\.0\.2\.141:/);
  t.is(primary.service.mode, 'link');
  t.true(backup.peer.alive);
  t.true(await servesAddress(lab.hosts.primary));
  t.is(await whoServes(lab), 'primary');
});

test.serial('link mode: switchover brings the primary\'s service interface down and the backup\'s up, confirmed', async (t) => {
  const lab = fixture.lab();
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
  const lab = fixture.lab();
  const result = await baton(lab.hosts.primary, 'switchover');
  t.log(String(result.stdout));
  t.is(result.exitCode, 0, String(result.stderr));
  t.true(await servesAddress(lab.hosts.primary));
  t.false(await linkUp(lab.hosts.backup, 'eth0'));
  t.is(await whoServes(lab), 'primary');
  const {backup} = await settled(lab);
  t.is(backup.self.state, 'released');
});
