// What `baton status` shows, assembled from the agent's parts as they are at one moment. Pure.

import type {Config} from './config/schema.js';
import type {AgentStatus} from './control-protocol.js';
import type {HealthSnapshot} from './health.js';
import type {PeerStats} from './peer/peer-monitor.js';
import type {MachineState} from './state-machine.js';
import {endpointText} from './net/ip-address.js';
import type {Found} from './net/service-addresses.js';

export interface StatusParts {
  readonly config: Config;
  /** Monotonic ms now, and when the agent started and entered its state. */
  readonly now: number;
  readonly startedAt: number;
  readonly stateSince: number;
  readonly machine: MachineState;
  readonly self: {readonly host: string; readonly pid: number; readonly bootId: string; readonly version: string};
  /** What the peer's current agent said it runs, if it has. */
  readonly peerVersion: string | undefined;
  /** Which service addresses this host answers for, observed on the interface while answering, not believed. */
  readonly served: Found;
  readonly health: HealthSnapshot;
  readonly peer: PeerStats;
  readonly lastSwitch: {readonly id: string; readonly outcome: string; readonly reason: string; readonly endedAt: number} | undefined;
  readonly switching: {readonly id: string; readonly side: string} | undefined;
  readonly beacons: {readonly sent: number; readonly droppedUnread: number};
  readonly lateness: {readonly p99: number; readonly max: number; readonly beyondInterval: number};
}

export function assembleStatus(parts: StatusParts): AgentStatus {
  const {config, now, machine, peer} = parts;
  const last = peer.lastBeacon;
  return {
    pair: config.pair,
    self: {
      role: config.node,
      host: parts.self.host,
      pid: parts.self.pid,
      bootId: parts.self.bootId,
      version: parts.self.version,
      state: machine.name,
      reason: machine.reason,
      stateForMs: Math.round(now - parts.stateSince),
      epoch: machine.epoch,
      holdsIp: parts.served.absent.length === 0,
      held: parts.served.present.map((ip) => ip.cidr),
      health: machine.health,
      healthChecks: parts.health.checks.map((c) => ({name: c.name, ok: c.ok, detail: c.detail})),
      uptimeMs: Math.round(now - parts.startedAt),
      listen: endpointText(config.listen.address, config.listen.port),
      rehearsal: config.rehearsal.enabled,
    },
    service: {address: config.service.ip.cidr, addresses: config.service.ips.map((ip) => ip.cidr), interface: config.service.interface, mode: config.service.mode},
    peer: {
      role: config.node === 'primary' ? 'backup' : 'primary',
      address: endpointText(config.peer.address, config.peer.port),
      alive: peer.alive,
      lastSeenMsAgo: peer.lastSeenAt === undefined ? undefined : Math.round(now - peer.lastSeenAt),
      host: last?.host,
      bootId: last?.boot,
      version: parts.peerVersion,
      state: last?.state,
      holdsIp: last?.holdsIp,
      epoch: last?.epoch,
      health: last?.health,
      rttMs: peer.rttMs === undefined ? undefined : {last: round2(peer.rttMs.last), average: round2(peer.rttMs.average)},
      loss: peer.loss,
      rejectedSinceValid: peer.rejectedSinceValid,
    },
    lastSwitch: parts.lastSwitch === undefined ? undefined : {
      id: parts.lastSwitch.id, outcome: parts.lastSwitch.outcome, reason: parts.lastSwitch.reason,
      endedMsAgo: Math.round(now - parts.lastSwitch.endedAt),
    },
    switching: parts.switching,
    beacons: {sent: parts.beacons.sent, accepted: peer.accepted, rejected: peer.rejected, droppedUnread: parts.beacons.droppedUnread},
    timers: {
      loopLagMs: {p99: parts.lateness.p99, max: parts.lateness.max},
      lateBeyondInterval: parts.lateness.beyondInterval,
      intervalMs: config.heartbeat.intervalMs,
      deadAfterMs: config.heartbeat.deadAfterMs,
    },
  };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
