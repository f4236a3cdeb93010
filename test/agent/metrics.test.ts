// The Prometheus exposition: every metric for a status, its labels, and /metrics agreeing with `baton status`.

import test from 'ava';
import {METRICS, renderMetrics, SWITCH_DURATION_BUCKETS_S, type MetricsSource} from '../../agent/metrics.js';
import {REJECT_REASONS} from '../../agent/peer/beacon-codec.js';
import {AGENT_STATE_NAMES, initialState} from '../../agent/state-machine.js';
import {assembleStatus, type StatusParts} from '../../agent/status-report.js';
import {AgentTally} from '../../agent/tally.js';
import {createFakePair} from '../fakes/fake-pair.js';
import {BACKUP_ADDRESS, SERVICE_IP, SERVICE_IP6} from '../fakes/test-config.js';
import {settledPair, switchover} from '../fakes/switch-driver.js';
import {testConfig} from '../fakes/test-config.js';

const BUILD = {version: '0.1.0', node: 'v24.21.0'};

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of an exposition text (no escapes in baton's label values). */
function samples(text: string): Sample[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
    const match = /^([a-z0-9_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    return {name: match[1] ?? '', labels, value: Number(match[3])};
  });
}

function value(all: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

function source(over: Partial<StatusParts> = {}, tally = new AgentTally()): MetricsSource {
  const status = assembleStatus({
    config: testConfig('backup'),
    now: 10_000, startedAt: 1000, stateSince: 4000,
    machine: {...initialState('backup', 3), name: 'standby', reason: 'backup at start, ready to take over'},
    self: {host: 'web-b', pid: 42, bootId: 'boot1', version: '0.1.0'},
    served: {present: [], absent: testConfig('backup').service.ips},
    health: {health: 'ok', checks: []},
    peer: {alive: true, lastBeacon: undefined, lastSeenAt: 9750, rttMs: {last: 0.5, average: 0.25}, loss: 0.02, accepted: 40,
      rejected: {...Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])), 'bad-mac': 7} as StatusParts['peer']['rejected'],
      rejectedSinceValid: undefined},
    lastSwitch: undefined,
    switching: undefined,
    beacons: {sent: 45, droppedUnread: 3},
    lateness: {p99: 1.5, max: 250, beyondInterval: 2},
    peerVersion: undefined,
    ...over,
  });
  return {status, tally: tally.snapshot()};
}

test('every metric is exposed, with its help and type, for an agent that has seen its peer', async (t) => {
  const text = await renderMetrics(source(), BUILD);
  for (const [name, {type, help}] of Object.entries(METRICS)) {
    t.true(text.includes(`# HELP ${name} ${help}\n`), `${name} has its help`);
    t.true(text.includes(`# TYPE ${name} ${type}\n`), `${name} is a ${type}`);
  }
});

test('the values are the status\'s, in seconds where status says ms', async (t) => {
  const all = samples(await renderMetrics(source(), BUILD));
  t.is(value(all, 'baton_build_info', {version: '0.1.0', node: 'v24.21.0'}), 1);
  t.is(value(all, 'baton_holds_service_ip'), 0);
  t.is(value(all, 'baton_service_address_held', {address: '192.0.2.100/24'}), 0);
  t.is(value(all, 'baton_beacons_sent_total'), 45);
  t.is(value(all, 'baton_beacons_accepted_total'), 40);
  t.is(value(all, 'baton_beacons_rejected_total', {reason: 'bad-mac'}), 7);
  t.is(value(all, 'baton_beacons_dropped_unread_total'), 3);
  t.is(value(all, 'baton_peer_alive'), 1);
  t.is(value(all, 'baton_peer_last_seen_seconds'), 0.25);
  t.is(value(all, 'baton_peer_rtt_seconds'), 0.0005);
  t.is(value(all, 'baton_peer_rtt_average_seconds'), 0.00025);
  t.is(value(all, 'baton_peer_beacon_loss_ratio'), 0.02);
  t.is(value(all, 'baton_event_loop_lateness_p99_seconds'), 0.0015);
  t.is(value(all, 'baton_event_loop_lateness_max_seconds'), 0.25);
  t.is(value(all, 'baton_event_loop_late_ticks_total'), 2);
});

test('the endpoint\'s own refusals are counted by reason, both from the start', async (t) => {
  t.deepEqual(samples(await renderMetrics(source(), BUILD)).filter((s) => s.name === 'baton_metrics_refused_total')
    .map((s) => [s.labels['reason'], s.value]), [['not-allowed', 0], ['busy', 0]]);
  const all = samples(await renderMetrics(source(), BUILD, {notAllowed: 3, busy: 1}));
  t.is(value(all, 'baton_metrics_refused_total', {reason: 'not-allowed'}), 3);
  t.is(value(all, 'baton_metrics_refused_total', {reason: 'busy'}), 1);
});

test('the state is one-hot over every state name, labelled with this host\'s role', async (t) => {
  const all = samples(await renderMetrics(source(), BUILD));
  const states = all.filter((s) => s.name === 'baton_state');
  t.deepEqual(states.map((s) => s.labels['state']), [...AGENT_STATE_NAMES]);
  t.true(states.every((s) => s.labels['role'] === 'backup'));
  t.deepEqual(states.filter((s) => s.value === 1).map((s) => s.labels['state']), ['standby']);
});

test('every reject reason and every switch outcome is there from the start, at 0', async (t) => {
  const all = samples(await renderMetrics(source({
    peer: {alive: false, lastBeacon: undefined, lastSeenAt: undefined, rttMs: undefined, loss: undefined, accepted: 0,
      rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as StatusParts['peer']['rejected'], rejectedSinceValid: undefined},
  }), BUILD));
  t.deepEqual(all.filter((s) => s.name === 'baton_beacons_rejected_total').map((s) => [s.labels['reason'], s.value]),
    REJECT_REASONS.map((reason) => [reason, 0]));
  t.deepEqual(all.filter((s) => s.name === 'baton_switches_total').map((s) => [s.labels['outcome'], s.value]),
    [['done', 0], ['rolled-back', 0], ['interrupted', 0]]);
  t.is(value(all, 'baton_switch_duration_seconds_count', {outcome: 'done'}), 0);
  t.is(value(all, 'baton_announcements_sent_total'), 0);
  t.deepEqual(all.filter((s) => s.name === 'baton_transitions_total'), [], 'no transition yet, no series');
});

test('a peer never heard has no age, RTT or loss: absent, not 0', async (t) => {
  const all = samples(await renderMetrics(source({
    peer: {alive: false, lastBeacon: undefined, lastSeenAt: undefined, rttMs: undefined, loss: undefined, accepted: 0,
      rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as StatusParts['peer']['rejected'], rejectedSinceValid: undefined},
  }), BUILD));
  t.is(value(all, 'baton_peer_alive'), 0);
  for (const name of ['baton_peer_last_seen_seconds', 'baton_peer_rtt_seconds', 'baton_peer_rtt_average_seconds', 'baton_peer_beacon_loss_ratio']) {
    t.false(all.some((s) => s.name === name), name);
  }
});

test('transitions, announcements and switches come from the tally; durations fill the histogram by outcome', async (t) => {
  const tally = new AgentTally();
  tally.transition('starting', 'standby');
  tally.transition('standby', 'switching');
  tally.transition('switching', 'active');
  tally.transition('standby', 'switching');
  tally.announced();
  tally.switchBegun('a', 1000);
  tally.switchEnded('a', 'done', 6500);
  tally.switchBegun('b', 10_000);
  tally.switchEnded('b', 'rolled-back', 41_000);
  tally.switchEnded('c', 'interrupted', 50_000);
  const all = samples(await renderMetrics(source({}, tally), BUILD));
  t.is(value(all, 'baton_transitions_total', {from: 'standby', to: 'switching'}), 2);
  t.is(value(all, 'baton_transitions_total', {from: 'switching', to: 'active'}), 1);
  t.is(value(all, 'baton_announcements_sent_total'), 1);
  t.is(value(all, 'baton_switches_total', {outcome: 'done'}), 1);
  t.is(value(all, 'baton_switches_total', {outcome: 'rolled-back'}), 1);
  t.is(value(all, 'baton_switches_total', {outcome: 'interrupted'}), 1);
  t.is(value(all, 'baton_switch_duration_seconds_sum', {outcome: 'done'}), 5.5);
  t.is(value(all, 'baton_switch_duration_seconds_bucket', {outcome: 'done', le: '5'}), 0);
  t.is(value(all, 'baton_switch_duration_seconds_bucket', {outcome: 'done', le: '10'}), 1);
  t.is(value(all, 'baton_switch_duration_seconds_bucket', {outcome: 'rolled-back', le: '30'}), 0);
  t.is(value(all, 'baton_switch_duration_seconds_bucket', {outcome: 'rolled-back', le: '60'}), 1);
  t.is(value(all, 'baton_switch_duration_seconds_bucket', {outcome: 'rolled-back', le: '+Inf'}), 1);
  t.is(all.filter((s) => s.name === 'baton_switch_duration_seconds_bucket' && s.labels['outcome'] === 'done').length,
    SWITCH_DURATION_BUCKETS_S.length + 1);
  t.false(all.some((s) => s.name.startsWith('baton_switch_duration') && s.labels['outcome'] === 'interrupted'),
    'an interrupted switch has no duration this run saw');
});

test('/metrics and `baton status` agree on a running agent: beacons, rejects, peer, state', async (t) => {
  const {clock, primary, backup} = createFakePair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1000);
  const captured = backup.transport.sent.at(-1);
  if (captured === undefined) return t.fail('the backup sent nothing');
  primary.transport.inject(captured, BACKUP_ADDRESS);
  primary.transport.inject(captured, '192.0.2.66');
  await clock.advance(200);

  const {status, tally} = await primary.agent.metrics();
  const all = samples(await renderMetrics({status, tally}, BUILD));
  t.is(value(all, 'baton_beacons_sent_total'), status.beacons.sent);
  t.is(value(all, 'baton_beacons_accepted_total'), status.beacons.accepted);
  for (const reason of REJECT_REASONS) {
    t.is(value(all, 'baton_beacons_rejected_total', {reason}), status.beacons.rejected[reason], reason);
  }
  t.is(status.beacons.rejected.replay, 1);
  t.is(status.beacons.rejected['wrong-source'], 1);
  t.is(value(all, 'baton_peer_alive'), 1);
  t.is(value(all, 'baton_peer_last_seen_seconds'), (status.peer.lastSeenMsAgo ?? Number.NaN) / 1000);
  t.is(value(all, 'baton_state', {state: status.self.state, role: 'primary'}), 1);
  t.is(value(all, 'baton_holds_service_ip'), 1);
  t.is(value(all, 'baton_transitions_total', {from: 'starting', to: 'active'}), 1);
  t.is(value(all, 'baton_announcements_sent_total'), primary.network.actions().filter((a) => a.startsWith('announce')).length);
  t.is(value(all, 'baton_announcements_sent_total'), 1);
});

test('a switchover shows on both hosts: transitions, a done switch with its duration, the taker\'s announcements', async (t) => {
  const pair = await settledPair(t);
  const {result} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  await pair.clock.advance(500);
  const giver = samples(await renderMetrics(await pair.primary.agent.metrics(), BUILD));
  const taker = samples(await renderMetrics(await pair.backup.agent.metrics(), BUILD));
  for (const host of [giver, taker]) {
    t.is(value(host, 'baton_switches_total', {outcome: 'done'}), 1);
    t.is(value(host, 'baton_switch_duration_seconds_count', {outcome: 'done'}), 1);
  }
  t.is(value(giver, 'baton_transitions_total', {from: 'switching', to: 'released'}), 1);
  t.is(value(taker, 'baton_transitions_total', {from: 'switching', to: 'active'}), 1);
  t.is(value(giver, 'baton_state', {state: 'released', role: 'primary'}), 1);
  t.is(value(taker, 'baton_holds_service_ip'), 1);
  t.is(value(taker, 'baton_announcements_sent_total'), pair.backup.network.actions().filter((a) => a.startsWith('announce')).length);
  t.true((value(taker, 'baton_announcements_sent_total') ?? 0) >= 1);
});

test('each service address has its series: a host with one of a dual-stack service\'s two shows 1 and 0, and does not hold the IP', async (t) => {
  const config = testConfig('backup', {service: {ip: SERVICE_IP, ips: [SERVICE_IP, SERVICE_IP6], interface: 'eth0', mode: 'address'}});
  const all = samples(await renderMetrics(source({config, served: {present: [SERVICE_IP], absent: [SERVICE_IP6]}}), BUILD));
  t.is(value(all, 'baton_holds_service_ip'), 0);
  t.is(value(all, 'baton_service_address_held', {address: SERVICE_IP.cidr}), 1);
  t.is(value(all, 'baton_service_address_held', {address: SERVICE_IP6.cidr}), 0);
});
