// The real Clock's boot time is CLOCK_BOOTTIME, the clock that goes on while the machine is suspended (the lease
// holder's deadline depends on it, lease-holder.ts). Suspending this machine is not an option in a test, so a time
// namespace stands in for it: a process in `unshare --time --boottime N --monotonic M` sees boot time N s ahead and
// monotonic time M s ahead of ours. The adapter must see N, and not M (CLOCK_MONOTONIC) nor nothing (performance.now).

import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {createSystemClock} from '../../agent/adapters/system-clock.js';
import {integrationTest} from './helpers.js';

const ADAPTER = fileURLToPath(new URL('../../agent/adapters/system-clock.js', import.meta.url));
// Offsets far apart and far above anything a test run lasts, so each clock's reading is unmistakable.
const BOOTTIME_OFFSET_S = 1_000_000;
const MONOTONIC_OFFSET_S = 300_000;
// /proc/uptime counts in hundredths of a second, truncated: each reading is up to 10 ms behind.
const RESOLUTION_MS = 10;

integrationTest('the system clock\'s boot time is CLOCK_BOOTTIME: in a time namespace it sees the boottime offset, not the monotonic one', async (t) => {
  const clock = createSystemClock();
  const script = `const {createSystemClock} = await import(${JSON.stringify(ADAPTER)}); console.log(createSystemClock().bootNow());`;
  const before = clock.bootNow();
  const inside = await execa('unshare', ['--time', '--boottime', String(BOOTTIME_OFFSET_S), '--monotonic', String(MONOTONIC_OFFSET_S),
    process.execPath, '--input-type=module', '-e', script]);
  const after = clock.bootNow();
  const seen = Number(inside.stdout.trim());
  t.log(`boot time here ${Math.round(before)}..${Math.round(after)} ms, in the namespace ${Math.round(seen)} ms`);
  const offsetMs = BOOTTIME_OFFSET_S * 1000;
  t.true(seen - before >= offsetMs - RESOLUTION_MS, `the namespace's boot time is ${Math.round(seen - before)} ms ahead of ours, expected ${offsetMs}`);
  t.true(seen - after <= offsetMs + RESOLUTION_MS, `the namespace's boot time is ${Math.round(seen - after)} ms ahead of ours, expected ${offsetMs}`);
});
