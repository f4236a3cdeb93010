// The drill's view of the namespace lab: both agents through their control sockets, the client namespace for
// traffic, and a real link cut for the failure phase.

import type {StatusReport, SwitchResult} from '../../agent/control-protocol.js';
import {BatonError} from '../../agent/errors.js';
import type {Role} from '../../agent/state-machine.js';
import {callAgent} from '../control-client.js';
import {setHostLink, type Lab} from '../lab/lab.js';
import {startClients} from '../lab/clients-control.js';
import {mergeClientsSummaries} from '../lab/clients.js';
import {startServiceProbers} from '../lab/probe-control.js';
import {join} from 'node:path';
import {viewOf, type DrillTarget} from './drill.js';

// A switch reports progress at least every second; silence this long means the agent is gone.
const SWITCH_IDLE_TIMEOUT_MS = 60_000;
// The drill's traffic is bounded: at most this long and this many probes, whatever happens to the drill.
const TRAFFIC_MAX_S = 600;
// One switch's keep-alive clients, downloads and uploads: stopped when the switch ends, bounded if nothing stops them.
const CLIENTS_MAX_S = 120;
// The probes already open a new connection for each request; these are the other classes real sites have.
const CLIENT_ARGS = ['--fresh-interval-ms', '0', '--keep-alive', '4', '--keep-alive-interval-ms', '50', '--download-every-ms', '500',
  '--upload-every-ms', '500'];
// Per address of a dual-stack service: half of CLIENT_ARGS' connections and transfers each.
const DUAL_STACK_CLIENT_ARGS = ['--fresh-interval-ms', '0', '--keep-alive', '2', '--keep-alive-interval-ms', '50', '--download-every-ms', '1000',
  '--upload-every-ms', '1000'];

export function createLabTarget(lab: Lab, deadAfterMs: number): DrillTarget {
  let clientRuns = 0;
  const target: DrillTarget = {
    pair: {primary: `${lab.hosts.primary.namespace} (${lab.hosts.primary.address})`, backup: `${lab.hosts.backup.namespace} (${lab.hosts.backup.address})`,
      serviceIp: lab.serviceIps.join(' and '), mode: lab.mode},
    deadAfterMs,
    async view() {
      const ask = async (role: Role) => viewOf(await callAgent(lab.hosts[role].socket, {id: 'drill', type: 'status'}) as StatusReport);
      return {primary: await ask('primary'), backup: await ask('backup')};
    },
    async switchover(from, options, onProgress) {
      return await callAgent(lab.hosts[from].socket, {id: 'drill', type: 'switchover', options}, SWITCH_IDLE_TIMEOUT_MS, onProgress) as SwitchResult;
    },
    async resume(role) {
      await callAgent(lab.hosts[role].socket, {id: 'drill', type: 'resume', peer: false});
    },
    async fail(role) {
      const host = lab.hosts[role];
      const iface = 'eth0';
      await setHostLink(host, iface, false);
      return async () => {
        await setHostLink(host, iface, true);
      };
    },
    async startTraffic(intervalMs) {
      if (intervalMs < 5 || intervalMs > 1000) throw new BatonError('LAB_FAILED', `probe interval ${intervalMs} ms: expected 5..1000`);
      // A dual-stack service: one prober per address, each its own stream, so one family's outage shows.
      return await startServiceProbers({urls: lab.serviceUrls, families: lab.serviceFamilies}, {
        namespace: lab.client.namespace, intervalMs, timeoutMs: Math.min(200, intervalMs * 10),
        durationS: TRAFFIC_MAX_S, maxProbes: Math.ceil(TRAFFIC_MAX_S * 1000 / intervalMs),
        out: (stream) => join(lab.dir, stream === undefined ? 'drill-probes.jsonl' : `drill-probes-${stream.toLowerCase()}.jsonl`),
      });
    },
    async startClients() {
      clientRuns += 1;
      const run = clientRuns;
      if (lab.serviceUrls.length === 1) {
        return startClients({namespace: lab.client.namespace, url: lab.serviceUrl, durationS: CLIENTS_MAX_S,
          out: join(lab.dir, `drill-clients-${run}.json`), args: CLIENT_ARGS});
      }
      // A dual-stack service: the same clients, half of them over each address, so that the drain of both is seen
      // and the load is what a single-stack drill puts on the hosts.
      const started = await Promise.all(lab.serviceUrls.map((url, index) => startClients({
        namespace: lab.client.namespace, url, durationS: CLIENTS_MAX_S, args: DUAL_STACK_CLIENT_ARGS,
        out: join(lab.dir, `drill-clients-${run}-ipv${lab.serviceFamilies[index] ?? 4}.json`),
      })));
      return {stop: async () => mergeClientsSummaries(await Promise.all(started.map((clients) => clients.stop())))};
    },
  };
  return target;
}
