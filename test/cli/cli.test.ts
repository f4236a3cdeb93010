import {access, chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createConnection} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import type {Config} from '../../agent/config/schema.js';
import {startControlServer} from '../../agent/control-server.js';
import {createLogger} from '../../agent/log.js';
import {configWithSecret} from '../fakes/config-fixtures.js';
import {createFakePair} from '../fakes/fake-pair.js';

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
async function servedPair(t: {teardown(fn: () => Promise<void>): void}, primaryConfig: Partial<Config> = {}): Promise<string> {
  const {clock, primary, backup} = createFakePair(t, {primary: {epoch: 2, pid: 4242, config: primaryConfig}, backup: {epoch: 2, pid: 4242}});
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

test('an unknown command is an error with the usage, exit 1', async (t) => {
  const result = await baton('stauts');
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^baton: unknown command 'stauts'; did you mean 'status'\?/);
  t.regex(result.stderr, /Usage: baton/);
});

test('an unknown option is an error naming it, exit 1', async (t) => {
  const result = await baton('status', '--jsn');
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /Unknown option '--jsn'/);
});

test('a bad option value is its error and a pointer to --help, not the whole usage', async (t) => {
  const result = await baton('switchover', '--min-requests', '0');
  t.is(result.exitCode, 1);
  t.is(result.stderr, 'baton: --min-requests: expected a whole number from 1 to 1000000, got \'0\'\nRun `baton --help` for every command and its options.');
});

test('no command at all prints the usage, exit 1', async (t) => {
  const result = await baton();
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^baton: no command given\n\nUsage: baton/);
});

test('baton status prints both hosts as the agent sees them', async (t) => {
  const socket = await servedPair(t);
  const result = await baton('status', '--socket', socket);
  t.is(result.exitCode, 0, result.stderr);
  t.snapshot(result.stdout);
  t.regex(result.stdout, /state {7}active for/);
  t.regex(result.stdout, /service IP {2}192\.0\.2\.100\/24 on eth0 \(address mode\): held here \(observed on the interface\)/);
  t.regex(result.stdout, /peer backup at 192\.0\.2\.12:7411 \(web-backup\)/);
  t.regex(result.stdout, /alive {7}yes/);
});

test('baton status --json gives the same report for machines', async (t) => {
  const socket = await servedPair(t);
  const result = await baton('status', '--json', '--socket', socket);
  t.is(result.exitCode, 0, result.stderr);
  const status = JSON.parse(result.stdout) as {self: {state: string; holdsIp: boolean}; peer: {alive: boolean; state: string}};
  t.is(status.self.state, 'active');
  t.true(status.self.holdsIp);
  t.true(status.peer.alive);
  t.is(status.peer.state, 'standby');
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

test('baton rehearse --with-failure on an agent without the rehearsal aids refuses before any step, naming the host and the key', async (t) => {
  const socket = await servedPair(t, {rehearsal: {enabled: false}});
  const report = join(await tempDir(t), 'report.html');
  const result = await baton('rehearse', '--with-failure', '--socket', socket, '--report', report);
  t.is(result.exitCode, 1);
  t.is(result.stderr.split('\n')[0], 'baton: --with-failure needs the rehearsal aids, and the primary (web-primary) does not enable them: ' +
    'set `rehearsal: {enabled: true}` (rehearsal.enabled) in its configuration and restart its agent, on a pair kept for rehearsals only; nothing was done');
  const status = JSON.parse((await baton('status', '--json', '--socket', socket)).stdout) as {self: {state: string; rehearsal: boolean}; lastSwitch?: unknown};
  t.is(status.self.state, 'active', 'no switch was run');
  t.is(status.lastSwitch, undefined);
  t.false(status.self.rehearsal);
  await t.throwsAsync(access(report), undefined, 'no report was written');
});

test('baton status without a running agent says so and how to start it, exit 1', async (t) => {
  const socket = join(await tempDir(t), 'none.sock');
  const result = await baton('status', '--socket', socket);
  t.is(result.exitCode, 1);
  t.is(result.stderr, `baton: baton-agent is not running: no control socket at ${socket}. Start it with \`systemctl start baton-agent\`, or pass --config/--socket for another agent`);
});

test('baton status with an unusable config explains it and suggests --socket', async (t) => {
  const result = await baton('status', '--config', '/nonexistent/baton.yaml');
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /cannot find the control socket from \/nonexistent\/baton\.yaml/);
  t.regex(result.stderr, /pass --socket PATH/);
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
