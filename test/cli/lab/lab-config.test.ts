// The configs the lab writes, read by the agent's own parser: beacons and the service address in either family.

import test from 'ava';
import {parseConfig} from '../../../agent/config/schema.js';
import {labConfig, type LabConfigInput} from '../../../cli/lab/lab.js';
import {LAB_ADDRESSES, LAB_ADDRESSES6, labServiceCidr} from '../../../cli/lab/topology-plan.js';
import {DEFAULT_SECRET, programs} from '../../fakes/config-fixtures.js';

// The built-in server's graceful command, as the lab writes it.
const PROGRAMS = programs({'/usr/bin/kill': 0o100755});

function input(serviceFamily: 4 | 6, heartbeatFamily: 4 | 6): LabConfigInput {
  const hosts = heartbeatFamily === 4 ? LAB_ADDRESSES : LAB_ADDRESSES6;
  return {
    role: 'primary', address: hosts.primary.svc, peer: hosts.backup.svc, serviceIps: [labServiceCidr(serviceFamily)],
    secretFile: '/etc/baton/secret', stateDir: '/tmp/lab/primary/state', socket: '/tmp/lab/primary/control.sock', extra: '',
    mode: 'address', serviceInterface: 'eth0', accessLog: '/tmp/lab/primary/web/access.log',
    graceful: {path: '/usr/bin/kill', args: ['-HUP', '42']},
  };
}

const families = test.macro({
  exec(t, serviceFamily: 4 | 6, heartbeatFamily: 4 | 6) {
    const config = parseConfig(labConfig(input(serviceFamily, heartbeatFamily)), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
    const hosts = heartbeatFamily === 4 ? LAB_ADDRESSES : LAB_ADDRESSES6;
    t.deepEqual(config.listen, {address: hosts.primary.svc, port: 7411});
    t.deepEqual(config.peer, {address: hosts.backup.svc, port: 7411});
    t.is(config.service.ip.cidr, labServiceCidr(serviceFamily));
    t.is(config.service.ip.family, serviceFamily);
  },
  title: (_, serviceFamily: 4 | 6, heartbeatFamily: 4 | 6) =>
    `the agent reads the lab's config for an IPv${serviceFamily} service and IPv${heartbeatFamily} beacons as meant`,
});
test(families, 4, 4);
test(families, 4, 6);
test(families, 6, 4);
test(families, 6, 6);

test('a dual-stack lab writes both service addresses as a list, and the agent reads both', (t) => {
  const text = labConfig({...input(4, 4), serviceIps: [labServiceCidr(4), labServiceCidr(6)]});
  t.true(text.includes("  address: [192.0.2.100/25, '2001:db8:0:1::100/64']"));
  const config = parseConfig(text, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.deepEqual(config.service.ips.map((ip) => ip.cidr), [labServiceCidr(4), labServiceCidr(6)]);
});

test('IPv6 addresses are quoted in the lab\'s YAML, IPv4 ones written as they always were', (t) => {
  const text = labConfig(input(6, 6));
  t.true(text.includes("listen: { address: '2001:db8:0:1::11', port: 7411 }"));
  t.true(text.includes("  address: '2001:db8:0:1::100/64'"));
  t.true(labConfig(input(4, 4)).includes('listen: { address: 192.0.2.11, port: 7411 }\npeer: { address: 192.0.2.12, port: 7411 }'));
});

test('the drain is on with the web server\'s graceful command, or off as drain: false asks, and the agent reads both', (t) => {
  const on = parseConfig(labConfig(input(6, 4)), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.true(on.drain.enabled);
  t.deepEqual(on.drain.graceful, {path: '/usr/bin/kill', args: ['-HUP', '42']});
  const off = parseConfig(labConfig({...input(6, 4), drain: false}), 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
  t.false(off.drain.enabled);
  t.is(off.drain.graceful, undefined);
});
