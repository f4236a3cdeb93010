// A holder of a service key under an etcd lease, against a real three-member cluster in namespaces, through the
// faults of issue 17: the holder cut from etcd, a member killed, the leader partitioned, the holder frozen past its
// lease, its wall clock stepped. Contenders are the real adapter and LeaseHolder (etcd-contender.ts), not yet the
// whole agent; each puts the service address on its interface while it holds, so "never two holders" is judged from
// the kernels' address events, and each writes timestamped lines that the test puts in order. Durations are logged,
// never asserted.

import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import {findLibfaketime, libfaketimeEnv} from '../../campaign/faults-host.js';
import {judgeHolders, watchAddress, type AddressWatch} from '../../cli/lab/address-events.js';
import {etcdAvailable, type EtcdCluster, SERVICE_ADDRESS, SERVICE_CIDR, startEtcdCluster} from './etcd-cluster.js';
import type {ContenderLine, ContenderOptions} from './etcd-contender.js';
import {integrationPrefix, integrationTest, skipUnlessIntegration} from './helpers.js';

// A 3 s lease (renewals every 1 s) with the derived margin of 600 ms: short enough for the faults to play out in
// seconds, long enough above etcd's minimum TTL (1.5 s with its default election timeout).
const TTL_S = 3;
const MARGIN_MS = 600;
const KEY_PREFIX = '/baton-test/';
// Bounds on waiting for what must happen: far above what it takes (a TTL or two), so a busy machine passes.
const WAIT_MS = 30_000;
const CONTENDER = fileURLToPath(new URL('./etcd-contender.js', import.meta.url));

let cluster: EtcdCluster | undefined;
let baseDir = '';

test.before(async (t) => {
  if (!(await skipUnlessIntegration(t))) return;
  if (!etcdAvailable((line) => t.log(line))) return;
  baseDir = await mkdtemp(join(tmpdir(), 'baton-etcd-'));
  cluster = await startEtcdCluster(integrationPrefix(), baseDir);
});

test.after.always(async () => {
  try {
    await cluster?.teardown();
  } finally {
    if (baseDir !== '') await rm(baseDir, {recursive: true, force: true});
  }
});

interface Contender {
  readonly host: 'a' | 'b';
  readonly pid: number;
  readonly logFile: string;
}

async function startContender(c: EtcdCluster, host: 'a' | 'b' | 'w', key: string, watch?: string, env?: NodeJS.ProcessEnv): Promise<Contender> {
  const options: ContenderOptions = {name: host, endpoints: c.endpoints, key, ttlS: TTL_S, marginMs: MARGIN_MS, iface: 'eth0', cidr: SERVICE_CIDR, watch};
  const logFile = join(baseDir, `${key.replaceAll('/', '_')}-${host}.jsonl`);
  const pid = await c.spawn(host, process.execPath, [CONTENDER, JSON.stringify(options)], logFile, env);
  return {host: host as 'a' | 'b', pid, logFile};
}

async function linesOf(contender: Contender): Promise<ContenderLine[]> {
  const text = await readFile(contender.logFile, 'utf8').catch(() => '');
  // The last line may be half written: only whole lines (ended by their newline) are read.
  return text.split('\n').slice(0, -1).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as ContenderLine);
}

async function waitForLine(contender: Contender, what: string, match: (line: ContenderLine) => boolean): Promise<ContenderLine> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const found = (await linesOf(contender)).find(match);
    if (found !== undefined) return found;
    await sleep(50);
  }
  throw new Error(`${contender.host} did not log ${what} within ${WAIT_MS} ms: ${(await linesOf(contender)).slice(-8).map((l) => JSON.stringify(l)).join('\n')}`);
}

/** The two contenders and the observer on a fresh key, with the address watch on a and b; a holds when it returns. */
async function scenario(t: ExecutionContext, name: string, holderEnv?: NodeJS.ProcessEnv) {
  const c = cluster;
  if (c === undefined) throw new Error('no etcd cluster: the before hook failed or the tests are skipped');
  const key = `${KEY_PREFIX}${name}`;
  const started: Contender[] = [];
  const watch: AddressWatch = await watchAddress(['a', 'b'].map((host) => ({name: host, namespace: c.namespace(host)})), 'eth0', [SERVICE_ADDRESS]);
  t.teardown(async () => {
    for (const contender of started) {
      try {
        process.kill(contender.pid, 'SIGCONT');
        process.kill(contender.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await watch.stop().catch(() => undefined);
    await c.heal('a');
    // The address a killed contender held stays on its interface: the next test starts without it.
    for (const host of ['a', 'b'] as const) {
      await execa('ip', ['-n', c.namespace(host), 'addr', 'del', SERVICE_CIDR, 'dev', 'eth0'], {reject: false});
    }
  });
  const observer = await startContender(c, 'w', key, key);
  started.push(observer);
  await waitForLine(observer, 'watching', (line) => line.event === 'watching');
  const a = await startContender(c, 'a', key, undefined, holderEnv);
  started.push(a);
  const acquired = await waitForLine(a, 'acquired', (line) => line.event === 'acquired');
  const b = await startContender(c, 'b', key);
  started.push(b);
  // b is contending: it has looked at the key and found it taken.
  await sleep(1000);
  return {c, key, a, b, observer, acquired, watch};
}

function noTwoHolders(t: ExecutionContext, history: Awaited<ReturnType<AddressWatch['stop']>>): void {
  const judged = judgeHolders(history);
  t.deepEqual(judged.overlaps, [], `address events: ${JSON.stringify(history.events)}`);
}

integrationTest('a holder cut from etcd but not from its clients drops the address before etcd deletes its key; the other contender then holds it at a higher revision', async (t) => {
  const {c, a, b, observer, acquired, watch} = await scenario(t, 'cut');
  const cutAt = Date.now();
  await c.cut('a');
  const dropped = await waitForLine(a, 'dropped', (line) => line.event === 'dropped');
  const deleted = await waitForLine(observer, 'the key deleted', (line) => line.event === 'watch-delete');
  const taken = await waitForLine(b, 'acquired', (line) => line.event === 'acquired');
  await c.heal('a');
  noTwoHolders(t, await watch.stop());
  t.is(dropped['reason'], 'deadline-passed');
  t.true(dropped.wallMs < deleted.wallMs, `a dropped at ${dropped.wallMs}, etcd deleted the key at ${deleted.wallMs}`);
  t.true(Number(taken['revision']) > Number(acquired['revision']), 'the new holder\'s epoch is higher');
  t.log(`cut → a drops ${dropped.wallMs - cutAt} ms; cut → the key deleted ${deleted.wallMs - cutAt} ms ` +
    `(drop ${deleted.wallMs - dropped.wallMs} ms before); cut → b holds ${taken.wallMs - cutAt} ms; revisions ${String(acquired['revision'])} → ${String(taken['revision'])}`);
});

integrationTest('a holder frozen past its lease drops on waking before it acts or renews; the other contender gets the key, waits on its duplicate-address probe, then serves: never two holders', async (t) => {
  const {c, a, b, acquired, watch} = await scenario(t, 'freeze');
  const frozenAt = Date.now();
  c.freeze(a.pid);
  // b gets the key once a's lease expires, but a's kernel still answers for the address: b waits on its probe.
  const taken = await waitForLine(b, 'the key', (line) => line.event === 'key-acquired');
  await waitForLine(b, 'the address in use', (line) => line.event === 'address-in-use');
  await sleep(500);
  const thawedAt = Date.now();
  c.thaw(a.pid);
  const dropped = await waitForLine(a, 'dropped', (line) => line.event === 'dropped');
  const serving = await waitForLine(b, 'acquired', (line) => line.event === 'acquired');
  await sleep(1000);
  const history = await watch.stop();
  noTwoHolders(t, history);
  const afterWaking = (await linesOf(a)).filter((line) => line.wallMs >= thawedAt && ['act', 'renew-sent', 'dropped'].includes(line.event));
  t.is(afterWaking[0]?.event, 'dropped', `a's first act after waking: ${JSON.stringify(afterWaking.slice(0, 3))}`);
  t.is(dropped['reason'], 'deadline-passed');
  t.true(Number(taken['revision']) > Number(acquired['revision']));
  const bLines = await linesOf(b);
  t.false(bLines.some((line) => line.event === 'dropped'), 'b still holds');
  t.deepEqual(judgeHolders(history).final, ['b']);
  t.log(`frozen ${thawedAt - frozenAt} ms; frozen → b has the key ${taken.wallMs - frozenAt} ms; thawed → a drops ${dropped.wallMs - thawedAt} ms ` +
    `(${String(dropped['lateMs'])} ms past its deadline); a drops → b serves ${serving.wallMs - dropped.wallMs} ms (b's probe saw the address in use ` +
    `${bLines.filter((line) => line.event === 'address-in-use').length} times while a was frozen)`);
});

integrationTest('with etcd\'s leader partitioned the holder keeps the key or drops it safely: never two holders', async (t) => {
  const {c, a, b, observer, watch} = await scenario(t, 'leader');
  // The first endpoint leads: the member every contender and the observer ask first is the one cut off.
  const leader = c.members[0] as EtcdCluster['members'][number];
  await c.moveLeader(leader);
  const cutAt = Date.now();
  await c.isolate(leader);
  t.teardown(() => c.heal(leader.name));
  // Ten renewals' worth: the election, and the holder's renewals through the remaining two members.
  await sleep(10 * (TTL_S * 1000) / 3);
  await c.heal(leader.name);
  await sleep(2000);
  noTwoHolders(t, await watch.stop());
  const aLines = await linesOf(a);
  const bLines = await linesOf(b);
  const holders = [...aLines, ...bLines].filter((line) => line.event === 'acquired' || line.event === 'dropped').sort((x, y) => x.wallMs - y.wallMs);
  // From the contenders' own lines: an acquire only after the other's drop.
  let holding: string | undefined;
  for (const line of holders) {
    if (line.event === 'acquired') {
      t.is(holding, undefined, `${line.name} acquired while ${String(holding)} held: ${JSON.stringify(holders)}`);
      holding = line.name;
    } else if (holding === line.name) {
      holding = undefined;
    }
  }
  const aDropped = aLines.find((line) => line.event === 'dropped');
  const watchLines = (await linesOf(observer)).filter((line) => line.event.startsWith('watch-'));
  const broke = (await linesOf(observer)).filter((line) => line.event === 'watch-broke' && line.wallMs > cutAt)[0];
  t.log(`the observer's watch through ${leader.name} ${broke === undefined ? 'never broke' : `broke ${broke.wallMs - cutAt} ms after the cut: ${String(broke['error'])}`}`);
  t.log(`leader ${leader.name} partitioned for ${10 * TTL_S * 1000 / 3} ms: a ${aDropped === undefined ? 'kept the key' : `dropped ${aDropped.wallMs - cutAt} ms after the cut (${String(aDropped['reason'])})`}; ` +
    `renewal failures ${aLines.filter((line) => line.event === 'holder' && String(line['line']).includes('failed')).length}; ` +
    `key changes ${watchLines.map((line) => `${line.event}@${line.wallMs - cutAt}ms`).join(', ') || 'none'}`);
});

integrationTest('a holder whose wall clock steps an hour forward and back keeps the key: its deadline is on the boot clock, never the wall clock', async (t) => {
  const clockFile = join(baseDir, 'a-clock-offset');
  await writeFile(clockFile, '+0\n');
  const {a, b, watch} = await scenario(t, 'clock', libfaketimeEnv(await findLibfaketime(), clockFile));
  const actsBefore = (await linesOf(a)).filter((line) => line.event === 'act').length;
  for (const offset of ['+3600', '-3600']) {
    await writeFile(clockFile, `${offset}\n`);
    await sleep(2 * TTL_S * 1000);
  }
  await writeFile(clockFile, '+0\n');
  const history = await watch.stop();
  noTwoHolders(t, history);
  const aLines = await linesOf(a);
  t.deepEqual(aLines.filter((line) => line.event === 'dropped'), [], 'a never dropped');
  t.true(aLines.filter((line) => line.event === 'act').length > actsBefore + 10, 'a kept acting through both steps');
  t.false((await linesOf(b)).some((line) => line.event === 'acquired'), 'b never acquired');
  t.deepEqual(judgeHolders(history).final, ['a']);
  const stamps = aLines.map((line) => line.wallMs);
  t.true(stamps.some((stamp, i) => i > 0 && Math.abs(stamp - (stamps[i - 1] ?? stamp)) > 3_000_000), 'a\'s wall clock did step (its log shows it)');
});

integrationTest('with one etcd member killed the holder keeps the key', async (t) => {
  const {c, a, b, watch} = await scenario(t, 'kill');
  const leader = await c.leader();
  // A follower, the first endpoint if it is one: the member the holder's renewals go to first.
  const victim = c.members.find((member) => member !== leader) as NonNullable<EtcdCluster['members'][number]>;
  const killedAt = Date.now();
  c.kill(victim);
  await sleep(4 * TTL_S * 1000);
  const history = await watch.stop();
  noTwoHolders(t, history);
  const aLines = await linesOf(a);
  t.deepEqual(aLines.filter((line) => line.event === 'dropped'), [], 'a never dropped');
  t.true(aLines.some((line) => line.event === 'act' && line.wallMs > killedAt + 3 * TTL_S * 1000), 'a still acts');
  t.false((await linesOf(b)).some((line) => line.event === 'acquired'), 'b never acquired');
  t.deepEqual(judgeHolders(history).final, ['a']);
  t.log(`${victim.name} killed (${victim === c.members[0] ? 'the first endpoint' : 'not the first endpoint'}); ` +
    `renewal failures after: ${aLines.filter((line) => line.event === 'holder' && line.wallMs > killedAt).length}`);
});
