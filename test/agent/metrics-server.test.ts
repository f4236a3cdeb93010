// The metrics endpoint on a real loopback socket: GET /metrics only, the allow-list, and the bounds on what a client
// can hold (connections at once, a deadline from accept, the size of a request).

import {createConnection, type Socket} from 'node:net';
import test from 'ava';
import {createLogger} from '../../agent/log.js';
import {isAllowedScraper, startMetricsServer, type MetricsLimits, type MetricsServer} from '../../agent/metrics-server.js';
import {parseSubnet, type Subnet} from '../../agent/net/ip-address.js';
import {rawExchange} from '../fakes/raw-exchange.js';

const lines: string[] = [];
const log = createLogger({journald: true, debug: false, write: (line) => lines.push(line), wallNow: Date.now});
const TEXT = 'baton_peer_alive 1\n';

async function server(t: {teardown(fn: () => Promise<void>): void}, limits?: MetricsLimits,
  render = async () => ({contentType: 'text/plain; version=0.0.4; charset=utf-8', text: TEXT})): Promise<MetricsServer> {
  const started = await startMetricsServer({address: '127.0.0.1', port: 0, allowFrom: [], log, render, limits});
  t.teardown(() => started.close());
  return started;
}

/** Sends raw bytes; resolves with everything answered before the server closed the connection. */
function exchange(port: number, data: string): Promise<string> {
  return rawExchange({host: '127.0.0.1', port}, data);
}

const get = (path: string, method = 'GET'): string => `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

test('GET /metrics answers 200 with the exposition and its content type', async (t) => {
  const {port} = await server(t);
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.is(await response.text(), TEXT);
});

test('any other path or method is 404, and nothing is rendered for it', async (t) => {
  let rendered = 0;
  const {port} = await server(t, undefined, async () => {
    rendered += 1;
    return {contentType: 'text/plain', text: TEXT};
  });
  for (const [path, method] of [['/', 'GET'], ['/metrics/x', 'GET'], ['/metricsx', 'GET'], ['/metrics', 'POST'], ['/metrics', 'DELETE']] as const) {
    const answer = await exchange(port, get(path, method));
    t.regex(answer, /^HTTP\/1\.1 404 /, `${method} ${path}`);
  }
  t.is(rendered, 0);
});

test('a failing render is a 500 and a log line, not a crash', async (t) => {
  const {port} = await server(t, undefined, async () => {
    throw new Error('status failed');
  });
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(response.status, 500);
  t.true(lines.some((line) => line.includes('(metrics) could not render the metrics: status failed')));
});

test('loopback may always scrape; another address only when allow_from covers it, IPv4-mapped or not', (t) => {
  const allow = [parseSubnet('192.0.2.50', 32), parseSubnet('198.51.100.0', 24), parseSubnet('2001:db8::', 32)] as Subnet[];
  t.true(isAllowedScraper('127.0.0.1', []));
  t.true(isAllowedScraper('127.9.9.9', []));
  t.true(isAllowedScraper('::1', []));
  t.true(isAllowedScraper('::ffff:127.0.0.1', []));
  t.true(isAllowedScraper('192.0.2.50', allow));
  t.true(isAllowedScraper('::ffff:198.51.100.7', allow));
  t.true(isAllowedScraper('2001:db8::9', allow));
  t.false(isAllowedScraper('192.0.2.51', allow));
  t.false(isAllowedScraper('192.0.2.50', []));
  t.false(isAllowedScraper('2001:db9::9', allow));
  t.false(isAllowedScraper(undefined, allow));
});

test('a connection beyond the cap is answered 503 and closed; the slot frees when one ends', async (t) => {
  const {port} = await server(t, {connectionDeadlineMs: 10_000, maxConnections: 2, maxHeaderBytes: 8192});
  const held: Socket[] = [];
  for (let i = 0; i < 2; i += 1) {
    const socket = createConnection({host: '127.0.0.1', port});
    await new Promise((resolve) => socket.once('connect', resolve));
    held.push(socket);
  }
  t.teardown(() => held.forEach((socket) => socket.destroy()));
  // Let the server see both before the third arrives.
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(await exchange(port, get('/metrics')), /^HTTP\/1\.1 503 [^]*2 metrics connections are open, the limit/);
  held[0]?.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(await exchange(port, get('/metrics')), /^HTTP\/1\.1 200 /);
});

test('a client that says nothing is cut at the deadline from accept', async (t) => {
  const {port} = await server(t, {connectionDeadlineMs: 300, maxConnections: 4, maxHeaderBytes: 8192});
  const socket = createConnection({host: '127.0.0.1', port});
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  t.true(await closed, 'closed by the server');
});

test('a client that dribbles a byte at a time is cut at the same deadline', async (t) => {
  const {port} = await server(t, {connectionDeadlineMs: 300, maxConnections: 4, maxHeaderBytes: 8192});
  const socket = createConnection({host: '127.0.0.1', port});
  socket.on('error', () => undefined);
  const timer = setInterval(() => socket.writable && socket.write('G'), 50);
  t.teardown(() => clearInterval(timer));
  let closedAfterBytes = 0;
  await new Promise<void>((resolve) => socket.once('close', () => {
    closedAfterBytes = socket.bytesWritten;
    resolve();
  }));
  t.true(closedAfterBytes < 20, `cut after ${closedAfterBytes} bytes`);
});

test('headers beyond the cap are refused with 431', async (t) => {
  const {port} = await server(t, {connectionDeadlineMs: 10_000, maxConnections: 4, maxHeaderBytes: 1024});
  const answer = await exchange(port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
  t.regex(answer, /^HTTP\/1\.1 431 /);
});

test('an address that is not this host\'s is refused at start with the key to fix', async (t) => {
  const error = await t.throwsAsync(startMetricsServer({address: '192.0.2.254', port: 0, allowFrom: [], log,
    render: async () => ({contentType: 'text/plain', text: ''})}));
  t.regex(error?.message ?? '', /^cannot listen for metrics on 192\.0\.2\.254:0: .*EADDRNOTAVAIL.*; metrics\.listen must be an address of this host/);
});
