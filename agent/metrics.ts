// The Prometheus exposition of the agent at one moment: its status (what `baton status` shows) and its tally → text,
// through prom-client. A registry is built for each scrape from that one snapshot, so no metric keeps a count of its
// own that could drift from `baton status`: the counters are the status's counters, as of the scrape.

import {Counter, Gauge, Histogram, Registry} from 'prom-client';
import type {AgentStatus} from './control-protocol.js';
import type {MetricsRefusals} from './metrics-server.js';
import {REJECT_REASONS} from './peer/beacon-codec.js';
import {AGENT_STATE_NAMES} from './state-machine.js';
import {SWITCH_OUTCOMES, type TallySnapshot} from './tally.js';

/** What one scrape reads: taken once, so every metric of the scrape shows the same moment. */
export interface MetricsSource {
  readonly status: AgentStatus;
  readonly tally: TallySnapshot;
}

export interface BuildInfo {
  readonly version: string;
  /** process.version, e.g. v24.21.0. */
  readonly node: string;
}

// A planned switch takes 5–6 s with its drain in the lab (README); the confirmation may wait up to confirm.timeout_s
// (default 30) and the drain up to drain.timeout_s (default 60), so the buckets reach past both.
export const SWITCH_DURATION_BUCKETS_S = [1, 2, 5, 10, 20, 30, 60, 90, 120, 300] as const;

/** Every metric, its type and its help text; docs/operator-guide.md lists the same names (test/docs.test.ts). */
export const METRICS = {
  baton_build_info: {type: 'gauge', help: 'Always 1: the labels say which baton and which Node.js this agent runs.'},
  baton_state: {type: 'gauge', help: '1 for the state this host is in, 0 for the others; role is this host\'s node: setting.'},
  baton_holds_service_ip: {type: 'gauge', help: '1 when the service IP is on this host\'s interface, as observed at the scrape (a dual-stack one: both addresses).'},
  baton_service_address_held: {type: 'gauge', help: '1 for each service address on this host\'s interface, 0 for one that is not, as observed at the scrape.'},
  baton_transitions_total: {type: 'counter', help: 'State changes of this host since the agent started.'},
  baton_beacons_sent_total: {type: 'counter', help: 'Beacons sent to the peer.'},
  baton_beacons_accepted_total: {type: 'counter', help: 'Datagrams from the peer accepted (authentic, fresh, of this pair).'},
  baton_beacons_rejected_total: {type: 'counter', help: 'Datagrams rejected, by reason (docs/protocol.md); no state changed for any of them.'},
  baton_beacons_dropped_unread_total: {type: 'counter', help: 'Datagrams dropped before they were judged because the agent fell behind (a flood).'},
  baton_peer_alive: {type: 'gauge', help: '1 while the peer\'s beacons arrive within heartbeat.dead_after_ms.'},
  baton_peer_last_seen_seconds: {type: 'gauge', help: 'Seconds since the peer was last known alive; absent until its first valid beacon.'},
  baton_peer_rtt_seconds: {type: 'gauge', help: 'Round-trip time to the peer, the last sample; absent until there is one.'},
  baton_peer_rtt_average_seconds: {type: 'gauge', help: 'Round-trip time to the peer, smoothed (each sample weighs 1/8); absent until there is one.'},
  baton_peer_beacon_loss_ratio: {type: 'gauge', help: 'Fraction of the peer\'s last 100 beacons that never arrived; absent until there is a window.'},
  baton_announcements_sent_total: {type: 'counter', help: 'Announcements of the service IP (gratuitous ARP, unsolicited NA) sent without an error.'},
  baton_switches_total: {type: 'counter', help: 'Planned switches this host took part in, by outcome (interrupted: found by a restart).'},
  baton_switch_duration_seconds: {type: 'histogram', help: 'Planned switches from begin to end on this host, by outcome (not the interrupted ones).'},
  baton_event_loop_lateness_p99_seconds: {type: 'gauge', help: 'How late the beacon timer ran, 99th percentile over its last 1000 ticks.'},
  baton_event_loop_lateness_max_seconds: {type: 'gauge', help: 'How late the beacon timer ran at most since the agent started.'},
  baton_event_loop_late_ticks_total: {type: 'counter', help: 'Beacon timer ticks later than a whole heartbeat interval (the peer may have seen this host as dead).'},
  baton_metrics_refused_total: {type: 'counter', help: 'Connections to this endpoint refused: not-allowed (neither loopback nor in metrics.allow_from), busy (the connection cap).'},
} as const satisfies Record<string, {readonly type: 'gauge' | 'counter' | 'histogram'; readonly help: string}>;

export type MetricName = keyof typeof METRICS;

/** The Content-Type of renderMetrics' text (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** The exposition text for one snapshot; `refusals` are the endpoint's own. */
export async function renderMetrics(source: MetricsSource, build: BuildInfo, refusals: MetricsRefusals = {notAllowed: 0, busy: 0}): Promise<string> {
  const {status, tally} = source;
  const registry = new Registry();
  const registers = [registry];
  const gauge = <L extends string>(name: MetricName, labelNames: readonly L[] = []): Gauge<L> =>
    new Gauge({name, help: METRICS[name].help, labelNames, registers});
  const counter = <L extends string>(name: MetricName, labelNames: readonly L[] = []): Counter<L> =>
    new Counter({name, help: METRICS[name].help, labelNames, registers});
  const seconds = (ms: number): number => ms / 1000;

  gauge('baton_build_info', ['version', 'node']).set({version: build.version, node: build.node}, 1);
  const state = gauge('baton_state', ['state', 'role']);
  for (const name of AGENT_STATE_NAMES) state.set({state: name, role: status.self.role}, name === status.self.state ? 1 : 0);
  if (status.self.holdsIp !== undefined) gauge('baton_holds_service_ip').set(status.self.holdsIp ? 1 : 0);
  const held = status.self.held;
  if (held !== undefined) {
    // One series per address, so that a sum by address across the pair finds an address on two hosts or on none,
    // which a host holding one address of a dual-stack service makes (baton_holds_service_ip is 0 there).
    const address = gauge('baton_service_address_held', ['address']);
    for (const cidr of status.service.addresses) address.set({address: cidr}, held.includes(cidr) ? 1 : 0);
  }

  const transitions = counter('baton_transitions_total', ['from', 'to']);
  for (const {from, to, count} of tally.transitions) transitions.inc({from, to}, count);

  const {beacons, peer, timers} = status;
  counter('baton_beacons_sent_total').inc(beacons.sent);
  counter('baton_beacons_accepted_total').inc(beacons.accepted);
  const rejected = counter('baton_beacons_rejected_total', ['reason']);
  for (const reason of REJECT_REASONS) rejected.inc({reason}, beacons.rejected[reason] ?? 0);
  counter('baton_beacons_dropped_unread_total').inc(beacons.droppedUnread);

  gauge('baton_peer_alive').set(peer.alive ? 1 : 0);
  if (peer.lastSeenMsAgo !== undefined) gauge('baton_peer_last_seen_seconds').set(seconds(peer.lastSeenMsAgo));
  if (peer.rttMs !== undefined) {
    gauge('baton_peer_rtt_seconds').set(seconds(peer.rttMs.last));
    gauge('baton_peer_rtt_average_seconds').set(seconds(peer.rttMs.average));
  }
  if (peer.loss !== undefined) gauge('baton_peer_beacon_loss_ratio').set(peer.loss);

  counter('baton_announcements_sent_total').inc(tally.announcements);
  const switches = counter('baton_switches_total', ['outcome']);
  const durations = new Histogram({
    name: 'baton_switch_duration_seconds', help: METRICS.baton_switch_duration_seconds.help, labelNames: ['outcome'],
    buckets: [...SWITCH_DURATION_BUCKETS_S], registers,
  });
  for (const outcome of SWITCH_OUTCOMES) {
    switches.inc({outcome}, 0);
    if (outcome !== 'interrupted') durations.zero({outcome});
  }
  for (const {outcome, seconds: taken} of tally.switches) {
    switches.inc({outcome});
    if (taken !== undefined) durations.observe({outcome}, taken);
  }

  gauge('baton_event_loop_lateness_p99_seconds').set(seconds(timers.loopLagMs.p99));
  gauge('baton_event_loop_lateness_max_seconds').set(seconds(timers.loopLagMs.max));
  counter('baton_event_loop_late_ticks_total').inc(timers.lateBeyondInterval);
  const refused = counter('baton_metrics_refused_total', ['reason']);
  refused.inc({reason: 'not-allowed'}, refusals.notAllowed);
  refused.inc({reason: 'busy'}, refusals.busy);
  return registry.metrics();
}
