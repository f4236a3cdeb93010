// The lab's built-in web server, a standalone script for hosts without nginx: answers every request with
// "served by <host>\n", GET /download with 1 MiB at 256 KiB/s (as the lab's nginx does), PUT /upload/NAME once it
// has read the whole body (counted in X-Received-Bytes, then discarded: nothing is stored), keeps connections alive
// as nginx does, and appends one line per request to the access log in nginx's default `combined` format, byte for
// byte, so the access-log watcher reads it exactly as it reads nginx's.
//
//   ip netns exec NS node dist/cli/lab/tiny-web.js --host primary --access-log FILE [--listen 0.0.0.0:80 …]
//     [--page-status 200]
//
// --listen may be given more than once (web.ts gives 0.0.0.0:80 and [::]:80): one socket each, an IPv6 one IPv6-only,
// as nginx's, so every client shows in the log as the address it used.
//
// --page-status answers every page (not downloads or uploads) with that status, e.g. 500: a host that is up but
// failing, which a confirmation must not take for a serving one.
//
// SIGHUP: finish gracefully, like nginx's reload: idle keep-alive connections are closed, requests in progress
// (downloads, uploads) finish and their connection closes after them. SIGTERM/SIGINT: stop listening, drop open connections,
// close the log, exit 0. Node built-ins only.

import {closeSync, openSync, writeSync} from 'node:fs';
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http';
import type {Socket} from 'node:net';
import {parseArgs} from 'node:util';
import {DOWNLOAD_PATH, RECEIVED_BYTES_HEADER, sendPacedBody, TRANSFER_BYTES, UPLOAD_MAX_BODY_BYTES, UPLOAD_PREFIX} from './transfers.js';

const USAGE = 'usage: tiny-web.js --host NAME --access-log FILE [--listen ADDRESS:PORT …] [--page-status 200]';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// nginx writes 499 for a request whose client went away before the response was sent.
const CLIENT_CLOSED_REQUEST = 499;
// nginx's keepalive_timeout default.
const KEEP_ALIVE_MS = 75_000;
// As the lab's nginx and Apache's default: the 100th request on a connection is answered with Connection: close,
// so busy connections end without a reset race, and a drain finishes without closing idle ones.
const REQUESTS_PER_CONNECTION = 100;
const CREATED = 201;
const PAYLOAD_TOO_LARGE = 413;

interface Options {
  readonly host: string;
  readonly accessLog: string;
  readonly listen: ReadonlyArray<{readonly address: string; readonly port: number}>;
  readonly pageStatus: number;
}

function readOptions(argv: readonly string[]): Options {
  const {values} = parseArgs({
    args: [...argv],
    options: {
      host: {type: 'string'},
      'access-log': {type: 'string'},
      listen: {type: 'string', multiple: true, default: ['0.0.0.0:80']},
      'page-status': {type: 'string', default: '200'},
    },
    strict: true,
    allowPositionals: false,
  });
  const problems: string[] = [];
  if (values.host === undefined || !/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/.test(values.host)) {
    problems.push(`--host: expected 1–32 of A-Za-z0-9-, got ${JSON.stringify(values.host)}`);
  }
  if (values['access-log'] === undefined) problems.push('--access-log FILE is required');
  const listen: Array<{address: string; port: number}> = [];
  for (const text of values.listen) {
    const parts = /^(?:\[(?<v6>[0-9A-Fa-f:.]+)\]|(?<v4>\d{1,3}(?:\.\d{1,3}){3})):(?<port>\d{1,5})$/.exec(text)?.groups;
    const port = Number(parts?.['port']);
    if (parts === undefined || !(port >= 1 && port <= 65_535)) {
      problems.push(`--listen: expected ADDRESS:PORT like 0.0.0.0:80 or [::]:80, got ${JSON.stringify(text)}`);
    } else {
      listen.push({address: parts['v6'] ?? parts['v4'] ?? '0.0.0.0', port});
    }
  }
  const pageStatus = Number(values['page-status']);
  if (!Number.isInteger(pageStatus) || pageStatus < 100 || pageStatus > 599) {
    problems.push(`--page-status: expected an HTTP status 100..599, got ${JSON.stringify(values['page-status'])}`);
  }
  if (problems.length > 0 || values.host === undefined || values['access-log'] === undefined) {
    throw new Error(`${problems.join('; ')}\n${USAGE}`);
  }
  return {host: values.host, accessLog: values['access-log'], listen, pageStatus};
}

/** nginx's $time_local: `21/Nov/2026:13:45:02 +0000`, local time with its offset. */
function formatTimeLocal(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  return `${two(date.getDate())}/${MONTHS[date.getMonth()] ?? '???'}/${date.getFullYear()}:` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/**
 * nginx's default log escaping (ngx_http_log_escape): `"`, `\`, control bytes and bytes ≥ 0x7F become \xHH with
 * upper-case hex. It works on the bytes received; Node hands request lines and header values over as latin1 text,
 * one character per byte, so latin1 gives those bytes back.
 */
function escapeLogText(text: string): string {
  const bytes = Buffer.from(text, /^[\u0000-\u00ff]*$/.test(text) ? 'latin1' : 'utf8');
  let out = '';
  for (const byte of bytes) {
    out += byte < 0x20 || byte >= 0x7f || byte === 0x22 || byte === 0x5c
      ? `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`
      : String.fromCharCode(byte);
  }
  return out;
}

/** A header as nginx logs $http_*: `-` when absent, its (escaped) value otherwise. */
function headerField(value: string | string[] | undefined): string {
  if (value === undefined) return '-';
  return escapeLogText(Array.isArray(value) ? (value[0] ?? '') : value);
}

/** The client address as nginx writes $remote_addr: an IPv4 client of a dual-stack socket is plain IPv4. */
function remoteAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '-';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

/** One line of nginx's `combined` format, with its newline. */
function formatCombined(req: IncomingMessage, status: number, bodyBytes: number, at: Date): string {
  const request = escapeLogText(`${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`);
  return `${remoteAddress(req)} - - [${formatTimeLocal(at)}] "${request}" ${status} ${bodyBytes} ` +
    `"${headerField(req.headers.referer)}" "${headerField(req.headers['user-agent'])}"\n`;
}

function serve(options: Options): void {
  const log = openSync(options.accessLog, 'a', 0o644);
  let logOpen = true;
  const page = Buffer.from(`served by ${options.host}\n`);
  // Connections open at SIGHUP finish gracefully; those opened later are served as usual, as by nginx's new workers.
  const open = new Set<Socket>();
  const closing = new WeakSet<Socket>();
  const requests = new WeakMap<Socket, number>();
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const download = req.url === DOWNLOAD_PATH && req.method !== 'HEAD';
    const upload = req.method === 'PUT' && req.url?.startsWith(UPLOAD_PREFIX) === true;
    // Logged when the response is complete, as nginx does; one write(2) per line, so a follower sees it at once.
    let status = 200;
    let bytes = download ? TRANSFER_BYTES : req.method === 'HEAD' ? 0 : page.length;
    let logged = false;
    const writeLine = (loggedStatus: number, sent: number): void => {
      if (logged || !logOpen) return;
      logged = true;
      writeSync(log, formatCombined(req, loggedStatus, sent, new Date()));
    };
    res.on('finish', () => writeLine(status, bytes));
    res.on('close', () => writeLine(CLIENT_CLOSED_REQUEST, 0));
    // After SIGHUP every response says Connection: close: the client opens its next connection elsewhere.
    const served = (requests.get(req.socket) ?? 0) + 1;
    requests.set(req.socket, served);
    const connection = closing.has(req.socket) || served >= REQUESTS_PER_CONNECTION ? {Connection: 'close'} : {};
    if (upload) {
      // Answered only once the whole body is in, as nginx's and Apache's WebDAV PUT; counted, never stored.
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received <= UPLOAD_MAX_BODY_BYTES || res.headersSent) return;
        status = PAYLOAD_TOO_LARGE;
        bytes = 0;
        res.writeHead(status, {'Content-Length': 0, Connection: 'close'}).end();
      });
      req.on('end', () => {
        if (res.headersSent) return;
        const answer = Buffer.from(`received ${received} bytes\n`);
        status = CREATED;
        bytes = answer.length;
        res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': answer.length, 'X-Served-By': options.host,
          [RECEIVED_BYTES_HEADER]: String(received), ...connection});
        res.end(answer);
      });
      return;
    }
    if (!download) {
      status = options.pageStatus;
      res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': page.length, ...connection});
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    res.writeHead(200, {'Content-Type': 'application/octet-stream', 'Content-Length': TRANSFER_BYTES, 'X-Served-By': options.host, ...connection});
    res.on('close', sendPacedBody(res, 0x62));
  };
  const servers = options.listen.map(() => createServer(handle));
  let listening = servers.length;
  const closeLog = (): void => {
    // The log is closed once every server has closed: a request still finishing on one of them writes its line.
    listening -= 1;
    if (listening > 0 || !logOpen) return;
    logOpen = false;
    closeSync(log);
  };
  const stop = (): void => {
    for (const server of servers) {
      server.close(closeLog);
      server.closeAllConnections();
    }
  };
  servers.forEach((server, index) => {
    const {address, port} = options.listen[index] ?? {address: '0.0.0.0', port: 80};
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.on('connection', (socket: Socket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
    server.on('error', (error) => {
      process.stderr.write(`tiny-web: cannot listen on ${address}:${port}: ${error.message}\n`);
      process.exitCode = 1;
      stop();
    });
    // ipv6Only: [::] takes IPv6 clients only, beside 0.0.0.0's IPv4 ones, as nginx's sockets do.
    server.listen({port, host: address, ipv6Only: address.includes(':')}, () => {
      process.stdout.write(`tiny-web: ${options.host} listening on ${address.includes(':') ? `[${address}]` : address}:${port}, log ${options.accessLog}\n`);
    });
  });
  process.on('SIGHUP', () => {
    for (const socket of open) closing.add(socket);
    for (const server of servers) server.closeIdleConnections();
  });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

try {
  serve(readOptions(process.argv.slice(2)));
} catch (error) {
  process.stderr.write(`tiny-web: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
