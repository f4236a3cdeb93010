import {mkdtemp, rm, stat, writeFile} from 'node:fs/promises';
import {createConnection, createServer, type Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {CONTROL_PROTOCOL, type AgentStatus} from '../../agent/control-protocol.js';
import {rawExchange} from '../fakes/raw-exchange.js';
import {VERSION} from '../../agent/version.js';
import {startControlServer, type ControlHandler} from '../../agent/control-server.js';
import {createLogger} from '../../agent/log.js';
import {sendRequest} from '../../cli/control-client.js';

const log = createLogger({journald: true, debug: false, write: () => undefined, wallNow: Date.now});
const handler: ControlHandler = {
  status: async () => ({pair: 'web'}) as AgentStatus,
  switchover: async () => {
    throw new Error('not in these tests');
  },
  resume: async () => ({state: 'standby', reason: 'resumed'}),
  failActive: async () => {
    throw new Error('not in these tests');
  },
  rehearsalAids: async () => ({self: {host: {role: 'primary', host: 'web-1'}, enabled: true}, peer: {host: {role: 'backup', host: 'web-2'}, enabled: false}}),
  drain: async () => {
    throw new Error('not in these tests');
  },
};

async function socketDir(t: {teardown(fn: () => Promise<void>): void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-ctl-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

test('the control socket is created with mode 0600 in a directory made 0700', async (t) => {
  const dir = await socketDir(t);
  const path = join(dir, 'run', 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.is((await stat(join(dir, 'run'))).mode & 0o777, 0o700);
});

test('a status request is answered with the handler result', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  const reply = await sendRequest(path, {id: 'r1', type: 'status'});
  t.deepEqual(reply, {id: 'r1', type: 'result', protocol: CONTROL_PROTOCOL, ok: true, result: {pair: 'web', control: {refusedBusy: 0, timedOut: 0, extraRequests: 0}}});
});

test('a request naming another control protocol is refused, before the agent does anything, saying both versions', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  let resumed = 0;
  const server = await startControlServer(path, {...handler, resume: async () => {
    resumed += 1;
    return {state: 'standby', reason: 'resumed'};
  }}, log);
  t.teardown(() => server.close());
  const newer = JSON.parse(await rawExchange(path, `{"id":"n","type":"resume","protocol":${CONTROL_PROTOCOL + 1}}\n`)) as
    {id: string; protocol: number; ok: boolean; error: {code: string; message: string}};
  t.is(newer.id, 'n');
  t.is(newer.protocol, CONTROL_PROTOCOL);
  t.false(newer.ok);
  t.is(newer.error.code, 'PROTOCOL_MISMATCH');
  t.is(newer.error.message, `this baton-agent (baton ${VERSION}) speaks control protocol ${CONTROL_PROTOCOL} and the client ${CONTROL_PROTOCOL + 1}: ` +
    'if baton was just upgraded on this host, restart the agent (`systemctl restart baton-agent`) to finish the upgrade; nothing was done');
  const older = JSON.parse(await rawExchange(path, '{"id":"o","type":"resume","protocol":1}\n')) as {error: {code: string; message: string}};
  t.is(older.error.code, 'PROTOCOL_MISMATCH');
  t.regex(older.error.message, /and the client 1: use the baton installed with this agent; nothing was done$/);
  const bad = JSON.parse(await rawExchange(path, '{"id":"b","type":"resume","protocol":"2"}\n')) as {error: {code: string; message: string}};
  t.is(bad.error.code, 'BAD_REQUEST');
  t.is(bad.error.message, 'request protocol: expected a positive integer');
  t.is(resumed, 0, 'no request was handed to the agent');
});

test('a request without a protocol, as baton 0.1.0\'s CLI sends it, is served as before', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  const reply = JSON.parse(await rawExchange(path, '{"id":"old","type":"resume"}\n')) as {ok: boolean; protocol: number; result: unknown};
  t.true(reply.ok);
  t.is(reply.protocol, CONTROL_PROTOCOL);
  t.deepEqual(reply.result, {state: 'standby', reason: 'resumed'});
});

test('malformed and unknown requests get a BAD_REQUEST reply and the server keeps serving', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  const notJson = JSON.parse(await rawExchange(path, '{nope\n')) as {ok: boolean; error: {code: string; message: string}};
  t.false(notJson.ok);
  t.is(notJson.error.code, 'BAD_REQUEST');
  t.is(notJson.error.message, 'request is not JSON');
  const unknown = JSON.parse(await rawExchange(path, '{"id":"x","type":"reboot"}\n')) as {error: {message: string}};
  t.regex(unknown.error.message, /expected status, switchover, resume, fail-active or rehearsal, got "reboot"/);
  t.true((await sendRequest(path, {id: 'r2', type: 'status'})).ok);
});

test('a rehearsal request is answered with both hosts\' word on the rehearsal aids', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  t.deepEqual(await sendRequest(path, {id: 'r3', type: 'rehearsal'}), {id: 'r3', type: 'result', ok: true, protocol: CONTROL_PROTOCOL,
    result: {self: {host: {role: 'primary', host: 'web-1'}, enabled: true}, peer: {host: {role: 'backup', host: 'web-2'}, enabled: false}}});
});

test('an oversized request without a newline is refused instead of buffered forever', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  const answer = JSON.parse(await rawExchange(path, 'x'.repeat(70 * 1024))) as {error: {code: string; message: string}};
  t.is(answer.error.code, 'BAD_REQUEST');
  t.regex(answer.error.message, /larger than 65536 bytes/);
});

test('a stale socket file left by a dead agent is replaced', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  await writeFile(path, '');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  t.true((await sendRequest(path, {id: 'r', type: 'status'})).ok);
});

test('a socket that another live agent serves is not taken over', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const other = createServer((s) => s.end());
  await new Promise<void>((resolve) => other.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  await t.throwsAsync(startControlServer(path, handler, log), {message: /another baton-agent is already serving/});
});

test('the client says the agent is not running when there is no socket, and names the path', async (t) => {
  const path = join(await socketDir(t), 'missing.sock');
  const error = await t.throwsAsync(sendRequest(path, {id: 'r', type: 'status'}));
  t.is((error as {code?: string}).code, 'AGENT_UNREACHABLE');
  t.regex(error?.message ?? '', /baton-agent is not running: no control socket at .*missing\.sock/);
});

test('the client gives up on an agent that never answers, within its timeout', async (t) => {
  const path = join(await socketDir(t), 'silent.sock');
  const connections = new Set<Socket>();
  const silent = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(path, resolve));
  t.teardown(() => {
    for (const socket of connections) socket.destroy();
    silent.close();
  });
  await t.throwsAsync(sendRequest(path, {id: 'r', type: 'status'}, 200), {message: /did not answer within 200 ms/});
});

interface RawReply {
  id: string;
  ok: boolean;
  error?: {code: string; message: string};
}

function lines(answer: string): RawReply[] {
  return answer.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as RawReply);
}

/** Opens a connection and waits until it is accepted. */
function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

test('a client sending one byte at a time is cut off at a deadline counted from accept, not from its last byte', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log, {requestDeadlineMs: 300, maxConnections: 16});
  t.teardown(() => server.close());
  const socket = await connect(path);
  const started = Date.now();
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.on('error', () => undefined);
  // Every 100 ms a byte: an idle timeout of 300 ms would never fire.
  const dribble = setInterval(() => {
    if (!socket.destroyed) socket.write(' ');
  }, 100);
  const ended = await Promise.race([
    new Promise<'closed'>((resolve) => socket.on('close', () => resolve('closed'))),
    new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 2000)),
  ]);
  clearInterval(dribble);
  socket.destroy();
  t.is(ended, 'closed', 'the connection was still open after 2 s');
  t.true(Date.now() - started < 1500);
  const [reply] = lines(answer);
  t.is(reply?.error?.code, 'BAD_REQUEST');
  t.regex(reply?.error?.message ?? '', /no complete request line within 300 ms of connecting/);
  t.is(server.stats().timedOut, 1);
  t.true((await sendRequest(path, {id: 'r', type: 'status'})).ok);
});

test('connections beyond the cap are answered with an error naming the limit, counted, and closed', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log, {requestDeadlineMs: 5000, maxConnections: 2});
  t.teardown(() => server.close());
  const held = [await connect(path), await connect(path)];
  t.teardown(() => {
    for (const socket of held) socket.destroy();
  });
  const [refused] = lines(await rawExchange(path, ''));
  t.false(refused?.ok);
  t.is(refused?.error?.code, 'AGENT_UNREACHABLE');
  t.regex(refused?.error?.message ?? '', /already serving 2 control connections, its limit/);
  t.is(server.stats().refusedBusy, 1);
  // Once the held connections end, the server serves again.
  await Promise.all(held.map((socket) => new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.destroy();
  })));
  // The server sees each end a moment after the client does.
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.true((await sendRequest(path, {id: 'r', type: 'status'})).ok);
});

test('a second request pipelined on the same connection gets an explicit error, and the first is still answered', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log);
  t.teardown(() => server.close());
  const replies = lines(await rawExchange(path, '{"id":"first","type":"status"}\n{"id":"second","type":"status"}\n'));
  t.is(replies.length, 2);
  const second = replies.find((reply) => reply.id === 'second');
  t.false(second?.ok);
  t.is(second?.error?.code, 'BAD_REQUEST');
  t.regex(second?.error?.message ?? '', /one request per connection: request first is being served/);
  t.true(replies.find((reply) => reply.id === 'first')?.ok);
  t.is(server.stats().extraRequests, 1);
});

test('a status reply carries the refusals the server counted: over the cap, past the deadline, pipelined', async (t) => {
  const path = join(await socketDir(t), 'control.sock');
  const server = await startControlServer(path, handler, log, {requestDeadlineMs: 300, maxConnections: 1});
  t.teardown(() => server.close());
  // One connection holds the only slot and says nothing: the next is refused, and it is cut at the deadline.
  const held = await connect(path);
  held.on('error', () => undefined);
  held.resume();
  t.false(lines(await rawExchange(path, ''))[0]?.ok);
  await new Promise<void>((resolve) => held.once('close', () => resolve()));
  t.true(lines(await rawExchange(path, '{"id":"a","type":"status"}\n{"id":"b","type":"status"}\n')).some((reply) => reply.id === 'b' && reply.ok === false));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const reply = await sendRequest(path, {id: 'r', type: 'status'});
  t.deepEqual(reply.ok ? (reply.result as {control?: unknown}).control : reply, {refusedBusy: 1, timedOut: 1, extraRequests: 1});
});
