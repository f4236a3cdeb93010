// Who holds a lab's service, from the hosts' holdings: the whole of it on one host and none elsewhere is the only
// answer with a holder; a host with one address of a dual-stack service is named with its part.

import test from 'ava';
import {describeHoldings, soleHolder, type Holding} from '../../../cli/lab/observe.js';

const V4 = '192.0.2.100';
const V6 = '2001:db8:0:1::100';
const whole = (host: string): Holding => ({host, held: [V4, V6], missing: []});
const part = (host: string, held: string, missing: string): Holding => ({host, held: [held], missing: [missing]});

test('one host holding every address, the other none: that host is the holder', (t) => {
  t.is(soleHolder([whole('backup')]), 'backup');
  t.is(describeHoldings([whole('backup')]), 'backup');
  t.is(soleHolder([{host: 'primary', held: [V4], missing: []}]), 'primary', 'a single-stack service is one address');
});

test('nobody, two hosts, or a host with part of the service: no holder, and the description says which', (t) => {
  t.is(soleHolder([]), undefined);
  t.is(describeHoldings([]), 'nobody');
  t.is(soleHolder([whole('primary'), whole('backup')]), undefined);
  t.is(describeHoldings([whole('primary'), whole('backup')]), 'primary+backup');
  t.is(soleHolder([part('primary', V4, V6)]), undefined, 'part of the service is not the service');
  t.is(describeHoldings([part('primary', V4, V6)]), 'primary (partly held: 192.0.2.100 held, 2001:db8:0:1::100 missing)');
  // Split between the hosts: two holders, though no address is on both.
  t.is(soleHolder([part('primary', V4, V6), part('backup', V6, V4)]), undefined);
  t.is(describeHoldings([whole('primary'), part('backup', V6, V4)]), 'primary+backup (partly held: 2001:db8:0:1::100 held, 192.0.2.100 missing)');
});
