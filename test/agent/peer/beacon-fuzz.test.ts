// Property-based fuzzing of the datagram decoder and the peer monitor (the campaign's fuzz part, at unit-test
// size): whatever arrives, nothing throws, every input is either a valid message or rejected with a reason, and
// nothing that is not an intact signed datagram changes the peer view.

import test from 'ava';
import {fuzzDecoder, fuzzMonitor} from '../../../campaign/fuzz.js';

// Enough runs to cover the generator's shapes many times over, few enough to keep the unit suite fast.
const RUNS = 20_000;

test('the decoder never throws, and every input is a message or a known reject reason', (t) => {
  const result = fuzzDecoder(RUNS);
  t.is(result.failure, undefined);
  t.log(`${RUNS} inputs: ${result.accepted} accepted, rejected ${[...result.reasons].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  // The generator reaches every layer of the decoder: framing, MAC, and the signed body's validation.
  for (const reason of ['bad-mac', 'malformed', 'truncated', 'oversized', 'bad-version']) t.true((result.reasons.get(reason) ?? 0) > 0, reason);
});

test('no input that is not an intact valid datagram changes what the monitor believes about the peer', (t) => {
  const result = fuzzMonitor(2000);
  t.is(result.failure, undefined);
  t.true(result.datagrams > 2000);
});
