// collect() must never block the agent's event loop on a child process: a synchronous one (systeminformation's
// osInfo() runs `hostname -f` with execSync) stops beacons for as long as the resolver takes, and with broken
// DNS the peer sees this host dead in the middle of a switchover's preflight. A file of its own, so that
// child_process is watched before systeminformation captures its functions.

import test from 'ava';
import {createRequire} from 'node:module';

// What is collected is checked here, not the agent's deadline (its own test below): a machine busy with other work
// (load 15 and more) takes longer than COLLECT_TIMEOUT_MS for the ten version probes.
const TEST_COLLECT_TIMEOUT_MS = 60_000;

const childProcess = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>;
const synchronous: string[] = [];
for (const name of ['execSync', 'execFileSync', 'spawnSync']) {
  const original = childProcess[name] as (...args: unknown[]) => unknown;
  childProcess[name] = (...args: unknown[]) => {
    synchronous.push(`${name}(${String(args[0])})`);
    return original(...args);
  };
}

test('collect() runs no synchronous child process', async (t) => {
  const {createSystemHostInfo} = await import('../../agent/adapters/host-info.js');
  const info = await createSystemHostInfo({timeoutMs: TEST_COLLECT_TIMEOUT_MS}).collect();
  t.true(info.os.distro.length > 0);
  t.deepEqual(synchronous, []);
});
