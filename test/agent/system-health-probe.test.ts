// The real health probe against lo, sysfs, a local HTTP server and real programs.

import test, {type ExecutionContext} from 'ava';
import {execFile} from 'node:child_process';
import {promisify} from 'node:util';
import {AGENT_NODE_FLAGS} from '../../cli/lab/lab.js';
import {isProcessAlive} from '../../cli/lab/web.js';
import {HEALTH_CHECK_USER_AGENT} from '../../agent/request-evidence.js';
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createSystemHealthProbe} from '../../agent/adapters/system-health-probe.js';
import type {HealthCheckSpec} from '../../agent/config/health-checks.js';
import type {HealthResult} from '../../agent/health.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';

const ETH0: HealthCheckSpec = {kind: 'interface', interface: 'eth0'};

const probe = createSystemHealthProbe(createExecaRunner());
const never = new AbortController().signal;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-health-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

test('an interface check on lo passes, reading sysfs without running anything', async (t) => {
  const runner = new RecordingRunner();

  const result = await createSystemHealthProbe(runner).run({kind: 'interface', interface: 'lo'}, never);

  t.deepEqual(result, {ok: true, detail: 'lo is up with carrier'});
  t.deepEqual(runner.calls, []);
});

test('an interface check on a missing interface fails and names it', async (t) => {
  const result = await probe.run({kind: 'interface', interface: 'nosuch0'}, never);

  t.deepEqual(result, {ok: false, detail: 'nosuch0 does not exist in this network namespace'});
});

/** A fake /sys/class/net and /proc/self/net/dev with the given links; `own` lists the caller's namespace. */
async function fakeLinks(t: ExecutionContext, links: Record<string, {flags: string; carrier?: string; operstate: string}>,
  own = Object.keys(links)) {
  const dir = await tempDir(t);
  const sysClassNet = join(dir, 'class-net');
  await mkdir(sysClassNet);
  for (const [name, files] of Object.entries(links)) {
    await mkdir(join(sysClassNet, name));
    await writeFile(join(sysClassNet, name, 'flags'), `${files.flags}\n`);
    await writeFile(join(sysClassNet, name, 'operstate'), `${files.operstate}\n`);
    if (files.carrier !== undefined) await writeFile(join(sysClassNet, name, 'carrier'), `${files.carrier}\n`);
  }
  const procNetDev = join(dir, 'dev');
  await writeFile(procNetDev, 'Inter-|   Receive\n face |bytes\n' +
    own.map((name) => `${name.padStart(6)}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n`).join(''));
  return {sysClassNet, procNetDev};
}

const sysfsCase = test.macro({
  async exec(t, link: {flags: string; carrier?: string; operstate: string}, expected: HealthResult) {
    const runner = new RecordingRunner();
    const paths = await fakeLinks(t, {lo: {flags: '0x9', carrier: '1', operstate: 'unknown'}, eth0: link});

    const result = await createSystemHealthProbe(runner, paths).run(ETH0, never);

    t.deepEqual(result, expected);
    t.deepEqual(runner.calls, []);
  },
  title: (title = '') => title,
});

test('sysfs: a link up with carrier passes', sysfsCase, {flags: '0x1003', carrier: '1', operstate: 'up'},
  {ok: true, detail: 'eth0 is up with carrier'});
test('sysfs: an administratively down link fails', sysfsCase, {flags: '0x1002', operstate: 'down'},
  {ok: false, detail: 'eth0 is administratively down'});
test('sysfs: an up link without carrier fails', sysfsCase, {flags: '0x1003', carrier: '0', operstate: 'lowerlayerdown'},
  {ok: false, detail: 'eth0 has no carrier'});
test('sysfs: a dormant link fails even with carrier', sysfsCase, {flags: '0x1003', carrier: '1', operstate: 'dormant'},
  {ok: false, detail: 'eth0 is dormant'});

test('when sysfs lists other links than this namespace has, ip link decides', async (t) => {
  // As after nsenter: /sys still shows the host's links, /proc/self/net/dev this namespace's.
  const paths = await fakeLinks(t, {lo: {flags: '0x9', carrier: '1', operstate: 'unknown'},
    eth0: {flags: '0x1003', carrier: '1', operstate: 'up'}}, ['lo', 'eth0', 'veth-b']);
  const runner = new RecordingRunner()
    .on('ip -j link show dev eth0', '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP"],"operstate":"DOWN"}]');

  const result = await createSystemHealthProbe(runner, paths).run(ETH0, never);

  t.deepEqual(result, {ok: false, detail: 'eth0 has no carrier'});
  t.deepEqual(runner.calls, [{file: 'ip', args: ['-j', 'link', 'show', 'dev', 'eth0'], timeoutMs: 1000,
    interruptAfterMs: undefined}]);
});

const ipCase = test.macro({
  async exec(t, reply: string | Error, expected: HealthResult) {
    const paths = await fakeLinks(t, {}, ['lo', 'eth0']);
    const runner = new RecordingRunner().on('ip -j link show dev eth0',
      reply instanceof Error ? commandFailure('ip -j link show dev eth0', 1, reply.message) : reply);

    t.deepEqual(await createSystemHealthProbe(runner, paths).run(ETH0, never), expected);
  },
  title: (title = '') => title,
});

test('ip link: UP and LOWER_UP pass', ipCase,
  '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP"}]',
  {ok: true, detail: 'eth0 is up with carrier'});
test('ip link: UNKNOWN operstate with LOWER_UP passes, as lo has', ipCase,
  '[{"ifname":"eth0","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN"}]',
  {ok: true, detail: 'eth0 is up with carrier'});
test('ip link: a link without UP is administratively down', ipCase,
  '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST"],"operstate":"DOWN"}]',
  {ok: false, detail: 'eth0 is administratively down'});
test('ip link: a missing device is named', ipCase, new Error('Device "eth0" does not exist.'),
  {ok: false, detail: 'eth0 does not exist in this network namespace'});

const execFileAsync = promisify(execFile);

// ---- http ----

async function httpServer(t: ExecutionContext): Promise<string> {
  const server: Server = createServer((request, response) => {
    switch (request.url) {
      case '/ok':
        response.end('ok');
        return;
      case '/unavailable':
        response.writeHead(503).end('down for maintenance');
        return;
      case '/moved':
        response.writeHead(301, {location: '/ok'}).end();
        return;
      case '/slow':
        setTimeout(() => response.end('late'), 2000).unref();
        return;
      default:
        response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function http(url: string, expectStatus = 200, timeoutMs = 1000): HealthCheckSpec {
  return {kind: 'http', url, expectStatus, timeoutMs};
}

test('an http check passes on the expected status', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/ok`), never), {ok: true, detail: `${base}/ok answered 200`});
  t.deepEqual(await probe.run(http(`${base}/unavailable`, 503), never),
    {ok: true, detail: `${base}/unavailable answered 503`});
});

test('an http check fails on another status and says both', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/unavailable`), never),
    {ok: false, detail: `${base}/unavailable answered 503, expected 200`});
});

test('an http check does not follow redirects', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/moved`), never), {ok: false, detail: `${base}/moved answered 301, expected 200`});
});

test('an http check that gets no answer in time fails with the timeout', async (t) => {
  const base = await httpServer(t);
  const started = performance.now();

  const result = await probe.run(http(`${base}/slow`, 200, 200), never);

  t.deepEqual(result, {ok: false, detail: 'timed out after 200 ms'});
  t.true(performance.now() - started < 1500);
});

test('an http check against a closed port fails with the connection error', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  t.deepEqual(await probe.run(http(`http://127.0.0.1:${port}/`), never),
    {ok: false, detail: `http://127.0.0.1:${port}/: connect ECONNREFUSED 127.0.0.1:${port}`});
});

test('an http check gives up when its signal aborts', async (t) => {
  const base = await httpServer(t);
  const controller = new AbortController();

  const running = probe.run(http(`${base}/slow`, 200, 5000), controller.signal);
  setTimeout(() => controller.abort(), 50);

  t.deepEqual(await running, {ok: false, detail: 'stopped'});
});

// ---- command ----

async function script(t: ExecutionContext, name: string, body: string): Promise<string> {
  const path = join(await tempDir(t), name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

function command(path: string, args: string[] = [], timeoutMs = 1000): HealthCheckSpec {
  return {kind: 'command', path, args, timeoutMs};
}

test('a command check passes when the program exits 0', async (t) => {
  t.deepEqual(await probe.run(command('/bin/true'), never), {ok: true, detail: '/bin/true exited 0'});
});

test('a command check fails when the program exits non-zero', async (t) => {
  t.deepEqual(await probe.run(command('/bin/false'), never), {ok: false, detail: '/bin/false exited 1'});
});

test('a failing command check gives the first line of stderr, and its args reach it unchanged', async (t) => {
  const path = await script(t, 'check-db', 'echo "database $1 is read-only" >&2\necho "second line" >&2\nexit 2');

  t.deepEqual(await probe.run(command(path, ['db one; rm -rf /']), never),
    {ok: false, detail: `${path} exited 2: database db one; rm -rf / is read-only`});
});

test('a command check that runs past its timeout fails at the timeout, even if a child holds its output', async (t) => {
  const dir = await tempDir(t);
  const pidFile = join(dir, 'sleep.pid');
  // The backgrounded sleep keeps stdout open; the runner stops the script's whole process group at the timeout.
  const path = await script(t, 'slow-check', `sleep 30 &\necho $! > '${pidFile}'\nwait`);
  t.teardown(async () => {
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    if (pid > 0 && isProcessAlive(pid)) process.kill(pid);
  });
  const started = performance.now();

  const result = await probe.run(command(path, [], 300), never);

  t.deepEqual(result, {ok: false, detail: 'timed out after 300 ms'});
  t.true(performance.now() - started < 2000);
});

test('a command that cannot run is a failure naming the reason', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'not-executable');
  await writeFile(path, '#!/bin/sh\n');

  const result = await probe.run(command(path), never);

  t.false(result.ok);
  t.regex(result.detail, /^cannot run `.*not-executable`: .*EACCES/);
});

test('an http check works in the agent\'s own V8 (--jitless, no WebAssembly), and says who it is', async (t) => {
  let userAgent: string | undefined;
  const server: Server = createServer((request, response) => {
    userAgent = request.headers['user-agent'];
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  // The probe module as the agent loads it, in a V8 started with the agent's flags (AGENT_NODE_FLAGS).
  const module = new URL('../../agent/adapters/system-health-probe.js', import.meta.url).href;
  const script = `const {createSystemHealthProbe} = await import(${JSON.stringify(module)});
    const result = await createSystemHealthProbe({run: async () => ''}).run({kind: 'http', url: ${JSON.stringify(url)}, expectStatus: 200, timeoutMs: 2000}, new AbortController().signal);
    process.stdout.write(JSON.stringify(result));`;
  const {stdout} = await execFileAsync(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e', script]);
  t.deepEqual(JSON.parse(stdout), {ok: true, detail: `${url} answered 200`});
  t.is(userAgent, HEALTH_CHECK_USER_AGENT, 'its lines in the access log are known as the agent\'s own');
});
