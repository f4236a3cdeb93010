// The metrics endpoint: HTTP GET /metrics on metrics.listen, for the loopback addresses and metrics.allow_from only.
// Bounds what a client can hold, as the control socket does: a cap on connections open at once, an absolute
// deadline from accept, a cap on the request's size. Off unless metrics.enabled.

import type {IncomingMessage, ServerResponse} from 'node:http';
import {createServer, type Server, type Socket} from 'node:net';
import {BatonError, describeError} from './errors.js';
import type {Logger} from './log.js';
import {isInSubnet, parseIpAddress, parseSubnet, unmapIpv4, type Subnet} from './net/ip-address.js';

export interface MetricsLimits {
  /** A connection is closed this long after accept, whatever it is doing: a scrape takes milliseconds. */
  readonly connectionDeadlineMs: number;
  /** Connections open at once; a further one is answered 503 and closed. */
  readonly maxConnections: number;
  /** The request line and headers together; more is answered 431 by Node's parser. */
  readonly maxHeaderBytes: number;
}

// Prometheus scrapes each target once per scrape_interval (15 s by default) over one connection; 4 at once leave
// room for a second Prometheus and a curl by hand. 10 s from accept: Prometheus' default scrape_timeout, and twice
// the control socket's request deadline, for a scrape over a slow link. 8 KiB of headers: Prometheus sends about
// 300 bytes, curl about 100.
export const DEFAULT_METRICS_LIMITS: MetricsLimits = {connectionDeadlineMs: 10_000, maxConnections: 4, maxHeaderBytes: 8192};

export const METRICS_PATH = '/metrics';

export interface MetricsServerOptions {
  readonly address: string;
  /** 0: any free port (tests). */
  readonly port: number;
  /** Who may scrape besides loopback (127.0.0.0/8, ::1). */
  readonly allowFrom: readonly Subnet[];
  /** The exposition text and its Content-Type, computed at each scrape. */
  readonly render: () => Promise<{readonly contentType: string; readonly text: string}>;
  readonly log: Logger;
  readonly limits?: MetricsLimits;
}

/** Connections turned away since start, by reason. */
export interface MetricsRefusals {
  /** From an address neither loopback nor in metrics.allow_from. */
  readonly notAllowed: number;
  /** The cap of connections at once was reached. */
  readonly busy: number;
}

export interface MetricsServer {
  /** The port it listens on (the one asked for, or the one the kernel chose for 0). */
  readonly port: number;
  refusals(): MetricsRefusals;
  close(): Promise<void>;
}

const LOOPBACK = [parseSubnet('127.0.0.0', 8), parseSubnet('::1', 128)].filter((subnet) => subnet !== undefined);

/** Whether a peer address (as the socket gives it, IPv4-mapped or not) may scrape. */
export function isAllowedScraper(remoteAddress: string | undefined, allowFrom: readonly Subnet[]): boolean {
  const parsed = remoteAddress === undefined ? undefined : parseIpAddress(remoteAddress.split('%')[0] ?? '');
  if (parsed === undefined) return false;
  const ip = unmapIpv4(parsed);
  return [...LOOPBACK, ...allowFrom].some((subnet) => isInSubnet(ip, subnet));
}

/** Throws BatonError METRICS_UNAVAILABLE when it cannot listen (the address is not this host's, the port is taken). */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const {log, allowFrom} = options;
  const limits = options.limits ?? DEFAULT_METRICS_LIMITS;
  const refusals = {notAllowed: 0, busy: 0};
  const open = new Set<Socket>();
  // Each kind of refusal is logged once per spell, not once per connection: a scanner must not flood the journal.
  const logged = {notAllowed: false, busy: false};
  // process.getBuiltinModule, not an import: an ESM import of node:http reads its WebSocket, CloseEvent and
  // MessageEvent getters, which load undici with http2 and zlib (3.4 MB of RSS on top of prom-client, measured
  // --jitless; see system-health-probe.ts).
  const {createServer: createHttpServer} = process.getBuiltinModule('node:http');
  const http = createHttpServer({maxHeaderSize: limits.maxHeaderBytes, requestTimeout: limits.connectionDeadlineMs,
    headersTimeout: limits.connectionDeadlineMs}, (request, response) => void serve(request, response, options));
  const server: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    if (!isAllowedScraper(socket.remoteAddress, allowFrom)) {
      refusals.notAllowed += 1;
      if (!logged.notAllowed) {
        logged.notAllowed = true;
        log.warning(`(metrics) refused a connection from ${socket.remoteAddress ?? '?'}: not loopback and not in metrics.allow_from ` +
          '(further refusals are counted, not logged)');
      }
      refuse(socket, 403, `baton: ${socket.remoteAddress ?? 'this address'} is not in metrics.allow_from\n`);
      return;
    }
    if (open.size >= limits.maxConnections) {
      refusals.busy += 1;
      if (!logged.busy) {
        logged.busy = true;
        log.warning(`(metrics) ${open.size} connections open, the limit: refusing more until some end`);
      }
      refuse(socket, 503, `baton: ${limits.maxConnections} metrics connections are open, the limit; try again later\n`);
      return;
    }
    open.add(socket);
    // Absolute, unlike socket.setTimeout, which every byte would reset.
    const deadline = setTimeout(() => socket.destroy(), limits.connectionDeadlineMs);
    socket.once('close', () => {
      clearTimeout(deadline);
      open.delete(socket);
      if (open.size < limits.maxConnections) logged.busy = false;
    });
    http.emit('connection', socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new BatonError('METRICS_UNAVAILABLE',
      `cannot listen for metrics on ${hostPort(options.address, options.port)}: ${describeError(error)}; metrics.listen must be ` +
      'an address of this host and a port nothing else uses', {cause: error})));
    server.listen({host: options.address, port: options.port}, () => resolve());
  });
  const bound = server.address();
  return {
    port: typeof bound === 'object' && bound !== null ? bound.port : options.port,
    refusals: () => ({...refusals}),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      });
      http.close();
    },
  };
}

async function serve(request: IncomingMessage, response: ServerResponse, options: MetricsServerOptions): Promise<void> {
  const path = URL.parse(request.url ?? '', 'http://metrics')?.pathname;
  if ((request.method !== 'GET' && request.method !== 'HEAD') || path !== METRICS_PATH) {
    answer(response, 404, 'text/plain; charset=utf-8', `baton: only GET ${METRICS_PATH} is served here\n`);
    return;
  }
  try {
    const {contentType, text} = await options.render();
    answer(response, 200, contentType, text);
  } catch (error) {
    options.log.error(`(metrics) could not render the metrics: ${describeError(error)}`);
    answer(response, 500, 'text/plain; charset=utf-8', 'baton: the metrics could not be rendered; see the agent\'s log\n');
  }
}

function answer(response: ServerResponse, status: number, contentType: string, body: string): void {
  if (response.writableEnded || response.destroyed) return;
  response.writeHead(status, {'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body)});
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** A whole HTTP answer written before the request is read, then the connection closed: no parser, nothing kept. */
function refuse(socket: Socket, status: 403 | 503, body: string): void {
  const reason = status === 403 ? 'Forbidden' : 'Service Unavailable';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`);
  socket.resume(); // what it sends is read and dropped, so its end is seen and the socket closes
  setTimeout(() => socket.destroy(), 1000).unref();
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
