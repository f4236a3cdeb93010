// The etcd bench's pure parts: which runs --coordination allows, and which pair figure each etcd figure is shown beside.

import test from 'ava';
import {besidePair, pairFigureOf, parseCoordination} from '../../bench/etcd.js';
import type {FigureRecord} from '../../bench/record.js';

const BOTH = new Set(['switchover', 'failover']);

test('--coordination takes pair or etcd; etcd only with the switchover and failover parts, in IPv4', (t) => {
  t.is(parseCoordination('pair', new Set(['rest', 'clients']), '6'), 'pair', 'pair mode is the bench as before, whatever the parts');
  t.is(parseCoordination('etcd', BOTH, '4'), 'etcd');
  t.is(parseCoordination('etcd', new Set(['failover']), '4'), 'etcd');
  t.is(parseCoordination('raft', BOTH, '4'), '--coordination: expected pair or etcd, got raft');
  t.is(parseCoordination('etcd', new Set(['switchover', 'rest', 'clients']), '4'),
    '--coordination etcd measures the switchover and failover parts, not rest, clients: add --only switchover,failover');
  t.is(parseCoordination('etcd', BOTH, 'dual'), '--coordination etcd: the etcd lab\'s service is IPv4 only, got --family dual');
});

test('each etcd figure names the pair figure that measures the same thing, or none', (t) => {
  t.is(pairFigureOf('etcd.switchover.probe-50ms.gap.median'), 'switchover.probe-50ms.gap.median');
  t.is(pairFigureOf('etcd.switchover.probe-10ms.failed.total'), 'switchover.probe-10ms.failed.total');
  t.is(pairFigureOf('etcd.failover.kill.gap.max'), 'failover.defaults.gap.max');
  t.is(pairFigureOf('etcd.failover.kill.runs'), 'failover.defaults.runs');
  t.is(pairFigureOf('etcd.failover.kill.served.median'), undefined, 'the pair bench does not measure the time to the first answer');
  t.is(pairFigureOf('switchover.probe-50ms.gap.median'), undefined, 'a pair figure is not an etcd one');
});

test('the etcd figures are printed beside the recorded pair figures, saying which are missing', (t) => {
  const record: FigureRecord = {about: '', runs: {}, figures: {'switchover.probe-50ms.gap.median': {value: 59, run: 'r1'}}};
  const lines = besidePair({'etcd.switchover.probe-50ms.gap.median': 73.64, 'etcd.switchover.probe-50ms.gap.max': 101,
    'etcd.failover.kill.served.median': 3375.7}, record);
  t.is(lines.length, 3);
  t.regex(lines[0] ?? '', /etcd\.switchover\.probe-50ms\.gap\.median +etcd +73\.6 +pair mode +59 \(switchover\.probe-50ms\.gap\.median, run r1\)/);
  t.regex(lines[1] ?? '', /pair mode: switchover\.probe-50ms\.gap\.max not recorded/);
  t.regex(lines[2] ?? '', /pair mode: no such figure/);
});
