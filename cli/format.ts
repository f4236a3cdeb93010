// Renders status reports (and later progress and drill reports) as text for people, or JSON for machines.

import type {StatusReport} from '../agent/control-protocol.js';

export function formatStatus(status: StatusReport): string {
  const {self, peer, service, beacons, timers} = status;
  const lines: string[] = [];
  lines.push(`pair ${status.pair}: this host is the ${self.role} (${self.host}, pid ${self.pid})`);
  lines.push(`  state       ${self.state} for ${formatDuration(self.stateForMs)}: ${self.reason}`);
  lines.push(`  service IP  ${service.address} on ${service.interface} (${service.mode} mode): ${heldText(self.holdsIp, self.holdsIpError)}`);
  lines.push(`  epoch       ${self.epoch}, up ${formatDuration(self.uptimeMs)}, boot ${self.bootId}, beacons on ${self.listen}`);
  lines.push(`peer ${peer.role} at ${peer.address}${peer.host === undefined ? '' : ` (${peer.host})`}`);
  if (peer.lastSeenMsAgo === undefined) {
    lines.push('  alive       no: no valid beacon received yet');
  } else {
    lines.push(`  alive       ${peer.alive ? 'yes' : 'NO'}: last valid beacon ${formatDuration(peer.lastSeenMsAgo)} ago`);
    lines.push(`  state       ${peer.state ?? '?'}, epoch ${peer.epoch ?? '?'}, service IP ${peer.holdsIp === true ? 'held there' : 'not held there'} (as it reports)`);
    lines.push(`  link        rtt ${peer.rttMs === undefined ? 'not measured yet' : `${formatMs(peer.rttMs.last)} (avg ${formatMs(peer.rttMs.average)})`}, loss ${peer.loss === undefined ? 'not measured yet' : `${(peer.loss * 100).toFixed(1)} %`}`);
  }
  const rejected = Object.entries(beacons.rejected).filter(([, count]) => count > 0);
  lines.push(`beacons       sent ${beacons.sent}, accepted ${beacons.accepted}, rejected ${rejected.length === 0 ? 'none' : rejected.map(([reason, count]) => `${reason} ${count}`).join(', ')}`);
  lines.push(`timers        interval ${timers.intervalMs} ms, dead after ${timers.deadAfterMs} ms; event loop late by p99 ${formatMs(timers.loopLagMs.p99)}, max ${formatMs(timers.loopLagMs.max)}` +
    (timers.lateBeyondInterval > 0 ? `, ${timers.lateBeyondInterval} tick(s) late by more than an interval` : ''));
  const warning = holderWarning(status);
  if (warning !== undefined) lines.push(`WARNING       ${warning}`);
  return `${lines.join('\n')}\n`;
}

function heldText(holdsIp: boolean | undefined, error: string | undefined): string {
  if (holdsIp === undefined) return `unknown (${error ?? 'not observed'})`;
  return holdsIp ? 'held here (observed on the interface)' : 'not held here (observed on the interface)';
}

/** Both holding, or neither while the peer is alive and nobody is switching: worth shouting about. */
function holderWarning(status: StatusReport): string | undefined {
  const {self, peer} = status;
  if (self.holdsIp === true && peer.alive && peer.holdsIp === true) return 'both hosts report holding the service IP';
  if (self.holdsIp === false && peer.alive && peer.holdsIp === false && self.state !== 'starting' && peer.state !== 'starting') {
    return 'neither host holds the service IP';
  }
  return undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function formatMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
}
