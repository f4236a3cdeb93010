// The replay part's attacker on the path, run inside the client's namespace by campaign/replay.ts: every datagram
// that reaches --listen is sent on to --to from --from-port (the campaign rewrites that port's source address to
// the primary's with nftables), held back first. The hold grows by --ramp-ms each second up to --delay-ms, so the
// receiver never sees a gap as long as the dead timer while the line is put in place: beacons keep coming, later
// and later. Ends after --seconds, or on SIGTERM, then writes what it relayed as JSON to --out.
//
//   node delay-line.js --listen 7499 --to 192.0.2.12:7411 --from-port 40413 --delay-ms 3000 --ramp-ms 500 --seconds 120 --out line.json

import {createSocket} from 'node:dgram';
import {writeFile} from 'node:fs/promises';
import {parseArgs} from 'node:util';

const {values} = parseArgs({options: {
  listen: {type: 'string'}, to: {type: 'string'}, 'from-port': {type: 'string'}, out: {type: 'string'},
  'delay-ms': {type: 'string', default: '3000'}, 'ramp-ms': {type: 'string', default: '500'}, seconds: {type: 'string', default: '120'},
}});

// Bounds whatever the caller asks: a hold of at most a minute, a run of at most 10 minutes.
const delayMs = Math.min(60_000, Math.max(0, Number(values['delay-ms'])));
const rampMsPerS = Math.min(60_000, Math.max(1, Number(values['ramp-ms'])));
const seconds = Math.min(600, Math.max(1, Number(values.seconds)));
const [host, portText] = (values.to ?? '').split(':');
const port = Number(portText);
if (host === undefined || host === '' || !Number.isInteger(port) || values.out === undefined || values.listen === undefined || values['from-port'] === undefined) {
  console.error('usage: delay-line --listen PORT --to ADDRESS:PORT --from-port N --out FILE [--delay-ms N] [--ramp-ms N] [--seconds S]');
  process.exit(2);
}

const inbound = createSocket('udp4');
const outbound = createSocket('udp4');
await new Promise<void>((resolve) => inbound.bind({port: Number(values.listen)}, () => resolve()));
await new Promise<void>((resolve) => outbound.bind({port: Number(values['from-port'])}, () => resolve()));
const started = performance.now();
let received = 0;
let relayed = 0;
let maxHeldMs = 0;
const pending = new Set<NodeJS.Timeout>();
inbound.on('message', (datagram) => {
  received += 1;
  const heldMs = Math.min(delayMs, ((performance.now() - started) / 1000) * rampMsPerS);
  maxHeldMs = Math.max(maxHeldMs, heldMs);
  const timer = setTimeout(() => {
    pending.delete(timer);
    outbound.send(datagram, port, host, () => {
      relayed += 1;
    });
  }, heldMs);
  pending.add(timer);
});

async function finish(): Promise<void> {
  for (const timer of pending) clearTimeout(timer);
  inbound.close();
  outbound.close();
  await writeFile(values.out ?? '', `${JSON.stringify({received, relayed, maxHeldMs: Math.round(maxHeldMs), dropped: pending.size})}\n`);
  process.exit(0);
}
process.once('SIGTERM', () => void finish());
setTimeout(() => void finish(), seconds * 1000);
