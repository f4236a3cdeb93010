// The lab topology builder and the real ip/arping driver, in real network namespaces: the client reaches the
// primary, the driver adds, announces, detects and removes the service IP, and every namespace goes away. The
// agent's packet helpers beside arping: the same answers, the same frames on the wire.

import {readFileSync} from 'node:fs';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {setTimeout as sleep} from 'node:timers/promises';
import type {ExecutionContext} from 'ava';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {ArpProber, type ArpProbeAnswer} from '../../agent/adapters/arp-probe.js';
import {GarpSender} from '../../agent/adapters/garp-sender.js';
import {createIpNetworkDriver} from '../../agent/adapters/ip-network-driver.js';
import {BatonError, isBatonError} from '../../agent/errors.js';
import {parseIpAddress} from '../../agent/net/ip-address.js';
import type {ServiceIp} from '../../agent/state-machine.js';
import {
  createNamespacedRunner, createTopology, destroyTopology, findLeftovers, isReachable, listNamespaces,
  runInNamespace, spawnInNamespace,
} from '../../cli/lab/namespaces.js';
import {
  DEFAULT_LAB_TOPOLOGY, LAB_ADDRESSES, LAB_ADDRESSES6, LINK_MODE_LAB_TOPOLOGY, SERVICE_LAN, type Topology, type TopologySpec,
} from '../../cli/lab/topology-plan.js';
import {integrationPrefix, integrationTest} from './helpers.js';

const runner = createExecaRunner();

const SERVICE_IP: ServiceIp = {
  address: SERVICE_LAN.serviceAddress,
  prefixLength: SERVICE_LAN.prefixLength,
  family: 4,
  cidr: `${SERVICE_LAN.serviceAddress}/${SERVICE_LAN.prefixLength}`,
};

/** Builds a topology with a fresh prefix and removes it when the test ends, passed or failed. */
async function buildLab(t: ExecutionContext, spec: Omit<TopologySpec, 'prefix'>): Promise<Topology> {
  const prefix = integrationPrefix();
  t.teardown(() => destroyTopology(runner, prefix));
  return createTopology(runner, {...spec, prefix});
}

async function assertGone(t: ExecutionContext, prefix: string): Promise<void> {
  t.deepEqual((await listNamespaces(runner)).filter((ns) => ns.startsWith(`${prefix}-`)), []);
  t.false((await findLeftovers(runner)).includes(prefix));
}

async function timed<T>(action: () => Promise<T>): Promise<{value: T; ms: number}> {
  const start = performance.now();
  const value = await action();
  return {value, ms: Math.round(performance.now() - start)};
}

integrationTest('the client reaches the primary, and the real ip driver adds, announces, detects and removes the service IP', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  t.deepEqual((await listNamespaces(runner)).filter((ns) => ns.startsWith(`${lab.prefix}-`)).sort(),
    ['backup', 'client', 'primary', 'sw'].map((h) => `${lab.prefix}-${h}`));
  t.true(await isReachable(runner, lab.namespace('client'), LAB_ADDRESSES.primary.svc));
  t.true(await isReachable(runner, lab.namespace('client'), LAB_ADDRESSES6.primary.svc), 'and over IPv6: every LAN is dual-stack');

  const primary = createIpNetworkDriver(createNamespacedRunner(runner, lab.namespace('primary')), {interface: 'eth0'});
  const backup = createIpNetworkDriver(createNamespacedRunner(runner, lab.namespace('backup')), {interface: 'eth0'});

  t.false(await primary.hasAddress(SERVICE_IP));
  t.false(await isReachable(runner, lab.namespace('client'), SERVICE_IP.address));
  const free = await timed(() => backup.isAddressInUse(SERVICE_IP));
  t.false(free.value, 'nobody holds the service IP yet');

  await primary.addAddress(SERVICE_IP);
  await primary.addAddress(SERVICE_IP); // idempotent: "Address already assigned" is success
  t.true(await primary.hasAddress(SERVICE_IP));
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP.address));

  const announced = await timed(() => primary.announce(SERVICE_IP));
  const inUse = await timed(() => backup.isAddressInUse(SERVICE_IP));
  t.true(inUse.value, 'the backup sees the primary answer ARP for the service IP');

  await primary.removeAddress(SERVICE_IP);
  await primary.removeAddress(SERVICE_IP); // idempotent: "Address not found" is success
  t.false(await primary.hasAddress(SERVICE_IP));
  const freeAgain = await timed(() => backup.isAddressInUse(SERVICE_IP));
  t.false(freeAgain.value);

  // The client still maps the service IP to the primary's MAC; the backup's gratuitous ARP must move it.
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP.address), await interfaceMac(lab.namespace('primary')));
  await backup.addAddress(SERVICE_IP);
  await backup.announce(SERVICE_IP);
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP.address), await interfaceMac(lab.namespace('backup')));
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP.address));
  await backup.removeAddress(SERVICE_IP);
  t.log(`probe free ${free.ms} ms, in use ${inUse.ms} ms, free again ${freeAgain.ms} ms; announce (default burst: 2 of each form, 1 s apart) ${announced.ms} ms`);

  await destroyTopology(runner, lab.prefix);
  await assertGone(t, lab.prefix);
});

integrationTest('the long-lived gratuitous ARP sender moves the client to the new holder, with no arping started', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  const drivers = ['primary', 'backup'].map((host) => {
    const garp = new GarpSender({command: ['ip', 'netns', 'exec', lab.namespace(host), 'perl']});
    t.teardown(() => garp.close());
    garp.warm();
    const recorder = createNamespacedRunner(runner, lab.namespace(host));
    const started: string[] = [];
    const counting = {run: async (file: string, args: readonly string[], options?: Parameters<typeof recorder.run>[2]) => {
      started.push(file);
      return recorder.run(file, args, options);
    }};
    return {driver: createIpNetworkDriver(counting, {interface: 'eth0', announce: {count: 1, intervalMs: 1000}, garp}), started};
  });
  const [primary, backup] = drivers as [typeof drivers[0], typeof drivers[0]];
  await primary.driver.addAddress(SERVICE_IP);
  await primary.driver.announce(SERVICE_IP);
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP.address));
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP.address), await interfaceMac(lab.namespace('primary')));

  // The kernel ignores a non-gratuitous update within its locktime (1 s) of the last one; these must not wait for it.
  await primary.driver.removeAddress(SERVICE_IP);
  await backup.driver.addAddress(SERVICE_IP);
  const announced = await timed(() => backup.driver.announce(SERVICE_IP));
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP.address), await interfaceMac(lab.namespace('backup')));
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP.address));
  t.deepEqual([...primary.started, ...backup.started].filter((file) => file === 'arping'), [], 'no arping: the sender sent them');
  t.log(`announce through the long-lived sender: ${announced.ms} ms`);
});

integrationTest('the duplicate-address prober answers as arping -D does (free; taken, with the holder\'s MAC; the same refusals) and sends arping\'s frame', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  const backupNs = lab.namespace('backup');
  const dir = await mkdtemp(join(tmpdir(), 'baton-probe-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const prober = new ArpProber({command: ['ip', 'netns', 'exec', backupNs, 'perl']});
  t.teardown(() => prober.close());
  const arping = async (iface: string): Promise<ArpProbeAnswer> => arpingDad(backupNs, iface, SERVICE_IP.address);

  // Every duplicate-address probe on the LAN (ARP requests from 0.0.0.0), as the client's interface receives them.
  const capture = join(dir, 'probes.pcap');
  const tcpdump = await spawnInNamespace(lab.namespace('client'), 'tcpdump',
    ['-i', 'eth0', '--immediate-mode', '-U', '-n', '-w', capture, 'arp and arp[6:2] = 1 and arp[14:4] = 0'], join(dir, 'tcpdump.log'));
  t.teardown(() => stopProcess(tcpdump));
  await waitForText(join(dir, 'tcpdump.log'), 'listening on');

  // Nobody holds the address: both say free.
  t.deepEqual(await prober.probe('eth0', SERVICE_IP.address, 300), {inUse: false});
  t.deepEqual(await arping('eth0'), {inUse: false});
  // The primary holds it: both name the primary's MAC.
  await runInNamespace(runner, lab.namespace('primary'), 'ip', ['addr', 'add', SERVICE_IP.cidr, 'dev', 'eth0']);
  const holder = await interfaceMac(lab.namespace('primary'));
  t.deepEqual(await prober.probe('eth0', SERVICE_IP.address, 300), {inUse: true, mac: holder ?? 'the primary has a MAC'});
  t.deepEqual(await arping('eth0'), {inUse: true, mac: holder ?? 'the primary has a MAC'});

  // The frames: field for field what arping -D sent, free and taken alike.
  await stopProcess(tcpdump, 'SIGINT');
  const frames = readPcap(await readFile(capture));
  t.is(frames.length, 4, 'one frame per probe: prober, arping, prober, arping');
  const backupMac = await interfaceMac(backupNs) ?? '';
  const [proberFree, arpingFree, proberTaken, arpingTaken] = frames.map(describeArpFrame);
  t.deepEqual(proberFree, arpingFree);
  t.deepEqual(proberTaken, arpingTaken);
  t.deepEqual(proberFree, {
    'eth.dst': 'ff:ff:ff:ff:ff:ff', 'eth.src': backupMac, 'eth.type': '0806', 'arp.hrd': 1, 'arp.pro': '0800', 'arp.hln': 6,
    'arp.pln': 4, 'arp.op': 1, 'arp.sha': backupMac, 'arp.spa': '0.0.0.0', 'arp.tha': 'ff:ff:ff:ff:ff:ff', 'arp.tpa': SERVICE_IP.address,
    length: 42,
  });
  t.deepEqual(frames[0], frames[1], 'byte for byte');

  // What arping refuses, the prober refuses in the same words: a link that is down, one without ARP.
  await runInNamespace(runner, backupNs, 'ip', ['link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
  await runInNamespace(runner, backupNs, 'ip', ['link', 'set', 'probe1', 'arp', 'off', 'up']);
  for (const [iface, words] of [['probe0', 'Interface "probe0" is down'], ['probe1', 'Interface "probe1" is not ARPable']] as const) {
    const byProber = await t.throwsAsync(prober.probe(iface, SERVICE_IP.address, 300));
    t.is(isBatonError(byProber) ? byProber.details?.stderr : undefined, words);
    const byArping = await arping(iface).then((answer) => `answered ${JSON.stringify(answer)}`, (error: unknown) => String(error));
    t.true(byArping.includes(words), byArping);
  }
  // And a missing interface is INTERFACE_MISSING through the driver either way.
  for (const withProber of [true, false]) {
    const driver = createIpNetworkDriver(createNamespacedRunner(runner, backupNs), {interface: 'eth9', ...(withProber ? {prober} : {})});
    const error = await t.throwsAsync(driver.isAddressInUse(SERVICE_IP), {instanceOf: BatonError});
    t.is(error?.code, 'INTERFACE_MISSING');
  }

  // The time from start to answer, as the agent probes (150 ms), with the long-lived prober and with arping.
  const figures: string[] = [];
  const drivers = {
    prober: createIpNetworkDriver(createNamespacedRunner(runner, backupNs), {interface: 'eth0', probe: {timeoutMs: 150}, prober}),
    arping: createIpNetworkDriver(createNamespacedRunner(runner, backupNs), {interface: 'eth0', probe: {timeoutMs: 150}}),
  };
  for (const state of ['taken', 'free'] as const) {
    if (state === 'free') await runInNamespace(runner, lab.namespace('primary'), 'ip', ['addr', 'del', SERVICE_IP.cidr, 'dev', 'eth0']);
    for (const [name, driver] of Object.entries(drivers)) {
      const times: number[] = [];
      for (let run = 0; run < 10; run++) {
        const start = performance.now();
        t.is(await driver.isAddressInUse(SERVICE_IP), state === 'taken', `${name}, ${state}, run ${run + 1}`);
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      figures.push(`${name} ${state}: median ${times[4]?.toFixed(1)} ms, max ${times[9]?.toFixed(1)} ms`);
    }
  }
  t.log(`probe from start to answer, 10 each (arping through \`ip netns exec\`): ${figures.join('; ')}`);
});

integrationTest('the real ip driver reports a missing interface as INTERFACE_MISSING, naming the ones that exist', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  const driver = createIpNetworkDriver(createNamespacedRunner(runner, lab.namespace('primary')), {interface: 'eth9'});
  for (const attempt of [driver.hasAddress(SERVICE_IP), driver.addAddress(SERVICE_IP), driver.setLink('eth9', true), driver.isAddressInUse(SERVICE_IP)]) {
    const error = await t.throwsAsync(attempt, {instanceOf: BatonError});
    t.is(error?.code, 'INTERFACE_MISSING');
    t.is(error?.message, 'interface eth9 does not exist: `ip link` lists lo, eth0');
  }
});

integrationTest('link mode: setLink and isLinkUp drive the service interface while the management LAN stays up', async (t) => {
  const lab = await buildLab(t, LINK_MODE_LAB_TOPOLOGY);
  const primaryNs = lab.namespace('primary');
  const driver = createIpNetworkDriver(createNamespacedRunner(runner, primaryNs), {interface: 'eth0'});
  t.true(await isReachable(runner, primaryNs, LAB_ADDRESSES.backup.mgmt));
  t.true(await isReachable(runner, primaryNs, LAB_ADDRESSES.backup.svc));

  await driver.setLink('eth0', false);
  await driver.setLink('eth0', false); // idempotent
  t.false(await driver.isLinkUp('eth0'));
  t.false(await isReachable(runner, lab.namespace('client'), LAB_ADDRESSES.primary.svc));
  t.true(await isReachable(runner, primaryNs, LAB_ADDRESSES.backup.mgmt), 'heartbeats still have the management LAN');
  const probe = await t.throwsAsync(driver.isAddressInUse(SERVICE_IP), {instanceOf: BatonError});
  t.is(probe?.code, 'COMMAND_FAILED', 'a probe through a down link is a failure, not "free"');

  await driver.setLink('eth0', true);
  t.true(await driver.isLinkUp('eth0'));
  // The client's ARP entry for the primary failed while the link was down and is only retried every second
  // (retrans_time); a gratuitous ARP after "net up" resolves it at once, which is why takeovers announce.
  const hostIp: ServiceIp = {address: LAB_ADDRESSES.primary.svc, prefixLength: 25, family: 4, cidr: `${LAB_ADDRESSES.primary.svc}/25`};
  await createIpNetworkDriver(createNamespacedRunner(runner, primaryNs), {interface: 'eth0', announce: {count: 1, intervalMs: 1000}})
    .announce(hostIp);
  t.true(await isReachable(runner, lab.namespace('client'), LAB_ADDRESSES.primary.svc));
});

integrationTest('destroyTopology ends processes left in the namespaces, is idempotent, and leaves no namespace', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  const dir = await mkdtemp(join(tmpdir(), 'baton-ns-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  // One process that leaves on SIGTERM, one that ignores it and needs SIGKILL.
  const polite = await spawnInNamespace(lab.namespace('client'), 'sleep', ['300'], join(dir, 'sleep.log'));
  const stubborn = await spawnInNamespace(lab.namespace('backup'), 'sh', ['-c', 'trap "" TERM; while :; do sleep 1; done'],
    join(dir, 'stubborn.log'));
  await sleep(200); // let sh install its trap
  const pids = (await runner.run('ip', ['netns', 'pids', lab.namespace('client')])).split(/\s+/).filter(Boolean).map(Number);
  t.true(pids.includes(polite));
  t.regex(await runInNamespace(runner, lab.namespace('client'), 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']), /inet 192\.0\.2\.20\/25 /);
  // Its namespaces are there (findLeftovers would name a "bl" lab only; the tests' prefix is another).
  t.true((await listNamespaces(runner)).some((ns) => ns.startsWith(`${lab.prefix}-`)));

  const destroyed = await timed(() => destroyTopology(runner, lab.prefix));
  t.false(isAlive(polite));
  t.false(isAlive(stubborn));
  t.log(`destroyTopology with a SIGTERM-proof process: ${destroyed.ms} ms`);
  await destroyTopology(runner, lab.prefix);
  await assertGone(t, lab.prefix);
});

integrationTest('createTopology refuses a prefix that is in use and addresses outside TEST-NET and 2001:db8::/32', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  const reused = await t.throwsAsync(createTopology(runner, {...DEFAULT_LAB_TOPOLOGY, prefix: lab.prefix}), {instanceOf: BatonError});
  t.is(reused?.code, 'LAB_FAILED');
  t.regex(reused?.message ?? '', /already exist/);
  const outsidePrefix = integrationPrefix();
  const outside = await t.throwsAsync(createTopology(runner, {
    prefix: outsidePrefix,
    lans: [{name: 'svc', network: '10.0.0.0', prefixLength: 24, ipv6: {network: 'fd00::', prefixLength: 64}}],
    hosts: [{name: 'a', interfaces: [{lan: 'svc', name: 'eth0', address: '10.0.0.1', address6: 'fd00::1'}]}],
  }), {instanceOf: BatonError});
  t.is(outside?.code, 'LAB_FAILED');
  t.regex(outside?.message ?? '', /TEST-NET/);
  t.regex(outside?.message ?? '', /fd00::\/64: expected a subnet of the IPv6 documentation prefix 2001:db8::\/32/);
  t.deepEqual((await listNamespaces(runner)).filter((ns) => ns.startsWith(`${outsidePrefix}-`)), [], 'nothing was built');
});

/**
 * `arping -D` as the driver runs it, read the way arping means it: exit 0 after a probe was sent is free (exit 0
 * without one, as on an interface without ARP, is a refusal), exit 1 with a reply is taken.
 */
// An IPv6 service address on the lab's service LAN, and the client's own address there: both from 2001:db8::/32.
const SERVICE_IP6: ServiceIp = {address: '2001:db8:0:1::100', prefixLength: 64, family: 6, cidr: '2001:db8:0:1::100/64'};
const CLIENT_IP6 = '2001:db8:0:1::20/64';

integrationTest('IPv6: the driver probes (free; taken, with the holder\'s MAC), adds the address usable at once, and its neighbour advertisement moves the client; the kernel sends none for a nodad address', async (t) => {
  const lab = await buildLab(t, DEFAULT_LAB_TOPOLOGY);
  // `replace`: the client's IPv6 address may be the topology's own already.
  await runInNamespace(runner, lab.namespace('client'), 'ip', ['-6', 'address', 'replace', CLIENT_IP6, 'dev', 'eth0', 'nodad']);
  const drivers = ['primary', 'backup'].map((host) => {
    const command = ['ip', 'netns', 'exec', lab.namespace(host), 'perl'] as const;
    const garp = new GarpSender({command: [...command]});
    const prober = new ArpProber({command: [...command]});
    t.teardown(async () => {
      await garp.close();
      await prober.close();
    });
    const namespaced = createNamespacedRunner(runner, lab.namespace(host));
    const started: string[] = [];
    const counting = {run: async (file: string, args: readonly string[], options?: Parameters<typeof namespaced.run>[2]) => {
      started.push(file);
      return namespaced.run(file, args, options);
    }};
    return {driver: createIpNetworkDriver(counting, {interface: 'eth0', announce: {count: 1, intervalMs: 1000}, probe: {timeoutMs: 150}, garp, prober}), started};
  });
  const [primary, backup] = drivers as [typeof drivers[0], typeof drivers[0]];

  t.false(await backup.driver.isAddressInUse(SERVICE_IP6), 'nobody holds it yet');
  // What the kernel announces by itself, with its own notification on (ndisc_notify): captured on the client.
  await runInNamespace(runner, lab.namespace('primary'), 'sysctl', ['-qw', 'net.ipv6.conf.eth0.ndisc_notify=1']);
  const dir = await mkdtemp(join(tmpdir(), 'baton-nd-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const capture = join(dir, 'nd.pcap');
  // Unsolicited neighbour advertisements only: ICMPv6 type 136 right after the fixed IPv6 header, to all nodes.
  const tcpdump = await spawnInNamespace(lab.namespace('client'), 'tcpdump',
    ['-i', 'eth0', '--immediate-mode', '-U', '-n', '-w', capture, 'icmp6 and ip6[40] == 136 and ip6 dst ff02::1'], join(dir, 'tcpdump.log'));
  t.teardown(() => stopProcess(tcpdump));
  await waitForText(join(dir, 'tcpdump.log'), 'listening on');

  await primary.driver.addAddress(SERVICE_IP6);
  t.true(await primary.driver.hasAddress(SERVICE_IP6));
  const [entry] = JSON.parse(await runInNamespace(runner, lab.namespace('primary'), 'ip', ['-j', '-6', 'address', 'show', 'to', SERVICE_IP6.address])) as Array<{addr_info: Array<Record<string, unknown>>}>;
  t.like(entry?.addr_info[0], {local: SERVICE_IP6.address, nodad: true}, 'added with nodad');
  t.is(entry?.addr_info[0]?.['tentative'], undefined, 'usable at once: no second of "tentative"');
  await sleep(300);
  const byKernel = readPcap(await readFile(capture)).map(describeAdvertisement).filter((na) => na['icmp6.target'] === SERVICE_IP6.address).length;
  await primary.driver.announce(SERVICE_IP6);
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP6.address));
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP6.address), await interfaceMac(lab.namespace('primary')));

  const taken = await timed(() => backup.driver.isAddressInUse(SERVICE_IP6));
  t.true(taken.value, 'the backup sees the primary answer its duplicate-address probe');
  // The address moves: the client still has the primary's MAC, and only the advertisement can change it.
  await primary.driver.removeAddress(SERVICE_IP6);
  t.false(await primary.driver.hasAddress(SERVICE_IP6));
  const free = await timed(() => backup.driver.isAddressInUse(SERVICE_IP6));
  t.false(free.value);
  await backup.driver.addAddress(SERVICE_IP6);
  const announced = await timed(() => backup.driver.announce(SERVICE_IP6));
  t.is(await neighbourMac(lab.namespace('client'), SERVICE_IP6.address), await interfaceMac(lab.namespace('backup')),
    'the unsolicited advertisement with the Override flag replaced the client\'s entry');
  t.true(await isReachable(runner, lab.namespace('client'), SERVICE_IP6.address));
  await stopProcess(tcpdump, 'SIGINT');

  // For the service address the client saw, in order: the primary's advertisement (the helper's), the primary's
  // kernel defending the address against the backup's probe, the backup's advertisement (the helper's).
  const [primaryMac, backupMac] = [await interfaceMac(lab.namespace('primary')) ?? '', await interfaceMac(lab.namespace('backup')) ?? ''];
  const seen = readPcap(await readFile(capture)).map(describeAdvertisement).filter((na) => na['icmp6.target'] === SERVICE_IP6.address);
  t.deepEqual(seen.map((na) => na['eth.src']), [primaryMac, primaryMac, backupMac]);
  const [byHelper, defendedByKernel, byBackup] = seen;
  t.deepEqual(byBackup, {
    'eth.dst': '33:33:00:00:00:01', 'eth.src': backupMac, 'ip6.hlim': 255, 'ip6.src': SERVICE_IP6.address, 'ip6.dst': 'ff02::1',
    'icmp6.type': 136, 'icmp6.flags': 'override', 'icmp6.target': SERVICE_IP6.address, 'icmp6.tlla': backupMac, 'icmp6.checksum': 'valid',
  });
  t.deepEqual(byHelper, defendedByKernel, 'the helper sends what the kernel itself sends for the address, field for field');
  t.deepEqual([...primary.started, ...backup.started].filter((file) => file !== 'ip'), [], 'nothing but ip: the helpers sent and probed');
  t.log(`advertisements from the kernel (ndisc_notify=1) on adding a nodad address: ${byKernel}; probe taken ${taken.ms} ms, ` +
    `free ${free.ms} ms (listening 150 ms); advertisement ${announced.ms} ms`);
  t.is(byKernel, 0, 'the kernel announced nothing: the helper\'s advertisement is the only one');
});

/** The fields of an unsolicited neighbour advertisement as captured, and whether its ICMPv6 checksum holds. */
function describeAdvertisement(frame: Buffer): Record<string, string | number> {
  const mac = (at: number): string => [...frame.subarray(at, at + 6)].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
  const ip6 = (at: number): string => parseIpAddress([...Array(8).keys()].map((i) => frame.readUInt16BE(at + 2 * i).toString(16)).join(':'))?.address ?? '?';
  const icmp = frame.subarray(54, 14 + 40 + frame.readUInt16BE(18));
  let sum = 0;
  const pseudo = Buffer.concat([frame.subarray(22, 54), Buffer.from([0, 0, icmp.length >> 8, icmp.length & 0xff, 0, 0, 0, 58]), icmp]);
  for (let at = 0; at + 1 < pseudo.length; at += 2) sum += pseudo.readUInt16BE(at);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  const flags = icmp.readUInt32BE(4) >>> 29;
  return {
    'eth.dst': mac(0), 'eth.src': mac(6), 'ip6.hlim': frame.readUInt8(21), 'ip6.src': ip6(22), 'ip6.dst': ip6(38),
    'icmp6.type': icmp.readUInt8(0), 'icmp6.flags': flags === 1 ? 'override' : `router ${flags >> 2}, solicited ${(flags >> 1) & 1}, override ${flags & 1}`,
    'icmp6.target': ip6(62), 'icmp6.tlla': icmp.readUInt8(24) === 2 ? mac(54 + 26) : 'none', 'icmp6.checksum': sum === 0xffff ? 'valid' : 'invalid',
  };
}

async function arpingDad(namespace: string, iface: string, address: string): Promise<ArpProbeAnswer> {
  let stdout: string;
  try {
    stdout = await runInNamespace(runner, namespace, 'arping', ['-D', '-c', '1', '-w', '1', '-I', iface, address]);
  } catch (error) {
    const stdout = isBatonError(error) ? error.details?.stdout ?? '' : '';
    const mac = /reply from \S+ \[([0-9A-Fa-f:]{17})\]/.exec(stdout)?.[1];
    if (isBatonError(error) && error.details?.exitCode === 1 && mac !== undefined) return {inUse: true, mac: mac.toLowerCase()};
    throw new Error(`arping -D -I ${iface} ${address} failed: ${isBatonError(error) ? `${error.message} ${stdout}` : String(error)}`);
  }
  if (!/Sent [1-9]\d* probe/.test(stdout)) throw new Error(`arping -D -I ${iface} ${address} exited 0 without a probe: ${stdout}`);
  return {inUse: false};
}

/** The frames of a pcap file (tcpdump -w: the classic format, microsecond, host byte order). */
function readPcap(file: Buffer): Buffer[] {
  const littleEndian = file.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (at: number): number => (littleEndian ? file.readUInt32LE(at) : file.readUInt32BE(at));
  const frames: Buffer[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const captured = u32(at + 8);
    frames.push(file.subarray(at + 16, at + 16 + captured));
    at += 16 + captured;
  }
  return frames;
}

/** An Ethernet ARP frame, field by field (RFC 826), for a comparison that names the field that differs. */
function describeArpFrame(frame: Buffer): Record<string, string | number> {
  const mac = (at: number): string => [...frame.subarray(at, at + 6)].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
  const ip = (at: number): string => [...frame.subarray(at, at + 4)].join('.');
  const hex = (at: number): string => frame.subarray(at, at + 2).toString('hex');
  return {
    'eth.dst': mac(0), 'eth.src': mac(6), 'eth.type': hex(12), 'arp.hrd': frame.readUInt16BE(14), 'arp.pro': hex(16),
    'arp.hln': frame.readUInt8(18), 'arp.pln': frame.readUInt8(19), 'arp.op': frame.readUInt16BE(20), 'arp.sha': mac(22),
    'arp.spa': ip(28), 'arp.tha': mac(32), 'arp.tpa': ip(38), length: frame.length,
  };
}

/** Waits (5 s at most) until `file` contains `text`. */
async function waitForText(file: string, text: string): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 50) {
    if ((await readFile(file, 'utf8').catch(() => '')).includes(text)) return;
    await sleep(50);
  }
  throw new Error(`${file} did not say "${text}" within 5 s`);
}

/** Sends `signal` to a process we started and waits (5 s at most) until it is gone; quiet if it already is. */
async function stopProcess(pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let waited = 0; waited < 5000 && isAlive(pid); waited += 50) await sleep(50);
}

async function interfaceMac(namespace: string): Promise<string | undefined> {
  const links = JSON.parse(await runner.run('ip', ['-n', namespace, '-j', 'link', 'show', 'dev', 'eth0'])) as Array<{address?: string}>;
  return links[0]?.address;
}

async function neighbourMac(namespace: string, address: string): Promise<string | undefined> {
  const entries = JSON.parse(await runner.run('ip', ['-n', namespace, '-j', 'neigh', 'show', address])) as Array<{lladdr?: string}>;
  return entries[0]?.lladdr;
}

/** Running, and not merely a zombie waiting for us (its spawner) to reap it. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
