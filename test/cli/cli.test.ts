import {access, chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createConnection, createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import type {Config} from '../../agent/config/schema.js';
import {startControlServer} from '../../agent/control-server.js';
import {createLogger} from '../../agent/log.js';
import {CONTROL_PROTOCOL, type StatusReport} from '../../agent/control-protocol.js';
import {VERSION} from '../../agent/version.js';
import {STATUS_SCHEMA_VERSION, type StatusJson} from '../../cli/commands/status.js';
import {EXIT_USAGE} from '../../cli/exit-codes.js';
import {configWithSecret} from '../fakes/config-fixtures.js';
import {createFakePair} from '../fakes/fake-pair.js';
import {statusReport} from '../fakes/status-fixture.js';
import {SERVICE_IP, SERVICE_IP6} from '../fakes/test-config.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const AGENT = fileURLToPath(new URL('../../agent/main.js', import.meta.url));

// A bound for a hung CLI, not a target: on a loaded machine (load 25 on 2 cores seen beside other test runs)
// starting Node alone took over 20 s.
const CLI_TIMEOUT_MS = 120_000;

function baton(...args: string[]) {
  return execa(process.execPath, [CLI, ...args], {reject: false, timeout: CLI_TIMEOUT_MS});
}

async function tempDir(t: {teardown(fn: () => Promise<void>): void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-cli-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

/** A primary and a backup agent on fakes, settled into active/standby, the primary behind a real control socket. */
async function servedPair(t: {teardown(fn: () => Promise<void>): void}, primaryConfig: Partial<Config> = {}, backupConfig: Partial<Config> = {}): Promise<string> {
  const {clock, primary, backup} = createFakePair(t, {primary: {epoch: 2, pid: 4242, config: primaryConfig}, backup: {epoch: 2, pid: 4242, config: backupConfig}});
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(2000);
  const socket = join(await tempDir(t), 'control.sock');
  const log = createLogger({journald: true, debug: false, write: () => undefined, wallNow: () => clock.wallNow()});
  const server = await startControlServer(socket, primary.agent, log);
  t.teardown(() => server.close());
  return socket;
}

test('baton --help lists the commands and exits 0', async (t) => {
  const result = await baton('--help');
  t.is(result.exitCode, 0);
  for (const command of ['status', 'check-config', 'lab up|status|down|run']) t.true(result.stdout.includes(command), command);
});

test('baton-agent --help explains the agent and its signals', async (t) => {
  const result = await execa(process.execPath, [AGENT, '--help'], {reject: false});
  t.is(result.exitCode, 0);
  t.regex(result.stdout, /--check-config/);
  t.regex(result.stdout, /SIGHUP/);
});

test('baton-agent refuses to start on a config that needs an address its unit\'s drop-in does not allow', async (t) => {
  const {file} = await configWithSecret(t, 'k'.repeat(32), 0o600);
  // The drop-in of a config whose peer was 192.0.2.13; this one (DESIGN's example) has 192.0.2.12.
  const result = await execa(process.execPath, [AGENT, '--config', file], {
    reject: false, timeout: CLI_TIMEOUT_MS,
    env: {BATON_IP_ALLOW: 'localhost,192.0.2.11,192.0.2.13', BATON_BIND_ALLOW: 'udp:7411', NOTIFY_SOCKET: ''},
  });
  t.is(result.exitCode, 1);
  // The logger writes a multi-line message on one line, its lines joined by " | ".
  t.true(result.stderr.includes(`${file} needs what this agent's systemd sandbox does not allow: |   - peer.address ` +
    '192.0.2.12: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.13) | '), result.stderr);
  t.regex(result.stderr, /run `baton install --keep-config` to write it for this config, then `systemctl restart baton-agent`/);
});

test('baton-agent --check-config (the unit\'s ExecReload= check) refuses what the drop-in does not allow, and passes the same file without it', async (t) => {
  const {file} = await configWithSecret(t, 'k'.repeat(32), 0o600);
  const check = async (env: Record<string, string>) => execa(process.execPath, [AGENT, '--config', file, '--check-config'], {
    reject: false, timeout: CLI_TIMEOUT_MS, env: {...env, NOTIFY_SOCKET: ''}, extendEnv: false,
  });
  const refused = await check({BATON_IP_ALLOW: 'localhost,192.0.2.11,192.0.2.13', BATON_BIND_ALLOW: 'udp:7411'});
  t.is(refused.exitCode, 1);
  t.true(refused.stderr.includes(`${file} needs what this agent's systemd sandbox does not allow:\n  - peer.address 192.0.2.12: ` +
    'not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.13)'), refused.stderr);
  // Allowed, the check goes on to this host, which is not the config's (no eth0 with 192.0.2.11): the sandbox passed.
  const allowed = await check({BATON_IP_ALLOW: 'localhost,192.0.2.11,192.0.2.12', BATON_BIND_ALLOW: 'udp:7411'});
  t.false(allowed.stderr.includes('sandbox does not allow'), allowed.stderr);
  t.regex(allowed.stderr, /: this host cannot run it \(\d+ errors?\):/);
});

test('baton-agent --check-config refuses metrics whose scraper and port the drop-in does not allow, and passes them with them', async (t) => {
  const {file} = await configWithSecret(t, 'k'.repeat(32), 0o600,
    'metrics: {enabled: true, listen: 192.0.2.11:7412, allow_from: [192.0.2.50]}\n');
  const check = async (env: Record<string, string>) => execa(process.execPath, [AGENT, '--config', file, '--check-config'], {
    reject: false, timeout: CLI_TIMEOUT_MS, env: {...env, NOTIFY_SOCKET: ''}, extendEnv: false,
  });
  // The drop-in of the same config without metrics.
  const refused = await check({BATON_IP_ALLOW: 'localhost,192.0.2.11,192.0.2.12', BATON_BIND_ALLOW: 'udp:7411'});
  t.is(refused.exitCode, 1);
  t.true(refused.stderr.includes('  - metrics.allow_from[0] 192.0.2.50: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.12)\n' +
    '  - metrics.listen port 7412: not in SocketBindAllow= (udp:7411)\n'), refused.stderr);
  const allowed = await check({BATON_IP_ALLOW: 'localhost,192.0.2.11,192.0.2.12,192.0.2.50', BATON_BIND_ALLOW: 'udp:7411,tcp:7412'});
  // On to the host check, which this machine fails (it is not the config's host): the sandbox passed.
  t.false(allowed.stderr.includes('sandbox does not allow'), allowed.stderr);
  t.regex(allowed.stderr, /: this host cannot run it \(\d+ errors?\):/);
});

test('baton-agent does not start when it cannot listen on metrics.listen, and says which key', async (t) => {
  // A port taken by someone else; beacons on loopback (any free UDP port), so that only metrics can fail.
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen({host: '127.0.0.1', port: 0}, resolve));
  t.teardown(() => taken.close());
  const address = taken.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const {file, dir} = await configWithSecret(t, 'k'.repeat(32), 0o600, `metrics: {enabled: true, listen: 127.0.0.1:${port}}\n`);
  await writeFile(file, (await readFile(file, 'utf8')).replace('listen: { address: 192.0.2.11, port: 7411 }', `listen: { address: 127.0.0.1, port: ${port} }`)
    .replace('peer:   { address: 192.0.2.12, port: 7411 }', 'peer:   { address: 127.0.0.2, port: 7411 }')
    .replace('state_dir: /var/lib/baton', `state_dir: ${dir}/state`).replace('control_socket: /run/baton/control.sock', `control_socket: ${dir}/control.sock`));
  const result = await execa(process.execPath, [AGENT, '--config', file], {reject: false, timeout: CLI_TIMEOUT_MS, env: {NOTIFY_SOCKET: ''}});
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`\\(metrics\\) cannot listen for metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*metrics\\.listen must be`));
  t.false(result.stderr.includes('(control) listening'), 'it stopped before the control socket, and before the agent started');
  t.false(result.stderr.includes('starting, boot'));
});

test('baton-agent logs the host check\'s problems at start and does not start without its service interface', async (t) => {
  const {file} = await configWithSecret(t, 'k'.repeat(32), 0o600);
  await writeFile(file, (await readFile(file, 'utf8')).replace('interface: eth0', 'interface: eth9'));
  const result = await execa(process.execPath, [AGENT, '--config', file], {reject: false, timeout: CLI_TIMEOUT_MS, env: {NOTIFY_SOCKET: ''}});
  t.is(result.exitCode, 1);
  // The same words as check-config's.
  t.regex(result.stderr, /\(host\) service\.interface: this host has no interface eth9 \(it has [^)]*\): every takeover would fail at its first step/);
  t.regex(result.stderr, /\(host\) not starting: service\.interface would make the first takeover fail \(see above\); `baton check-config` lists every problem/);
  t.false(result.stderr.includes('(control) listening'), 'it never got as far as its control socket');
});

test('an unknown command is a usage error with the usage and a guess, exit 64', async (t) => {
  const result = await baton('stauts');
  t.is(result.exitCode, EXIT_USAGE);
  t.regex(result.stderr, /^baton: unknown command 'stauts'; did you mean 'status'\?/);
  t.regex(result.stderr, /Usage: baton/);
});

test('an unknown option is one line naming it with a guess, exit 64; for status 3, UNKNOWN to a monitoring system, and JSON under --json', async (t) => {
  const resume = await baton('resume', '--jsn');
  t.is(resume.exitCode, EXIT_USAGE);
  t.is(resume.stderr, 'baton: unknown option --jsn for resume; did you mean --json?\nRun `baton help resume` for its options.');
  const status = await baton('status', '--jsn');
  t.is(status.exitCode, 3);
  t.regex(status.stderr, /^baton: unknown option --jsn for status; did you mean --json\?/);
  const json = await baton('--config', '/etc/baton/baton.yaml', 'status', '--json', '--jsn');
  t.is(json.exitCode, 3);
  t.is(json.stderr, '');
  const parsed = JSON.parse(json.stdout) as StatusJson;
  t.is(parsed.schemaVersion, STATUS_SCHEMA_VERSION);
  t.is(parsed.check.level, 'unknown');
  t.is(parsed.error?.code, 'USAGE');
  t.is(parsed.error?.message, 'unknown option --jsn for status; did you mean --json?');
});

test('a bad option value is its error and a pointer to the command\'s help, not the whole usage, exit 64', async (t) => {
  const result = await baton('switchover', '--min-requests', '0');
  t.is(result.exitCode, EXIT_USAGE);
  t.is(result.stderr, 'baton: --min-requests: expected a whole number from 1 to 1000000, got \'0\'\nRun `baton help switchover` for its options.');
});

test('no command at all prints the usage, exit 64', async (t) => {
  const result = await baton();
  t.is(result.exitCode, EXIT_USAGE);
  t.regex(result.stderr, /^baton: no command given\n\nUsage: baton/);
});

test('baton help switchover and baton switchover --help print switchover\'s help alone, exit 0', async (t) => {
  const word = await baton('help', 'switchover');
  const flag = await baton('switchover', '--help');
  t.is(word.exitCode, 0);
  t.is(flag.exitCode, 0);
  t.is(word.stdout, flag.stdout);
  t.regex(word.stdout, /^Usage: baton switchover \[options\]\n/);
  t.regex(word.stdout, /--pause-after STEP/);
  t.regex(word.stdout, /--socket PATH/, 'the shared options it takes');
  t.regex(word.stdout, /Exit status: 0 done, 1 refused or error, 2 rolled back/);
  t.false(/install --role|uninstall \[--root|--file-only/.test(word.stdout), 'no other command\'s text');
  t.true(word.stdout.split('\n').length < 40, `${word.stdout.split('\n').length} lines`);
  const lab = await baton('lab', 'run', '--help');
  t.regex(lab.stdout, /^Usage: baton lab up\|status\|down\|run \[options\]/);
  t.false(lab.stdout.includes('--socket'), 'lab takes no --socket');
  const misspelt = await baton('help', 'swichover');
  t.is(misspelt.exitCode, EXIT_USAGE);
  t.regex(misspelt.stderr, /^baton: unknown command 'swichover'; did you mean 'switchover'\?/);
});

test('baton status prints its verdict, then both hosts as the agent sees them', async (t) => {
  const socket = await servedPair(t);
  const result = await baton('status', '--socket', socket);
  t.is(result.exitCode, 0, result.stderr);
  // The version is the release's, not this test's.
  t.snapshot(result.stdout.replaceAll(VERSION, 'VERSION'));
  t.regex(result.stdout, /^OK: the primary \(web-primary\) active, holds the service IP; the backup \(web-backup\) standby\n/);
  t.regex(result.stdout, new RegExp(`this host is the primary \\(web-primary, pid 4242, baton ${VERSION.replaceAll('.', '\\.')}\\)`));
  t.regex(result.stdout, /state {7}active for/);
  t.regex(result.stdout, /service IP {2}192\.0\.2\.100\/24 on eth0 \(address mode\): held here \(observed on the interface\)/);
  t.regex(result.stdout, new RegExp(`peer backup at 192\\.0\\.2\\.12:7411 \\(web-backup, baton ${VERSION.replaceAll('.', '\\.')}\\)`));
  t.regex(result.stdout, /alive {7}yes/);
});

test('baton status --json gives the same report for machines, with its schema version, the check and both agents\' versions', async (t) => {
  const socket = await servedPair(t);
  const result = await baton('status', '--json', '--socket', socket);
  t.is(result.exitCode, 0, result.stderr);
  const status = JSON.parse(result.stdout) as Required<StatusJson>;
  t.is(status.schemaVersion, STATUS_SCHEMA_VERSION);
  t.deepEqual(status.check, {level: 'ok', exitCode: 0, problems: [],
    summary: 'OK: the primary (web-primary) active, holds the service IP; the backup (web-backup) standby'});
  t.deepEqual(status.cli, {version: VERSION, controlProtocol: CONTROL_PROTOCOL});
  t.is((status.self as StatusReport['self']).state, 'active');
  t.true((status.self as StatusReport['self']).holdsIp);
  t.is(status.self.version, VERSION);
  t.true(status.peer.alive);
  t.is(status.peer.state, 'standby');
  t.is(status.peer.version, VERSION);
});

test('baton status on a host holding part of a dual-stack service: exit 2, CRITICAL, which address is held and which missing, in text and --json', async (t) => {
  const dual: Partial<Config> = {service: {ip: SERVICE_IP, ips: [SERVICE_IP, SERVICE_IP6], interface: 'eth0', mode: 'address'}};
  const {clock, primary, backup} = createFakePair(t, {primary: {epoch: 2, config: dual}, backup: {epoch: 2, config: dual}});
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(2000);
  // The IPv6 address gone from the active host (an operator, another program), before the agent's next look repairs it.
  primary.network.addresses.delete(SERVICE_IP6.address);
  const socket = join(await tempDir(t), 'control.sock');
  const log = createLogger({journald: true, debug: false, write: () => undefined, wallNow: () => clock.wallNow()});
  const server = await startControlServer(socket, primary.agent, log);
  t.teardown(() => server.close());
  const text = await baton('status', '--socket', socket);
  t.is(text.exitCode, 2, text.stdout);
  t.is(text.stdout.split('\n')[0], 'CRITICAL: this host, the primary (web-primary), has the service IP partly held: 192.0.2.100 held, 2001:db8::100 missing');
  t.regex(text.stdout, /^ {2}service IP {2}192\.0\.2\.100\/24 and 2001:db8::100\/64 on eth0 \(address mode\): partly held: 192\.0\.2\.100 held, 2001:db8::100 missing here \(observed on the interface\)$/m);
  const json = JSON.parse((await baton('status', '--json', '--socket', socket)).stdout) as Required<StatusJson>;
  t.is(json.check.exitCode, 2);
  t.deepEqual(json.check.problems.map((p) => [p.code, p.level]), [['ip-partly-held', 'critical']]);
  t.false((json.self as StatusReport['self']).holdsIp);
  t.deepEqual((json.self as StatusReport['self']).held, [SERVICE_IP.cidr]);
  t.deepEqual(json.service.addresses, [SERVICE_IP.cidr, SERVICE_IP6.cidr]);
});

test('baton status exits 1, WARNING, when the peer has gone silent, and says so on its first line', async (t) => {
  const {clock, primary, backup} = createFakePair(t, {primary: {epoch: 2}, backup: {epoch: 2}});
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(2000);
  await backup.kill();
  await clock.advance(3000);
  const socket = join(await tempDir(t), 'control.sock');
  const log = createLogger({journald: true, debug: false, write: () => undefined, wallNow: () => clock.wallNow()});
  const server = await startControlServer(socket, primary.agent, log);
  t.teardown(() => server.close());
  const result = await baton('status', '--socket', socket);
  t.is(result.exitCode, 1, result.stdout);
  t.regex(result.stdout.split('\n')[0] ?? '', /^WARNING: no valid beacon from the backup \(web-backup\) for \d\.\d s: no failover$/);
  const json = JSON.parse((await baton('status', '--json', '--socket', socket)).stdout) as StatusJson;
  t.deepEqual(json.check.problems.map((p) => [p.code, p.level]), [['peer-silent', 'warning']]);
});

test('baton status shows the control socket\'s refusals, in text and in --json', async (t) => {
  const socket = await servedPair(t);
  // A client pipelines a second request behind its first: the agent refuses it and counts it.
  const replies = await new Promise<string>((resolve, reject) => {
    let answer = '';
    const connection = createConnection(socket, () => connection.write('{"id":"a","type":"status"}\n{"id":"b","type":"status"}\n'));
    connection.setEncoding('utf8');
    connection.on('data', (chunk: string) => {
      answer += chunk;
    });
    connection.on('close', () => resolve(answer));
    connection.on('error', reject);
  });
  t.regex(replies, /one request per connection/);
  const text = await baton('status', '--socket', socket);
  t.is(text.exitCode, 0, text.stderr);
  t.regex(text.stdout, /^control {7}socket refused 1 pipelined second request\(s\)$/m);
  const json = await baton('status', '--json', '--socket', socket);
  t.deepEqual((JSON.parse(json.stdout) as {control: unknown}).control, {refusedBusy: 0, timedOut: 0, extraRequests: 1});
});

const refusedBeforeAnyStep = test.macro(async (t, enabled: {primary: boolean; backup: boolean}, refusal: string) => {
  const socket = await servedPair(t, {rehearsal: {enabled: enabled.primary}}, {rehearsal: {enabled: enabled.backup}});
  const report = join(await tempDir(t), 'report.html');
  const result = await baton('rehearse', '--with-failure', '--socket', socket, '--report', report);
  t.is(result.exitCode, 1);
  t.is(result.stderr.split('\n')[0], `baton: --with-failure needs the rehearsal aids on both hosts, and the ${refusal}: ` +
    'set `rehearsal: {enabled: true}` (rehearsal.enabled) in ' +
    `${refusal.endsWith(' do not enable them') ? 'their configuration and restart their agents' : 'its configuration and restart its agent'}, ` +
    'on a pair kept for rehearsals only; nothing was done');
  const status = JSON.parse((await baton('status', '--json', '--socket', socket)).stdout) as {self: {state: string; rehearsal: boolean}; lastSwitch?: unknown};
  t.is(status.self.state, 'active', 'no switch was run');
  t.is(status.lastSwitch, undefined);
  t.is(status.self.rehearsal, enabled.primary);
  await t.throwsAsync(access(report), undefined, 'no report was written');
});

test('baton rehearse --with-failure on an agent without the rehearsal aids refuses before any step, naming the host and the key',
  refusedBeforeAnyStep, {primary: false, backup: true}, 'primary (web-primary) does not enable them');
test('baton rehearse --with-failure whose peer does not enable the rehearsal aids refuses before any step, naming the peer',
  refusedBeforeAnyStep, {primary: true, backup: false}, 'backup (web-backup) does not enable them');
test('baton rehearse --with-failure with neither host enabling the rehearsal aids names both',
  refusedBeforeAnyStep, {primary: false, backup: false}, 'primary (web-primary) and the backup (web-backup) do not enable them');

test('baton rehearse --with-failure against an older local agent that does not know the request says so, and does nothing', async (t) => {
  const socket = join(await tempDir(t), 'control.sock');
  // What an agent from before the rehearsal request answers it: a BAD_REQUEST naming the types it knows.
  const asked: string[] = [];
  const old = createServer((connection) => {
    connection.setEncoding('utf8');
    connection.once('data', (line: string) => {
      asked.push(line.trim());
      connection.end(`${JSON.stringify({id: '?', type: 'result', ok: false,
        error: {code: 'BAD_REQUEST', message: 'request type: expected status, switchover, resume or fail-active, got "rehearsal"'}})}\n`);
    });
  });
  await new Promise<void>((resolve) => old.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => old.close(() => resolve())));
  const result = await baton('rehearse', '--with-failure', '--socket', socket, '--report', join(await tempDir(t), 'report.html'));
  t.is(result.exitCode, 1);
  // Its replies carry no control protocol: the CLI's first question (a status, before any other request) finds it
  // older, and the rehearsal request is never sent.
  t.regex(result.stderr.split('\n')[0] ?? '', /^baton: --with-failure asks both hosts whether they enable the rehearsal aids: the agent at \S+ speaks control protocol 1 \(baton 0\.1\.0\), older than this baton's: .*restart the agent \(`systemctl restart baton-agent`\).*; nothing was done$/);
  t.deepEqual(asked.map((line) => (JSON.parse(line) as {type: string}).type), ['status'], 'nothing was asked after the refusal');
});

test('baton status without a running agent is CRITICAL, exit 2, and says how to start it; under --json as JSON only', async (t) => {
  const socket = join(await tempDir(t), 'none.sock');
  const result = await baton('status', '--socket', socket);
  t.is(result.exitCode, 2);
  t.is(result.stdout, `CRITICAL: baton-agent is not running: no control socket at ${socket}. Start it with \`systemctl start baton-agent\`, or pass --config/--socket for another agent`);
  const json = await baton('status', '--json', '--socket', socket);
  t.is(json.exitCode, 2);
  t.is(json.stderr, '', 'nothing but the JSON object, for a collector that reads both streams');
  const parsed = JSON.parse(json.stdout) as StatusJson;
  t.is(parsed.schemaVersion, STATUS_SCHEMA_VERSION);
  t.deepEqual(parsed.check.problems.map((p) => [p.code, p.level]), [['agent-unreachable', 'critical']]);
  t.is(parsed.error?.code, 'AGENT_UNREACHABLE');
  t.regex(parsed.error?.message ?? '', /no control socket at/);
  t.is(parsed.self, undefined);
});

test('baton status with an unreadable config it was pointed at is UNKNOWN, exit 3, and suggests --socket', async (t) => {
  const result = await baton('status', '--config', '/nonexistent/baton.yaml');
  t.is(result.exitCode, 3);
  t.regex(result.stdout, /^UNKNOWN: cannot find the control socket from \/nonexistent\/baton\.yaml: cannot read it \(no such file, ENOENT\); pass --socket PATH/);
});

test('baton status reaches a healthy agent through a config whose other keys are wrong and whose secret it cannot read', async (t) => {
  const socket = await servedPair(t);
  const config = join(await tempDir(t), 'baton.yaml');
  await writeFile(config, `pair: web\nnode: primery\nheartbeet: {}\nsecret_file: /nonexistent/secret\ncontrol_socket: ${socket}\n`);
  const result = await baton('status', '--config', config);
  t.is(result.exitCode, 0, `${result.stdout}${result.stderr}`);
  t.is(result.stderr, '');
  const broken = join(await tempDir(t), 'broken.yaml');
  await writeFile(broken, `control_socket: ${socket}\nlisten: { address: 192.0.2.11\n`);
  const json = await baton('status', '--json', '--config', broken);
  t.is(json.exitCode, 0, json.stdout);
  t.deepEqual((JSON.parse(json.stdout) as StatusJson).notes,
    [`${broken} has YAML syntax errors (\`baton check-config\` lists them); its control_socket read alone: ${socket}`]);
});

/** A control socket answering as baton 0.1.0's agent did: no protocol, a status without versions. Records each request. */
async function oldAgent(t: {teardown(fn: () => Promise<void>): void}): Promise<{socket: string; requests: string[]}> {
  const socket = join(await tempDir(t), 'old.sock');
  const requests: string[] = [];
  const {version: _version, ...oldSelf} = statusReport().self;
  const {version: _peerVersion, ...oldPeer} = statusReport().peer;
  const server = createServer((connection) => {
    connection.setEncoding('utf8');
    connection.once('data', (line: string) => {
      const request = JSON.parse(line) as {id: string; type: string};
      requests.push(request.type);
      connection.end(`${JSON.stringify({id: request.id, type: 'result', ok: true, result: {...statusReport(), self: oldSelf, peer: oldPeer}})}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {socket, requests};
}

test('a new baton facing an agent of baton 0.1.0 says so in one line, and starts no switch on it', async (t) => {
  const old = await oldAgent(t);
  const status = await baton('status', '--socket', old.socket);
  t.is(status.exitCode, 3);
  t.is(status.stdout, `UNKNOWN: the agent at ${old.socket} speaks control protocol 1 (baton 0.1.0), older than this baton's: ` +
    `this baton ${VERSION} speaks ${CONTROL_PROTOCOL}. If baton was just upgraded on this host, restart the agent ` +
    '(`systemctl restart baton-agent`) to finish the upgrade; else use the baton installed with the agent');
  const switchover = await baton('switchover', '--socket', old.socket);
  t.is(switchover.exitCode, 1);
  t.regex(switchover.stderr, /^baton: the agent at .* speaks control protocol 1 \(baton 0\.1\.0\), older than this baton's/);
  t.deepEqual(old.requests, ['status', 'status'], 'the switchover request was never sent');
});

test('baton check-config reports every problem with line numbers and exits 1; a valid file exits 0', async (t) => {
  const dir = await tempDir(t);
  const secret = join(dir, 'secret');
  await writeFile(secret, 'x'.repeat(40));
  await chmod(secret, 0o600);
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, `pair: web\nnode: primery\nlisten: { address: 192.0.2.11 }\npeer: { address: 192.0.2.11 }\nsecret_file: ${secret}\nservice: { address: 192.0.2.100/24, interface: "eth0;reboot" }\nheartbeet: {}\n`);
  const failed = await baton('check-config', bad);
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, new RegExp(`${bad}:2 node: expected 'primary' or 'backup', got 'primery'`));
  t.regex(failed.stderr, /:6 service\.interface: .*eth0;reboot/);
  t.regex(failed.stderr, /:7 heartbeet: unknown key 'heartbeet', did you mean 'heartbeat'\?/);
  t.regex(failed.stderr, /:4 peer\.address: /);

  const good = join(dir, 'good.yaml');
  await writeFile(good, `pair: web\nnode: primary\nlisten: { address: 192.0.2.11 }\npeer: { address: 192.0.2.12 }\nsecret_file: ${secret}\nservice: { address: 192.0.2.100/24, interface: eth0 }\n`);
  // The file alone: this machine is not the host it describes (test/cli/check-config.test.ts checks one that is).
  const passed = await baton('check-config', '--file-only', good);
  t.is(passed.exitCode, 0, passed.stderr);
  t.regex(passed.stdout, /valid/);
  t.regex(passed.stdout, /\n {2}host: not checked \(--file-only\)$/);
  const agentCheck = await execa(process.execPath, [AGENT, '--check-config', '--config', bad], {reject: false});
  t.is(agentCheck.exitCode, 1);
  t.regex(agentCheck.stderr, /heartbeet/);
});
