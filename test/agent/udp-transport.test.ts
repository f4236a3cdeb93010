// The UDP transport on real sockets (loopback): what arrives reaches the reader, and caughtUp() waits for all of it.

import {createSocket} from 'node:dgram';
import test from 'ava';
import {createUdpTransport} from '../../agent/adapters/udp-transport.js';

const LOOPBACK = '127.0.0.1';
let nextPort = 47_300 + (process.pid % 500) * 2;

async function sendAll(port: number, count: number): Promise<void> {
  const socket = createSocket('udp4');
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < count; i += 1) {
      socket.send(Buffer.from(`datagram ${i}`), port, LOOPBACK, (error) => {
        if (error) reject(error);
        done += 1;
        if (done === count) resolve();
      });
    }
  });
  socket.close();
}

test('caughtUp() resolves only once a slow reader has had every datagram that reached the socket', async (t) => {
  const port = nextPort++;
  const transport = await createUdpTransport({listen: {address: LOOPBACK, port}, peer: {address: LOOPBACK, port: port + 1000}});
  t.teardown(() => transport.close());
  let read = 0;
  const reader = (async () => {
    for await (const _ of transport.receive()) {
      // A busy loop: about 0.2 ms a datagram, so 400 take ~80 ms, far longer than one turn of the event loop.
      const until = performance.now() + 0.2;
      while (performance.now() < until) { /* busy */ }
      read += 1;
    }
  })();
  const count = 400;
  await sendAll(port, count);
  await transport.caughtUp();
  t.is(read + transport.dropped, count, 'everything sent had been read (or counted as dropped) when caughtUp resolved');
  t.true(read > 0);
  await transport.close();
  await reader;
});

test('caughtUp() resolves at once when nothing waits, and when the transport is closed', async (t) => {
  const port = nextPort++;
  const transport = await createUdpTransport({listen: {address: LOOPBACK, port}, peer: {address: LOOPBACK, port: port + 1000}});
  const reader = (async () => {
    for await (const _ of transport.receive()) { /* nothing */ }
  })();
  await t.notThrowsAsync(transport.caughtUp());
  await transport.close();
  await t.notThrowsAsync(transport.caughtUp());
  await reader;
});

test('beacons travel over IPv6: the socket is udp6 and the sender is reported in the form the config writes', async (t) => {
  const port = nextPort++;
  const a = await createUdpTransport({listen: {address: '::1', port}, peer: {address: '::1', port: port + 1}});
  const b = await createUdpTransport({listen: {address: '::1', port: port + 1}, peer: {address: '::1', port}});
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.send(Buffer.from('hello'));
  for await (const received of b.receive()) {
    t.deepEqual({text: Buffer.from(received.datagram).toString(), from: received.from, fromPort: received.fromPort},
      {text: 'hello', from: '::1', fromPort: port});
    break;
  }
});

test('an IPv6 listen address the host does not have is waited for (it may be tentative), then refused saying how to tell', async (t) => {
  const started = performance.now();
  const error = await t.throwsAsync(createUdpTransport({listen: {address: '2001:db8::dead', port: nextPort++},
    peer: {address: '2001:db8::12', port: 7411}, tentativeWaitMs: 300}));
  t.true(performance.now() - started >= 300, 'it was retried for the wait given');
  t.regex(error?.message ?? '', /^cannot listen on \[2001:db8::dead\]:\d+: .*EADDRNOTAVAIL.*\. Is listen\.address configured on this host\? If it is, it was still not usable after 300 ms: `ip -6 address show` says tentative \(duplicate address detection still running\) or dadfailed \(another host has it\)$/);
});
