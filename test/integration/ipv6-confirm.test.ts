// What confirms a switch of an IPv6 service address whose beacons are IPv4, with real nginx: after the move, the old
// host's own requests to the service IP (its monitoring, a cron job) reach the new host from its IPv6 address, which
// no beacon names. The hosts tell each other their addresses when the switch begins, so those requests do not
// confirm it; requests from a real IPv6 client do.

import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import test from 'ava';
import {servesAddress} from '../../cli/lab/observe.js';
import {startProber} from '../../cli/lab/probe-control.js';
import {LAB_ADDRESSES6} from '../../cli/lab/topology-plan.js';
import {baton, settled, useLab} from './lab-helpers.js';

// Without the drain: during one the old host holds the service address on lo, so its own requests stay on it and
// never reach the new one, which is the case this file is about.
const fixture = useLab({web: 'nginx', serviceFamily: 6, drain: false}, {probe: false});

test.serial('only the old host\'s own IPv6 requests reach the new one: the switch rolls back, naming the hosts\' own addresses', async (t) => {
  const l = fixture.lab();
  t.is(l.heartbeatFamily, 4);
  const own = await startProber({namespace: l.hosts.primary.namespace, url: l.serviceUrl, intervalMs: 20, timeoutMs: 200,
    durationS: 30, maxProbes: 2000, out: join(fixture.baseDir(), 'probes-primary.jsonl')});
  t.teardown(() => own.stop());
  const result = await baton(l.hosts.primary, 'switchover', '--confirm-timeout', '4');
  t.log(String(result.stdout), String(result.stderr));
  t.is(result.exitCode, 2, 'exit 2: rolled back');
  t.regex(`${String(result.stdout)}${String(result.stderr)}`,
    /0 of 3 client requests arrived within 4 s \(not counted: [^)]*\d+ from the two hosts' own addresses/);
  // The exclusion was exercised: the primary's requests did reach the backup's nginx from its IPv6 address.
  const log = await readFile(l.hosts.backup.web?.accessLog ?? '', 'utf8');
  t.regex(log, new RegExp(`^${LAB_ADDRESSES6.primary.svc.replaceAll('.', '\\.')} - - \\[[^\\]]+\\] "GET / HTTP/1\\.1" 200 `, 'm'));
  t.true(await servesAddress(l.hosts.primary, 'eth0', l.serviceAddress));
  t.false(await servesAddress(l.hosts.backup, 'eth0', l.serviceAddress));
});

test.serial('a real IPv6 client\'s requests confirm the switch', async (t) => {
  const l = fixture.lab();
  await settled(l);
  const clients = await startProber({namespace: l.client.namespace, url: l.serviceUrl, intervalMs: 20, timeoutMs: 200,
    durationS: 60, maxProbes: 3000, out: join(fixture.baseDir(), 'probes-client.jsonl')});
  t.teardown(() => clients.stop());
  const over = await baton(l.hosts.primary, 'switchover');
  t.log(String(over.stdout), String(over.stderr));
  t.is(over.exitCode, 0, String(over.stderr));
  t.regex(String(over.stdout), /request\(s\) in the access log/);
  t.true(await servesAddress(l.hosts.backup, 'eth0', l.serviceAddress));
  const log = await readFile(l.hosts.backup.web?.accessLog ?? '', 'utf8');
  t.regex(log, new RegExp(`^${LAB_ADDRESSES6.client.svc} - - \\[[^\\]]+\\] "GET / HTTP/1\\.1" 200 `, 'm'));
});
