// Drives a fake pair through planned switches: settle it, run fake time until a switch ends, and play clients
// that send requests to whichever host serves.

import type {SwitchProgress, SwitchResult, SwitchoverOptions} from '../../agent/control-protocol.js';
import type {FakeClock} from './fake-clock.js';
import {createFakePair, type FakeHost, type FakePair} from './fake-pair.js';

export const OPTIONS: SwitchoverOptions = {dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined};

export async function settledPair(t: Parameters<typeof createFakePair>[0], options?: Parameters<typeof createFakePair>[1]): Promise<FakePair> {
  const pair = createFakePair(t, options);
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  return pair;
}

/** Runs the clock in 10 ms steps until the work settles; `each` runs after every step (e.g. to send requests). */
export async function drive<T>(clock: FakeClock, work: Promise<T>, each: () => void = () => undefined, limitMs = 120_000): Promise<T> {
  let settled = false;
  const tracked = work.finally(() => {
    settled = true;
  });
  for (let elapsed = 0; !settled && elapsed < limitMs; elapsed += 10) {
    await clock.advance(10);
    each();
  }
  if (!settled) throw new Error(`did not settle within ${limitMs} ms of fake time`);
  return tracked;
}

/** Clients that send a request every step to whichever host serves, like the real world would. */
export function clients(pair: FakePair): () => void {
  return () => {
    for (const host of [pair.primary, pair.backup]) {
      if (!host.network.addresses.has('192.0.2.100')) continue;
      host.accessLog.request(1);
      host.arrivals.arrive(1);
    }
  };
}

export async function switchover(pair: FakePair, from: FakeHost, options: Partial<SwitchoverOptions> = {}, each = clients(pair)): Promise<{result: SwitchResult; progress: SwitchProgress[]}> {
  const progress: SwitchProgress[] = [];
  const result = await drive(pair.clock, from.agent.switchover({...OPTIONS, ...options}, (p) => progress.push(p)), each);
  return {result, progress};
}

export const stepLines = (progress: SwitchProgress[]): string[] =>
  progress.flatMap((p) => (p.kind === 'step' ? [`${p.action} ${p.step} on ${p.host.role} ${p.status}`] : []));

/** Runs the clock in 10 ms steps for `ms`, with clients, and returns the most hosts that held the IP at once. */
export async function mostHolders(pair: FakePair, ms: number): Promise<number> {
  let most = 0;
  for (let elapsed = 0; elapsed < ms; elapsed += 10) {
    await pair.clock.advance(10);
    clients(pair)();
    most = Math.max(most, pair.segment.holders('192.0.2.100').length);
  }
  return most;
}
