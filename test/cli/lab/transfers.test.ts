// The lab's transfers: the pace of a 1 MiB body at 256 KiB/s.

import test from 'ava';
import {planPacedBody, TRANSFER_BYTES, TRANSFER_RATE_BYTES_PER_S} from '../../../cli/lab/transfers.js';

test('a 1 MiB body at 256 KiB/s is 64 writes of 16 KiB, 62.5 ms apart: 4 s in all', (t) => {
  const {chunks, intervalMs} = planPacedBody(TRANSFER_BYTES, TRANSFER_RATE_BYTES_PER_S);
  t.is(chunks.length, 64);
  t.true(chunks.every((size) => size === 16 * 1024));
  t.is(intervalMs, 62.5);
  t.is(chunks.length * intervalMs, 4000);
});

test('a body that is not a multiple of the chunk ends with a short write, and the sum is the body', (t) => {
  const {chunks, intervalMs} = planPacedBody(100_000, 50_000, 30_000);
  t.deepEqual(chunks, [30_000, 30_000, 30_000, 10_000]);
  t.is(intervalMs, 600);
  t.deepEqual(planPacedBody(0, 1000).chunks, []);
});

test('a pace without a rate or a chunk is refused', (t) => {
  t.throws(() => planPacedBody(10, 0), {instanceOf: RangeError});
  t.throws(() => planPacedBody(10, 10, 0), {instanceOf: RangeError});
  t.throws(() => planPacedBody(-1, 10), {instanceOf: RangeError});
});
