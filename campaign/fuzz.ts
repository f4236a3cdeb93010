// Part "fuzz": the datagram decoder and the peer monitor fed property-based hostile input. Nothing may throw,
// every input is accepted or rejected with a known reason, and no input other than an intact valid datagram
// changes what the monitor believes about the peer.

import fc from 'fast-check';
import {decodeDatagram, REJECT_REASONS} from '../agent/peer/beacon-codec.js';
import {keyIdOf, type Key} from '../agent/config/secret-files.js';
import {PeerMonitor} from '../agent/peer/peer-monitor.js';
import type {CampaignPart, CaseResult} from './case.js';
import {hostileDatagrams, templates, validDatagrams} from './datagrams.js';

const WALL = Date.UTC(2026, 10, 21, 12, 0, 0);
const PEER = '192.0.2.12';

function fuzzKey(): Key {
  const secret = new TextEncoder().encode('campaign-fuzz-secret-0123456789abcdef');
  return {id: keyIdOf(secret), secret, file: '/etc/baton/secret'};
}

/** Decodes `runs` hostile inputs; the counts by outcome, or what went wrong. */
export function fuzzDecoder(runs: number, seed?: number): {accepted: number; reasons: Map<string, number>; failure: string | undefined} {
  const key = fuzzKey();
  const keyring = {signing: key, accepted: [key]};
  let accepted = 0;
  const reasons = new Map<string, number>();
  const outcome = fc.check(fc.property(hostileDatagrams(key, templates('web', WALL)), (input) => {
    const decoded = decodeDatagram(input, keyring, 'web', WALL);
    if (decoded.ok) {
      accepted += 1;
      return;
    }
    if (!REJECT_REASONS.includes(decoded.reason) || decoded.detail.length === 0) throw new Error(`rejection without a known reason: ${JSON.stringify(decoded)}`);
    reasons.set(decoded.reason, (reasons.get(decoded.reason) ?? 0) + 1);
  }), {numRuns: runs, ...(seed === undefined ? {} : {seed})});
  return {accepted, reasons, failure: outcome.failed ? fc.defaultReportMessage(outcome) : undefined};
}

/** Feeds `runs` sequences of hostile inputs to fresh monitors; counts datagrams seen, and any forged belief. */
export function fuzzMonitor(runs: number, seed?: number): {datagrams: number; failure: string | undefined} {
  const key = fuzzKey();
  const keyring = {signing: key, accepted: [key]};
  const from = templates('web', WALL);
  const valid = validDatagrams(key, from);
  let datagrams = 0;
  const outcome = fc.check(fc.property(fc.array(hostileDatagrams(key, from), {maxLength: 20}), (inputs) => {
    const monitor = new PeerMonitor({pair: 'web', peerRole: 'backup', peerAddress: PEER, selfBoot: 'bootP', keyring, deadAfterMs: 1000, maxClockSkewMs: 5000});
    for (const input of inputs) {
      datagrams += 1;
      const intact = valid.some((v) => v.length === input.length && v.every((byte, i) => byte === input[i]));
      const observed = monitor.observe(input, PEER, 0, WALL);
      if (observed.ok && !intact) throw new Error(`a datagram that is not intact was accepted: ${Buffer.from(input).toString('hex').slice(0, 200)}`);
    }
    const stats = monitor.stats(0);
    const rejected = Object.values(stats.rejected).reduce((a, b) => a + b, 0);
    if (stats.accepted + rejected !== inputs.length) throw new Error(`${inputs.length} inputs, but ${stats.accepted} accepted and ${rejected} rejected`);
  }), {numRuns: runs, ...(seed === undefined ? {} : {seed})});
  return {datagrams, failure: outcome.failed ? fc.defaultReportMessage(outcome) : undefined};
}

export const fuzzPart: CampaignPart = {
  name: 'fuzz',
  about: 'property-based hostile datagrams into the decoder and the peer monitor (fast-check)',
  async run(context) {
    const runs = context.fast ? 20_000 : 200_000;
    const rows: CaseResult[] = [];
    const started = Date.now();
    const decoder = fuzzDecoder(runs);
    const counts = [...decoder.reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ');
    rows.push({group: 'fuzz', name: 'decoder: random, mutated, cut, lying, signed-garbage', ok: decoder.failure === undefined,
      figures: `${runs} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s: ${decoder.accepted} accepted, ${counts}`,
      ...(decoder.failure === undefined ? {} : {detail: decoder.failure})});
    const monitorStarted = Date.now();
    const monitor = fuzzMonitor(runs / 10);
    rows.push({group: 'fuzz', name: 'peer monitor: sequences of hostile datagrams', ok: monitor.failure === undefined,
      figures: `${runs / 10} sequences, ${monitor.datagrams} datagrams in ${((Date.now() - monitorStarted) / 1000).toFixed(1)} s, none forged a belief`,
      ...(monitor.failure === undefined ? {} : {detail: monitor.failure})});
    return rows;
  },
};
