// What check-config says: the file's problems and the host's together (on fakes, then on a real host: a network
// namespace of its own with a veth eth0, files with real owners and modes), --json for machines, the drain on this
// host, the replay protection the file chose, and whether the unit's installed allow-lists still allow the config.

import {spawnSync} from 'node:child_process';
import {chmod, chown, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import type {FileAccess} from '../../agent/config/unit-file-access.js';
import {planUnitSandbox} from '../../agent/config/unit-sandbox.js';
import {checkSandbox, describeDrain, describeReplayProtection, run, type CheckConfigDeps} from '../../cli/commands/check-config.js';
import {renderSandboxDropIn} from '../../cli/install/texts.js';
import {configWithSecret, edit} from '../fakes/config-fixtures.js';
import {FakeDrainDriver} from '../fakes/fake-drain-driver.js';
import {ADM, facts, FakeHostProbe, ROOT} from '../fakes/fake-host-probe.js';
import {testConfig, testEtcdConfig, testKeyring} from '../fakes/test-config.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const COMBINED_LINE = '192.0.2.20 - - [21/Nov/2026:13:45:02 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.1"';
// The agent's file access as the unit gives it, without hidden paths: the fakes' files live in a temp dir.
const ACCESS: FileAccess = {uid: 0, gids: [ROOT, ADM], readsAnything: false, hidden: [], described: 'root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service'};

test('check-config says how the drain runs, or why it cannot run on this host', async (t) => {
  const drain = new FakeDrainDriver();
  const config = testConfig('primary');
  t.is(await describeDrain(config, drain), 'drain: on; connections get 5 s to end, no graceful command (connections must end by themselves), 60 s in all');
  const graceful = {...config, drain: {...config.drain, graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}}};
  t.regex(await describeDrain(graceful, drain) as string, /then \/usr\/sbin\/nginx -s reload, 60 s in all$/);
  t.regex(await describeDrain({...config, drain: {...config.drain, enabled: false}}, drain) as string, /^drain: off \(drain\.enabled: false\)/);
  t.regex(await describeDrain({...config, service: {...config.service, mode: 'link'}}, drain) as string, /^drain: none in link mode/);
  const v6 = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;
  t.regex(await describeDrain({...config, service: {...config.service, ip: v6, ips: [v6]}}, drain) as string, /^drain: on; /, 'an IPv6 service address drains too');
  const dual = {...config, service: {...config.service, ips: [config.service.ip, v6]}};
  t.regex(await describeDrain(dual, drain) as string, /^drain: on; /, 'a dual-stack service drains both addresses');
  // Without an IPv6 address of its own the taker has nowhere to send the IPv6 address's strays: no drain, as the agent.
  const noOwn6 = new FakeDrainDriver();
  noOwn6.ownAddress = async (ip) => (ip.family === 4 ? '192.0.2.1' : undefined);
  t.deepEqual(await describeDrain(dual, noOwn6), {kind: 'drain-unavailable', severity: 'warning', key: undefined,
    message: 'drain: this host cannot drain: eth0 has no IPv6 address of its own besides the service IP (link-local ones do not count); ' +
    'a planned switch will cut the connections open at the move'});
  drain.cannot = 'nftables cannot take the drain\'s rules here: Error: Could not process rule: No such file or directory';
  t.deepEqual(await describeDrain(config, drain), {kind: 'drain-unavailable', severity: 'warning', key: undefined,
    message: 'drain: this host cannot drain: nftables cannot take the drain\'s rules here: ' +
    'Error: Could not process rule: No such file or directory; a planned switch will cut the connections open at the move'});
});

test('check-config says whether the installed drop-in allows the config; what it lacks is an error, as the agent refuses it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-check-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const dropIn = join(dir, '50-baton-config.conf');
  await writeFile(dropIn, renderSandboxDropIn(planUnitSandbox(testConfig('primary'))));
  t.is(await checkSandbox(testConfig('primary'), dropIn), `sandbox: ${dropIn} allows what this config needs`);
  const edited = testConfig('primary', {listen: {address: '192.0.2.11', port: 7500},
    scriptUser: {name: 'nobody', uid: 65534, gid: 65534}, hooks: {onStateChange: '/usr/local/bin/notify', timeoutMs: 5000}});
  const said = await checkSandbox(edited, dropIn);
  t.true(Array.isArray(said));
  const problems = said as {kind: string; severity: string; message: string}[];
  t.deepEqual(problems.map((problem) => [problem.kind, problem.severity]), [['sandbox-drop-in', 'error'], ['sandbox-drop-in', 'error']]);
  t.regex(problems[0]?.message ?? '', /^listen\.port 7500: not in SocketBindAllow= \(udp:7411\): the agent refuses this config until .* allows it; run `baton install --keep-config`/);
  t.regex(problems[1]?.message ?? '', /^hooks\.on_state_change or a command check runs as script_user/);
  // No drop-in (not installed by `baton install`): nothing to say.
  t.is(await checkSandbox(edited, join(dir, 'missing.conf')), undefined);
});

test('check-config says which replay protection the file chose and what it asks of the hosts', (t) => {
  const config = testConfig('primary');
  t.is(describeReplayProtection(config), 'replay protection: clock (sent-at within 5000 ms of this host\'s clock: keep both hosts on NTP)');
  t.is(describeReplayProtection({...config, heartbeat: {...config.heartbeat, replayProtection: 'acknowledged'}}),
    'replay protection: acknowledged (the clocks are not compared; beacons must pass both ways, and the peer should say acknowledged too)');
});

/** DESIGN's example with its secret in a temp dir, on a fake host that has what it needs, and check-config's deps. */
async function fakeHost(t: ExecutionContext, extra = '', replace: Array<[string, string]> = []) {
  const written = await configWithSecret(t, 'k'.repeat(32), 0o600, extra);
  if (replace.length > 0) {
    const {readFile} = await import('node:fs/promises');
    await writeFile(written.file, edit(await readFile(written.file, 'utf8'), ...replace));
  }
  const probe = new FakeHostProbe()
    .addFile(written.secretFile, facts('file', ROOT, ROOT, 0o600))
    .addFile('/var/log/nginx/access.log', facts('file', 33, ADM, 0o640), [COMBINED_LINE]);
  const deps: CheckConfigDeps = {probe, access: async () => ACCESS, drain: () => new FakeDrainDriver(), dropIn: '/nonexistent'};
  return {...written, probe, deps};
}

async function checkWith(deps: CheckConfigDeps, file: string, json = false) {
  let stdout = '';
  let stderr = '';
  const code = await run({stdout: (text) => { stdout += text; }, stderr: (text) => { stderr += text; }}, {file, json, fileOnly: false}, deps);
  return {code, stdout, stderr};
}

test('a right file on a right host is valid, and says as whom the files were judged', async (t) => {
  const {file, deps} = await fakeHost(t);
  const result = await checkWith(deps, file);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /: valid\n {2}primary of pair web; beacons 192\.0\.2\.11:7411 -> 192\.0\.2\.12:7411\n/);
  t.true(result.stdout.includes('  host: eth0 and 192.0.2.11 are this host\'s; ip, arping and perl, the access log and the secret ' +
    'checked as the agent reads them (root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service)\n'));
  t.false(result.stdout.includes('WARNING'));
});

test('IPv6 beacons on a link-local address: valid on a host with that address on that interface, endpoints in brackets', async (t) => {
  const {file, deps, probe} = await fakeHost(t, '', [['192.0.2.11,', 'fe80::11%eth1,'], ['192.0.2.12,', 'fe80::12%eth1,']]);
  probe.interfaceList.set('eth1', ['fe80::11']);
  const result = await checkWith(deps, file);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /: valid\n {2}primary of pair web; beacons \[fe80::11%eth1\]:7411 -> \[fe80::12%eth1\]:7411\n/);
  probe.interfaceList.set('eth1', []);
  probe.interfaceList.set('eth2', ['fe80::11']);
  const elsewhere = await checkWith(deps, file);
  t.is(elsewhere.code, 1);
  t.regex(elsewhere.stdout + elsewhere.stderr, /listen\.address: fe80::11%eth1 is not an address of eth1 \(it has none\)/);
});

test('the file\'s problems and the host\'s are printed together, errors first, and exit 1', async (t) => {
  const {file, probe, deps} = await fakeHost(t, 'heartbeet: {}\n', [['interface: eth0', 'interface: eth9']]);
  probe.programs.delete('perl');
  const result = await checkWith(deps, file);
  t.is(result.code, 1);
  t.is(result.stdout, '');
  const lines = result.stderr.trimEnd().split('\n');
  t.is(lines[0], `baton: ${file}: 3 problems: 2 errors, 1 warning`);
  t.is(lines[1], `  - ${file}:18 heartbeet: unknown key 'heartbeet', did you mean 'heartbeat'?`);
  t.regex(lines[2] ?? '', /^ {2}- service\.interface: this host has no interface eth9 \(it has eth0, lo\): every takeover would fail/);
  t.regex(lines[3] ?? '', /^ {2}- warning: perl \(perl-base\) is not on PATH/);
  t.is(lines.length, 4);
});

test('without its interface, the drain is not judged: nftables would refuse it for the same reason', async (t) => {
  const {file, deps} = await fakeHost(t, '', [['interface: eth0', 'interface: eth9']]);
  const drain = new FakeDrainDriver();
  drain.cannot = 'nftables cannot take the drain\'s rules here: Error: Interface does not exist';
  const result = await checkWith({...deps, drain: () => drain}, file, true);
  const report = JSON.parse(result.stdout) as {problems: {kind?: string}[]};
  t.deepEqual(report.problems.map((problem) => problem.kind), ['interface-missing']);
});

test('warnings alone leave the file valid (exit 0), each on a WARNING line', async (t) => {
  const {file, probe, deps} = await fakeHost(t);
  probe.programs.delete('perl');
  probe.logs.set('/var/log/nginx/access.log', []);
  const result = await checkWith(deps, file);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /\n {2}WARNING perl \(perl-base\) is not on PATH .*\n {2}WARNING confirm\.access_log: \/var\/log\/nginx\/access\.log is empty/);
});

test('--json: {file, valid, errors, warnings, problems: [{severity, check, kind?, key?, line?, message}], config}', async (t) => {
  const {file, deps} = await fakeHost(t, 'heartbeet: {}\n', [['interface: eth0', 'interface: eth9']]);
  const invalid = await checkWith(deps, file, true);
  t.is(invalid.code, 1);
  t.is(invalid.stderr, '');
  const report = JSON.parse(invalid.stdout) as Record<string, unknown>;
  t.like(report, {file, valid: false, errors: 2, warnings: 0, hostChecked: true, config: null});
  t.deepEqual(report['problems'], [
    {severity: 'error', check: 'file', key: 'heartbeet', line: 18, message: `${file}:18 heartbeet: unknown key 'heartbeet', did you mean 'heartbeat'?`},
    {severity: 'error', check: 'host', kind: 'interface-missing', key: 'service.interface',
      message: 'service.interface: this host has no interface eth9 (it has eth0, lo): every takeover would fail at its first step; ' +
        'name this host\'s own interface (`ip -br link`; the names often differ between the two hosts)'},
  ]);
  const {file: good, deps: goodDeps} = await fakeHost(t);
  const valid = JSON.parse((await checkWith(goodDeps, good, true)).stdout) as Record<string, unknown>;
  t.like(valid, {valid: true, errors: 0, warnings: 0, problems: [],
    config: {pair: 'web', node: 'primary', service: {address: '192.0.2.100/24', addresses: ['192.0.2.100/24'], interface: 'eth0', mode: 'address'}, accessLog: '/var/log/nginx/access.log'}});
});

test('a file that cannot be read is one problem, in --json too', async (t) => {
  const {deps} = await fakeHost(t);
  const result = await checkWith(deps, '/nonexistent/baton.yaml', true);
  t.is(result.code, 1);
  const report = JSON.parse(result.stdout) as {valid: boolean; problems: {check: string; message: string}[]};
  t.false(report.valid);
  t.is(report.problems[0]?.check, 'file');
  t.regex(report.problems[0]?.message ?? '', /^\/nonexistent\/baton\.yaml: cannot read the config file: no such file, ENOENT/);
});

// ---- a real host: a network namespace of its own, real files with real owners ----

function realHostUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace, chown)';
  if (spawnSync('unshare', ['--net', 'true'], {stdio: 'ignore'}).status !== 0) return '`unshare --net` does not work here (util-linux, root)';
  if (spawnSync('ip', ['-V'], {stdio: 'ignore'}).error !== undefined) return 'no `ip` (iproute2)';
  return undefined;
}
const unavailable = realHostUnavailable();
const realHost = unavailable === undefined ? test : test.skip;
const skipped = unavailable === undefined ? '' : ` (skipped: ${unavailable})`;

/** Runs check-config in a new network namespace whose only interfaces are lo and a veth pair, eth0 (192.0.2.11) and eth1. */
async function checkOnRealHost(...args: string[]) {
  const setUp = 'ip link set lo up && ip link add eth0 type veth peer name eth1 && ip address add 192.0.2.11/24 dev eth0 && ip link set eth0 up';
  return execa('unshare', ['--net', 'sh', '-c', `${setUp} && exec "$0" "$@"`, process.execPath, CLI, 'check-config', ...args],
    {reject: false, timeout: 120_000});
}

realHost(`on a real host: eth9, an IPv6 service address, a log the agent cannot read and a secret owned by nobody, all at once${skipped}`, async (t) => {
  // Not under /tmp: the unit's PrivateTmp hides it from the agent, which check-config would rightly say.
  const dir = await mkdtemp('/var/lib/baton-check-');
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const secret = join(dir, 'secret');
  await writeFile(secret, 'k'.repeat(32), {mode: 0o600});
  await mkdir(join(dir, 'www'));
  const log = join(dir, 'www', 'access.log');
  await writeFile(log, `${COMBINED_LINE}\n`);
  const config = (address: string, iface: string) => `pair: web\nnode: primary\nlisten: {address: 192.0.2.11}\npeer: {address: 192.0.2.12}\n` +
    `secret_file: ${secret}\nservice: {address: ${address}, interface: ${iface}}\nconfirm: {access_log: ${log}}\n`;
  const good = join(dir, 'good.yaml');
  await writeFile(good, config('192.0.2.100/24', 'eth0'));
  // root:adm 0640, as Debian's nginx writes it (www-data:adm): readable through the unit's SupplementaryGroups=adm.
  await chown(log, 0, ADM);
  await chmod(log, 0o640);
  const passed = await checkOnRealHost(good);
  t.is(passed.exitCode, 0, passed.stderr);
  t.regex(passed.stdout, /\n {2}host: eth0 and 192\.0\.2\.11 are this host's; ip, arping and perl, the access log and the secret checked as the agent reads them \(root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent\.service/);

  // The same files as another user's: the web server's own group (not adm), and nobody's secret.
  await chown(log, 33, 33);
  await chown(secret, 65534, 65534);
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, config('2001:db8::100/64', 'eth9'));
  const failed = await checkOnRealHost(bad);
  t.log(failed.stderr);
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, new RegExp(`^baton: ${bad}: \\d+ problems`));
  t.regex(failed.stderr, /\n {2}- service\.interface: this host has no interface eth9 \(it has eth0, eth1, lo\)/);
  t.regex(failed.stderr, new RegExp(`\\n {2}- confirm\\.access_log: the agent \\(root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent\\.service[^)]*\\) cannot read ${log}: ${log} is \\S+:\\S+ 0640, which does not let it read it`));
  t.regex(failed.stderr, new RegExp(`\\n {2}- secret_file: ${secret} is nobody:\\S+ 0600, not owned by root, the user the agent runs as: the agent .* cannot read it`));

  const json = await checkOnRealHost(bad, '--json');
  t.is(json.exitCode, 1);
  const report = JSON.parse(json.stdout) as {valid: boolean; problems: {severity: string; check: string; kind?: string}[]};
  t.false(report.valid);
  const kinds = report.problems.filter((problem) => problem.check === 'host' && problem.severity === 'error').map((problem) => problem.kind);
  for (const kind of ['interface-missing', 'access-log-unreadable', 'secret-owner']) t.true(kinds.includes(kind), kind);
});

test('an etcd host\'s file is valid without beacons or a secret; check-config says its place, key and lease', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-check-etcd-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'baton.yaml');
  await writeFile(file, 'pair: web\nservice: {address: 192.0.2.100/24, interface: eth0}\ncoordination:\n  mode: etcd\n' +
    '  endpoints: [http://192.0.2.31:2379, http://192.0.2.32:2379]\n  host: b\n  hosts: [a, b, c]\n');
  const deps: CheckConfigDeps = {probe: new FakeHostProbe(), access: async () => ACCESS, drain: () => new FakeDrainDriver(), dropIn: '/nonexistent'};
  const result = await checkWith(deps, file);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, `${file}: valid\n` +
    '  host b in etcd mode, number 2 in the preference a, b, c\n' +
    '  service web, its key /baton/services/web/holder\n' +
    '    service IP 192.0.2.100/24 on eth0 (address mode)\n' +
    '  etcd: 2 members (http://192.0.2.31:2379, http://192.0.2.32:2379); lease 10 s, the address given up 2000 ms before it could ' +
    'expire; on etcd loss: drop; give etcd three members or five: fewer tolerate no failure\n' +
    '  drain: on; connections get 5 s to end, no graceful command (connections must end by themselves), 60 s in all\n' +
    '  host: eth0 is this host\'s; ip, arping and perl, and the access log checked as the agent finds them (root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service)\n' +
    '  WARNING confirm.access_log: not set: `baton switchover` refuses until it names this host\'s web-server access log (failover does not need it)\n');
  const json = JSON.parse((await checkWith(deps, file, true)).stdout) as {config: {coordination: {host: string}; services: Array<{name: string; key: string}>}};
  t.like(json.config.coordination, {host: 'b'});
  t.like(json.config.services[0], {name: 'web', key: '/baton/services/web/holder', hosts: ['a', 'b', 'c'], accessLog: null});
});

test('the unit\'s allow-list of an etcd host has the members instead of a peer, and no beacon port', (t) => {
  const sandbox = planUnitSandbox(testEtcdConfig('a', {coordination: {...testEtcdConfig('a').coordination,
    endpoints: ['http://192.0.2.31:2379', 'https://[2001:db8::31]:2379']}}));
  t.deepEqual(sandbox.ipAllow?.map(({address, keys}) => [address, keys]), [['localhost', ['loopback']],
    ['192.0.2.31', ['coordination.endpoints[0]']], ['2001:db8::31', ['coordination.endpoints[1]']]]);
  t.deepEqual(sandbox.bindAllow, []);
  const named = planUnitSandbox(testEtcdConfig('a', {coordination: {...testEtcdConfig('a').coordination, endpoints: ['https://etcd1.example:2379']}}));
  t.is(named.ipAllow, undefined, 'a member by name cannot be allowed by address: the list stays open');
  t.deepEqual(named.namedHosts, [{key: 'coordination.endpoints[0]', host: 'etcd1.example'}]);
});

test('with keep-while-peers-agree the unit also allows every host\'s beacon address and binds the beacon port', (t) => {
  const base = testEtcdConfig('a');
  const sandbox = planUnitSandbox(testEtcdConfig('a', {coordination: {...base.coordination, endpoints: ['http://192.0.2.31:2379'],
    onEtcdLoss: 'keep-while-peers-agree', beacons: {port: 7420, secretFile: '/etc/baton/secret', keyring: testKeyring(), intervalMs: 200,
      heardWithinMs: 1000, addresses: {a: '192.0.2.11', b: '192.0.2.12', c: '192.0.2.13'}}}}));
  t.deepEqual(sandbox.ipAllow?.map(({address, keys}) => [address, keys]), [['localhost', ['loopback']],
    ['192.0.2.31', ['coordination.endpoints[0]']], ['192.0.2.11', ['coordination.beacons.addresses.a']],
    ['192.0.2.12', ['coordination.beacons.addresses.b']], ['192.0.2.13', ['coordination.beacons.addresses.c']]]);
  t.deepEqual(sandbox.bindAllow, ['udp:7420']);
});
