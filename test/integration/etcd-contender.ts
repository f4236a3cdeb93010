// A contender for one service key, run in a namespace by etcd-lease.test.ts: the real etcd adapter and LeaseHolder,
// without the rest of the agent. It waits until the key is free, acquires it under a lease, probes that no other
// host answers for the service address (arping -D), puts the address on its interface while it holds, "acts" (a line every 200 ms, each after holds()) and takes the address off when
// the holder drops; then contends again. With `watch` it only logs every change under a prefix. Every line it
// writes is JSON with the wall-clock ms (the processes share the machine's clock) for the test to put in order.

import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {createEtcdGatewayStore} from '../../agent/adapters/etcd-gateway-store.js';
import {createSystemClock} from '../../agent/adapters/system-clock.js';
import {LeaseHolder, leaseTiming} from '../../agent/coordination/lease-holder.js';
import {describeError} from '../../agent/errors.js';
import type {CoordinationStore} from '../../agent/ports.js';

export interface ContenderOptions {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly key: string;
  readonly ttlS: number;
  readonly marginMs: number;
  readonly iface: string;
  /** The service address with its prefix length, e.g. 192.0.2.100/24. */
  readonly cidr: string;
  /** Watch this prefix and log its changes instead of contending. */
  readonly watch?: string;
}

export type ContenderLine = {readonly event: string; readonly name: string; readonly wallMs: number; readonly monoMs: number} & Record<string, unknown>;

// Between two looks at a taken key; and the rhythm of the acts while holding.
const POLL_MS = 100;
const ACT_EVERY_MS = 200;
const CALL_TIMEOUT_MS = 1000;

const options = JSON.parse(process.argv[2] ?? '{}') as ContenderOptions;
const clock = createSystemClock();
const store = createEtcdGatewayStore({endpoints: options.endpoints, timeoutMs: CALL_TIMEOUT_MS});

function log(event: string, fields: Record<string, unknown> = {}): void {
  // Synchronous: stdout is a file, so the line is written before whatever comes next.
  process.stdout.write(`${JSON.stringify({event, name: options.name, wallMs: Date.now(), monoMs: clock.now(), ...fields})}\n`);
}

let stopping = false;
let current: LeaseHolder | undefined;
process.on('SIGTERM', () => {
  stopping = true;
  void (current?.release() ?? Promise.resolve()).finally(() => process.exit(0));
});

// Every renewal the holder sends is logged as it goes out: after a freeze, none may precede the drop.
const logged: CoordinationStore = {
  ...store,
  renewLease: (id, callOptions) => {
    log('renew-sent');
    return store.renewLease(id, callOptions);
  },
};

async function watch(prefix: string): Promise<void> {
  let after: number | undefined;
  while (!stopping) {
    try {
      log('watching', {after});
      for await (const change of store.watch(prefix, new AbortController().signal, after)) {
        if (change.type === 'put') {
          after = change.key.modRevision;
          log('watch-put', {key: change.key.key, value: change.key.value, revision: change.key.modRevision});
        } else {
          after = change.modRevision;
          log('watch-delete', {key: change.key, revision: change.modRevision});
        }
      }
    } catch (error) {
      log('watch-broke', {error: describeError(error)});
      await sleep(POLL_MS);
    }
  }
}

async function contend(): Promise<void> {
  const timing = leaseTiming(options.ttlS, options.marginMs);
  while (!stopping) {
    try {
      const taken = await store.read(options.key);
      if (taken !== undefined) {
        await sleep(POLL_MS);
        continue;
      }
      const grantSentAtMs = clock.bootNow(); // the lease holder keeps its times on the boot clock
      const lease = await store.grantLease(options.ttlS);
      const {acquired, key} = await store.acquire(options.key, options.name, lease.id);
      if (!acquired) {
        await store.revokeLease(lease.id).catch(() => undefined);
        continue;
      }
      await hold(new LeaseHolder({
        clock, store: logged, timing,
        dropAddress: async (reason, lateMs) => {
          log('dropped', {reason, lateMs: Math.round(lateMs), revision: key.modRevision});
          await execa('ip', ['addr', 'del', options.cidr, 'dev', options.iface], {reject: false});
          log('address-removed');
        },
        log: (line) => log('holder', {line}),
      }, {lease: lease.id, epoch: key.modRevision, grantSentAtMs, grantedTtlS: lease.ttlS}), key.modRevision);
    } catch (error) {
      log('contend-failed', {error: describeError(error)});
      await sleep(POLL_MS);
    }
  }
}

/** Whether another host answers ARP for the service address: the agent's duplicate-address probe, as `arping -D`. */
async function addressInUse(): Promise<boolean> {
  const address = options.cidr.split('/')[0] ?? '';
  const result = await execa('arping', ['-D', '-q', '-I', options.iface, '-c', '1', '-w', '1', address], {reject: false});
  return result.exitCode === 1;
}

async function hold(holder: LeaseHolder, revision: number): Promise<void> {
  current = holder;
  const ended = holder.run();
  log('key-acquired', {revision});
  // The key is ours, but a holder frozen or cut off may still have the address in its kernel: take it only once
  // nobody answers for it, as the agent's takeover does.
  while (holder.holds() && await addressInUse()) {
    log('address-in-use', {revision});
    await sleep(POLL_MS);
  }
  if (holder.holds()) {
    // replace: succeeds when the address is there already (a contender killed by the previous test left it).
    await execa('ip', ['addr', 'replace', options.cidr, 'dev', options.iface]).catch(async (error: unknown) => {
      log('address-failed', {error: describeError(error)});
      await holder.release();
    });
    // A drop while the address was being added took nothing off: take it off now.
    if (holder.holds()) log('acquired', {revision});
    else await execa('ip', ['addr', 'del', options.cidr, 'dev', options.iface], {reject: false});
  }
  const acting = setInterval(() => {
    if (holder.holds()) log('act', {revision});
  }, ACT_EVERY_MS);
  const end = await ended;
  clearInterval(acting);
  current = undefined;
  log('hold-ended', {reason: end.reason, lateMs: Math.round(end.atMs - end.deadlineMs)});
}

if (options.watch === undefined) await contend();
else await watch(options.watch);
