// The nft arrival counter on a recording runner: the rule it hands to nft, how it reads the counter back from
// `nft -j`, and what it removes after a crash. The rule itself counts real SYNs in the namespace integration test
// (test/integration/confirm-evidence.test.ts).

import test from 'ava';
import {ARRIVALS_TABLE, createNftArrivalCounter, readCounter} from '../../agent/adapters/nft-arrivals.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';
import {SERVICE_IP, SERVICE_IP6} from '../fakes/test-config.js';

// `nft -j list table inet baton_confirm` after three SYNs, as nftables 1.0.6 prints it (trimmed of metainfo).
const LISTED = JSON.stringify({nftables: [
  {metainfo: {version: '1.0.6', json_schema_version: 1}},
  {table: {family: 'inet', name: 'baton_confirm', handle: 7}},
  {chain: {family: 'inet', table: 'baton_confirm', name: 'arrivals', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept'}},
  {rule: {family: 'inet', table: 'baton_confirm', chain: 'arrivals', handle: 2, expr: [
    {match: {op: '==', left: {meta: {key: 'iifname'}}, right: 'eth0'}},
    {counter: {packets: 3, bytes: 180}},
  ]}},
]});

test('start replaces any old counter with one rule: SYNs to the service IP on the interface, not from the listed hosts', async (t) => {
  const runner = new RecordingRunner();
  await createNftArrivalCounter(runner, {interface: 'eth0', nft: 'nft'}).start([SERVICE_IP], ['192.0.2.12', '192.0.2.11', '2001:db8::12', SERVICE_IP.address]);
  t.is(runner.calls.length, 1);
  t.is(runner.calls[0]?.args[0], [
    `table ${ARRIVALS_TABLE} {}`,
    `delete table ${ARRIVALS_TABLE}`,
    `table ${ARRIVALS_TABLE} {`,
    '  chain arrivals {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname "eth0" ip daddr ${SERVICE_IP.address} ip saddr != { 192.0.2.12, 192.0.2.11 } tcp flags & (syn | ack) == syn counter`,
    '  }',
    '}',
  ].join('\n'), 'IPv6 peers and the service IP itself are left out of an IPv4 rule');
});

test('a dual-stack service: one rule per address, each with the peers of its family left out', async (t) => {
  const runner = new RecordingRunner();
  await createNftArrivalCounter(runner, {interface: 'eth0', nft: 'nft'}).start([SERVICE_IP, SERVICE_IP6], ['192.0.2.12', '2001:DB8::12']);
  t.deepEqual(runner.calls[0]?.args[0]?.split('\n').filter((line) => line.includes('daddr')), [
    `    iifname "eth0" ip daddr ${SERVICE_IP.address} ip saddr != { 192.0.2.12 } tcp flags & (syn | ack) == syn counter`,
    `    iifname "eth0" ip6 daddr ${SERVICE_IP6.address} ip6 saddr != { 2001:db8::12 } tcp flags & (syn | ack) == syn counter`,
  ]);
  const two = JSON.parse(LISTED) as {nftables: unknown[]};
  two.nftables.push({rule: {family: 'inet', table: 'baton_confirm', chain: 'arrivals', handle: 3, expr: [{counter: {packets: 4, bytes: 320}}]}});
  t.is(readCounter(JSON.stringify(two)), 7, 'the counters of both rules added up: one confirmation over either address');
});

test('count reads the packets of the rule\'s counter; a missing table or output without a counter is an error', async (t) => {
  t.is(readCounter(LISTED), 3);
  const runner = new RecordingRunner();
  runner.on(`nft -j list table inet baton_confirm`, LISTED, {times: 1});
  const counter = createNftArrivalCounter(runner, {interface: 'eth0', nft: 'nft'});
  t.is(await counter.count(), 3);
  runner.on(/^nft -j list/, commandFailure('nft -j list table inet baton_confirm', 1, 'Error: No such file or directory\n'));
  await t.throwsAsync(counter.count(), {message: /the arrival counter \(nftables table inet baton_confirm\) is gone/});
  t.throws(() => readCounter('{"nftables":[{"table":{}}]}'), {message: /shows no counter/});
  t.throws(() => readCounter('oops'), {message: /not JSON/});
});

test('removeLeftovers removes a counter that is there, and finds nothing to do when there is none or no nft at all', async (t) => {
  const present = new RecordingRunner();
  t.true(await createNftArrivalCounter(present, {interface: 'eth0', nft: 'nft'}).removeLeftovers());
  t.deepEqual(present.commandLines().map((line) => line.split('\n')[0]), ['nft list table inet baton_confirm', `nft 'table ${ARRIVALS_TABLE} {}`]);

  const absent = new RecordingRunner();
  absent.on(/^nft list/, commandFailure('nft list table inet baton_confirm', 1, 'Error: No such file or directory\n'));
  t.false(await createNftArrivalCounter(absent, {interface: 'eth0', nft: 'nft'}).removeLeftovers());
  t.is(absent.calls.length, 1);
});
