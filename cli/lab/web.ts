// The lab's web servers: real nginx, or the built-in Node server (tiny-web.ts) where nginx is not installed, each
// started inside a host namespace with its config and logs under its own directory, listening on IPv4 and IPv6,
// answering "served by <host>", serving downloads and taking uploads (transfers.ts) and writing nginx's default
// `combined` access log (an IPv6 client as its address, e.g. 2001:db8:0:1::20); plus
// stopping processes by PID, which the prober shares.

import {constants, readdirSync, readFileSync} from 'node:fs';
import {access, chmod, chown, mkdir, open, readdir, readFile, readlink, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {BatonError, describeError} from '../../agent/errors.js';
import {processStartTicks} from './lab-owner.js';
import {spawnInNamespace} from './namespaces.js';
import {DOWNLOAD_PATH, RECEIVED_BYTES_HEADER, TRANSFER_BYTES, TRANSFER_RATE_BYTES_PER_S, UPLOAD_MAX_BODY_BYTES, UPLOAD_PREFIX} from './transfers.js';

export interface WebServer {
  readonly pid: number;
  /** Where it appends one `combined` line per request. */
  readonly accessLog: string;
  /** The command that tells it to finish its requests and close its connections gracefully (drain.graceful_command). */
  readonly graceful: {readonly path: string; readonly args: readonly string[]};
  /** SIGTERM by PID, then SIGKILL after a grace. Idempotent. */
  stop(): Promise<void>;
}

export interface WebServerOptions {
  readonly namespace: string;
  /** Config, pid file, error and access logs go here; created if missing. */
  readonly dir: string;
  /** Named by the page, "served by <hostName>", so a client can tell who answered. 1–32 of A-Za-z0-9-. */
  readonly hostName: string;
  /** ADDRESS:PORTs, all on one port, e.g. [192.0.2.11:80]; default 0.0.0.0:80 and [::]:80, both families. */
  readonly listen?: readonly string[];
  /** How long it may take to listen; default 5000. */
  readonly startTimeoutMs?: number;
  /** The built-in server only: the status of every page (e.g. 500, a failing host); default 200. */
  readonly pageStatus?: number;
}

export type WebServerKind = 'nginx' | 'apache' | 'builtin';

/** Debian's nginx (package nginx-light / nginx). */
export const NGINX_PROGRAM = '/usr/sbin/nginx';
/** Debian's Apache httpd (package apache2), run with its own config file and no envvars. */
export const APACHE_PROGRAM = '/usr/sbin/apache2';
const APACHE_MODULES = '/usr/lib/apache2/modules';
// Apache's workers drop root for this user (Apache refuses to serve as root): the files they read must be theirs to
// read, so the Apache host's directory is traversable (0711) and its document root readable.
const APACHE_USER = 'www-data';
// One socket per family (nginx's [::] listens IPv6-only by default; Apache and the built-in server follow suit), so
// an IPv4 client shows in the log as 192.0.2.20, never as ::ffff:192.0.2.20.
const DEFAULT_LISTEN = ['0.0.0.0:80', '[::]:80'] as const;
// nginx listens ~20 ms after exec and Node ~100 ms in the lab; 5 s is slack for a loaded CI machine, not a target.
const DEFAULT_START_TIMEOUT_MS = 5000;
// How often the start-up wait looks at /proc: cheap (a few small reads), short against the start-up time.
const START_POLL_MS = 10;
// nginx's fast shutdown (SIGTERM) and Node's server.close finish in milliseconds; after this they are hung.
const STOP_GRACE_MS = 3000;
const STOP_POLL_MS = 20;
const KILL_PROGRAM = '/usr/bin/kill';
// What a start-up failure quotes from the logs: enough for nginx's "[emerg] bind() … failed" and its context.
const LOG_TAIL_LINES = 10;
// Where nginx and Apache store uploads (PUT /upload/NAME), under the host's web directory: the lab's teardown
// removes it, and the clients reuse a bounded set of names, so it holds a few dozen MiB at most.
export const UPLOADS_DIR = 'uploads';
const TINY_WEB_SCRIPT = fileURLToPath(new URL('./tiny-web.js', import.meta.url));

/** Whether Debian's nginx is installed here, so the lab can prefer it to the built-in server. */
export async function isNginxInstalled(): Promise<boolean> {
  return access(NGINX_PROGRAM, constants.X_OK).then(() => true, () => false);
}

/** nginx when installed, else the built-in server; says which it started. */
export async function startWebServer(options: WebServerOptions): Promise<WebServer & {kind: WebServerKind}> {
  if (await isNginxInstalled()) return {...await startNginx(options), kind: 'nginx'};
  return {...await startBuiltinWeb(options), kind: 'builtin'};
}

/**
 * Runs real nginx in the namespace, master in the foreground (`daemon off`) so the PID is the master's, with
 * `-p dir -c dir/nginx.conf -e dir/error.log`, so nothing under /etc/nginx or /var/log/nginx is read or written.
 * Resolves once it listens; throws LAB_FAILED with the tail of its error log when it exits or does not listen.
 */
export async function startNginx(options: WebServerOptions): Promise<WebServer> {
  const {listen, port} = checkOptions(options);
  const dir = options.dir;
  const tempDir = join(dir, 'tmp');
  await mkdir(tempDir, {recursive: true, mode: 0o755});
  const files = {
    config: join(dir, 'nginx.conf'),
    pid: join(dir, 'nginx.pid'),
    errorLog: join(dir, 'error.log'),
    accessLog: join(dir, 'access.log'),
    output: join(dir, 'nginx.out'),
  };
  const download = join(dir, 'download.bin');
  await writeFile(download, Buffer.alloc(TRANSFER_BYTES, 0x62));
  const uploads = join(dir, UPLOADS_DIR);
  await mkdir(uploads, {recursive: true, mode: 0o755});
  await writeFile(files.config, nginxConfig({...files, tempDir, download, uploads, listen, hostName: options.hostName}));
  const nginxArgs = ['-p', `${dir}/`, '-c', files.config, '-e', files.errorLog];
  const pid = await spawnInNamespace(options.namespace, NGINX_PROGRAM, nginxArgs, files.output);
  await waitUntilListening({
    pid, port, what: `nginx for ${options.hostName} in ${options.namespace}`,
    timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    logs: [files.errorLog, files.output],
  });
  // nginx -s reload: the master starts new workers; the old ones finish their requests, close their keep-alive
  // connections after the one in progress, and exit when their last connection is done.
  return webServer(pid, files.accessLog, {path: NGINX_PROGRAM, args: [...nginxArgs, '-s', 'reload']});
}

/**
 * Runs real Apache httpd (event MPM, Debian's modules) in the namespace, in the foreground so the PID is the parent's,
 * with `-f dir/apache.conf` and nothing read from /etc/apache2. Keep-alive as Apache ships it (5 s, 100 requests per
 * connection), the same page, a rate-limited /download (mod_ratelimit), uploads by WebDAV PUT (mod_dav_fs) and a
 * `combined` access log. Graceful:
 * `apache2 -f … -k graceful` (SIGUSR1), children finish their requests and close their connections after them.
 */
export async function startApache(options: WebServerOptions): Promise<WebServer> {
  const {listen, port} = checkOptions(options);
  const dir = options.dir;
  const www = join(dir, 'www');
  await mkdir(www, {recursive: true, mode: 0o755});
  await chmod(dir, 0o711);
  const files = {
    config: join(dir, 'apache.conf'),
    pid: join(dir, 'apache.pid'),
    errorLog: join(dir, 'error.log'),
    accessLog: join(dir, 'access.log'),
    output: join(dir, 'apache.out'),
  };
  await writeFile(join(www, 'page.txt'), `served by ${options.hostName}\n`, {mode: 0o644});
  await writeFile(join(www, 'download.bin'), Buffer.alloc(TRANSFER_BYTES, 0x62), {mode: 0o644});
  // The workers write the uploads and mod_dav_fs's lock database: both directories are theirs.
  const uploads = join(dir, UPLOADS_DIR);
  const davLockDir = join(dir, 'dav-lock');
  const worker = await systemUserIds(APACHE_USER);
  for (const path of [uploads, davLockDir]) {
    await mkdir(path, {recursive: true, mode: 0o755});
    await chown(path, worker.uid, worker.gid);
  }
  await writeFile(files.config, apacheConfig({...files, dir, www, uploads, davLockDir, listen, hostName: options.hostName}));
  const pid = await spawnInNamespace(options.namespace, APACHE_PROGRAM, ['-f', files.config, '-DFOREGROUND'], files.output);
  await waitUntilListening({
    pid, port, what: `Apache for ${options.hostName} in ${options.namespace}`,
    timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    logs: [files.errorLog, files.output],
  });
  return webServer(pid, files.accessLog, {path: APACHE_PROGRAM, args: ['-f', files.config, '-k', 'graceful']});
}

function apacheConfig(c: {
  dir: string; www: string; uploads: string; davLockDir: string; pid: string; errorLog: string; accessLog: string; listen: readonly string[]; hostName: string;
}): string {
  const module = (name: string, file: string): string => `LoadModule ${name} ${APACHE_MODULES}/${file}`;
  return `# Written by baton's lab (cli/lab/web.ts) for one lab host; Apache runs with -f this file.
ServerRoot "${c.dir}"
ServerName ${c.hostName}
DefaultRuntimeDir "${c.dir}"
PidFile "${c.pid}"
ErrorLog "${c.errorLog}"
LogLevel notice
${module('mpm_event_module', 'mod_mpm_event.so')}
${module('authz_core_module', 'mod_authz_core.so')}
${module('alias_module', 'mod_alias.so')}
${module('headers_module', 'mod_headers.so')}
${module('env_module', 'mod_env.so')}
${module('ratelimit_module', 'mod_ratelimit.so')}
${module('dav_module', 'mod_dav.so')}
${module('dav_fs_module', 'mod_dav_fs.so')}
User ${APACHE_USER}
Group ${APACHE_USER}
# With both 0.0.0.0 and [::] on one port Apache makes the [::] socket IPv6-only.
${c.listen.map((address) => `Listen ${address}`).join('\n')}
# Apache's own defaults, as real sites run them.
KeepAlive On
KeepAliveTimeout 5
MaxKeepAliveRequests 100
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
CustomLog "${c.accessLog}" combined
Header always set X-Served-By ${c.hostName}
<Directory "${c.www}">
    Require all granted
</Directory>
# A download that lasts: ${TRANSFER_BYTES} bytes at ${TRANSFER_RATE_BYTES_PER_S / 1024} KiB/s.
Alias "${DOWNLOAD_PATH}" "${c.www}/download.bin"
<Location "${DOWNLOAD_PATH}">
    SetOutputFilter RATE_LIMIT
    SetEnv rate-limit ${TRANSFER_RATE_BYTES_PER_S / 1024}
</Location>
# Uploads: mod_dav_fs answers a PUT (201, or 204 over an older file) only once the whole body is in the file, and a
# body shorter than its Content-Length is an error, so on success the declared length is what it received. "always"
# with a status condition: mod_dav sends its 204 the way Apache sends errors, which drops the plain "set" headers.
DavLockDB "${c.davLockDir}/lock"
Alias "${UPLOAD_PREFIX}" "${c.uploads}/"
<Directory "${c.uploads}">
    Dav On
    Require all granted
    LimitRequestBody ${UPLOAD_MAX_BODY_BYTES}
    Header always set ${RECEIVED_BYTES_HEADER} "expr=%{req:Content-Length}" "expr=%{REQUEST_STATUS} -in {'201', '204'}"
</Directory>
AliasMatch "^/(?!${DOWNLOAD_PATH.slice(1)}|${UPLOAD_PREFIX.slice(1)})" "${c.www}/page.txt"
`;
}

/**
 * Runs the built-in server (dist/cli/lab/tiny-web.js, with the Node running this code) in the namespace. Same page,
 * same `combined` log lines as nginx. Resolves once it listens; throws LAB_FAILED with its output otherwise.
 */
export async function startBuiltinWeb(options: WebServerOptions): Promise<WebServer> {
  const {listen, port} = checkOptions(options);
  await mkdir(options.dir, {recursive: true, mode: 0o755});
  const accessLog = join(options.dir, 'access.log');
  const output = join(options.dir, 'tiny-web.out');
  const pid = await spawnInNamespace(options.namespace, process.execPath,
    [TINY_WEB_SCRIPT, '--host', options.hostName, ...listen.flatMap((address) => ['--listen', address]), '--access-log', accessLog,
      '--page-status', String(options.pageStatus ?? 200)], output);
  await waitUntilListening({
    pid, port, what: `the built-in web server for ${options.hostName} in ${options.namespace}`,
    timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    logs: [output],
  });
  // SIGHUP: tiny-web closes its idle keep-alive connections and answers the rest with Connection: close.
  return webServer(pid, accessLog, {path: KILL_PROGRAM, args: ['-HUP', String(pid)]});
}

function webServer(pid: number, accessLog: string, graceful: WebServer['graceful']): WebServer {
  return {pid, accessLog, graceful, stop: () => stopProcessByPid(pid)};
}

function checkOptions(options: WebServerOptions): {listen: readonly string[]; port: number} {
  const problems: string[] = [];
  // The name is written into nginx.conf: only characters that cannot end the quoted string or the directive.
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/.test(options.hostName)) {
    problems.push(`hostName ${JSON.stringify(options.hostName)}: expected 1–32 of A-Za-z0-9- (e.g. primary)`);
  }
  const listen = options.listen ?? DEFAULT_LISTEN;
  const ports = new Set<number>();
  for (const address of listen) {
    const parts = /^(?:\[(?<v6>[0-9A-Fa-f:.]+)\]|(?<v4>\d{1,3}(?:\.\d{1,3}){3})):(?<port>\d{1,5})$/.exec(address)?.groups;
    const port = Number(parts?.['port']);
    if (parts === undefined || !(port >= 1 && port <= 65_535)) {
      problems.push(`listen ${JSON.stringify(address)}: expected ADDRESS:PORT, e.g. 0.0.0.0:80 or [::]:8080`);
    } else {
      ports.add(port);
    }
  }
  // One port: the start-up wait looks for a listening socket on it.
  if (listen.length === 0 || ports.size > 1) {
    problems.push(`listen ${JSON.stringify(listen)}: expected one or more ADDRESS:PORT on one port, e.g. ["0.0.0.0:80", "[::]:80"]`);
  }
  const [port] = ports;
  if (problems.length > 0 || port === undefined) {
    throw new BatonError('LAB_FAILED', `cannot start a lab web server: ${problems.join('; ')}`);
  }
  return {listen, port};
}

function nginxConfig(c: {
  pid: string; errorLog: string; accessLog: string; tempDir: string; download: string; uploads: string; listen: readonly string[]; hostName: string;
}): string {
  return `# Written by baton's lab (cli/lab/web.ts) for one lab host; nginx runs with -p <this directory> -c this file.
daemon off;
# Workers run as root like the master: the lab's directories are private to root (0700), and a worker running as
# nobody could not reach its log directory to reopen the log on USR1 (logrotate's postrotate), so after a rotation
# it would go on writing to the renamed file.
user root;
worker_processes 1;
pid ${c.pid};
error_log ${c.errorLog} notice;

events {
    worker_connections 256;
}

http {
    # nginx's own default format, no log_format of ours: the access-log watcher must read what nginx writes
    # out of the box. No buffer= parameter, so each line is written when its request ends.
    access_log ${c.accessLog} combined;
    # Keep-alive on, as real sites run it: a planned switch drains these connections on the old host instead of
    # cutting them. 100 requests per connection (nginx ships 1000, Apache 100): nginx then ends a busy connection by
    # answering "Connection: close", which no client request can race, within the drain's first seconds; what its
    # graceful reload closes instead is an idle connection, and a request sent at that instant is reset.
    keepalive_timeout 75s;
    keepalive_requests 100;
    # Debian's compiled-in temp paths are under /var/lib/nginx; keep everything in the lab's directory.
    client_body_temp_path ${c.tempDir}/client_body;
    proxy_temp_path ${c.tempDir}/proxy;
    fastcgi_temp_path ${c.tempDir}/fastcgi;
    uwsgi_temp_path ${c.tempDir}/uwsgi;
    scgi_temp_path ${c.tempDir}/scgi;

    server {
        # [::] is IPv6-only in nginx (ipv6only=on by default): one socket per family.
${c.listen.map((address) => `        listen ${address};`).join('\n')}
        location / {
            default_type text/plain;
            return 200 "served by ${c.hostName}\\n";
        }
        # A download that lasts: ${TRANSFER_BYTES} bytes at ${TRANSFER_RATE_BYTES_PER_S / 1024} KiB/s; X-Served-By names the host.
        location = ${DOWNLOAD_PATH} {
            default_type application/octet-stream;
            alias ${c.download};
            limit_rate ${TRANSFER_RATE_BYTES_PER_S / 1024}k;
            add_header X-Served-By ${c.hostName};
        }
        # Uploads: WebDAV PUT answers (201, or 204 over an older file) only once it has read the whole body into
        # the file, and a body shorter than its Content-Length is an error, so on success the declared length is
        # what it received. add_header applies to 2xx answers only.
        location ${UPLOAD_PREFIX} {
            dav_methods PUT;
            alias ${c.uploads}/;
            client_max_body_size ${UPLOAD_MAX_BODY_BYTES};
            add_header X-Served-By ${c.hostName};
            add_header ${RECEIVED_BYTES_HEADER} $content_length;
        }
    }
}
`;
}

/**
 * Waits until the process holds a listening TCP socket on `port`, seen in /proc (its namespace's /proc/PID/net/tcp*
 * and its own fds): a listening socket already queues connections, and unlike a test request it leaves no line in
 * the access log that confirm-traffic would have to tell apart. Matching the socket's inode to the process's fds
 * keeps another server on the same port from passing for ours. If the process exits or time runs out, ends it and
 * throws LAB_FAILED quoting the logs.
 */
async function waitUntilListening(w: {pid: number; port: number; what: string; timeoutMs: number; logs: readonly string[]}): Promise<void> {
  const deadline = Date.now() + w.timeoutMs;
  let problem: string;
  for (;;) {
    if (!isProcessAlive(w.pid)) {
      problem = 'it exited at start-up';
      break;
    }
    const listening = await listeningInodes(w.pid, w.port);
    if (listening.size > 0 && (await socketInodes(w.pid)).some((inode) => listening.has(inode))) return;
    if (Date.now() > deadline) {
      problem = `it did not listen on port ${w.port} within ${w.timeoutMs} ms`;
      break;
    }
    await sleep(START_POLL_MS);
  }
  await stopProcessByPid(w.pid);
  const tails = await Promise.all(w.logs.map(async (file) => {
    const tail = await readTail(file);
    return tail === '' ? '' : `\n--- ${file} (last lines):\n${tail}`;
  }));
  throw new BatonError('LAB_FAILED',
    `${w.what} (pid ${w.pid}) failed: ${problem}. Check its logs below; a port in use or a missing namespace is the ` +
    `usual cause.${tails.join('') || ' (its logs are empty)'}`);
}

/** Inodes of sockets listening on `port` in the process's network namespace. */
async function listeningInodes(pid: number, port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …; st 0A = LISTEN.
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local?.endsWith(`:${portHex}`) && fields[3] === '0A' && fields[9] !== undefined) inodes.add(fields[9]);
    }
  }
  return inodes;
}

async function socketInodes(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.map((target) => /^socket:\[(\d+)\]$/.exec(target)?.[1]).filter((inode): inode is string => inode !== undefined);
}

async function readTail(file: string): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const {size} = await handle.stat();
      const length = Math.min(size, 4096);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/** A system user's numeric ids from /etc/passwd (Node has no getpwnam); throws LAB_FAILED when it is missing. */
async function systemUserIds(name: string): Promise<{uid: number; gid: number}> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const fields = passwd.split('\n').map((line) => line.split(':')).find((f) => f[0] === name);
  const uid = Number(fields?.[2]);
  const gid = Number(fields?.[3]);
  if (fields === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new BatonError('LAB_FAILED', `no user ${name} in /etc/passwd: Apache's workers run as ${name}; install apache2, which creates it`);
  }
  return {uid, gid};
}

/**
 * Running, and not a zombie waiting to be reaped (our spawned children are reaped by Node's SIGCHLD handling).
 * A PID that no longer exists is false.
 */
export function isProcessAlive(pid: number): boolean {
  return processStartTicks(pid) !== undefined;
}

/**
 * Ends a process we started: SIGTERM, up to `graceMs` for it to leave, then SIGKILL to it and to the children it
 * had (nginx's workers, which would otherwise outlive a killed master). Idempotent; never signals anything else.
 */
export async function stopProcessByPid(pid: number, graceMs = STOP_GRACE_MS): Promise<void> {
  if (!isProcessAlive(pid)) return;
  const children = childPids(pid);
  signalPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isProcessAlive(pid) && Date.now() < deadline) await sleep(STOP_POLL_MS);
  if (!isProcessAlive(pid)) return;
  for (const target of [pid, ...children]) signalPid(target, 'SIGKILL');
  const killDeadline = Date.now() + STOP_GRACE_MS;
  while (isProcessAlive(pid) && Date.now() < killDeadline) await sleep(STOP_POLL_MS);
  if (isProcessAlive(pid)) {
    throw new BatonError('LAB_FAILED', `process ${pid} survived SIGKILL: look at /proc/${pid}/status (uninterruptible I/O?)`);
  }
}

function childPids(pid: number): number[] {
  const tasks = readdirSyncSafe(`/proc/${pid}/task`);
  return tasks.flatMap((task) => (readFileSyncSafe(`/proc/${pid}/task/${task}/children`) ?? '').split(/\s+/))
    .filter((word) => /^\d+$/.test(word)).map(Number);
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    // ESRCH: it exited between the check and the signal, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
      throw new BatonError('LAB_FAILED', `cannot send ${signal} to process ${pid}: ${describeError(error)}`, {cause: error});
    }
  }
}

function readFileSyncSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readdirSyncSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
