// Which access-log lines are evidence of a client on the service IP, and the message that says what was left out.

import test from 'ava';
import {parseAccessLogLine, type AccessLogEntry, type LogFormat} from '../../agent/access-log.js';
import {CAPTURED_V6} from '../fixtures/access-lines-v6.js';
import {
  addToTally, createJudge, DEFAULT_STATUSES, describeExclusions, describeStatuses, emptyTally, HEALTH_CHECK_USER_AGENT,
} from '../../agent/request-evidence.js';

const entry = (client: string, status = 200, userAgent: string | undefined = 'Mozilla/5.0'): AccessLogEntry =>
  ({client, timeMs: 0, method: 'GET', path: '/', status, bytes: 3, userAgent, local: undefined});

const judge = createJudge({
  ownAddresses: ['192.0.2.11', '192.0.2.12', '2001:DB8::11', '192.0.2.100'],
  serviceAddresses: ['192.0.2.100'],
  statuses: DEFAULT_STATUSES,
});

test('a client elsewhere with a 2xx or 3xx is evidence, whatever the spelling of its address', (t) => {
  for (const client of ['192.0.2.20', '2001:db8::20', '::ffff:192.0.2.20']) {
    for (const status of [200, 204, 301, 304, 399]) t.is(judge(entry(client, status)), undefined, `${client} ${status}`);
  }
});

test('loopback, the hosts\' own addresses and the service IP itself are not evidence', (t) => {
  t.is(judge(entry('127.0.0.1')), 'loopback');
  t.is(judge(entry('127.8.9.10')), 'loopback');
  t.is(judge(entry('::1')), 'loopback');
  t.is(judge(entry('::ffff:127.0.0.1')), 'loopback');
  t.is(judge(entry('192.0.2.11')), 'own-address');
  t.is(judge(entry('192.0.2.12')), 'own-address');
  t.is(judge(entry('2001:db8:0::11')), 'own-address', 'compared canonically');
  t.is(judge(entry('192.0.2.100')), 'service-ip', 'the service IP is its own reason, even when listed as an own address');
});

test('the agent\'s own health checks are not evidence, from wherever they come', (t) => {
  t.is(judge(entry('192.0.2.20', 200, HEALTH_CHECK_USER_AGENT)), 'health-check');
  t.is(judge(entry('127.0.0.1', 200, HEALTH_CHECK_USER_AGENT)), 'health-check');
  t.is(judge(entry('192.0.2.20', 200, undefined)), undefined, 'a common-format line has no user agent: judged by address');
});

test('a status outside confirm.statuses is not evidence: a host answering 500 is not serving', (t) => {
  for (const status of [100, 400, 404, 408, 500, 502, 503]) t.is(judge(entry('192.0.2.20', status)), 'status', String(status));
  const only204 = createJudge({ownAddresses: [], serviceAddresses: ['192.0.2.100'], statuses: [{from: 204, to: 204}]});
  t.is(only204(entry('192.0.2.20', 204)), undefined);
  t.is(only204(entry('192.0.2.20', 200)), 'status');
});

test('the tally counts evidence and each reason apart, and the message names what was left out', (t) => {
  let tally = emptyTally();
  t.is(describeExclusions(tally, DEFAULT_STATUSES), '');
  for (const reason of ['health-check', 'health-check', 'status', undefined, 'loopback'] as const) tally = addToTally(tally, reason);
  t.is(tally.counted, 1);
  t.deepEqual(tally.excluded, {'loopback': 1, 'own-address': 0, 'service-ip': 0, 'health-check': 2, 'elsewhere': 0, 'status': 1});
  t.is(describeExclusions(tally, DEFAULT_STATUSES),
    'not counted: 2 health checks of this agent, 1 from loopback (this host itself), 1 with a status outside 2xx, 3xx');
  t.is(describeStatuses([{from: 200, to: 299}, {from: 304, to: 304}, {from: 300, to: 302}]), '2xx, 304, 300-302');
});

test('where the log shows the address a request was sent to, only requests to the service IP count', (t) => {
  const to = (local: string): AccessLogEntry => ({...entry('192.0.2.20'), local});
  t.is(judge(to('192.0.2.100')), undefined);
  t.is(judge(to('::ffff:192.0.2.100')), undefined, 'a dual-stack socket\'s spelling');
  t.is(judge(to('192.0.2.12')), 'elsewhere');
});

test('IPv6 clients as nginx and Apache write them: evidence from a client, not from either host\'s addresses of either family', (t) => {
  const line = (text: string, format?: LogFormat): AccessLogEntry => {
    const parsed = parseAccessLogLine(text, format);
    if (parsed === undefined) throw new Error(`not parsed: ${text}`);
    return parsed;
  };
  const lines = Object.entries(CAPTURED_V6).filter(([name]) => !name.startsWith('nginxLocal'));
  // The service IP on the server of the capture; the client of the capture is a third host.
  const serviceOnly = createJudge({ownAddresses: ['2001:db8:14::2', '192.0.2.142'], serviceAddresses: ['2001:db8:14::99'], statuses: DEFAULT_STATUSES});
  for (const [name, text] of lines) t.is(serviceOnly(line(text)), undefined, name);
  // The client of the capture as the peer: each of its addresses, written as its interface list writes them.
  const peer = createJudge({
    ownAddresses: ['2001:db8:14::2', '192.0.2.142', '2001:db8:14::1', '192.0.2.141', 'fe80::d41e:2aff:fe0b:7b11', '2001:db8:0:0:1::20'],
    serviceAddresses: ['2001:db8:14::99'], statuses: DEFAULT_STATUSES,
  });
  for (const [name, text] of lines) t.is(peer(line(text)), 'own-address', name);
});

test('IPv6 and IPv4-mapped local addresses as nginx writes $server_addr: only requests to the service IP count', (t) => {
  const format: LogFormat = {kind: 'pattern', pattern: /^(?<local>\S+) (?<client>\S+) \[(?<time>[^\]]+)\] "(?<request>[^"]*)" (?<status>\d{3}) "(?<agent>[^"]*)"$/};
  const v6 = parseAccessLogLine(CAPTURED_V6.nginxLocalV6, format);
  const mapped = parseAccessLogLine(CAPTURED_V6.nginxLocalMapped, format);
  if (v6 === undefined || mapped === undefined) throw new Error('the captured lines do not parse');
  const onV6 = createJudge({ownAddresses: [], serviceAddresses: ['2001:DB8:14:0::2'], statuses: DEFAULT_STATUSES});
  t.is(onV6(v6), undefined);
  t.is(onV6(mapped), 'elsewhere');
  const onV4 = createJudge({ownAddresses: [], serviceAddresses: ['192.0.2.142'], statuses: DEFAULT_STATUSES});
  t.is(onV4(mapped), undefined, 'a dual-stack socket\'s ::ffff:192.0.2.142 is the IPv4 service IP');
  t.is(onV4(v6), 'elsewhere');
});

test('a dual-stack service is confirmed once: requests to either of its addresses count, and neither address is a client', (t) => {
  const format: LogFormat = {kind: 'pattern', pattern: /^(?<local>\S+) (?<client>\S+) \[(?<time>[^\]]+)\] "(?<request>[^"]*)" (?<status>\d{3}) "(?<agent>[^"]*)"$/};
  const v6 = parseAccessLogLine(CAPTURED_V6.nginxLocalV6, format);
  const mapped = parseAccessLogLine(CAPTURED_V6.nginxLocalMapped, format);
  if (v6 === undefined || mapped === undefined) throw new Error('the captured lines do not parse');
  const both = createJudge({ownAddresses: ['192.0.2.142'], serviceAddresses: ['192.0.2.142', '2001:DB8:14:0::2'], statuses: DEFAULT_STATUSES});
  t.is(both(v6), undefined, 'to the IPv6 address');
  t.is(both(mapped), undefined, 'to the IPv4 address, as a dual-stack socket writes it');
  t.is(both({...v6, client: '2001:db8:14::2'}), 'service-ip', 'the IPv6 service address as a client is the host itself');
  t.is(both({...v6, client: '192.0.2.142'}), 'service-ip', 'listed as an own address too, a service address stays a service address');
  t.is(both({...v6, local: '2001:db8:14::7'}), 'elsewhere');
});
