// The lab's transfers: the pace of a 1 MiB body at 256 KiB/s, and how the clients judge a download's and an upload's
// answer and name their uploads.

import test from 'ava';
import {type Answer, judgeAnswer, uploadPath} from '../../../cli/lab/clients.js';
import {planPacedBody, TRANSFER_BYTES, TRANSFER_RATE_BYTES_PER_S, UPLOAD_PREFIX} from '../../../cli/lab/transfers.js';

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

const answer = (fields: Partial<Answer>): Answer =>
  ({status: 201, host: 'primary', bytes: 0, receivedBytes: String(TRANSFER_BYTES), answeredAfterBody: true, ...fields});

const judges = test.macro({
  exec(t, kind: Parameters<typeof judgeAnswer>[0], fields: Partial<Answer>, expected: string | undefined) {
    t.is(judgeAnswer(kind, answer(fields)), expected);
  },
  title: (given, kind, _fields, expected) => `${kind}: ${given ?? ''} ${expected === undefined ? 'counts' : `fails with "${expected}"`}`,
});

test('an upload answered 201 after its body, the server saying it received 1 MiB,', judges, 'uploads', {}, undefined);
test('an upload answered 204 (it replaced an older file)', judges, 'uploads', {status: 204}, undefined);
test('an upload answered before its last byte was sent', judges, 'uploads',
  {status: 200, answeredAfterBody: false}, 'HTTP 200 before the body was sent');
test('an upload answered by a page that never read the body', judges, 'uploads',
  {status: 200, receivedBytes: undefined}, 'HTTP 200 without X-Received-Bytes');
test('an upload the server received only part of', judges, 'uploads',
  {receivedBytes: '524288'}, 'received 524288 of 1048576 bytes');
test('an upload refused as too large', judges, 'uploads', {status: 413}, 'HTTP 413');
test('a download with every byte', judges, 'downloads', {status: 200, bytes: TRANSFER_BYTES}, undefined);
test('a download cut short', judges, 'downloads', {status: 200, bytes: 1000}, '1000 of 1048576 bytes');
test('a download answered 201', judges, 'downloads', {status: 201, bytes: TRANSFER_BYTES}, 'HTTP 201');
test('a page request answered 200', judges, 'keepAlive', {status: 200, bytes: 18}, undefined);
test('a page request answered 503', judges, 'fresh', {status: 503}, 'HTTP 503');

test('upload names are the run\'s own and come back only after a transfer\'s timeout, so none in flight share one', (t) => {
  // Started every 500 ms with a 15 s timeout: 30 can be in flight; 32 names, reused from the 33rd upload.
  const names = Array.from({length: 100}, (_, seq) => uploadPath('ab12cd34', seq, 500));
  t.is(names[0], `${UPLOAD_PREFIX}ab12cd34-0`);
  t.is(new Set(names).size, 32);
  t.is(names[32], names[0]);
  t.true(new Set(names.slice(0, 32)).size === 32, 'the first 32 are all different');
  t.is(new Set(Array.from({length: 100}, (_, seq) => uploadPath('x', seq, 5000))).size, 5, 'fewer names when they start further apart');
  t.not(uploadPath('run1', 0, 500), uploadPath('run2', 0, 500));
});
