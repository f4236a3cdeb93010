// The campaign's etcd part: its cases, and the fast subset CI runs.

import test from 'ava';
import {ETCD_CASES, etcdCases} from '../../campaign/etcd.js';

test('the fast subset is a part of the full list in its order, with a kill during a switch and a partition from etcd', (t) => {
  const fast = etcdCases(true).map((c) => c.name);
  const all = etcdCases(false).map((c) => c.name);
  t.deepEqual(all, ETCD_CASES.map((c) => c.name));
  t.deepEqual(all.filter((name) => fast.includes(name)), fast);
  t.true(fast.some((name) => name.startsWith('switch, ')));
  t.true(fast.includes('the holder cut from etcd, not from its clients'));
});

test('every case has its own name, and a case that leaves etcd short of a member runs last', (t) => {
  const names = ETCD_CASES.map((c) => c.name);
  t.is(new Set(names).size, names.length);
  const breaking = ETCD_CASES.flatMap((c, i) => (c.breaksLab === true ? [i] : []));
  t.true(breaking.every((i) => i === ETCD_CASES.length - 1), `cases that break the lab: ${breaking.join(', ')}`);
});

test('a switch is broken for each victim at each of its phases: after assign-ip, after primary-net-down and during confirm-traffic', (t) => {
  for (const point of ['after assign-ip', 'after primary-net-down', 'during confirm-traffic']) {
    for (const victim of ['taker', 'giver']) t.true(ETCD_CASES.some((c) => c.name === `switch, ${point}, kill ${victim}`), `${point}, ${victim}`);
  }
});
