// The drain with real web servers: a real nginx, then a real Apache, each with keep-alive on as shipped, clients of
// the classes real sites have (a new connection per request, keep-alive connections, downloads and uploads in
// flight), and a switchover and a switchback between them. Every keep-alive request, download and upload must finish;
// who held the address is judged from the kernels' own address events; nothing of the drain is left on either host.

import {readdir, readFile, mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import {judgeHolders, watchServiceAddress} from '../../cli/lab/address-events.js';
import type {ClientsSummary} from '../../cli/lab/clients.js';
import {startClients} from '../../cli/lab/clients-control.js';
import {labDown, labUp, type Lab, type LabHost} from '../../cli/lab/lab.js';
import {TRANSFER_BYTES} from '../../cli/lab/transfers.js';
import {UPLOADS_DIR, type WebServerKind} from '../../cli/lab/web.js';
import {integrationPrefix, skipUnlessIntegration} from './helpers.js';
import {baton, runner, servedBy, settled} from './lab-helpers.js';

// Downloads and uploads last 4 s: each started every 500 ms, ~8 of each are in flight at any moment, so some are on
// the giver at each move.
const CLIENT_ARGS = ['--fresh-interval-ms', '20', '--keep-alive', '4', '--keep-alive-interval-ms', '20', '--download-every-ms', '500',
  '--upload-every-ms', '500'];

async function drainLeftovers(host: LabHost): Promise<string[]> {
  const left: string[] = [];
  const tables = await execa('ip', ['netns', 'exec', host.namespace, '/usr/sbin/nft', 'list', 'tables']);
  if (/baton_drain/.test(tables.stdout)) left.push(`nft: ${tables.stdout.trim()}`);
  const lo = await execa('ip', ['-n', host.namespace, '-4', '-o', 'addr', 'show', 'dev', 'lo']);
  if (lo.stdout.includes('192.0.2.100')) left.push('192.0.2.100 on lo');
  return left;
}

/** The uploads a host's web server stored that are not exactly the 1 MiB the client sent, and how many it stored. */
async function storedUploads(host: LabHost): Promise<{count: number; wrong: string[]}> {
  const dir = join(host.dir, 'web', UPLOADS_DIR);
  const names = await readdir(dir);
  const wrong: string[] = [];
  for (const name of names) {
    const body = await readFile(join(dir, name));
    if (body.length !== TRANSFER_BYTES || body.some((byte) => byte !== 0x75)) wrong.push(`${name}: ${body.length} bytes`);
  }
  return {count: names.length, wrong};
}

function describe(summary: ClientsSummary): string {
  return Object.entries(summary.classes).map(([name, c]) =>
    `${name}: ${c.ok}/${c.attempts} ok, ${c.failed} failed, longest gap ${c.longestGapMs} ms, served by ${JSON.stringify(c.servedBy)}` +
    (c.failures.length === 0 ? '' : `, failures ${JSON.stringify(c.failures.slice(0, 5))}`)).join('\n');
}

async function switchBothWays(t: ExecutionContext, web: WebServerKind): Promise<void> {
  if (!(await skipUnlessIntegration(t))) return;
  const baseDir = await mkdtemp(join(tmpdir(), 'baton-it-'));
  let lab: Lab | undefined;
  try {
    lab = await labUp({runner, prefix: integrationPrefix(), baseDir, web});
    await settled(lab);
    const watch = await watchServiceAddress(lab);
    const clients = await startClients({namespace: lab.client.namespace, url: 'http://192.0.2.100/', durationS: 60, out: join(baseDir, 'clients.json'), args: CLIENT_ARGS});
    // Let transfers and keep-alive connections build up on the primary before it gives the address away.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const over = await baton(lab.hosts.primary, 'switchover');
    t.log(String(over.stdout));
    t.is(over.exitCode, 0, `${String(over.stdout)}${String(over.stderr)}`);
    t.regex(String(over.stdout), /drain-connections +on primary +ok/);
    t.is(await servedBy(lab, 'backup'), 'backup');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const back = await baton(lab.hosts.primary, 'switchover');
    t.log(String(back.stdout));
    t.is(back.exitCode, 0, `${String(back.stdout)}${String(back.stderr)}`);
    t.regex(String(back.stdout), /drain-connections +on backup +ok/);
    t.is(await servedBy(lab, 'primary'), 'primary');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const summary = await clients.stop();
    const history = await watch.stop();
    t.log(describe(summary));
    const {keepAlive, downloads, uploads, fresh} = summary.classes;
    t.true(keepAlive.ok > 100 && downloads.ok > 5 && uploads.ok > 5 && fresh.ok > 100, 'the clients really ran');
    t.is(keepAlive.failed, 0, 'every keep-alive request was answered');
    t.is(downloads.failed, 0, 'every download finished, those in flight at the moves too');
    t.is(uploads.failed, 0, 'every upload was received whole, those in flight at the moves too');
    t.true((downloads.servedBy['primary'] ?? 0) > 0 && (downloads.servedBy['backup'] ?? 0) > 0, 'downloads ran on both hosts');
    t.true((uploads.servedBy['primary'] ?? 0) > 0 && (uploads.servedBy['backup'] ?? 0) > 0, 'uploads ran on both hosts');
    // What the servers stored, besides what they answered: each file the whole 1 MiB the client sent.
    for (const role of ['primary', 'backup'] as const) {
      const stored = await storedUploads(lab.hosts[role]);
      t.log(`${role}: ${stored.count} uploads stored, ${uploads.servedBy[role] ?? 0} answered`);
      t.true(stored.count > 0, `the ${role} stored uploads`);
      t.deepEqual(stored.wrong, [], `every upload the ${role} stored is 1 MiB of the client's bytes`);
    }
    t.true((keepAlive.servedBy['backup'] ?? 0) > 0, 'keep-alive clients moved to the taker after the graceful close');
    // New connections: a figure, not a verdict, on a machine that may be busy (the bench measures it).
    t.log(`new connections: ${fresh.failed} failed of ${fresh.attempts}, longest gap ${fresh.longestGapMs} ms`);
    t.deepEqual(judgeHolders(history).overlaps, [], 'never two holders, from the kernels\' own events');
    // The unowned window of each move, from the kernels' events: the giver's address gone to the taker's there.
    const windows = history.events.flatMap((event, i) => {
      if (event.change !== 'address-added') return [];
      const removed = history.events.slice(0, i).findLast((e) => e.change === 'address-removed' && e.host !== event.host);
      return removed === undefined ? [] : [Math.round((event.atMs - removed.atMs) * 10) / 10];
    });
    t.log(`unowned windows (ms, kernel events): ${windows.join(', ')}`);
    t.deepEqual(judgeHolders(history).final, ['primary']);
    for (const host of [lab.hosts.primary, lab.hosts.backup]) t.deepEqual(await drainLeftovers(host), [], `nothing of the drain left on the ${host.role}`);
  } finally {
    if (lab !== undefined) await labDown(runner, lab.prefix, baseDir);
    await rm(baseDir, {recursive: true, force: true});
  }
}

test.serial('nginx: keep-alive requests, downloads and uploads in flight survive a switchover and a switchback', (t) => switchBothWays(t, 'nginx'));

test.serial('Apache: keep-alive requests, downloads and uploads in flight survive a switchover and a switchback', (t) => switchBothWays(t, 'apache'));
