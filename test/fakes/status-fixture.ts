// A status report as an agent sends it for a settled pair, seen from the primary: active, holding the IP, its peer a
// standby. Tests change the parts they judge.

import type {StatusReport} from '../../agent/control-protocol.js';
import {REJECT_REASONS} from '../../agent/peer/beacon-codec.js';
import {VERSION} from '../../agent/version.js';

type Self = StatusReport['self'];
type Peer = StatusReport['peer'];

export function statusReport(over: {self?: Partial<Self>; peer?: Partial<Peer>} & Partial<Omit<StatusReport, 'self' | 'peer'>> = {}): StatusReport {
  const {self, peer, ...rest} = over;
  const service = rest.service ?? {address: '192.0.2.100/24', addresses: ['192.0.2.100/24'], interface: 'eth0', mode: 'address'};
  return {
    pair: 'web',
    self: {
      role: 'primary', host: 'web-a', pid: 9884, bootId: 'primaryboot1', version: VERSION, state: 'active',
      reason: 'took the service IP', stateForMs: 60_000, epoch: 1, holdsIp: true, health: 'ok', healthChecks: [],
      uptimeMs: 61_000, listen: '192.0.2.11:7411', rehearsal: false,
      // As an agent observes them: every address when it holds the IP, none when not, unless a test says which.
      held: self?.holdsIp === false ? [] : service.addresses,
      ...self,
    },
    service,
    peer: {
      role: 'backup', address: '192.0.2.12:7411', alive: true, lastSeenMsAgo: 90, host: 'web-b', bootId: 'backupboot1',
      version: VERSION, state: 'standby', holdsIp: false, epoch: 0, health: 'ok', rttMs: {last: 0.5, average: 0.6}, loss: 0,
      rejectedSinceValid: undefined,
      ...peer,
    },
    lastSwitch: undefined,
    switching: undefined,
    beacons: {sent: 300, accepted: 299, rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as StatusReport['beacons']['rejected'], droppedUnread: 0},
    timers: {loopLagMs: {p99: 0.5, max: 3.1}, lateBeyondInterval: 0, intervalMs: 200, deadAfterMs: 1000},
    control: {refusedBusy: 0, timedOut: 0, extraRequests: 0},
    ...rest,
  };
}

/** The report as it crosses the socket: JSON, where undefined fields are absent. */
export function overTheWire(report: unknown): unknown {
  return JSON.parse(JSON.stringify(report));
}
