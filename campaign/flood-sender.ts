// The flood's sender, run inside a lab namespace by campaign/flood.ts: sends a pool of hostile datagrams at one
// UDP port at a steady rate for a bounded time and count, then writes what it sent as JSON to --out.
//
//   node flood-sender.js --target 192.0.2.12:7411 --pool pool.bin --rate 10000 --seconds 30 --out sent.json
//     [--port 40411]   send from this UDP port (the campaign rewrites that port's source address with nftables)
//
// The pool file is the datagrams length-prefixed (2 bytes, big-endian), cycled through in order.

import {createSocket} from 'node:dgram';
import {readFile, writeFile} from 'node:fs/promises';
import {parseArgs} from 'node:util';

const {values} = parseArgs({options: {
  target: {type: 'string'}, pool: {type: 'string'}, out: {type: 'string'}, port: {type: 'string', default: '0'},
  rate: {type: 'string', default: '10000'}, seconds: {type: 'string', default: '30'},
}});

// Bounds whatever the caller asks: at most 20,000 a second for at most 5 minutes.
const rate = Math.min(20_000, Math.max(1, Number(values.rate)));
const seconds = Math.min(300, Math.max(0.1, Number(values.seconds)));
const total = Math.floor(rate * seconds);
const [host, portText] = (values.target ?? '').split(':');
const port = Number(portText);
if (host === undefined || host === '' || !Number.isInteger(port) || values.pool === undefined || values.out === undefined) {
  console.error('usage: flood-sender --target ADDRESS:PORT --pool FILE --out FILE [--rate N] [--seconds S] [--port N]');
  process.exit(2);
}

function readPool(bytes: Buffer): Buffer[] {
  const pool: Buffer[] = [];
  for (let at = 0; at + 2 <= bytes.length;) {
    const length = bytes.readUInt16BE(at);
    pool.push(bytes.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return pool;
}

const pool = readPool(await readFile(values.pool));
if (pool.length === 0) {
  console.error(`${values.pool}: no datagrams in the pool`);
  process.exit(2);
}
const socket = createSocket('udp4');
await new Promise<void>((resolve, reject) => {
  socket.once('error', reject);
  socket.bind({port: Number(values.port)}, () => resolve());
});

let queued = 0;
let sent = 0;
let errors = 0;
let lastError = '';
const started = performance.now();
// Paced by the clock, what is due every millisecond or so: the rate holds evenly across the second instead of in
// bursts. A timer, not setImmediate, between turns: spinning on setImmediate kept each sender at 100 % of a core,
// and on a 2-core machine the two senders starved the agent under test, which a flood from another host does not do.
while (queued < total) {
  const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
  while (queued < due) {
    const datagram = pool[queued % pool.length] as Buffer;
    queued += 1;
    socket.send(datagram, port, host, (error) => {
      if (error === null || error === undefined) {
        sent += 1;
      } else {
        errors += 1;
        lastError = error.message;
      }
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}
// Let the last sends' callbacks come in.
while (sent + errors < queued && performance.now() - started < (seconds + 5) * 1000) await new Promise((resolve) => setTimeout(resolve, 10));
const elapsedS = (performance.now() - started) / 1000;
socket.close();
await writeFile(values.out, `${JSON.stringify({sent, errors, lastError, elapsedS, rate, poolSize: pool.length})}\n`);
