// A switch with no client traffic at all, only the agents' own HTTP health checks arriving in the new host's access
// log, with two real agents in network namespaces: the health checks are not clients, the switch rolls back, and
// the reason says what the log held.

import test from 'ava';
import {LAB_ADDRESSES} from '../../cli/lab/topology-plan.js';
import {baton, servesAddress, settled, statusOf, useLab} from './lab-helpers.js';

// A check every 200 ms of the host's own server on its own address: the 4 s of confirmation below see ~20 of them.
const health = (address: string): string => `health:
  interval_ms: 200
  fall: 3
  rise: 2
  checks:
    - http: { url: http://${address}/, expect_status: 200, timeout_ms: 150 }
`;

const fixture = useLab({web: 'builtin', hostConfig: {primary: health(LAB_ADDRESSES.primary.svc), backup: health(LAB_ADDRESSES.backup.svc)}}, {probe: false});

test.serial('no client traffic, only the agents\' health checks: the switch rolls back and says what it did not count', async (t) => {
  const l = fixture.lab();
  t.log(JSON.stringify((await statusOf(l.hosts.backup)).self));
  const result = await baton(l.hosts.primary, 'switchover', '--confirm-timeout', '4');
  t.log(String(result.stdout), String(result.stderr));
  t.is(result.exitCode, 2, 'exit 2: rolled back');
  t.regex(`${String(result.stdout)}${String(result.stderr)}`,
    /0 of 3 client requests arrived within 4 s \(not counted: \d+ health checks of this agent/);
  t.true(await servesAddress(l.hosts.primary));
  t.false(await servesAddress(l.hosts.backup));
  t.is((await settled(l)).primary.self.state, 'active');
});

