// Tests for the access-log tail on real files in temp dirs: appends, filters, rotation, truncation, partial lines,
// vanished logs, abort, descriptor hygiene, and one real nginx on loopback.

import {execFileSync, spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import {appendFile, copyFile, mkdir, mkdtemp, readdir, rename, rm, truncate, writeFile} from 'node:fs/promises';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import {createAccessLogTail} from '../../agent/adapters/access-log-tail.js';
import type {AccessLogWatcher} from '../../agent/ports.js';
import {DEFAULT_STATUSES, HEALTH_CHECK_USER_AGENT, type EvidenceRules, type RequestTally} from '../../agent/request-evidence.js';

/** Rules where `addresses` are the hosts' own (the service IP, 192.0.2.100, appears in no test line). */
function ownAddresses(addresses: readonly string[]): () => EvidenceRules {
  return () => ({ownAddresses: addresses, serviceAddresses: ['192.0.2.100'], statuses: DEFAULT_STATUSES});
}

interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

// 10 ms instead of the default 50 keeps every test well under a second.
const POLL_MS = 10;
// How long a test waits for a count before it fails; counts normally arrive within a couple of polls.
const WAIT_MS = 1500;
const AFTER = Date.UTC(2026, 10, 21, 13, 45, 2, 500);
const NGINX = '/usr/sbin/nginx';

async function tempLog(t: Teardown): Promise<{dir: string; file: string}> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-access-log-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return {dir, file: join(dir, 'access.log')};
}

/** A combined line as nginx writes it. */
function line(client: string, time = '21/Nov/2026:13:45:03 +0000', path = '/'): string {
  return `${client} - - [${time}] "GET ${path} HTTP/1.1" 200 612 "-" "Mozilla/5.0"\n`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function logTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await delay(5);
  }
}

interface Following {
  /** Every count of evidence the iteration yielded, in order, each once (a tally that changed only in its
   *  exclusions repeats the count and is not pushed again). */
  readonly counts: number[];
  /** The last tally yielded. */
  tally(): RequestTally | undefined;
  /** Settles when the iteration ends. */
  readonly ended: Promise<void>;
  latest(): number;
  until(count: number): Promise<void>;
  stop(): Promise<void>;
}

function follow(t: Teardown, watcher: AccessLogWatcher, after = AFTER, peerAddresses?: readonly string[]): Following {
  const controller = new AbortController();
  const counts: number[] = [];
  let last: RequestTally | undefined;
  const ended = (async () => {
    for await (const tally of watcher.countRequests(after, controller.signal, peerAddresses)) {
      last = tally;
      if (tally.counted !== (counts.at(-1) ?? 0)) counts.push(tally.counted);
    }
  })();
  // Tests that expect a failure await `ended` themselves; this only keeps an early rejection from being "unhandled".
  ended.catch(() => undefined);
  const stop = async (): Promise<void> => {
    controller.abort();
    await ended;
  };
  t.teardown(async () => {
    controller.abort();
    await ended.catch(() => undefined);
  });
  const latest = (): number => counts.at(-1) ?? 0;
  return {counts, ended, latest, stop, tally: () => last, until: (count) => waitUntil(() => latest() >= count, `a count of ${count} (at ${latest()})`)};
}

test('counts lines appended after the call and never the ones already in the log', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('203.0.113.1') + line('203.0.113.2') + line('203.0.113.3'));
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  await appendFile(file, line('198.51.100.1') + line('198.51.100.2'));
  await following.until(2);
  await appendFile(file, line('198.51.100.3'));
  await following.until(3);
  await following.stop();
  t.is(following.latest(), 3);
});

test('ignores the excluded clients, however their addresses are written', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses(['192.0.2.11', '2001:db8::12']), pollMs: POLL_MS}));
  await appendFile(file, line('192.0.2.11') + line('::ffff:192.0.2.11') + line('2001:DB8:0::12') + line('2001:db8::12'));
  await appendFile(file, line('203.0.113.9'));
  await following.until(1);
  await following.stop();
  t.deepEqual(following.counts, [1]);
});

test('ignores the addresses the peer told, of either family, beside this host\'s own', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses(['192.0.2.12']), pollMs: POLL_MS}), AFTER,
    ['192.0.2.11', '2001:db8::11']);
  await appendFile(file, line('2001:db8::11') + line('::ffff:192.0.2.11') + line('192.0.2.12') + line('2001:db8::20'));
  await following.until(1);
  await following.stop();
  t.deepEqual(following.counts, [1]);
  t.is(following.tally()?.excluded['own-address'], 3);
});

test('ignores lines timestamped before `after`, rounded down to its second', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  await appendFile(
    file,
    line('203.0.113.1', '21/Nov/2026:13:45:01 +0000') + // before
      line('203.0.113.2', '21/Nov/2026:08:45:01 -0500') + // before, in another zone
      line('203.0.113.3', '21/Nov/2026:13:45:02 +0000') + // the same second as `after` (13:45:02.500)
      line('203.0.113.4', '21/Nov/2026:14:45:03 +0100'), // after, in another zone
  );
  await appendFile(file, 'not a log line\n' + line('203.0.113.5', '21/Nov/2026:13:45:04 +0000'));
  await following.until(3);
  await following.stop();
  t.is(following.latest(), 3);
});

test('survives rotation by rename: the rest of the old file counts, then the new file from its start', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('203.0.113.1', '21/Nov/2026:13:44:00 +0000'));
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  await appendFile(file, line('198.51.100.1'));
  await following.until(1);
  await rename(file, `${file}.1`);
  await appendFile(`${file}.1`, line('198.51.100.2')); // the server still writes to its old descriptor
  await writeFile(file, line('198.51.100.3')); // logrotate `create`, and a first line
  await following.until(3); // so the tail has moved to the new file
  await appendFile(`${file}.1`, line('198.51.100.4')); // a worker that has not reopened yet
  await following.until(4);
  await appendFile(file, line('198.51.100.5'));
  await following.until(5);
  await following.stop();
  t.is(following.latest(), 5);
});

test('survives copytruncate: after the truncation the file is read again from its start', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('203.0.113.1', '21/Nov/2026:13:44:00 +0000'));
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  await appendFile(file, line('198.51.100.1') + line('198.51.100.2'));
  await following.until(2);
  await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  await appendFile(file, line('198.51.100.3'));
  await following.until(3);
  await following.stop();
  t.is(following.latest(), 3);
});

test('a line written in two parts counts once, when its newline arrives', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  const whole = line('198.51.100.1');
  // The first part is itself a valid common-format line, so counting it early would show.
  const cut = whole.indexOf(' "-"');
  await appendFile(file, whole.slice(0, cut));
  await delay(5 * POLL_MS);
  t.deepEqual(following.counts, []);
  await appendFile(file, whole.slice(cut) + line('198.51.100.2'));
  await following.until(2);
  await following.stop();
  t.is(following.latest(), 2);
});

test('a log missing at the call counts from its start once it appears within the grace period', async (t) => {
  const {file} = await tempLog(t);
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS, rotationGraceMs: 1000}));
  await delay(3 * POLL_MS);
  await writeFile(file, line('198.51.100.1') + line('198.51.100.2'));
  await following.until(2);
  await following.stop();
  t.is(following.latest(), 2);
});

test('a log deleted and not re-created fails with ACCESS_LOG_UNREADABLE after the grace period', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const vanishedAt = Date.UTC(2026, 10, 21, 13, 45, 5);
  const watcher = createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS, rotationGraceMs: 100, wallNow: () => vanishedAt});
  const following = follow(t, watcher);
  await delay(2 * POLL_MS);
  const removedAt = Date.now();
  await rm(file);
  const error = await t.throwsAsync(following.ended, {code: 'ACCESS_LOG_UNREADABLE'});
  t.true(Date.now() - removedAt >= 100);
  t.regex(error?.message ?? '', /has been missing since 2026-11-21T13:45:05\.000Z/);
  t.true(error?.message.includes(file));
  t.true(error?.message.includes('confirm.access_log'));
});

test('aborting ends the iteration cleanly', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}));
  await appendFile(file, line('198.51.100.1'));
  await following.until(1);
  await following.stop();
  await appendFile(file, line('198.51.100.2'));
  await delay(3 * POLL_MS);
  t.deepEqual(following.counts, [1]);
});

test('an already aborted signal yields nothing', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('198.51.100.1'));
  const counts: number[] = [];
  for await (const tally of createAccessLogTail({file, rules: ownAddresses([])}).countRequests(AFTER, AbortSignal.abort())) counts.push(tally.counted);
  t.deepEqual(counts, []);
});

// Serial, so no concurrent test opens descriptors while this one counts them.
test.serial('closes every descriptor it opened: check, and the old and new file after a rotation', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const openDescriptors = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
  const before = await openDescriptors();
  const watcher = createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS});
  await watcher.check();
  const following = follow(t, watcher);
  await appendFile(file, line('198.51.100.1'));
  await following.until(1);
  await rename(file, `${file}.1`);
  await writeFile(file, line('198.51.100.2'));
  await following.until(2);
  t.true((await openDescriptors()) >= before + 2, 'the renamed file is still being drained');
  await following.stop();
  t.is(await openDescriptors(), before);
});

test('check() accepts a readable regular file', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('198.51.100.1'));
  await t.notThrowsAsync(createAccessLogTail({file, rules: ownAddresses([])}).check());
});

const checkFails = test.macro({
  async exec(t, prepare: (dir: string, file: string) => Promise<void>, problem: string) {
    const {dir, file} = await tempLog(t);
    await prepare(dir, file);
    const error = await t.throwsAsync(createAccessLogTail({file, rules: ownAddresses([])}).check(), {code: 'ACCESS_LOG_UNREADABLE'});
    t.is(
      error?.message,
      `access log ${file} ${problem}; set confirm.access_log to the log your web server writes ` +
        '(nginx: /var/log/nginx/access.log, Apache on Debian: /var/log/apache2/access.log)',
    );
  },
  title: (note = '') => `check() fails naming the file, the problem and the fix when the log ${note}`,
});

test('is missing', checkFails, async () => undefined, 'is missing');
test('is a directory', checkFails, async (_dir, file) => mkdir(file).then(() => undefined), 'is not a regular file');
// O_NONBLOCK keeps this from hanging: a FIFO without a writer would block a plain open() for reading.
test('is a FIFO', checkFails, async (_dir, file) => void execFileSync('mkfifo', [file]), 'is not a regular file');

(process.getuid?.() === 0 ? test.skip : test)('check() reports permission denied with its fix (not as root)', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '', {mode: 0o000});
  const error = await t.throwsAsync(createAccessLogTail({file, rules: ownAddresses([])}).check(), {code: 'ACCESS_LOG_UNREADABLE'});
  t.regex(error?.message ?? '', /is not readable \(permission denied\); let the user baton-agent runs as read it/);
});

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

(existsSync(NGINX) ? test : test.skip)('counts requests a real nginx logs, and none from an excluded client', async (t) => {
  const {dir, file} = await tempLog(t);
  const port = await freeLoopbackPort();
  await writeFile(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
error_log ${dir}/error.log;
events { worker_connections 16; }
http {
  access_log ${file};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  const nginx = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', `daemon off; pid ${dir}/nginx.pid;`], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()));
  t.teardown(async () => {
    if (nginx.pid !== undefined && nginx.exitCode === null) process.kill(nginx.pid, 'SIGTERM');
    await exited;
  });
  const url = `http://127.0.0.1:${port}/`;
  const get = async (path: string): Promise<number> => {
    const response = await fetch(new URL(path, url));
    await response.text();
    return response.status;
  };
  await waitUntil(() => existsSync(file), 'nginx to create its access log');
  for (const deadline = Date.now() + WAIT_MS; ; await delay(20)) {
    if ((await get('/ready').catch(() => 0)) === 200) break;
    if (Date.now() > deadline) throw new Error(`nginx did not answer on ${url}; see ${dir}/error.log`);
  }

  const after = Date.now();
  const following = follow(t, createAccessLogTail({file, rules: ownAddresses([]), pollMs: POLL_MS}), after);
  for (const path of ['/one', '/two', '/three']) t.is(await get(path), 200);
  await waitUntil(() => following.tally()?.excluded.loopback === 3, 'the three loopback requests, judged');
  // A line from elsewhere, appended as nginx appends (O_APPEND): the real lines before it counted for nothing.
  await appendFile(file, line('198.51.100.1', logTime(Date.now())));
  await following.until(1);
  await following.stop();
  t.deepEqual(following.counts, [1]);
  t.is(following.tally()?.excluded.loopback, 3, 'nginx\'s own lines from 127.0.0.1 are loopback, not clients');
});

test('only a client of the service IP with a 2xx or 3xx counts: loopback, the service IP, the agent\'s health checks, a 400 and a 500 do not (issue 14)', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, '');
  const rules = (): EvidenceRules => ({ownAddresses: ['192.0.2.11', '192.0.2.12'], serviceAddresses: ['192.0.2.100'], statuses: DEFAULT_STATUSES});
  const following = follow(t, createAccessLogTail({file, rules, pollMs: POLL_MS}));
  await appendFile(file, line('198.51.100.1'));
  await following.until(1);
  // What the issue found counted as clients, then one real client: the count moves to 2 only once that last line
  // is read, so every line before it has been judged by then.
  const at = '[21/Nov/2026:13:45:04 +0000]';
  await appendFile(file, [
    line('127.0.0.1'),
    line('::1'),
    line('192.0.2.100'),
    line('192.0.2.11'),
    `203.0.113.50 - - ${at} "GET /health HTTP/1.1" 200 2 "-" "${HEALTH_CHECK_USER_AGENT}"\n`,
    `198.51.100.66 - - ${at} "-" 400 0 "-" "-"\n`,
    `198.51.100.2 - - ${at} "GET / HTTP/1.1" 500 17 "-" "Mozilla/5.0"\n`,
    line('198.51.100.3'),
  ].join(''));
  await following.until(2);
  await following.stop();
  t.deepEqual(following.counts, [1, 2]);
  t.deepEqual(following.tally()?.excluded, {'loopback': 2, 'own-address': 1, 'service-ip': 1, 'health-check': 1, 'elsewhere': 0, 'status': 2});
});

test('check() reads the last lines: in the configured format they pass, and say whether they show the local address', async (t) => {
  const {file} = await tempLog(t);
  await writeFile(file, line('198.51.100.1') + line('198.51.100.2'));
  t.deepEqual(await createAccessLogTail({file, rules: ownAddresses([])}).check(), {sampled: 2, parsed: 2, showsLocalAddress: false});
  await writeFile(file, '');
  t.deepEqual(await createAccessLogTail({file, rules: ownAddresses([])}).check(), {sampled: 0, parsed: 0, showsLocalAddress: false},
    'an empty log proves nothing either way and is allowed');
});

test('check() refuses a log whose recent lines are in another format, naming the one they look like', async (t) => {
  const {file} = await tempLog(t);
  const vhost = 'www.example.com:80 198.51.100.1 - - [21/Nov/2026:13:45:03 +0000] "GET / HTTP/1.1" 200 612 "-" "Mozilla/5.0"\n';
  // A long old history in combined, then the server switched to vhost_combined: only the recent lines matter.
  await writeFile(file, line('198.51.100.1').repeat(2000) + vhost.repeat(25));
  const error = await t.throwsAsync(createAccessLogTail({file, rules: ownAddresses([])}).check(), {code: 'ACCESS_LOG_UNREADABLE'});
  t.regex(error?.message ?? '', /none of its last 20 line\(s\) is in the format confirm\.log_format says \(combined\); they look like vhost_combined, e\.g\. "www\.example\.com:80 /);
  t.deepEqual(await createAccessLogTail({file, rules: ownAddresses([]), format: {kind: 'vhost_combined'}}).check(),
    {sampled: 20, parsed: 20, showsLocalAddress: false});
  await writeFile(file, '{"status":200,"remote_addr":"198.51.100.1"}\n');
  const json = await t.throwsAsync(createAccessLogTail({file, rules: ownAddresses([])}).check());
  t.regex(json?.message ?? '', /they look like JSON/);
});
