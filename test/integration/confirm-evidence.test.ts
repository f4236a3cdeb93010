// What confirms a switch, with two real agents in network namespaces: a host that answers 500 is not serving, and
// clients of the new host's own address are not clients of the service IP (the combined log cannot tell them apart;
// the kernel's count of connections to the service IP can). Each switch must roll back, and the reason must say what
// the access log held instead. The agents' own health checks: confirm-health.test.ts.

import {dirname, join} from 'node:path';
import test from 'ava';
import {startProber} from '../../cli/lab/probe-control.js';
import {LAB_ADDRESSES} from '../../cli/lab/topology-plan.js';
import {startBuiltinWeb, stopProcessByPid} from '../../cli/lab/web.js';
import {baton, servesAddress, useLab} from './lab-helpers.js';

const fixture = useLab({web: 'builtin'}, {probe: false});

test.serial('the backup answers 500 to every client: the switch rolls back, naming the status', async (t) => {
  const l = fixture.lab();
  const web = l.hosts.backup.web;
  if (web === undefined) return t.fail('no web server in the lab');
  await stopProcessByPid(web.pid);
  const failing = await startBuiltinWeb({namespace: l.hosts.backup.namespace, dir: dirname(web.accessLog), hostName: 'backup', pageStatus: 500});
  t.teardown(() => failing.stop());
  const clients = await startProber({namespace: l.client.namespace, url: 'http://192.0.2.100/', intervalMs: 20, timeoutMs: 200,
    durationS: 20, maxProbes: 1000, out: join(fixture.baseDir(), 'probes-500.jsonl')});
  t.teardown(() => clients.stop());
  const result = await baton(l.hosts.primary, 'switchover', '--confirm-timeout', '4');
  t.log(String(result.stdout), String(result.stderr));
  t.is(result.exitCode, 2, 'exit 2: rolled back');
  t.regex(`${String(result.stdout)}${String(result.stderr)}`, /0 of 3 client requests arrived within 4 s \(not counted: [^)]*\d+ with a status outside 2xx, 3xx/);
  t.true(await servesAddress(l.hosts.primary));
  t.false(await servesAddress(l.hosts.backup));
});

test.serial('clients of the backup\'s own address, none of the service IP: the log counts them, the kernel does not, the switch rolls back', async (t) => {
  const l = fixture.lab();
  const web = l.hosts.backup.web;
  if (web === undefined) return t.fail('no web server in the lab');
  // The backup's server may be the failing one the previous test started: a healthy one again, same log.
  await stopProcessByPid(web.pid).catch(() => undefined);
  const healthy = await startBuiltinWeb({namespace: l.hosts.backup.namespace, dir: dirname(web.accessLog), hostName: 'backup'});
  t.teardown(() => healthy.stop());
  const clients = await startProber({namespace: l.client.namespace, url: `http://${LAB_ADDRESSES.backup.svc}/`, intervalMs: 20, timeoutMs: 200,
    durationS: 20, maxProbes: 1000, out: join(fixture.baseDir(), 'probes-own-address.jsonl')});
  t.teardown(() => clients.stop());
  const result = await baton(l.hosts.primary, 'switchover', '--confirm-timeout', '4');
  t.log(String(result.stdout), String(result.stderr));
  t.is(result.exitCode, 2, 'exit 2: rolled back');
  t.regex(`${String(result.stdout)}${String(result.stderr)}`,
    /\d+ client request\(s\) arrived within 4 s, but the kernel saw no new connection to 192\.0\.2\.100 on eth0 from another host/);
  t.true(await servesAddress(l.hosts.primary));
  t.false(await servesAddress(l.hosts.backup));
});
