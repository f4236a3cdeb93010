// The real agent speaks systemd's notify protocol to a real AF_UNIX datagram socket: READY=1 only once its control
// socket answers with a decided state, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1 on SIGTERM. The agent runs in a
// network namespace of its own with a veth for the service IP, as the other integration tests do.
//
// The receiver plays PID 1 and is a few lines of python3, not socat: systemd-notify follows every message with
// BARRIER=1 carrying a pipe, and waits (5 s) until the receiver closes it, as PID 1 does. socat keeps the file
// descriptors it receives open, so every notification would hang 5 s and fail.

import {spawn, spawnSync, type ChildProcess} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {createInterface} from 'node:readline';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import type {StatusReport} from '../../agent/control-protocol.js';
import {callAgent} from '../../cli/control-client.js';
import {AGENT_NODE_FLAGS, UNIT_PRIVILEGES} from '../../cli/lab/lab.js';
import {integrationPrefix, integrationUnavailableReason} from './helpers.js';

const AGENT = fileURLToPath(new URL('../../agent/main.js', import.meta.url));

// WATCHDOG_USEC of 1 s: the agent pings every 500 ms (half of it, like sd_watchdog_enabled(3) says).
const WATCHDOG_USEC = 1_000_000;
const PING_EVERY_MS = WATCHDOG_USEC / 1000 / 2;
// Pings counted over 4 s: 8 expected. Loose bounds (5..11), as a loaded test machine is late, never early by much.
const COUNT_WINDOW_MS = 4000;
const MIN_PINGS = 5;
const MAX_PINGS = 11;
// heartbeat.interval_ms 500: the agent listens 2 intervals before deciding, so it is `starting` for at least 1 s,
// which the status polls below (every 20 ms) must see.
const INTERVAL_MS = 500;
const STATUS_POLL_MS = 20;
// Node starts in a few hundred ms here; a jitless start on a loaded CI machine takes longer.
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

// A stand-in for PID 1's notify socket: prints each datagram as a JSON line, with its sender's PID from
// SCM_CREDENTIALS, and closes any passed descriptor (BARRIER=1's pipe) at once, which ends the sender's wait.
const RECEIVER = `
import array, json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": True}), flush=True)
while True:
    data, ancillary, flags, address = s.recvmsg(4096, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload)[0]
    print(json.dumps({"pid": pid, "message": data.decode()}), flush=True)
`;

interface Notification {
  readonly at: number;
  readonly pid: number | undefined;
  readonly fields: ReadonlyMap<string, string>;
}

/** Why this test cannot run beyond the shared integration gate: its own two programs. */
function notifyUnavailableReason(): string | undefined {
  const missing = [
    {file: 'python3', args: ['-c', 'import socket; socket.SCM_CREDENTIALS'], pkg: 'python3'},
    {file: 'systemd-notify', args: ['--version'], pkg: 'systemd'},
  ].filter((p) => spawnSync(p.file, p.args, {stdio: 'ignore'}).status !== 0);
  return missing.length === 0 ? undefined
    : `missing ${missing.map((p) => `${p.file} (Debian package ${p.pkg})`).join(', ')}: run \`npm run system-deps -- --test\``;
}

const reason = integrationUnavailableReason() ?? notifyUnavailableReason();
const title = 'the agent sends READY=1 once decided, WATCHDOG=1 at half WATCHDOG_USEC, READY=1 again after SIGHUP, and STOPPING=1 on SIGTERM';
if (reason === undefined) {
  test.serial(title, run);
} else if (process.env['CI'] === 'true') {
  test.serial(title, (t) => {
    t.fail(`CI=true but the systemd notify test cannot run: ${reason}`);
  });
} else {
  test.serial.skip(`${title} (skipped: ${reason})`, run);
}

async function run(t: ExecutionContext): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-notify-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const namespace = integrationPrefix();
  await buildNamespace(t, namespace);

  const notifySocket = join(dir, 'notify.sock');
  const notifications = await startReceiver(t, notifySocket);
  const config = await writeConfig(dir);

  // WATCHDOG_PID is the agent's own PID: `sh` passes its $$ on through `exec`, and `ip netns exec` and setpriv
  // exec too. setpriv gives the agent the unit's capabilities: without CAP_SYS_ADMIN, a systemd-notify child could
  // not claim the agent's PID, so only a message the agent's own process sends carries it.
  const agent = spawn('sh', ['-c', 'WATCHDOG_PID=$$ exec "$@"', 'sh', 'ip', 'netns', 'exec', namespace,
    'setpriv', ...UNIT_PRIVILEGES, process.execPath, ...AGENT_NODE_FLAGS, AGENT, '--config', config.file], {
    env: {...process.env, NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: String(WATCHDOG_USEC)},
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let agentLog = '';
  agent.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    agentLog += chunk;
  });
  const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  });

  // Poll status from the moment the control socket answers until READY=1 has come and one more answer after it.
  const ready = (): Notification | undefined => notifications.find((n) => n.fields.get('READY') === '1');
  const answers: Array<{sentAt: number; state: string}> = [];
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const readyBefore = ready();
    const sentAt = performance.now();
    try {
      const status = await callAgent(config.socket, {id: `poll${answers.length}`, type: 'status'}, 1000) as StatusReport;
      answers.push({sentAt, state: status.self.state});
    } catch {
      // Not listening yet.
    }
    if (readyBefore !== undefined && answers.some((a) => a.sentAt > readyBefore.at)) break;
    if (performance.now() > deadline || agent.exitCode !== null) {
      t.log(agentLog);
      t.fail(`no READY=1 within ${READY_TIMEOUT_MS} ms; got ${JSON.stringify(notifications.map((n) => [...n.fields]))}`);
      return;
    }
    await sleep(STATUS_POLL_MS);
  }
  const readyAt = ready();
  if (readyAt === undefined) throw new Error('unreachable: the loop ends only once READY=1 arrived');
  t.true(answers.some((a) => a.state === 'starting'), 'the polls saw the agent starting, so they could have caught an early READY=1');
  // A status asked after READY=1 arrived was answered after the agent sent it: it must not say `starting`.
  const early = answers.filter((a) => a.sentAt > readyAt.at && a.state === 'starting');
  t.deepEqual(early, [], 'READY=1 arrived while the agent still said it was starting');
  t.is(readyAt.fields.get('STATUS'), 'primary active, holds 192.0.2.100/24');
  t.log(`READY=1 from pid ${readyAt.pid ?? '?'} (agent ${agent.pid ?? '?'})`);
  t.is(notifications.filter((n) => n.fields.has('READY')).length, 1, 'READY=1 is sent once');

  // Watchdog: count pings over a fixed window after READY=1.
  const windowStart = performance.now();
  await sleep(COUNT_WINDOW_MS);
  const pings = notifications.filter((n) => n.fields.get('WATCHDOG') === '1' && n.at >= windowStart && n.at < windowStart + COUNT_WINDOW_MS);
  const gaps = pings.slice(1).map((p, i) => Math.round(p.at - (pings[i]?.at ?? p.at)));
  t.log(`${pings.length} WATCHDOG=1 in ${COUNT_WINDOW_MS} ms (every ${PING_EVERY_MS} ms expected), gaps ${gaps.join(' ')} ms`);
  t.true(pings.length >= MIN_PINGS && pings.length <= MAX_PINGS,
    `${pings.length} pings in ${COUNT_WINDOW_MS} ms, expected ${MIN_PINGS}..${MAX_PINGS} (one every ${PING_EVERY_MS} ms)`);

  // SIGHUP with a valid config: a restart in place (same PID) that says READY=1 again. Node marks the launcher's
  // descriptor close-on-exec, so a new image that reused its number wrote into an epoll descriptor (EINVAL) and
  // never said READY again: under systemd the watchdog then killed it.
  const readies = (): number => notifications.filter((n) => n.fields.get('READY') === '1').length;
  agent.kill('SIGHUP');
  const reloadDeadline = performance.now() + READY_TIMEOUT_MS;
  while (readies() < 2 && agent.exitCode === null && performance.now() < reloadDeadline) await sleep(STATUS_POLL_MS);
  t.is(readies(), 2, `READY=1 again after SIGHUP; the agent's log:\n${agentLog}`);

  // SIGTERM: STOPPING=1 before the agent exits cleanly.
  agent.kill('SIGTERM');
  // Unref'd: a pending timer would keep the test process alive its full length after a quick stop.
  const code = await Promise.race([exited, sleep(STOP_TIMEOUT_MS, undefined, {ref: false}).then(() => 'timeout' as const)]);
  t.is(code, 0, `the agent's exit after SIGTERM; its log:\n${agentLog}`);
  t.true(notifications.some((n) => n.fields.get('STOPPING') === '1'), 'STOPPING=1 on SIGTERM');
  t.false(/\(systemd\).*(failed|not sent|could not)/.test(agentLog), `the agent reported a failed notification:\n${agentLog}`);
  // NotifyAccess=main: PID 1 takes a message only when SCM_CREDENTIALS names the main PID.
  const senders = [...new Set(notifications.map((n) => n.pid))];
  t.deepEqual(senders, [agent.pid], 'every notification comes from the agent\'s own process (the main PID)');
}

/** A namespace with lo and a veth pair: svc0 carries the beacon address and will carry the service IP. */
async function buildNamespace(t: ExecutionContext, namespace: string): Promise<void> {
  await execa('ip', ['netns', 'add', namespace]);
  t.teardown(() => execa('ip', ['netns', 'delete', namespace], {reject: false}).then(() => undefined));
  const inside = (...args: string[]) => execa('ip', ['-n', namespace, ...args]);
  await inside('link', 'set', 'lo', 'up');
  await inside('link', 'add', 'svc0', 'type', 'veth', 'peer', 'name', 'svc1');
  await inside('addr', 'add', '192.0.2.11/24', 'dev', 'svc0');
  await inside('link', 'set', 'svc1', 'up');
  await inside('link', 'set', 'svc0', 'up');
}

/** Binds the stand-in notify socket and collects what arrives, timed on this process's clock. */
async function startReceiver(t: ExecutionContext, path: string): Promise<Notification[]> {
  const receiver: ChildProcess = spawn('python3', ['-c', RECEIVER, path], {stdio: ['ignore', 'pipe', 'inherit']});
  t.teardown(() => {
    receiver.kill('SIGTERM');
  });
  const notifications: Notification[] = [];
  const lines = createInterface({input: receiver.stdout!});
  await new Promise<void>((resolve, reject) => {
    receiver.once('error', reject);
    receiver.once('exit', (code) => reject(new Error(`the notify receiver exited with ${code} before listening`)));
    lines.on('line', (line) => {
      const datagram = JSON.parse(line) as {listening?: true; pid?: number | null; message?: string};
      if (datagram.listening === true) {
        resolve();
        return;
      }
      // One VAR=value per line (sd_notify(3)); BARRIER=1 is part of the delivery, not a message of the agent's.
      const fields = new Map((datagram.message ?? '').split('\n').filter((l) => l !== '').map((l) => {
        const eq = l.indexOf('=');
        return [l.slice(0, eq), l.slice(eq + 1)] as [string, string];
      }));
      if (fields.has('BARRIER')) return;
      notifications.push({at: performance.now(), pid: datagram.pid ?? undefined, fields});
    });
  });
  return notifications;
}

async function writeConfig(dir: string): Promise<{file: string; socket: string}> {
  const secret = join(dir, 'secret');
  await writeFile(secret, randomBytes(32).toString('base64'), {mode: 0o600});
  const socket = join(dir, 'control.sock');
  const file = join(dir, 'baton.yaml');
  await writeFile(file, [
    'pair: notify',
    'node: primary',
    'listen: { address: 192.0.2.11, port: 7411 }',
    // Nobody answers there: the primary decides alone, after its start-up listening.
    'peer: { address: 192.0.2.12, port: 7411 }',
    `secret_file: ${secret}`,
    'service:',
    '  address: 192.0.2.100/24',
    '  interface: svc0',
    '  mode: address',
    `heartbeat: { interval_ms: ${INTERVAL_MS}, dead_after_ms: ${INTERVAL_MS * 5} }`,
    `state_dir: ${dir}`,
    `control_socket: ${socket}`,
    '',
  ].join('\n'), {mode: 0o600});
  return {file, socket};
}
