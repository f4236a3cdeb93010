// Part "replay": the attacks heartbeat.replay_protection is about, on a real pair. A withheld tail: a delay line on
// the path (delay-line.ts) holds each of the primary's beacons back for 3 s (inside the 5 s skew window), the primary
// dies, and the line goes on delivering its last beacons; how long the backup still sees it alive, and when it takes over, in each
// mode. And the backup's wall clock an hour ahead, then behind, with replay_protection acknowledged: the pair must
// keep working (in clock mode the faults part shows it breaking).

import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import type {StatusReport} from '../agent/control-protocol.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent, type Lab, type LabHost} from '../cli/lab/lab.js';
import {runInNamespace, spawnInNamespace} from '../cli/lab/namespaces.js';
import {holdingsOf, soleHolder} from '../cli/lab/observe.js';
import {stopProcessByPid} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {BEACON_PORT, forgeSource} from './forge.js';
import {findLibfaketime, libfaketimeEnv} from './faults-host.js';
import {holderIs, isDone, outcomeText, said, settledOr, statusOrThrow, switchWith, type Verdict, withFaultLab} from './fault-kit.js';
import {checkOneHolder} from './lab.js';

// The lab's timers are the defaults: beacons every 200 ms, dead after 1000 ms, a skew window of 5000 ms.
const INTERVAL_MS = 200;
const DEAD_AFTER_MS = 1000;
const SKEW_MS = 5000;
// Held back longer than dead_after (acknowledged mode refuses them) and shorter than the skew window (clock mode
// takes them).
const DELAY_MS = 3000;
// Raised by this much a second, so that in clock mode the backup never sees a gap as long as the dead timer while
// the line is put in place (beacons arrive 1.5 intervals apart meanwhile): the attacker wants the primary alive.
const RAMP_MS_PER_S = 500;
// The line listens here in the client's namespace and sends from LINE_FROM_PORT, whose source nftables rewrites.
const LINE_PORT = 7499;
const LINE_FROM_PORT = 40413;
const DELAY_LINE = fileURLToPath(new URL('./delay-line.js', import.meta.url));
// Status is sampled this often after the primary dies, for how long it is seen alive.
const SAMPLE_MS = 100;
// Time for a status round trip and the sampling itself: the backup's verdict can be this much older than the sample.
const SAMPLE_SLACK_MS = 500;
const TAKEOVER_LIMIT_MS = 15_000;
const HOUR_S = 3600;
const ACKNOWLEDGED = 'heartbeat: { replay_protection: acknowledged }';

/**
 * An attacker on the path of the primary's datagrams to the backup, built from the lab's parts: the primary routes
 * the backup's address through the client (as ARP spoofing would), the client's kernel hands those datagrams to
 * the delay line (nftables DNAT), and the line sends each on to the backup, held back, with the primary's address
 * as source (nftables SNAT, campaign/forge.ts). The backup's datagrams to the primary go straight. Returns the line's
 * pid and where it writes its counts.
 */
async function delayBeacons(context: CampaignContext, lab: Lab): Promise<{pid: number; out: string}> {
  const {primary, backup} = lab.hosts;
  await forgeSource(context, lab, backup, primary, LINE_FROM_PORT);
  const out = join(lab.dir, `delay-line-${LINE_FROM_PORT}.json`);
  const pid = await spawnInNamespace(lab.client.namespace, process.execPath, [DELAY_LINE, '--listen', String(LINE_PORT),
    '--to', `${backup.address}:${BEACON_PORT}`, '--from-port', String(LINE_FROM_PORT), '--delay-ms', String(DELAY_MS),
    '--ramp-ms', String(RAMP_MS_PER_S), '--seconds', '120', '--out', out], `${out}.log`);
  const rules = join(lab.dir, 'delay-line.nft');
  await writeFile(rules, [
    'table ip baton_delay {',
    '  chain pre {',
    '    type nat hook prerouting priority dstnat;',
    `    ip saddr ${primary.address} ip daddr ${backup.address} udp dport ${BEACON_PORT} dnat to ${lab.client.address}:${LINE_PORT}`,
    '  }',
    '}',
    '',
  ].join('\n'));
  await runInNamespace(context.runner, lab.client.namespace, '/usr/sbin/nft', ['-f', rules]);
  await context.runner.run('ip', ['-n', primary.namespace, 'route', 'add', `${backup.address}/32`, 'via', lab.client.address, 'dev', 'eth0']);
  return {pid, out};
}

/**
 * The withheld tail in one mode. The delay line is raised to DELAY_MS; then the primary dies (its agent SIGKILLed,
 * the service address taken off its interface, so ARP no longer finds it), while the line still holds its last
 * DELAY_MS of beacons. Measured: the last status sample in which the backup saw the primary alive, and when the
 * backup's kernel has the service address. Checked: acknowledged mode never shows the dead primary alive later
 * than dead_after + interval after its death (docs/security.md); clock mode, never later than the skew window
 * allows; both end with the backup alone holding the address.
 */
async function withheldTail(context: CampaignContext, mode: 'clock' | 'acknowledged'): Promise<CaseResult> {
  const name = `withheld tail (beacons held back ${DELAY_MS / 1000} s, then the primary dies), replay_protection ${mode}`;
  const verdict = await withFaultLab(context, mode === 'acknowledged' ? {extraConfig: ACKNOWLEDGED} : {}, async (lab) => {
    const line = await delayBeacons(context, lab);
    let found: Verdict;
    try {
      found = await killBehindTheLine(context, lab, mode);
    } finally {
      await stopProcessByPid(line.pid);
    }
    // Written by the line as it stops.
    const counts = JSON.parse(await readFile(line.out, 'utf8').catch(() => '{}')) as {relayed?: number; maxHeldMs?: number};
    return {...found, figures: `${found.figures}; the line relayed ${counts.relayed ?? '?'} datagrams, holding each up to ${counts.maxHeldMs ?? '?'} ms`};
  });
  return {group: 'replay', name, ...verdict};
}

async function killBehindTheLine(context: CampaignContext, lab: Lab, mode: 'clock' | 'acknowledged'): Promise<Verdict> {
  const problems: string[] = [];
  // The ramp, then one full hold, so that the line carries DELAY_MS of beacons when the primary dies.
  await sleep((DELAY_MS / RAMP_MS_PER_S) * 1000 + DELAY_MS + 1000);
  const before = await statusOrThrow(lab);
  const seenBefore = before.backup.peer.alive;
  const unacknowledgedBefore = before.backup.beacons.rejected.unacknowledged;

  const primary = lab.hosts.primary;
  await signalAgent(primary, 'SIGKILL');
  for (const cidr of lab.serviceIps) await runInNamespace(context.runner, primary.namespace, 'ip', ['addr', 'del', cidr, 'dev', 'eth0']);
  const diedAt = Date.now();
  let lastAliveMs: number | undefined;
  let takeoverMs: number | undefined;
  while (Date.now() - diedAt < TAKEOVER_LIMIT_MS) {
    const status = await backupStatus(lab);
    const at = Date.now() - diedAt;
    if (status?.peer.alive === true) lastAliveMs = at;
    // Taken when the backup holds the whole service; the killed primary's address is gone by hand, so no other does.
    if (takeoverMs === undefined && soleHolder(await holdingsOf(lab)) === 'backup') takeoverMs = at;
    // Watched until the line has delivered the whole tail, and the backup has taken over.
    if (takeoverMs !== undefined && at > DELAY_MS + DEAD_AFTER_MS + SAMPLE_SLACK_MS) break;
    await sleep(SAMPLE_MS);
  }
  const unacknowledged = ((await backupStatus(lab))?.beacons.rejected.unacknowledged ?? 0) - unacknowledgedBefore;
  const bound = mode === 'acknowledged' ? DEAD_AFTER_MS + INTERVAL_MS : SKEW_MS + DEAD_AFTER_MS;
  if (mode === 'clock' && !seenBefore) problems.push('the backup did not see the primary alive through the delay line: the attack was not set up');
  if (lastAliveMs !== undefined && lastAliveMs > bound + SAMPLE_SLACK_MS) {
    problems.push(`the backup saw the dead primary alive ${lastAliveMs} ms after its death, beyond the ${bound} ms the docs promise`);
  }
  if (takeoverMs === undefined) problems.push(`the backup did not take the address within ${TAKEOVER_LIMIT_MS} ms`);
  const holder = await checkOneHolder(lab);
  if (!holder.ok) problems.push(holder.problem);
  else if (holder.holder !== 'backup') problems.push(`the ${holder.holder ?? '?'} holds the address, expected the backup`);
  const figures = `before the death the backup saw the primary ${seenBefore ? 'alive' : 'dead'}; after it: alive until ` +
    `${lastAliveMs === undefined ? 'never' : `+${lastAliveMs} ms`}, address taken at ${takeoverMs === undefined ? 'never' : `+${takeoverMs} ms`}` +
    `${mode === 'acknowledged' ? `, ${unacknowledged} datagrams refused as unacknowledged after the death` : ''}`;
  return {ok: problems.length === 0, figures, ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

/** The backup's status, or undefined when it does not answer (the primary's agent is dead: only the backup is asked). */
async function backupStatus(lab: Lab): Promise<StatusReport | undefined> {
  return await callAgent(lab.hosts.backup.socket, {id: 'campaign-replay', type: 'status'}).catch(() => undefined) as StatusReport | undefined;
}

/**
 * replay_protection acknowledged on both hosts, each agent under libfaketime (its wall clock only, as in the faults
 * part's clock case) with a clock file of its own. The giver's clock is the one stepped: the primary's an hour ahead
 * for the switch to the backup, then the backup's an hour behind for the switch back. Both agents must see each
 * other throughout, reject nothing as stale or future, and both switches must be done. (The taker's clock stays
 * true because confirm-traffic compares its agent's clock with its web server's access log, which libfaketime does
 * not move: on a real host the two share one clock, whatever the peer's says.)
 */
async function clocksApart(context: CampaignContext): Promise<CaseResult> {
  const name = 'the primary\'s clock 1 h ahead, then the backup\'s 1 h behind, replay_protection acknowledged';
  const verdict = await withFaultLab(context, {extraConfig: ACKNOWLEDGED}, async (lab) => {
    const problems: string[] = [];
    const figures: string[] = [];
    const library = await findLibfaketime();
    const clockFile = (host: LabHost): string => join(lab.dir, `${host.role}-clock-offset`);
    const stepClock = (host: LabHost, offsetS: number): Promise<void> => writeFile(clockFile(host), `${offsetS >= 0 ? '+' : ''}${offsetS}\n`);
    for (const host of [lab.hosts.primary, lab.hosts.backup]) {
      await stepClock(host, 0);
      await signalAgent(host, 'SIGTERM');
      await startAgent(host, lab, undefined, {env: libfaketimeEnv(library, clockFile(host))});
      const fresh = await settledOr(lab, `the ${host.role} restarted under libfaketime`);
      if (fresh.length > 0) throw new Error(fresh.join('; '));
    }
    for (const [skewed, offsetS, to] of [[lab.hosts.primary, HOUR_S, 'backup'], [lab.hosts.backup, -HOUR_S, 'primary']] as const) {
      const label = `${skewed.role} ${offsetS > 0 ? '+' : '-'}1 h`;
      await stepClock(skewed, offsetS);
      await sleep(DEAD_AFTER_MS + 1500);
      const status = await statusOrThrow(lab);
      if (!status.primary.peer.alive || !status.backup.peer.alive) {
        problems.push(`${label}: the primary sees the backup ${status.primary.peer.alive ? 'alive' : 'dead'}, the backup the primary ${status.backup.peer.alive ? 'alive' : 'dead'}`);
      }
      const clockRejections = (s: StatusReport): number => s.beacons.rejected.stale + s.beacons.rejected.future;
      if (clockRejections(status.primary) + clockRejections(status.backup) > 0) problems.push(`${label}: datagrams rejected as stale or future`);
      const result = await switchWith(skewed, {});
      if (!isDone(result)) problems.push(`${label}: the switchover to the ${to}: ${outcomeText(result)}`);
      problems.push(...await holderIs(lab, to, label));
      figures.push(`${label}: both alive, switch to the ${to} ${said(result, 40)}`);
      await stepClock(skewed, 0);
    }
    await callAgent(lab.hosts.backup.socket, {id: 'campaign-replay', type: 'resume', peer: false}).catch(() => undefined);
    problems.push(...await settledOr(lab, 'back to true time'));
    return {ok: problems.length === 0, figures: figures.join('; '), ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
  });
  return {group: 'replay', name, ...verdict};
}

export const replayPart: CampaignPart = {
  name: 'replay',
  about: 'a withheld tail of beacons after the primary dies, in each replay_protection mode; clocks an hour apart with acknowledged',
  async run(context) {
    return [
      await withheldTail(context, 'clock'),
      await withheldTail(context, 'acknowledged'),
      await clocksApart(context),
    ];
  },
};
