// What check-config says about the drain on this host (on, off by the config, impossible in link mode, or a
// warning naming why nftables refuses it), about the replay protection the file chose, and whether the unit's
// installed allow-lists still allow the config.

import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {planUnitSandbox} from '../../agent/config/unit-sandbox.js';
import {describeDrain, describeReplayProtection, describeSandbox} from '../../cli/commands/check-config.js';
import {renderSandboxDropIn} from '../../cli/install/texts.js';
import {FakeDrainDriver} from '../fakes/fake-drain-driver.js';
import {testConfig} from '../fakes/test-config.js';

test('check-config says how the drain runs, or why it cannot run on this host', async (t) => {
  const drain = new FakeDrainDriver();
  const config = testConfig('primary');
  t.is(await describeDrain(config, drain), 'drain: on; connections get 5 s to end, no graceful command (connections must end by themselves), 60 s in all');
  const graceful = {...config, drain: {...config.drain, graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}}};
  t.regex(await describeDrain(graceful, drain), /then \/usr\/sbin\/nginx -s reload, 60 s in all$/);
  t.regex(await describeDrain({...config, drain: {...config.drain, enabled: false}}, drain), /^drain: off \(drain\.enabled: false\)/);
  t.regex(await describeDrain({...config, service: {...config.service, mode: 'link'}}, drain), /^drain: none in link mode/);
  const v6 = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;
  t.regex(await describeDrain({...config, service: {...config.service, ip: v6}}, drain), /^drain: none for an IPv6 service address/);
  drain.cannot = 'nftables cannot take the drain\'s rules here: Error: Could not process rule: No such file or directory';
  t.is(await describeDrain(config, drain), 'WARNING drain: this host cannot drain: nftables cannot take the drain\'s rules here: ' +
    'Error: Could not process rule: No such file or directory; a planned switch will cut the connections open at the move');
});

test('check-config says whether the installed drop-in allows the config, and what it lacks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-check-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const dropIn = join(dir, '50-baton-config.conf');
  await writeFile(dropIn, renderSandboxDropIn(planUnitSandbox(testConfig('primary'))));
  t.is(await describeSandbox(testConfig('primary'), dropIn), `  sandbox: ${dropIn} allows what this config needs\n`);
  const edited = testConfig('primary', {listen: {address: '192.0.2.11', port: 7500},
    scriptUser: {name: 'nobody', uid: 65534, gid: 65534}, hooks: {onStateChange: '/usr/local/bin/notify', timeoutMs: 5000}});
  const said = await describeSandbox(edited, dropIn);
  t.regex(said, /^ {2}WARNING sandbox: the agent will refuse this config, because .* does not allow:\n/);
  t.regex(said, /\n {4}- listen\.port 7500: not in SocketBindAllow= \(udp:7411\)\n/);
  t.regex(said, /\n {4}- hooks\.on_state_change or a command check runs as script_user/);
  t.regex(said, /run `baton install --keep-config`/);
  // No drop-in (not installed by `baton install`): nothing to say.
  t.is(await describeSandbox(edited, join(dir, 'missing.conf')), '');
});

test('check-config says which replay protection the file chose and what it asks of the hosts', (t) => {
  const config = testConfig('primary');
  t.is(describeReplayProtection(config), 'replay protection: clock (sent-at within 5000 ms of this host\'s clock: keep both hosts on NTP)');
  t.is(describeReplayProtection({...config, heartbeat: {...config.heartbeat, replayProtection: 'acknowledged'}}),
    'replay protection: acknowledged (the clocks are not compared; beacons must pass both ways, and the peer should say acknowledged too)');
});
