// `baton lab up --hosts 3 --coordination etcd`, `lab status` and `lab down NAME`, end to end: the etcd lab stands after
// `lab up` exits with one host holding the service and the others standing by for it, `lab status --json` shows each
// host's own report, and `lab down` leaves no namespace behind.

import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import type {EtcdStatusReport} from '../../agent/control-protocol.js';
import {labDown} from '../../cli/lab/lab.js';
import {skipUnlessIntegration} from './helpers.js';
import {runner} from './lab-helpers.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
// Bounds on commands that must end: far above what they take, so a busy machine passes.
const UP_TIMEOUT_MS = 120_000;
const COMMAND_TIMEOUT_MS = 30_000;

let available = false;
let prefix: string | undefined;

test.before(async (t) => {
  available = await skipUnlessIntegration(t);
});

test.after.always(async () => {
  if (prefix !== undefined) await labDown(runner, prefix).catch(() => undefined);
});

/** The CLI's lab name starts with "bl" (so `baton lab down` finds it); BATON_TEST_PREFIX fixes more of it when it does. */
function prefixStem(): string {
  const start = process.env['BATON_TEST_PREFIX'] ?? '';
  return /^bl[0-9a-z]{0,4}$/.test(start) ? start : 'bl';
}

async function namespacesOf(name: string): Promise<string[]> {
  const {stdout} = await execa('ip', ['netns', 'list']);
  return stdout.split('\n').filter((line) => line.startsWith(`${name}-`));
}

test('lab up --hosts 3 --coordination etcd stands with one holder; lab status shows every host; lab down NAME removes it all', async (t) => {
  if (!available) return t.pass();
  t.timeout(UP_TIMEOUT_MS + 2 * COMMAND_TIMEOUT_MS);
  const up = await execa(process.execPath, [CLI, 'lab', 'up', '--hosts', '3', '--coordination', 'etcd', '--prefix', prefixStem()],
    {reject: false, timeout: UP_TIMEOUT_MS});
  prefix = /lab (bl[0-9a-z]{6}): building/.exec(String(up.stderr))?.[1];
  t.is(up.exitCode, 0, `${String(up.stdout)}${String(up.stderr)}`);
  if (prefix === undefined) return t.fail(String(up.stderr));
  t.regex(String(up.stdout), new RegExp(`^lab ${prefix} is up in etcd mode: hosts a 192\\.0\\.2\\.11, b 192\\.0\\.2\\.12, c 192\\.0\\.2\\.13; `));
  t.is((await namespacesOf(prefix)).length, 8, 'three hosts, three members, the client and the switch');

  const status = await execa(process.execPath, [CLI, 'lab', 'status', '--json'], {reject: false, timeout: COMMAND_TIMEOUT_MS});
  t.is(status.exitCode, 0, String(status.stderr));
  const shown = JSON.parse(String(status.stdout)) as {lab: string; coordination: string; hosts: EtcdStatusReport[]};
  t.is(shown.lab, prefix);
  t.is(shown.coordination, 'etcd');
  t.deepEqual(shown.hosts.map((h) => h.self.host), ['a', 'b', 'c']);
  // The lab's hosts run one service, `lab`.
  const services = shown.hosts.map((h) => ({host: h.self.host, ...h.services[0]}));
  const holders = services.filter((s) => s.claim?.phase === 'holding');
  t.is(holders.length, 1);
  const holder = holders[0]?.host;
  t.is(holders[0]?.holdsIp, true);
  for (const other of services.filter((s) => s.host !== holder)) t.like(other, {claim: {phase: 'standing-by', holder}, holdsIp: false});
  const text = await execa(process.execPath, [CLI, 'lab', 'status'], {reject: false, timeout: COMMAND_TIMEOUT_MS});
  t.is(text.exitCode, 0, String(text.stderr));
  t.is(String(text.stdout).match(/^host [abc] in etcd mode /gm)?.length, 3);

  const down = await execa(process.execPath, [CLI, 'lab', 'down', prefix], {reject: false, timeout: COMMAND_TIMEOUT_MS});
  t.is(down.exitCode, 0, String(down.stderr));
  t.is(String(down.stdout), `lab ${prefix} removed: agents stopped, namespaces and files deleted`);
  t.deepEqual(await namespacesOf(prefix), []);
  prefix = undefined;
});
