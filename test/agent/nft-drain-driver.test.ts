// The nft drain driver on a recording runner and a fake /proc/net: the rules it hands to nft, how it reads the
// kernel's TCP table, and what it finds and removes after a crash. The rules themselves are exercised against a
// real kernel by the namespace integration tests.

import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {createNftDrainDriver, DRAIN_TABLES} from '../../agent/adapters/nft-drain-driver.js';
import {BatonError} from '../../agent/errors.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';
import {SERVICE_IP} from '../fakes/test-config.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
// 192.0.2.100 is c0.00.02.64: printed as the little-endian word 640200C0. Port 80 is 0050.
const line = (local: string, state: string): string => `   0: ${local} 140200C0:C350 ${state} 00000000:00000000 00:00000000 00000000     0        0 1 1\n`;

async function procNet(t: ExecutionContext, tcp: string, tcp6?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-procnet-'));
  t.teardown(async () => rm(dir, {recursive: true, force: true}));
  await writeFile(join(dir, 'tcp'), HEADER + tcp);
  if (tcp6 !== undefined) await writeFile(join(dir, 'tcp6'), HEADER + tcp6);
  return dir;
}

const missingTable = (table: string): BatonError => commandFailure(`nft list table ${table}`, 1, 'Error: No such file or directory\nlist table ...');

test('openConnections counts only the service IP\'s connections that may still carry data, IPv4-mapped ones too', async (t) => {
  const dir = await procNet(t,
    line('640200C0:0050', '01') + // established on 192.0.2.100:80
    line('640200C0:0050', '04') + // FIN_WAIT1: our data not yet acknowledged
    line('640200C0:0050', '06') + // TIME_WAIT: done
    line('640200C0:0050', '05') + // FIN_WAIT2: everything delivered
    line('640200C0:0050', '0A') + // LISTEN
    line('0B0200C0:0050', '01'), // established on the host's own 192.0.2.11
    // ::ffff:192.0.2.100 as nginx listening on [::] sees an IPv4 client; then 2001:db8::1
    '   0: 0000000000000000FFFF0000640200C0:0050 0000000000000000FFFF0000140200C0:C350 08 0:0 0:0 0 0 0 1 1\n' +
    '   1: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:C350 01 0:0 0:0 0 0 0 1 1\n');
  const driver = createNftDrainDriver(new RecordingRunner(), {interface: 'eth0', procNet: dir, nft: 'nft'});
  t.is(await driver.openConnections(SERVICE_IP), 3, 'established, FIN_WAIT1 and the mapped CLOSE_WAIT');
});

test('a kernel without IPv6 has no tcp6: only tcp is read', async (t) => {
  const dir = await procNet(t, line('640200C0:0050', '01'));
  const driver = createNftDrainDriver(new RecordingRunner(), {interface: 'eth0', procNet: dir, nft: 'nft'});
  t.is(await driver.openConnections(SERVICE_IP), 1);
});

test('an unreadable TCP table is an error naming the file, never "no connections left"', async (t) => {
  const driver = createNftDrainDriver(new RecordingRunner(), {interface: 'eth0', procNet: '/nonexistent/proc/net', nft: 'nft'});
  const error = await t.throwsAsync(driver.openConnections(SERVICE_IP));
  t.regex(error?.message ?? '', /cannot read \/nonexistent\/proc\/net\/tcp to count the connections left/);
});

test('forward hands nft one idempotent transaction: only non-SYN TCP that finds just the listener goes to the giver', async (t) => {
  const runner = new RecordingRunner();
  const driver = createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'});
  await driver.forward(SERVICE_IP, '192.0.2.11');
  const [kill, call] = runner.calls;
  t.is(runner.commandLines()[0], 'ss -K -H state time-wait src 192.0.2.100', 'TIME-WAIT leftovers on the service IP go first');
  t.is(kill?.file, 'ss');
  t.is(call?.file, 'nft');
  t.is(call?.args.length, 1, 'one script, one transaction');
  const script = call?.args[0] ?? '';
  t.true(script.startsWith(`table ${DRAIN_TABLES.forward} {}\ndelete table ${DRAIN_TABLES.forward}\n`), 'declared and deleted first: works whether or not it existed');
  t.regex(script, /type filter hook prerouting priority mangle;/);
  t.regex(script, /ip daddr 192\.0\.2\.100 tcp flags & syn == 0 socket wildcard 1 dup to 192\.0\.2\.11 device "eth0" drop/);
  await driver.unforward();
  t.is(runner.calls[2]?.args[0], `table ${DRAIN_TABLES.forward} {}\ndelete table ${DRAIN_TABLES.forward}\n` +
    `table ${DRAIN_TABLES.forward6} {}\ndelete table ${DRAIN_TABLES.forward6}`, 'either family\'s table: unforward needs no address');
});

const SERVICE_IP6 = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;

test('IPv6: forward writes the ip6 table with the giver\'s IPv6 address; hold is the /128 on lo alone, with no rule', async (t) => {
  const runner = new RecordingRunner();
  const driver = createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'});
  await driver.forward(SERVICE_IP6, '2001:db8::11');
  const script = runner.calls[1]?.args[0] ?? '';
  t.true(script.startsWith(`table ${DRAIN_TABLES.forward6} {}\ndelete table ${DRAIN_TABLES.forward6}\n`));
  t.regex(script, /ip6 daddr 2001:db8::100 tcp flags & syn == 0 socket wildcard 1 dup to 2001:db8::11 device "eth0" drop/);
  t.is(runner.commandLines()[0], "ss -K -H state time-wait src '[2001:db8::100]'", 'in brackets: ss reads ADDRESS[:PORT]');
  const holding = new RecordingRunner();
  const holder = createNftDrainDriver(holding, {interface: 'eth0', nft: 'nft'});
  await holder.hold(SERVICE_IP6, '2001:db8::11');
  await holder.unhold(SERVICE_IP6);
  t.deepEqual(holding.commandLines(), ['ip addr add 2001:db8::100/128 dev lo', 'ip addr del 2001:db8::100/128 dev lo'],
    'no nft: the kernel never advertises an address on lo through eth0');
  const lo = JSON.stringify([{ifname: 'lo', addr_info: [{local: '::1', prefixlen: 128}, {local: '2001:db8::100', prefixlen: 128}]}]);
  t.true(await createNftDrainDriver(new RecordingRunner().on('ip -j -6 addr show dev lo', lo), {interface: 'eth0', nft: 'nft'}).isHolding(SERVICE_IP6));
  t.false(await createNftDrainDriver(new RecordingRunner().on('ip -j -6 addr show dev lo', '[]'), {interface: 'eth0', nft: 'nft'}).isHolding(SERVICE_IP6));
});

test('IPv6: openConnections counts the service address\'s connections in tcp6, however the kernel prints its words', async (t) => {
  // 2001:db8::100 as four host-order (little-endian) words, then 2001:db8::1, the host's own.
  const dir = await procNet(t, line('640200C0:0050', '01'),
    '   0: B80D0120000000000000000000010000:0050 B80D0120000000000000000002000000:C350 01 0:0 0:0 0 0 0 1 1\n' +
    '   1: B80D0120000000000000000000010000:0050 B80D0120000000000000000003000000:C351 06 0:0 0:0 0 0 0 1 1\n' +
    '   2: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:C352 01 0:0 0:0 0 0 0 1 1\n');
  const driver = createNftDrainDriver(new RecordingRunner(), {interface: 'eth0', procNet: dir, nft: 'nft'});
  t.is(await driver.openConnections(SERVICE_IP6), 1, 'the established one on 2001:db8::100; not its TIME_WAIT, not 2001:db8::1');
});

test('hold drops ARP requests for the IP, renames its own ARP sender but leaves gratuitous ARP, and puts a /32 on lo', async (t) => {
  const runner = new RecordingRunner();
  const driver = createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'});
  await driver.hold(SERVICE_IP, '192.0.2.11');
  const script = runner.calls[0]?.args[0] ?? '';
  t.regex(script, /arp operation request arp daddr ip 192\.0\.2\.100 drop/);
  t.regex(script, /arp saddr ip 192\.0\.2\.100 arp daddr ip != 192\.0\.2\.100 arp saddr ip set 192\.0\.2\.11/);
  t.deepEqual(runner.commandLines().slice(1), ['ip addr add 192.0.2.100/32 dev lo']);
});

test('hold and unhold are idempotent: an address already on lo, or already gone, is what was wanted', async (t) => {
  const runner = new RecordingRunner()
    .on('ip addr add 192.0.2.100/32 dev lo', commandFailure('ip addr add 192.0.2.100/32 dev lo', 2, 'Error: ipv4: Address already assigned.'))
    .on('ip addr del 192.0.2.100/32 dev lo', commandFailure('ip addr del 192.0.2.100/32 dev lo', 2, 'Error: ipv4: Address not found.'));
  const driver = createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'});
  await t.notThrowsAsync(driver.hold(SERVICE_IP, '192.0.2.11'));
  await t.notThrowsAsync(driver.unhold(SERVICE_IP));
});

test('isHolding needs both the ARP table and the /32 on lo', async (t) => {
  const lo = JSON.stringify([{ifname: 'lo', addr_info: [{local: '127.0.0.1', prefixlen: 8}, {local: '192.0.2.100', prefixlen: 32}]}]);
  const both = new RecordingRunner().on('ip -j -4 addr show dev lo', lo);
  t.true(await createNftDrainDriver(both, {interface: 'eth0', nft: 'nft'}).isHolding(SERVICE_IP));
  const noTable = new RecordingRunner().on(`nft list table ${DRAIN_TABLES.hold}`, missingTable(DRAIN_TABLES.hold)).on('ip -j -4 addr show dev lo', lo);
  t.false(await createNftDrainDriver(noTable, {interface: 'eth0', nft: 'nft'}).isHolding(SERVICE_IP));
  const noAddress = new RecordingRunner().on('ip -j -4 addr show dev lo', JSON.stringify([{ifname: 'lo', addr_info: [{local: '127.0.0.1', prefixlen: 8}]}]));
  t.false(await createNftDrainDriver(noAddress, {interface: 'eth0', nft: 'nft'}).isHolding(SERVICE_IP));
});

test('removeLeftovers removes what it finds and says what; on a host without nft it finds nothing to remove', async (t) => {
  const lo = JSON.stringify([{ifname: 'lo', addr_info: [{local: '192.0.2.100', prefixlen: 32}]}]);
  const runner = new RecordingRunner().on(`nft list table ${DRAIN_TABLES.hold}`, missingTable(DRAIN_TABLES.hold)).on('ip -j -4 addr show dev lo', lo);
  const removed = await createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'}).removeLeftovers(SERVICE_IP);
  t.deepEqual(removed, [`nftables table ${DRAIN_TABLES.forward}`, `nftables table ${DRAIN_TABLES.forward6}`, '192.0.2.100/32 on lo']);
  t.true(runner.commandLines().includes('ip addr del 192.0.2.100/32 dev lo'));

  const noNft = new BatonError('COMMAND_FAILED', 'cannot run `nft list table ip baton_drain`: nft is not installed', {details: {exitCode: undefined, stdout: '', stderr: ''}});
  const bare = new RecordingRunner().on(/^nft /, noNft).on('ip -j -4 addr show dev lo', '[]');
  t.deepEqual(await createNftDrainDriver(bare, {interface: 'eth0', nft: 'nft'}).removeLeftovers(SERVICE_IP), []);
});

test('unavailable says why nft refuses the rules, checked without committing them', async (t) => {
  const runner = new RecordingRunner().on(/^nft -c /, commandFailure('nft -c x', 1, 'Error: Could not process rule: No such file or directory'));
  const why = await createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'}).unavailable();
  t.regex(why ?? '', /^nftables cannot take the drain's rules here: .*No such file or directory/);
  t.is(await createNftDrainDriver(new RecordingRunner(), {interface: 'eth0', nft: 'nft'}).unavailable(), undefined);
});

test('forward goes on when the kernel refuses to destroy sockets: the rule matters more than the leftovers', async (t) => {
  const runner = new RecordingRunner().on(/^ss -K /, commandFailure('ss -K -H state time-wait src 192.0.2.100', 1, 'SOCK_DESTROY answers: Operation not supported'));
  await t.notThrowsAsync(createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'}).forward(SERVICE_IP, '192.0.2.11'));
  t.is(runner.calls.at(-1)?.file, 'nft');
});

test('isForwarding looks at the table of the address\'s own family: a dual-stack taker checks each', async (t) => {
  // Only the IPv4 table is there (unscripted commands succeed: `nft list table` finds it).
  const runner = new RecordingRunner().on(`nft list table ${DRAIN_TABLES.forward6}`, missingTable(DRAIN_TABLES.forward6));
  const driver = createNftDrainDriver(runner, {interface: 'eth0', nft: 'nft'});
  t.true(await driver.isForwarding(SERVICE_IP));
  t.false(await driver.isForwarding(SERVICE_IP6));
  t.deepEqual(runner.commandLines(), [`nft list table ${DRAIN_TABLES.forward}`, `nft list table ${DRAIN_TABLES.forward6}`]);
});
