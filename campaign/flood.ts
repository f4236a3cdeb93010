// Part "flood": 10,000 forged or malformed datagrams a second at the backup agent's port, from the client's
// namespace, while planned switches run. Half come from the client's own address (a third host), half with the
// primary's address forged as their source, so they get past the cheap source check and cost the agent a
// header parse and an HMAC each. The agent must keep up, switch, never fail over falsely, and count every one.

import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {randomBytes} from 'node:crypto';
import fc from 'fast-check';
import type {StatusReport} from '../agent/control-protocol.js';
import {keyIdOf, type Key} from '../agent/config.js';
import {callAgent} from '../cli/control-client.js';
import type {Lab} from '../cli/lab/lab.js';
import {runInNamespace, spawnInNamespace} from '../cli/lab/namespaces.js';
import {holdersOf} from '../cli/lab/observe.js';
import {startProber} from '../cli/lab/probe-control.js';
import {isProcessAlive} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {hostileDatagrams, templates} from './datagrams.js';
import {describeSwitch, pairStatus, requestSwitch, settle, withCampaignLab} from './lab.js';

const SENDER = fileURLToPath(new URL('./flood-sender.js', import.meta.url));
const RATE = 10_000;
const POOL_SIZE = 5000;
// Bounds the agent must stay within under the flood; at rest it takes 61 MB and under 1 % of a core.
const RSS_LIMIT_MB = 100;

/** Writes `count` hostile datagrams signed with `key`, length-prefixed, for the sender to cycle through. */
async function writePool(file: string, key: Key, count: number): Promise<void> {
  const datagrams = fc.sample(hostileDatagrams(key, templates('lab', Date.now())), {numRuns: count, seed: 7411});
  const parts: Buffer[] = [];
  for (const datagram of datagrams) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(Math.min(datagram.length, 0xffff));
    parts.push(length, Buffer.from(datagram.subarray(0, 0xffff)));
  }
  await writeFile(file, Buffer.concat(parts));
}

interface ProcessSample {
  readonly cpuTicks: number;
  readonly rssKb: number;
  readonly peakRssKb: number;
}

async function sampleProcess(pid: number): Promise<ProcessSample> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return {cpuTicks, rssKb: kb('VmRSS'), peakRssKb: kb('VmHWM')};
}

/** UDP datagrams the namespace's kernel dropped before the agent could read them (socket buffer full, bad checksum). */
async function kernelUdpDrops(context: CampaignContext, namespace: string): Promise<number> {
  const snmp = await runInNamespace(context.runner, namespace, 'cat', ['/proc/net/snmp']);
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const counts = (lines[1] ?? '').split(/\s+/);
  const value = (name: string): number => Number(counts[names.indexOf(name)] ?? 0);
  // InErrors counts RcvbufErrors too.
  return value('InErrors');
}

function rejectedTotal(status: StatusReport): number {
  return Object.values(status.beacons.rejected).reduce((a, b) => a + b, 0);
}

// The forging sender sends from this port; nftables in the client's namespace rewrites its source address to the
// primary's, as an attacker on the LAN would forge it (the kernel will not send from an address it does not have).
const FORGED_PORT = 40411;

async function forgeSource(context: CampaignContext, lab: Lab): Promise<void> {
  const rules = [
    'table ip baton_flood {',
    '  chain post {',
    '    type nat hook postrouting priority srcnat;',
    `    ip daddr ${lab.hosts.backup.address} udp sport ${FORGED_PORT} snat to ${lab.hosts.primary.address}`,
    '  }',
    '}',
  ].join('\n');
  const file = join(context.dir, 'flood.nft');
  await writeFile(file, `${rules}\n`);
  await runInNamespace(context.runner, lab.client.namespace, '/usr/sbin/nft', ['-f', file]);
}

interface SenderResult {
  readonly sent: number;
  readonly errors: number;
  readonly lastError: string;
  readonly elapsedS: number;
}

async function startSender(lab: Lab, dir: string, name: string, pool: string, rate: number, seconds: number, port = 0): Promise<{pid: number; out: string}> {
  const out = join(dir, `${name}.json`);
  const args = [SENDER, '--target', `${lab.hosts.backup.address}:7411`, '--pool', pool, '--rate', String(rate),
    '--seconds', String(seconds), '--out', out, '--port', String(port)];
  const pid = await spawnInNamespace(lab.client.namespace, process.execPath, args, `${out}.log`);
  return {pid, out};
}

async function waitSender(sender: {pid: number; out: string}, timeoutMs: number): Promise<SenderResult> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(sender.pid) && Date.now() < deadline) await sleep(100);
  if (isProcessAlive(sender.pid)) {
    process.kill(sender.pid, 'SIGKILL');
    throw new Error(`the flood sender (pid ${sender.pid}) did not finish in time`);
  }
  const text = await readFile(sender.out, 'utf8').catch(async () => {
    throw new Error(`the flood sender wrote no result: ${await readFile(`${sender.out}.log`, 'utf8').catch(() => '')}`);
  });
  return JSON.parse(text) as SenderResult;
}

async function floodDuringSwitches(context: CampaignContext, lab: Lab, seconds: number): Promise<CaseResult> {
  const secret = new Uint8Array(await readFile(join(lab.dir, 'secret')));
  // The key id is on the wire for anyone to read; the secret is not. One pool carries the real key id with a
  // wrong secret (bad MAC after a full HMAC), the other a key nobody has (unknown key).
  const guessed = join(context.dir, 'pool-guessed.bin');
  const unknown = join(context.dir, 'pool-unknown.bin');
  await writePool(guessed, {id: keyIdOf(secret), secret: randomBytes(32), file: '-'}, POOL_SIZE);
  const stranger = randomBytes(32);
  await writePool(unknown, {id: keyIdOf(stranger), secret: stranger, file: '-'}, POOL_SIZE);
  await forgeSource(context, lab);

  const backup = lab.hosts.backup;
  const before = await callAgent(backup.socket, {id: 'flood', type: 'status'}) as StatusReport;
  const dropsBefore = await kernelUdpDrops(context, backup.namespace);
  const procBefore = await sampleProcess(backup.pid);
  const startedAt = Date.now();
  const senders = [
    await startSender(lab, context.dir, 'spoofed', guessed, RATE / 2, seconds, FORGED_PORT),
    await startSender(lab, context.dir, 'third', unknown, RATE / 2, seconds),
  ];
  // A client requesting the service IP, as the switch's confirmation needs real requests.
  const prober = await startProber({namespace: lab.client.namespace, url: 'http://192.0.2.100/', intervalMs: 50, timeoutMs: 200,
    durationS: seconds + 30, maxProbes: Math.ceil((seconds + 30) * 20), out: join(context.dir, 'flood-probes.jsonl')});
  const switches: string[] = [];
  let switchFailures = 0;
  let falseAlarms = 0;
  let doubleHolders = 0;
  let samples = 0;
  let peakRssKb = procBefore.rssKb;
  const deadline = startedAt + seconds * 1000;
  // Watches the pair every 250 ms while the flood lasts: each agent must keep seeing the other alive, and the
  // kernels must never both hold the IP.
  const watching = (async () => {
    while (Date.now() < deadline) {
      const [status, holders, proc] = await Promise.all([pairStatus(lab), holdersOf(lab), sampleProcess(backup.pid)]);
      samples += 1;
      peakRssKb = Math.max(peakRssKb, proc.rssKb);
      if (holders.length > 1) doubleHolders += 1;
      if ('error' in status || !status.primary.peer.alive || !status.backup.peer.alive) falseAlarms += 1;
      await sleep(250);
    }
  })();
  await sleep(1000);
  // Switch over and back (the backup resumed after each round) for as long as the flood lasts, at least once.
  while (switches.length === 0 || Date.now() < deadline - 4000) {
    for (const from of [lab.hosts.primary, lab.hosts.primary]) {
      const result = await requestSwitch(from);
      switches.push(describeSwitch(result));
      if ('error' in result || result.outcome !== 'done') switchFailures += 1;
      await settle(lab);
    }
    await callAgent(backup.socket, {id: 'flood', type: 'resume', peer: false}).catch(() => undefined);
  }
  await watching;
  await prober.stop();
  const sent = await Promise.all(senders.map((s) => waitSender(s, (seconds + 30) * 1000)));
  await sleep(500);
  const after = await callAgent(backup.socket, {id: 'flood', type: 'status'}) as StatusReport;
  const procAfter = await sampleProcess(backup.pid);
  const drops = (await kernelUdpDrops(context, backup.namespace)) - dropsBefore;
  const elapsedS = (Date.now() - startedAt) / 1000;

  const totalSent = sent.reduce((a, s) => a + s.sent, 0);
  const rejected = rejectedTotal(after) - rejectedTotal(before);
  const unread = after.beacons.droppedUnread - before.beacons.droppedUnread;
  const byReason = Object.entries(after.beacons.rejected)
    .map(([reason, n]) => [reason, n - (before.beacons.rejected[reason as keyof typeof before.beacons.rejected] ?? 0)] as const)
    .filter(([, n]) => n > 0).map(([reason, n]) => `${reason} ${n}`).join(', ');
  const cpuPercent = ((procAfter.cpuTicks - procBefore.cpuTicks) / 100 / elapsedS) * 100;
  peakRssKb = Math.max(peakRssKb, procAfter.rssKb);
  const problems: string[] = [];
  if (switchFailures > 0) problems.push(`${switchFailures} of ${switches.length} switches failed: ${switches.filter((s) => !s.startsWith('done')).join('; ')}`);
  if (falseAlarms > 0) problems.push(`in ${falseAlarms} of ${samples} samples an agent did not see its peer alive`);
  if (doubleHolders > 0) problems.push(`in ${doubleHolders} samples both hosts held the IP`);
  if (rejected + unread + drops !== totalSent) problems.push(`sent ${totalSent} but rejected ${rejected} + dropped unread ${unread} + kernel drops ${drops}`);
  if (peakRssKb / 1024 > RSS_LIMIT_MB) problems.push(`RSS reached ${(peakRssKb / 1024).toFixed(0)} MB (limit ${RSS_LIMIT_MB})`);
  if (sent.some((s) => s.errors > 0)) problems.push(`send errors: ${sent.map((s) => s.lastError).join('; ')}`);
  const rate = Math.round(totalSent / Math.max(...sent.map((s) => s.elapsedS)));
  return {
    group: 'flood',
    name: `${RATE}/s for ${seconds} s at the backup during switches`,
    ok: problems.length === 0,
    figures: `sent ${totalSent} (${rate}/s), rejected ${rejected} (${byReason}), dropped unread ${unread}, kernel drops ${drops}; ` +
      `${switches.length - switchFailures}/${switches.length} switches done; peer seen alive in ${samples - falseAlarms}/${samples} samples; ` +
      `backup agent CPU ${cpuPercent.toFixed(0)} % of a core, loop lag p99 ${after.timers.loopLagMs.p99} ms max ${after.timers.loopLagMs.max} ms, RSS ${(procAfter.rssKb / 1024).toFixed(0)} MB (peak ${(peakRssKb / 1024).toFixed(0)} MB)`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')}),
  };
}

export const floodPart: CampaignPart = {
  name: 'flood',
  about: `${RATE} forged or malformed datagrams a second at the backup agent while planned switches run`,
  async run(context) {
    const seconds = context.fast ? 8 : 30;
    return [await withCampaignLab(context, {}, (lab) => floodDuringSwitches(context, lab, seconds))];
  },
};
