// The lease holder on a FakeClock: renewals on time keep the hold; a holder cut from etcd, answered too late, frozen
// or suspended past its deadline drops the address before its lease can expire, and nothing revives the hold.

import test from 'ava';
import {type DropReason, LeaseHolder, leaseTiming, mayServe, RESUME_CHECK_MS, startHold, stepHold} from '../../../agent/coordination/lease-holder.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeCoordinationStore} from '../../fakes/fake-coordination-store.js';

// A 3 s lease with a 600 ms margin (the derived default for 3 s): renewals every 1000 ms, each given 500 ms, retries
// 166 ms after a failure.
const TIMING = leaseTiming(3, 600);

async function answered<T>(clock: FakeClock, call: Promise<T>): Promise<T> {
  await clock.advance(0);
  return call;
}

async function holding(options: {replyDelayMs?: number} = {}) {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  // The lease is granted and the key acquired at once; replies take replyDelayMs from then on.
  store.replyDelayMs = 0;
  const grantSentAtMs = clock.bootNow();
  const lease = await answered(clock, store.grantLease(3));
  const {key} = await answered(clock, store.acquire('/baton/web', 'host-a', lease.id));
  store.replyDelayMs = options.replyDelayMs ?? 10;
  const drops: {reason: DropReason; lateMs: number; atMs: number}[] = [];
  const holder = new LeaseHolder({
    clock, store, timing: TIMING,
    dropAddress: async (reason, lateMs) => {
      drops.push({reason, lateMs, atMs: clock.now()});
      store.journal.push({op: 'drop-address', atMs: clock.now()});
    },
  }, {lease: lease.id, epoch: key.modRevision, grantSentAtMs, grantedTtlS: lease.ttlS});
  const ended = holder.run();
  return {clock, store, holder, lease, drops, ended};
}

test('renewals on time keep the hold for as long as they succeed', async (t) => {
  const {clock, store, holder, lease, drops} = await holding();
  await clock.advance(60_000);
  t.true(holder.holds());
  t.deepEqual(drops, []);
  const renewals = store.journal.filter((entry) => entry.op === 'renew-arrived').length;
  t.true(renewals >= 55 && renewals <= 61, `one renewal a second (TTL/3), got ${renewals}`);
  t.true((store.expiresAtMs(lease.id) ?? 0) > clock.now(), 'etcd still has the lease');
});

test('a holder cut from etcd drops the address before its lease can expire, and revokes nothing it cannot reach', async (t) => {
  const {clock, store, holder, lease, drops, ended} = await holding();
  await clock.advance(5_000);
  store.mode = 'unreachable';
  await clock.advance(10_000);
  const end = await ended;
  // The last renewal that reached etcd (perhaps one in flight when the cut came) set when it expires the lease.
  const expiresAtMs = store.expiresAtMs(lease.id) ?? 0;
  t.is(drops.length, 1);
  t.is(drops[0]?.reason, 'deadline-passed');
  t.true((drops[0]?.atMs ?? Infinity) < expiresAtMs, `dropped at ${drops[0]?.atMs}, etcd expires the lease at ${expiresAtMs}`);
  t.true(expiresAtMs - (drops[0]?.atMs ?? 0) >= TIMING.marginMs, 'at least the margin before the expiry');
  t.is(end.reason, 'deadline-passed');
  t.false(holder.holds());
});

test('the deadline counts from the send time of the last successful renewal, not from its answer', async (t) => {
  const {clock, holder, store} = await holding({replyDelayMs: 400});
  await clock.advance(1_000); // the first renewal goes out at 1000 ms (TTL/3) …
  const sent = store.journal.find((entry) => entry.op === 'renew-sent')?.atMs ?? Number.NaN;
  await clock.advance(500); // … and is answered 400 ms later
  const state = holder.state;
  t.is(state.phase, 'holding');
  t.is(state.deadlineMs, sent + TIMING.ttlMs - TIMING.marginMs);
});

test('a renewal answered after the deadline does not revive the hold', async (t) => {
  // Replies take 3 s: the first renewal (sent at 1000 ms) comes back at 4000 ms, past the deadline of 2400 ms.
  const {clock, drops, ended, holder} = await holding({replyDelayMs: 3_000});
  await clock.advance(5_000);
  const end = await ended;
  t.is(end.reason, 'deadline-passed');
  t.is(drops.length, 1);
  t.true((drops[0]?.atMs ?? Infinity) <= TIMING.ttlMs - TIMING.marginMs, 'dropped at the first deadline');
  await clock.advance(5_000);
  t.false(holder.holds(), 'still dropped after the late answer');
  t.is(drops.length, 1, 'dropped once');
});

test('a step of the wall clock changes nothing', async (t) => {
  const steady = await holding();
  const stepped = await holding();
  for (const step of [3_600_000, -7_200_000, 86_400_000]) {
    stepped.clock.stepWall(step);
    await steady.clock.advance(2_500);
    await stepped.clock.advance(2_500);
  }
  t.deepEqual(stepped.holder.state, steady.holder.state);
  t.deepEqual(stepped.drops, []);
  t.true(stepped.holder.holds());
});

test('a frozen process that wakes past its deadline drops before doing anything else', async (t) => {
  const {clock, store, drops, ended} = await holding();
  await clock.advance(2_000);
  const before = store.journal.length;
  await clock.jump(10_000); // SIGSTOP for 10 s, then SIGCONT: every timer fires late at once
  await clock.advance(100);
  const end = await ended;
  // The holder's own acts after waking (the fake etcd's side of a renewal still in flight is left out).
  const after = store.journal.slice(before).map((entry) => entry.op).filter((op) => ['renew-sent', 'drop-address', 'revoke'].includes(op));
  t.is(after[0], 'drop-address', `first after waking: ${after.join(', ')}`);
  t.false(after.includes('renew-sent'), 'no renewal was sent after waking');
  t.is(end.reason, 'deadline-passed');
  t.true((drops[0]?.lateMs ?? 0) > 0, 'the drop knows it came late');
});

test('a machine suspended past the deadline drops the address as it resumes, before anything else', async (t) => {
  const {clock, store, lease, drops, ended} = await holding();
  await clock.advance(2_000); // renewed at 1000 ms: the deadline is 3400 ms, etcd expires the lease at about 4000 ms
  const before = store.journal.length;
  clock.suspend(60_000); // the VM sleeps a minute: boot time goes on, monotonic time and its timers stop
  t.true((store.expiresAtMs(lease.id) ?? 0) < clock.bootNow(), 'etcd let the lease expire during the suspend');
  await clock.advance(RESUME_CHECK_MS);
  const end = await ended;
  const after = store.journal.slice(before).map((entry) => entry.op).filter((op) => ['renew-sent', 'drop-address', 'revoke'].includes(op));
  t.is(after[0], 'drop-address', `first after resuming: ${after.join(', ')}`);
  t.false(after.includes('renew-sent'), 'no renewal was sent after resuming');
  t.is(end.reason, 'deadline-passed');
  t.is(drops.length, 1);
  t.true((drops[0]?.atMs ?? Infinity) <= 2_000 + RESUME_CHECK_MS, `dropped ${(drops[0]?.atMs ?? 0) - 2_000} ms (monotonic) after resuming`);
  t.true((drops[0]?.lateMs ?? 0) >= 60_000 - 1_400, 'the drop knows how late it came');
});

test('after a suspend past the deadline, the first check before an act drops and says no', async (t) => {
  const {clock, holder, drops} = await holding();
  await clock.advance(2_000);
  clock.suspend(10_000);
  // No timer has run since the resume: an act that presumes the hold asks first.
  t.deepEqual(drops, []);
  t.false(holder.holds());
  t.is(drops.length, 1, 'the drop began before holds() answered');
  t.is(drops[0]?.reason, 'deadline-passed');
});

test('a suspend shorter than the time left keeps the hold, and renewals go on', async (t) => {
  const {clock, store, holder, drops} = await holding();
  await clock.advance(1_500); // renewed at 1000 ms: 1900 ms left before the deadline
  clock.suspend(1_000);
  await clock.advance(20_000);
  t.true(holder.holds());
  t.deepEqual(drops, []);
  t.true(store.journal.some((entry) => entry.op === 'renew-arrived' && entry.atMs > 1_500), 'renewed after the resume');
});

test('the pure step: a tick at the deadline drops, the drop first among its effects', async (t) => {
  const {clock, holder, drops} = await holding();
  // Time that passes without any timer running (a busy event loop) is seen by the check before acting, a tick.
  const state = holder.state;
  t.true(mayServe(state, clock.now()));
  t.false(mayServe(state, state.deadlineMs));
  const {state: dropped, effects} = stepHold(state, {type: 'tick', nowMs: state.deadlineMs}, TIMING);
  t.is(dropped.phase, 'dropped');
  t.deepEqual(effects.map((effect) => effect.type), ['drop-address', 'revoke-lease']);
  t.deepEqual(drops, []);
});

test('a lease etcd no longer has drops the hold at once', async (t) => {
  const {clock, store, lease, ended} = await holding();
  await clock.advance(500);
  store.expire(lease.id);
  await clock.advance(1_000);
  const end = await ended;
  t.is(end.reason, 'lease-gone');
});

test('a failed renewal is retried soon, and one success restores the hold', async (t) => {
  const {clock, store, holder} = await holding();
  await clock.advance(900);
  store.mode = 'unreachable';
  await clock.advance(700); // the renewal sent at 1000 ms fails at 1500 ms, its own deadline (TTL/6)
  store.mode = 'ok';
  await clock.advance(TIMING.retryAfterMs);
  const retried = store.journal.filter((entry) => entry.op === 'renew-arrived' && entry.atMs > 1500);
  t.is(retried.length, 1, `the retry went out ${TIMING.retryAfterMs} ms after the failure and arrived`);
  await clock.advance(20_000);
  t.true(holder.holds());
});

test('the pure step: release drops and revokes; a dropped hold ignores everything after', (t) => {
  const state = startHold('7', 42, 0, 3, TIMING);
  const released = stepHold(state, {type: 'release-requested', nowMs: 100}, TIMING);
  t.like(released.state, {phase: 'dropped', reason: 'released', epoch: 42});
  t.deepEqual(released.effects, [{type: 'drop-address', reason: 'released', lateMs: 0}, {type: 'revoke-lease'}]);
  const late = stepHold(released.state, {type: 'renew-answered', nowMs: 150, sentAtMs: 120, ttlS: 3}, TIMING);
  t.is(late.state, released.state);
  t.deepEqual(late.effects, []);
});

test('etcd granting more than asked does not lengthen the deadline', (t) => {
  const state = startHold('7', 1, 0, 60, TIMING);
  t.is(state.phase === 'holding' ? state.deadlineMs : 0, TIMING.ttlMs - TIMING.marginMs);
});

// keep-while-peers-agree: what the hosts' beacons allow is passed in as keepUntilMs (host-beacons.ts).

test('keeping: past its deadline a holder keeps while the other hosts agree, and drops when they stop', (t) => {
  const start = startHold('lease-1', 7, 0, 3, TIMING);
  const deadline = start.deadlineMs;
  const kept = stepHold(start, {type: 'tick', nowMs: deadline}, TIMING, deadline + 800);
  t.like(kept.state, {phase: 'holding', keepingUntilMs: deadline + 800});
  t.true(mayServe(kept.state, deadline + 799));
  t.false(mayServe(kept.state, deadline + 800));
  const wake = kept.effects.find((e) => e.type === 'wake-at');
  t.true(wake !== undefined && wake.type === 'wake-at' && wake.atMs <= deadline + 800, 'it wakes by the end of the agreement');
  // The agreement moves on with fresh beacons; then it ends.
  const still = stepHold(kept.state, {type: 'tick', nowMs: deadline + 700}, TIMING, deadline + 1500);
  t.like(still.state, {phase: 'holding', keepingUntilMs: deadline + 1500});
  const ended = stepHold(still.state, {type: 'tick', nowMs: deadline + 1500}, TIMING, undefined);
  t.like(ended.state, {phase: 'dropped', reason: 'peers-disagree'});
  t.deepEqual(ended.effects.map((e) => e.type), ['drop-address', 'revoke-lease']);
  // Without agreement at the deadline, it drops as with `drop`.
  t.like(stepHold(start, {type: 'tick', nowMs: deadline}, TIMING, undefined).state, {phase: 'dropped', reason: 'deadline-passed'});
});

test('keeping: a renewal that succeeds again makes it a plain holder; a lease gone is replaced by taking the key again', (t) => {
  const start = startHold('lease-1', 7, 0, 3, TIMING);
  const deadline = start.deadlineMs;
  const kept = stepHold(start, {type: 'tick', nowMs: deadline}, TIMING, deadline + 800).state;
  const renewedAt = deadline + 100;
  const renewed = stepHold(kept, {type: 'renew-answered', nowMs: renewedAt + 5, sentAtMs: renewedAt, ttlS: 3}, TIMING, deadline + 800);
  t.like(renewed.state, {phase: 'holding', keepingUntilMs: undefined, deadlineMs: renewedAt + 3000 - 600, lease: 'lease-1'});
  const gone = stepHold(kept, {type: 'renew-answered', nowMs: renewedAt + 5, sentAtMs: renewedAt, ttlS: 0}, TIMING, deadline + 800);
  t.like(gone.state, {phase: 'holding', reacquiring: true});
  t.true(gone.effects.some((e) => e.type === 'reacquire-key'));
  const again = stepHold(gone.state, {type: 'reacquired', nowMs: renewedAt + 20, lease: 'lease-2', epoch: 42, grantSentAtMs: renewedAt + 10, ttlS: 3}, TIMING, undefined);
  t.like(again.state, {phase: 'holding', lease: 'lease-2', epoch: 42, keepingUntilMs: undefined, deadlineMs: renewedAt + 10 + 3000 - 600});
  const taken = stepHold(gone.state, {type: 'key-taken', nowMs: renewedAt + 20, holder: 'host-b'}, TIMING, deadline + 800);
  t.like(taken.state, {phase: 'dropped', reason: 'key-taken'});
  t.is(taken.effects[0]?.type, 'drop-address');
});

test('keeping, a frozen process that wakes past the agreement drops before anything else: what it sent before freezing is all the others could echo', async (t) => {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  store.replyDelayMs = 0;
  const lease = await answered(clock, store.grantLease(3));
  store.replyDelayMs = 10;
  const drops: {reason: DropReason; lateMs: number; atMs: number}[] = [];
  // A holder whose peers echo its beacons: it sends one every 200 ms while it runs, and they agree for D = 1000 ms
  // after the newest one they echoed.
  let lastSentMs = clock.now();
  let frozen = false;
  const holder = new LeaseHolder({
    clock, store, timing: TIMING,
    dropAddress: async (reason, lateMs) => {
      drops.push({reason, lateMs, atMs: clock.now()});
      store.journal.push({op: 'drop-address', atMs: clock.now()});
    },
    keep: {untilMs: () => lastSentMs + 1000, reacquire: async () => ({acquired: false, holder: 'nobody'})},
  }, {lease: lease.id, epoch: 1, grantSentAtMs: clock.now(), grantedTtlS: 3});
  const ended = holder.run();
  store.mode = 'unreachable';
  for (let i = 0; i < 50; i += 1) {
    await clock.advance(200);
    if (!frozen) lastSentMs = clock.now();
  }
  t.true(holder.keeping, 'past its deadline, kept');
  t.deepEqual(drops, []);
  frozen = true;
  const before = store.journal.length;
  await clock.jump(10_000);
  t.is(store.journal.slice(before).map((entry) => entry.op).filter((op) => op === 'drop-address').length, 1, 'dropped on waking');
  await clock.advance(TIMING.renewEveryMs + 100);
  const end = await ended;
  t.is(end.reason, 'peers-disagree');
  t.true((drops[0]?.atMs ?? 0) - end.deadlineMs > 0);
});
