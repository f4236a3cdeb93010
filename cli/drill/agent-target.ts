// The drill's view of a configured pair (baton rehearse on spare machines): everything through the local
// agent's control socket, which reaches the other host over the authenticated peer channel; the client is
// this machine, probing the service IP.

import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {hostText, type FailResult, type RehearsalAids, type StatusReport, type SwitchResult} from '../../agent/control-protocol.js';
import {BatonError} from '../../agent/errors.js';
import type {Role} from '../../agent/state-machine.js';
import {callAgent} from '../control-client.js';
import {startServiceProbers, startStreams, type ProbedService} from '../lab/probe-control.js';
import {httpUrl} from '../lab/topology-plan.js';
import type {DrillTarget, HostView} from './drill.js';
import {startRemoteTraffic, type RemoteTrafficOptions} from './remote-traffic.js';

// A switch reports progress at least every second; silence this long means the agent is gone.
const SWITCH_IDLE_TIMEOUT_MS = 60_000;
// The drill's traffic is bounded: at most this long, whatever happens to the drill.
const TRAFFIC_MAX_S = 600;
// The failure phase: the active host drops its service link this long (it restores it by itself): the dead
// timer, the takeover and a margin to watch the clients follow.
const FAIL_EXTRA_S = 8;

/** Where the probes come from: this machine, or another one over ssh. */
export type ClientSpec = {readonly kind: 'here'} | ({readonly kind: 'ssh'} & Pick<RemoteTrafficOptions, 'client' | 'sshConfig' | 'batonDir'>);

/**
 * `baton rehearse --with-failure`, before any step: both hosts must accept the rehearsal aids, since the failure phase
 * asks the local agent for fail-active and, when the peer is the active host, the peer for its drop-link. Each host's
 * answer is its own configuration's (the local agent asks the peer). Throws BatonError BAD_REQUEST naming each host
 * that does not enable them and the key.
 */
export function requireRehearsalAids(aids: RehearsalAids): void {
  const off = [aids.self, aids.peer].filter((host) => !host.enabled).map((host) => hostText(host.host));
  if (off.length === 0) return;
  const [its, agent] = off.length === 1 ? ['its', 'agent'] : ['their', 'agents'];
  throw new BatonError('BAD_REQUEST', `--with-failure needs the rehearsal aids on both hosts, and the ${off.join(' and the ')} ` +
    `${off.length === 1 ? 'does' : 'do'} not enable them: set \`rehearsal: {enabled: true}\` (rehearsal.enabled) in ${its} configuration ` +
    `and restart ${its} ${agent}, on a pair kept for rehearsals only; nothing was done`);
}

/**
 * What the rehearsal's client probes: every service address the agent reports (a dual-stack service: both, each a
 * stream of its own), or the one URL given with --url. An IPv6 address goes in brackets: http://[2001:db8::100]/.
 */
export function probedService(service: Pick<StatusReport['service'], 'address' | 'addresses'>, url: string | undefined): ProbedService {
  if (url !== undefined) return {urls: [url], families: [/^https?:\/\/\[/.test(url) ? 6 : 4]};
  const addresses = (service.addresses.length > 0 ? service.addresses : [service.address]).map((cidr) => cidr.split('/')[0] ?? '');
  return {urls: addresses.map(httpUrl), families: addresses.map((address) => (address.includes(':') ? 6 : 4))};
}

export async function createAgentTarget(socket: string, url: string | undefined, client: ClientSpec = {kind: 'here'}): Promise<DrillTarget> {
  const status = async (): Promise<StatusReport> => await callAgent(socket, {id: 'rehearse', type: 'status'}) as StatusReport;
  const first = await status();
  const selfRole = first.self.role;
  const probed = probedService(first.service, url);
  const names: Record<Role, string> = selfRole === 'primary'
    ? {primary: first.self.host, backup: first.peer.host ?? first.peer.address}
    : {primary: first.peer.host ?? first.peer.address, backup: first.self.host};
  return {
    pair: {primary: names.primary, backup: names.backup, serviceIp: first.service.addresses.join(' and '), mode: first.service.mode},
    deadAfterMs: first.timers.deadAfterMs,
    async view() {
      const s = await status();
      const self: HostView = {role: s.self.role, host: s.self.host, state: s.self.state, holdsIp: s.self.holdsIp, peerAlive: s.peer.alive};
      // The peer as this agent sees it: its own report of state and holding, and alive as far as we can tell.
      const peer: HostView = {role: s.peer.role, host: s.peer.host ?? s.peer.address, state: s.peer.alive ? s.peer.state ?? 'unknown' : 'unreachable',
        holdsIp: s.peer.alive ? s.peer.holdsIp : undefined, peerAlive: s.peer.alive};
      return selfRole === 'primary' ? {primary: self, backup: peer} : {primary: peer, backup: self};
    },
    // Any switch can be run from either host: the local agent coordinates it.
    async switchover(_from, options, onProgress) {
      return await callAgent(socket, {id: 'rehearse', type: 'switchover', options}, SWITCH_IDLE_TIMEOUT_MS, onProgress) as SwitchResult;
    },
    async resume(role) {
      await callAgent(socket, {id: 'rehearse', type: 'resume', peer: role !== selfRole});
    },
    async fail(role) {
      const seconds = Math.ceil(first.timers.deadAfterMs / 1000) + FAIL_EXTRA_S;
      const failed = await callAgent(socket, {id: 'rehearse', type: 'fail-active', seconds}, 10_000) as FailResult;
      if (failed.host.role !== role) throw new BatonError('STEP_FAILED', `expected the ${role} to be active, but the ${failed.host.role} was`);
      const backAt = Date.now() + seconds * 1000;
      // The host brings its link back by itself; the undo waits for that moment.
      return async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, backAt - Date.now())));
      };
    },
    async startTraffic(intervalMs) {
      if (intervalMs < 5 || intervalMs > 1000) throw new BatonError('BAD_REQUEST', `probe interval ${intervalMs} ms: expected 5..1000`);
      const bounds = {intervalMs, timeoutMs: Math.min(200, intervalMs * 10), durationS: TRAFFIC_MAX_S, maxProbes: Math.ceil(TRAFFIC_MAX_S * 1000 / intervalMs)};
      // A dual-stack service: one prober per address, each its own stream, as the lab's drill does.
      if (client.kind === 'ssh') return startStreams(probed, (address) => startRemoteTraffic({...client, ...bounds, url: address}));
      const dir = await mkdtemp(join(tmpdir(), 'baton-rehearse-'));
      const probers = await startServiceProbers(probed, {namespace: undefined, ...bounds,
        out: (stream) => join(dir, stream === undefined ? 'probes.jsonl' : `probes-${stream.toLowerCase()}.jsonl`)})
        .catch(async (error: unknown) => {
          await rm(dir, {recursive: true, force: true});
          throw error;
        });
      return {
        read: () => probers.read(),
        // The probe records come back from stop(); their files and the probers' logs are not wanted after it.
        stop: async () => {
          try {
            return await probers.stop();
          } finally {
            await rm(dir, {recursive: true, force: true});
          }
        },
      };
    },
  };
}
