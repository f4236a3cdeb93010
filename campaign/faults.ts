// Part "faults": the host breaks under a running pair, each fault in its own lab with a client requesting the
// service IP every 50 ms: the taker's interface renamed mid-switch, its access log deleted or rotated during
// confirm-traffic, its journal's filesystem gone read-only, one agent's wall clock stepped by an hour, and the
// peer agent restarted mid-switch. Whatever baton does, each case ends with exactly one kernel holding the IP and
// the client served by it, and the row says what baton did.

import {access, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, truncate, unlink, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {StatusReport, SwitchoverOptions, SwitchProgress, SwitchResult} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent, type Lab, type LabHost} from '../cli/lab/lab.js';
import {until} from '../cli/lab/observe.js';
import {startProber, type Prober} from '../cli/lab/probe-control.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {checkJournals, checkOneHolder, describeSwitch, pairStatus, settle, SWITCH_DEFAULTS, withCampaignLab} from './lab.js';

/** What one case found: pass or fail, the figures for the table, and the longer story when it failed. */
interface Verdict {
  readonly ok: boolean;
  readonly figures: string;
  readonly detail?: string;
}

interface FaultCase {
  readonly name: string;
  run(context: CampaignContext): Promise<Verdict>;
}

// The client asks every 50 ms, so confirm-traffic's requests arrive within a fraction of a second and a gap in
// service shows up; a 200 ms timeout per request keeps a dead IP from stacking up requests.
const PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 200;
// Far beyond any case (each takes well under a minute); the prober is stopped at the end of its case anyway.
const PROBE_DURATION_S = 600;
// A switch answers within its steps' deadlines (10 s each) and the confirmation time; 90 s is a hung agent.
const SWITCH_TIMEOUT_MS = 90_000;
// Confirmations sized by the client's 50 ms rhythm: 40 requests take ~2 s, inside the access-log watcher's 5 s
// grace for a vanished log; 200 take ~10 s, outlasting it.
interface ConfirmSize {
  readonly minRequests: number;
  readonly confirmTimeoutS: number;
}
const QUICK_CONFIRM: ConfirmSize = {minRequests: 40, confirmTimeoutS: 15};
const SLOW_CONFIRM: ConfirmSize = {minRequests: 200, confirmTimeoutS: 30};
// A pause long enough for the fault to be injected (a few `ip` or `mount` runs, or an agent's restart) before
// the switch goes on; the switch waits this long after the step whatever happens.
const PAUSE_S = 3;
// Interface names hold at most 15 characters; this one is obviously not the configured eth0.
const RENAMED_INTERFACE = 'eth0-renamed';
const SERVICE_INTERFACE = 'eth0';
// libfaketime (Debian package libfaketime, pulled in by faketime), the build for threaded programs, as Node is;
// under /usr/lib/<multiarch triplet>/faketime/. Only the agent's wall clock moves (see clockStepped).
const LIBFAKETIME = 'faketime/libfaketimeMT.so.1';
const HOUR_S = 3600;
// Beacons every 200 ms (the default) and a dead timer of 1 s: a stepped clock makes the peer dead within it.
const DEFAULT_DEAD_AFTER_MS = 1000;
// The boot-id case restarts an agent (Node starts in ~0.5 s here, more on a loaded machine) within the dead timer.
const RESTART_DEAD_AFTER_MS = 4000;
// Where `ip netns exec NS` finds files to mount over /etc for that namespace's processes.
const NETNS_ETC = '/etc/netns';
// On the lab's network (TEST-NET-1) and held by no host.
const UNANSWERED_NAME_SERVER = '192.0.2.53';
// Switchover and switchback, twice: each runs the preflight on both hosts.
const DNS_SWITCHES = 4;

export const faultsPart: CampaignPart = {
  name: 'faults',
  about: 'host faults under a running pair: interface renamed, access log deleted/rotated, journal read-only, clock stepped, peer restarted, DNS unreachable',
  async run(context) {
    const rows: CaseResult[] = [];
    // The fast subset is every case: the whole part takes about a minute (one small lab per case, seconds each).
    for (const fault of FAULTS) {
      context.say(`faults: ${fault.name}`);
      const started = Date.now();
      let verdict: Verdict;
      try {
        verdict = await fault.run(context);
      } catch (error) {
        verdict = {ok: false, figures: 'could not run', detail: describeError(error)};
      }
      const seconds = `${((Date.now() - started) / 1000).toFixed(0)} s`;
      rows.push({group: 'faults', name: fault.name, ok: verdict.ok, figures: `${verdict.figures}; ${seconds}`,
        ...(verdict.detail === undefined ? {} : {detail: verdict.detail})});
    }
    return rows;
  },
};

// ---- the cases ------------------------------------------------------------------------------------------------

const FAULTS: readonly FaultCase[] = [
  {name: 'ip fails: taker interface renamed mid-switch', run: interfaceRenamed},
  {name: 'access log deleted during confirm-traffic', run: (c) => accessLogFault(c, 'delete', QUICK_CONFIRM)},
  {name: 'access log deleted, confirmation outlasting 5 s', run: (c) => accessLogFault(c, 'delete', SLOW_CONFIRM)},
  {name: 'access log rotated (rename + reopen) during confirm', run: (c) => accessLogFault(c, 'rename', QUICK_CONFIRM)},
  {name: 'access log rotated (copytruncate) during confirm', run: (c) => accessLogFault(c, 'copytruncate', QUICK_CONFIRM)},
  {name: 'journal filesystem read-only: before and mid-switch', run: journalReadOnly},
  {name: 'one agent\'s wall clock stepped by ±1 h', run: clockStepped},
  {name: 'peer agent restarted mid-switch (new boot id)', run: peerRestarted},
  {name: 'name server unreachable on the backup during switches', run: dnsUnreachable},
];

/**
 * Paused after backup-net-down, the taker's service interface is renamed (down, rename, up: the link and its
 * addresses stay, only the name baton was configured with is gone), so assign-ip's `ip` fails. The switch must
 * roll back naming the interface; renamed back, the next switch must work.
 */
async function interfaceRenamed(context: CampaignContext): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const taker = lab.hosts.backup;
    const problems: string[] = [];
    let renamed = false;
    try {
      const fault = new Trigger(isPause('backup-net-down'), async () => {
        await renameLink(context, taker, SERVICE_INTERFACE, RENAMED_INTERFACE);
        renamed = true;
      });
      const result = await switchWith(lab.hosts.primary, {pauseAfter: {step: 'backup-net-down', seconds: PAUSE_S}}, fault);
      await fault.done();
      if (!isRolledBack(result) || result.failedStep !== 'assign-ip') problems.push(`expected a rollback at assign-ip, got ${describeSwitch(result)}`);
      else if (!(result.reason ?? '').includes(SERVICE_INTERFACE)) problems.push(`the reason does not name ${SERVICE_INTERFACE}: ${result.reason ?? ''}`);
      problems.push(...await holderIs(lab, 'primary', 'after the rollback'));
      await renameLink(context, taker, RENAMED_INTERFACE, SERVICE_INTERFACE);
      renamed = false;
      const settled = await settle(lab);
      if (settled !== undefined) problems.push(`after renaming back: ${settled}`);
      const again = await switchWith(lab.hosts.primary, {});
      if (!isDone(again)) problems.push(`the switch after renaming back: ${describeSwitch(again)}`);
      problems.push(...await holderIs(lab, 'backup', 'after the second switch'));
      return verdict(problems, `${said(result, 90)}; primary served; renamed back, next switch ${said(again, 40)}`,
        [describeSwitch(result), describeSwitch(again)]);
    } finally {
      if (renamed) await renameLink(context, taker, RENAMED_INTERFACE, SERVICE_INTERFACE).catch(() => undefined);
    }
  });
}

/**
 * Just as confirm-traffic starts on the taker (its backup-net-up reported ok), its access log is deleted (nginx
 * goes on writing to the unlinked file), renamed with nginx told to reopen (logrotate's `create` + postrotate
 * USR1), or copied and truncated (logrotate's copytruncate). The confirmation asks for ~2 s of the client's
 * traffic, or ~10 s (longer than a deleted log may stay missing), so it spans the fault. Done or rolled back with
 * a reason naming the log: both are acceptable; one holder and a served client are not negotiable.
 */
async function accessLogFault(context: CampaignContext, kind: 'delete' | 'rename' | 'copytruncate', confirm: ConfirmSize): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const taker = lab.hosts.backup;
    const web = taker.web;
    // The built-in server never reopens its log: rotation by rename needs a real web server.
    if (web?.kind !== 'nginx') throw new Error('the access-log cases need nginx in the lab (Debian package nginx-light: npm run system-deps)');
    const log = web.accessLog;
    const problems: string[] = [];
    const fault = new Trigger(isStepOk('backup-net-up'), async () => {
      if (kind === 'delete') {
        await unlink(log);
      } else if (kind === 'rename') {
        await rename(log, `${log}.1`);
        reopenLogs(web.pid);
      } else {
        await copyFile(log, `${log}.1`);
        await truncate(log, 0);
      }
    });
    const result = await switchWith(lab.hosts.primary, confirm, fault);
    await fault.done();
    if (!fault.fired) problems.push('the fault was never injected: backup-net-up never reported ok');
    if ('error' in result) problems.push(`the switch answered an error: ${result.error}`);
    else if (result.outcome === 'rolled-back' && !/access log/i.test(result.reason ?? '')) problems.push(`rolled back without naming the access log: ${result.reason ?? ''}`);
    const expected = isDone(result) ? 'backup' : 'primary';
    problems.push(...await holderIs(lab, expected, `after the switch (${isDone(result) ? 'done' : 'not done'})`));
    const rotated = kind === 'delete' ? '' : `; access.log.1 ${await lineCount(`${log}.1`)} lines, new access.log ${await lineCount(log)}`;
    const counted = isDone(result) ? `, ${result.confirmedRequests} requests counted` : '';
    return verdict(problems, `${said(result, 100)}${counted}${rotated}; ${expected} serves`, [describeSwitch(result)]);
  });
}

/**
 * The taker's state_dir is a 1 MB tmpfs mounted before its agent starts (so the agent's `ip netns exec` mount
 * namespace has its own copy of the mount), then remounted read-only: a superblock flag, so the agent's copy
 * is read-only too (checked by writing from inside the agent's mount namespace). Read-only before a switch:
 * refused with a clear error and nothing left stuck. Read-only after backup-net-down (the next journal write
 * fails before assign-ip) and after primary-net-down (backup-net-up's own journal write fails after the IP is
 * up): rolled back, never two holders. Writable again, a switch works.
 */
async function journalReadOnly(context: CampaignContext): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const taker = lab.hosts.backup;
    const stateDir = join(taker.dir, 'state');
    const problems: string[] = [];
    const figures: string[] = [];
    const story: string[] = [];
    let mounted = false;
    try {
      await signalAgent(taker, 'SIGTERM');
      // A standby that never took the IP has written nothing yet: its state_dir may not exist.
      await mkdir(stateDir, {recursive: true, mode: 0o700});
      const saved = await mkdtemp(join(lab.dir, 'state-saved-'));
      for (const file of await readdir(stateDir)) await copyFile(join(stateDir, file), join(saved, file));
      await context.runner.run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'baton-campaign-state', stateDir]);
      mounted = true;
      for (const file of await readdir(saved)) await copyFile(join(saved, file), join(stateDir, file));
      await startAgent(taker, lab);
      const settled = await settle(lab);
      if (settled !== undefined) throw new Error(`the backup restarted on its tmpfs state_dir did not settle: ${settled}`);

      // 1. Read-only before the switch.
      await setReadOnly(context, stateDir, true);
      const writable = await agentCanWrite(context, taker, stateDir);
      if (writable !== 'read-only') throw new Error(`the remount did not reach the agent's mount namespace: ${writable}`);
      const before = await switchWith(lab.hosts.primary, {});
      figures.push(`ro before: ${said(before, 60)}`);
      story.push(describeSwitch(before));
      if (isDone(before)) problems.push('a switch onto a read-only journal was done');
      else if (!/read-only/i.test(outcomeText(before))) problems.push(`the refusal does not say read-only: ${outcomeText(before)}`);
      problems.push(...await holderIs(lab, 'primary', 'after the refused switch'));
      problems.push(...await notSwitching(lab, 'after the refused switch'));

      // 2. Read-only after backup-net-down: the journal write before assign-ip fails.
      await setReadOnly(context, stateDir, false);
      problems.push(...await settledOr(lab, 'writable again'));
      const early = new Trigger(isPause('backup-net-down'), () => setReadOnly(context, stateDir, true));
      const atAssign = await switchWith(lab.hosts.primary, {pauseAfter: {step: 'backup-net-down', seconds: PAUSE_S}}, early);
      await early.done();
      figures.push(`ro after backup-net-down: ${said(atAssign, 40)}`);
      story.push(describeSwitch(atAssign));
      if (isDone(atAssign)) problems.push('the switch was done although the taker could not write its journal');
      else if (!/read-only/i.test(outcomeText(atAssign))) problems.push(`the reason does not say read-only: ${outcomeText(atAssign)}`);
      problems.push(...await holderIs(lab, 'primary', 'after the rollback at assign-ip'));
      problems.push(...await notSwitching(lab, 'after the rollback at assign-ip'));

      // 3. Read-only after primary-net-down: backup-net-up brings the IP up, then cannot journal it.
      await setReadOnly(context, stateDir, false);
      problems.push(...await settledOr(lab, 'writable again'));
      const late = new Trigger(isPause('primary-net-down'), () => setReadOnly(context, stateDir, true));
      const atUp = await switchWith(lab.hosts.primary, {pauseAfter: {step: 'primary-net-down', seconds: 1}}, late);
      await late.done();
      figures.push(`ro after primary-net-down (IP up, then its journal fails): ${said(atUp, 40)}`);
      story.push(describeSwitch(atUp));
      if (isDone(atUp)) problems.push('the switch was done although the taker could not write its journal');
      const holder = await checkOneHolder(lab);
      if (!holder.ok) problems.push(`after the rollback at backup-net-up: ${holder.problem}`);
      problems.push(...await notSwitching(lab, 'after the rollback at backup-net-up'));

      // 4. Writable again: the pair is not left stuck, a switch works.
      await setReadOnly(context, stateDir, false);
      problems.push(...await settledOr(lab, 'writable again'));
      const after = await switchWith(holder.holders[0] === 'backup' ? lab.hosts.backup : lab.hosts.primary, {});
      figures.push(`rw again: ${said(after, 30)}`);
      story.push(describeSwitch(after));
      if (!isDone(after)) problems.push(`the switch once writable again: ${describeSwitch(after)}`);
      const final = await checkOneHolder(lab);
      if (!final.ok) problems.push(`at the end: ${final.problem}`);
      figures.push(`${final.holders.join(', ')} serves`);
      return verdict(problems, figures.join('; '), story);
    } finally {
      if (mounted) await unmountAfterStop(context, taker, stateDir);
    }
  });
}

/**
 * One agent's wall clock (not the machine's) is stepped with libfaketime: the backup's agent runs with
 * LD_PRELOAD and a timestamp file it re-reads, monotonic time untouched, its children (`ip`, arping) unfaked.
 * +1 h: each side rejects the other's datagrams (future / stale), counted in status and logged; both find the
 * peer dead, the standby's ARP probe sees the IP alive and takes nothing, a switchover is refused with a clear
 * message. Stepped during a paused switch: rolled back or abandoned, one holder. −1 h: the same, mirrored.
 * Back to true time, the pair settles again.
 */
async function clockStepped(context: CampaignContext): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const skewed = lab.hosts.backup;
    const clockFile = join(lab.dir, 'backup-clock-offset');
    const problems: string[] = [];
    const figures: string[] = [];
    const story: string[] = [];
    const library = await findLibfaketime();
    await writeFile(clockFile, '+0\n');
    await signalAgent(skewed, 'SIGTERM');
    await startAgent(skewed, lab, undefined, {env: {
      ...process.env,
      LD_PRELOAD: library,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      // Re-read the file on every time call: the step takes effect at once, as a real clock step does.
      FAKETIME_NO_CACHE: '1',
      // performance.now() and libuv's timers stay true: only the wall clock steps, as with `date -s`.
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
      // Only the agent: the `ip` and `arping` it runs keep the real time.
      FAKETIME_ONLY_CMDS: 'node',
    }});
    const fresh = await settle(lab);
    if (fresh !== undefined) throw new Error(`the backup restarted under libfaketime did not settle: ${fresh}`);
    const stepClock = (offsetS: number): Promise<void> => writeFile(clockFile, `${offsetS >= 0 ? '+' : ''}${offsetS}\n`);

    for (const offsetS of [HOUR_S, -HOUR_S]) {
      const label = `${offsetS > 0 ? '+' : '-'}1 h`;
      await stepClock(offsetS);
      // The peer is declared dead dead_after_ms after its last accepted beacon; two more intervals of slack.
      await sleep(DEFAULT_DEAD_AFTER_MS + 1500);
      const status = await pairStatus(lab);
      if ('error' in status) {
        problems.push(`${label}: status failed: ${status.error}`);
        continue;
      }
      // The skewed host's datagrams look, to the true host, sent an hour from now (+1 h) or an hour ago (−1 h).
      const onTrue = offsetS > 0 ? 'future' : 'stale';
      const onSkewed = offsetS > 0 ? 'stale' : 'future';
      const seenTrue = status.primary.beacons.rejected[onTrue];
      const seenSkewed = status.backup.beacons.rejected[onSkewed];
      if (seenTrue === 0) problems.push(`${label}: the primary counted no '${onTrue}' beacon`);
      if (seenSkewed === 0) problems.push(`${label}: the backup counted no '${onSkewed}' beacon`);
      if (status.primary.peer.alive || status.backup.peer.alive) problems.push(`${label}: a peer still counts as alive`);
      problems.push(...await holderIs(lab, 'primary', `${label}`));
      const refused = await switchWith(lab.hosts.primary, {});
      if (isDone(refused)) problems.push(`${label}: a switchover was done while neither agent accepts the other's beacons`);
      else if (!/clock/i.test(outcomeText(refused))) problems.push(`${label}: the refusal does not point at the clocks: ${outcomeText(refused)}`);
      // The true host's log says how far off the skewed one's datagrams were: proof the step reached the agent.
      const logged = await lastLogLine(lab.hosts.primary, new RegExp(`rejected from \\S+: ${onTrue}:`));
      const loggedSkewS = Math.round(Number(/sent (\d+) ms/.exec(logged ?? '')?.[1] ?? Number.NaN) / 1000);
      if (logged === undefined) problems.push(`${label}: the primary's log has no '${onTrue}' rejection line`);
      else if (Math.abs(loggedSkewS - HOUR_S) > 60) problems.push(`${label}: the primary logged a skew of ${loggedSkewS} s, not about an hour: ${logged}`);
      figures.push(`${label}: primary rejected ${seenTrue} ${onTrue} (${loggedSkewS} s off), backup ${seenSkewed} ${onSkewed}, ` +
        `backup stays ${status.backup.self.state}, switchover ${isDone(refused) ? 'DONE' : 'refused'}`);
      story.push(`${label}: ${outcomeText(refused)}`);
      await stepClock(0);
      problems.push(...await settledOr(lab, `${label} stepped back`));
    }

    // Stepped while a switch waits after backup-net-down: the coordinator finds the peer silent and rolls back.
    const step = new Trigger(isPause('backup-net-down'), () => stepClock(HOUR_S));
    const during = await switchWith(lab.hosts.primary, {pauseAfter: {step: 'backup-net-down', seconds: PAUSE_S}}, step);
    await step.done();
    figures.push(`+1 h mid-switch: ${said(during, 110)}`);
    if (!isDone(during) && !/clock/i.test(outcomeText(during))) problems.push(`+1 h mid-switch: the reason does not point at the clocks: ${outcomeText(during)}`);
    story.push(`+1 h mid-switch: ${describeSwitch(during)}`);
    if (isDone(during)) problems.push('a switch was done although the clocks were an hour apart');
    problems.push(...await holderIs(lab, 'primary', '+1 h mid-switch'));
    await stepClock(0);
    problems.push(...await settledOr(lab, 'stepped back after the switch'));
    problems.push(...await notSwitching(lab, 'stepped back after the switch'));
    figures.push('primary served throughout');
    return verdict(problems, figures.join('; '), story);
  });
}

/**
 * Paused after backup-net-down, the taker's agent is killed (SIGKILL) and started again at once, well inside
 * the dead timer (4 s here), so the coordinator never finds the peer silent; it comes back with a new boot id
 * and its journal. The coordinator must notice the new boot and roll back (or finish safely) saying so.
 */
async function peerRestarted(context: CampaignContext): Promise<Verdict> {
  const extraConfig = `heartbeat: { interval_ms: 200, dead_after_ms: ${RESTART_DEAD_AFTER_MS} }`;
  return withFaultLab(context, {extraConfig}, async (lab) => {
    const taker = lab.hosts.backup;
    const problems: string[] = [];
    const bootBefore = (await statusOrThrow(lab)).backup.self.bootId;
    let restartMs = 0;
    const restart = new Trigger(isPause('backup-net-down'), async () => {
      const started = Date.now();
      await signalAgent(taker, 'SIGKILL');
      await startAgent(taker, lab);
      // Up again once its control socket answers with a new boot id.
      await until('the restarted backup answers', RESTART_DEAD_AFTER_MS, async () => {
        const status = await callAgent(taker.socket, {id: 'campaign-faults', type: 'status'}) as StatusReport;
        return status.self.bootId === bootBefore ? undefined : status;
      });
      restartMs = Date.now() - started;
    });
    const result = await switchWith(lab.hosts.primary, {pauseAfter: {step: 'backup-net-down', seconds: PAUSE_S}}, restart);
    await restart.done();
    if (isDone(result)) {
      // Finishing is allowed only if it is safe: then the backup must hold the IP alone.
      problems.push(...await holderIs(lab, 'backup', 'after a switch done across the restart'));
    } else {
      if (!/restart|boot/i.test(outcomeText(result))) problems.push(`the outcome does not say the peer restarted: ${outcomeText(result)}`);
      problems.push(...await holderIs(lab, 'primary', 'after the rollback'));
    }
    problems.push(...await settledOr(lab, 'after the restart'));
    const bootAfter = (await statusOrThrow(lab)).backup.self.bootId;
    if (bootAfter === bootBefore) problems.push('the backup has the same boot id after its restart');
    const journals = await checkJournals(lab);
    problems.push(...journals.problems);
    problems.push(...await notSwitching(lab, 'after the restart'));
    return verdict(problems, `backup back in ${restartMs} ms with a new boot id; ${said(result, 70)}; ${isDone(result) ? 'backup' : 'primary'} serves`,
      [describeSwitch(result)]);
  });
}

/**
 * The backup's resolver points at a name server nobody answers for, and its hosts file lacks the host's own name,
 * so any name lookup (`hostname -f`, as systeminformation's osInfo() ran it synchronously) waits for the resolver
 * to give up. The agent is restarted to see them (`ip netns exec` mounts /etc/netns/NS/ over /etc). Its preflight
 * runs at every switch: switches there and back must be done, with the peer alive in every sample and the agent's
 * timers never late by anything near the dead timer.
 */
async function dnsUnreachable(context: CampaignContext): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const backup = lab.hosts.backup;
    const problems: string[] = [];
    const etc = join(NETNS_ETC, backup.namespace);
    const hadNetnsEtc = await access(NETNS_ETC).then(() => true, () => false);
    await mkdir(etc, {recursive: true});
    try {
      // 192.0.2.53 is on the lab's network and nobody has it: the query waits for ARP, then for the resolver.
      await writeFile(join(etc, 'resolv.conf'), `nameserver ${UNANSWERED_NAME_SERVER}\noptions timeout:2 attempts:2\n`);
      await writeFile(join(etc, 'hosts'), '127.0.0.1 localhost\n');
      await signalAgent(backup, 'SIGTERM');
      await startAgent(backup, lab);
      const fresh = await settle(lab);
      if (fresh !== undefined) throw new Error(`the backup restarted with the broken resolver did not settle: ${fresh}`);
      // The fault is real only if a name lookup there now hangs: time the one osInfo() used to make.
      const lookupStarted = Date.now();
      await context.runner.run('ip', ['netns', 'exec', backup.namespace, 'hostname', '-f'], {timeoutMs: 30_000}).catch(() => undefined);
      const lookupMs = Date.now() - lookupStarted;
      if (lookupMs < DEFAULT_DEAD_AFTER_MS) problems.push(`the fault did not take: \`hostname -f\` in the backup's namespace answered in ${lookupMs} ms`);

      let samples = 0;
      let peerLost = 0;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const status = await pairStatus(lab);
          samples += 1;
          if ('error' in status || !status.primary.peer.alive || !status.backup.peer.alive) peerLost += 1;
          await sleep(100);
        }
      })();
      const results: string[] = [];
      try {
        for (let i = 0; i < DNS_SWITCHES; i += 1) {
          const result = await switchWith(lab.hosts.primary, {});
          results.push(describeSwitch(result));
          if (!isDone(result)) problems.push(`switch ${i + 1} was not done: ${outcomeText(result)}`);
          problems.push(...await settledOr(lab, `after switch ${i + 1}`));
          await callAgent(backup.socket, {id: 'campaign-faults', type: 'resume', peer: false}).catch(() => undefined);
        }
      } finally {
        watching = false;
        await watcher;
      }
      const lag = (await statusOrThrow(lab)).backup.timers;
      if (peerLost > 0) problems.push(`in ${peerLost} of ${samples} samples an agent did not see its peer alive`);
      if (lag.loopLagMs.max >= DEFAULT_DEAD_AFTER_MS / 2) problems.push(`the backup's timers ran ${lag.loopLagMs.max} ms late`);
      problems.push(...await notSwitching(lab, 'after the switches'));
      return verdict(problems, `\`hostname -f\` there hangs ${(lookupMs / 1000).toFixed(1)} s; ${results.filter((r) => r.startsWith('done')).length}/${DNS_SWITCHES} switches done; ` +
        `peer alive in ${samples - peerLost}/${samples} samples; backup timers at most ${lag.loopLagMs.max} ms late`, results);
    } finally {
      await rm(etc, {recursive: true, force: true});
      // /etc/netns itself only if this case made it (rmdir leaves it when something else has since put files there).
      if (!hadNetnsEtc) await rmdir(NETNS_ETC).catch(() => undefined);
    }
  });
}

// ---- helpers --------------------------------------------------------------------------------------------------

/** A lab (nginx) with the client requesting the service IP every 50 ms for as long as `work` runs. */
function withFaultLab<T>(context: CampaignContext, options: {extraConfig?: string}, work: (lab: Lab) => Promise<T>): Promise<T> {
  return withCampaignLab(context, {...options.extraConfig === undefined ? {} : {extraConfig: options.extraConfig}}, async (lab) => {
    let prober: Prober | undefined;
    try {
      prober = await startProber({namespace: lab.client.namespace, url: 'http://192.0.2.100/', intervalMs: PROBE_INTERVAL_MS,
        timeoutMs: PROBE_TIMEOUT_MS, durationS: PROBE_DURATION_S, maxProbes: PROBE_DURATION_S * (1000 / PROBE_INTERVAL_MS), out: join(lab.dir, 'probes.jsonl')});
      return await work(lab);
    } finally {
      await prober?.stop().catch(() => undefined);
    }
  });
}

/** Runs an action once, the first time a switch's progress matches; the switch goes on meanwhile. */
class Trigger {
  readonly #matches: (progress: SwitchProgress) => boolean;
  readonly #action: () => Promise<void>;
  #running: Promise<void> | undefined;

  constructor(matches: (progress: SwitchProgress) => boolean, action: () => Promise<void>) {
    this.#matches = matches;
    this.#action = action;
  }

  get fired(): boolean {
    return this.#running !== undefined;
  }

  observe(progress: SwitchProgress): void {
    if (this.#running !== undefined || !this.#matches(progress)) return;
    this.#running = this.#action();
    // Handled here so a failure cannot end the campaign as an unhandled rejection; done() still throws it.
    this.#running.catch(() => undefined);
  }

  /** Resolves once the action has ended; throws what it threw. */
  async done(): Promise<void> {
    await this.#running;
  }
}

function isPause(step: string): (progress: SwitchProgress) => boolean {
  return (p) => p.kind === 'note' && p.text.startsWith(`pausing `) && p.text.includes(` after ${step} `);
}

function isStepOk(step: string): (progress: SwitchProgress) => boolean {
  return (p) => p.kind === 'step' && p.step === step && p.action === 'apply' && p.status === 'ok';
}

/** A planned switch asked of `host`'s agent, as `baton switchover` does, its progress shown to `trigger`. */
async function switchWith(host: LabHost, options: Partial<SwitchoverOptions>, trigger?: Trigger): Promise<SwitchResult | {error: string}> {
  try {
    return await callAgent(host.socket, {id: 'campaign-faults', type: 'switchover', options: {...SWITCH_DEFAULTS, ...options}},
      SWITCH_TIMEOUT_MS, (progress) => trigger?.observe(progress)) as SwitchResult;
  } catch (error) {
    return {error: describeError(error)};
  }
}

function isDone(result: SwitchResult | {error: string}): result is SwitchResult {
  return !('error' in result) && result.outcome === 'done';
}

function isRolledBack(result: SwitchResult | {error: string}): result is SwitchResult {
  return !('error' in result) && result.outcome === 'rolled-back';
}

/** The words baton gave: the error, or the rollback's reason and check. */
function outcomeText(result: SwitchResult | {error: string}): string {
  if ('error' in result) return result.error;
  return [result.reason, result.rollbackCheck].filter((t) => t !== undefined).join('; ');
}

/** Problems unless exactly the `role` host's kernel holds the IP and the client is served by it. */
async function holderIs(lab: Lab, role: 'primary' | 'backup', when: string): Promise<string[]> {
  const check = await checkOneHolder(lab);
  if (!check.ok) return [`${when}: ${check.problem}`];
  if (check.holders[0] !== role) return [`${when}: the ${check.holders[0] ?? '?'} holds the IP, expected the ${role}`];
  return [];
}

async function settledOr(lab: Lab, when: string): Promise<string[]> {
  const problem = await settle(lab);
  return problem === undefined ? [] : [`${when}: ${problem}`];
}

/** Problems when either agent still says it is in a switch. */
async function notSwitching(lab: Lab, when: string): Promise<string[]> {
  const status = await pairStatus(lab);
  if ('error' in status) return [`${when}: status failed: ${status.error}`];
  return [status.primary, status.backup].filter((s) => s.switching !== undefined || s.self.state === 'switching')
    .map((s) => `${when}: the ${s.self.role} is still in switch ${s.switching?.id ?? '?'} (${s.self.state}: ${s.self.reason})`);
}

async function statusOrThrow(lab: Lab): Promise<{primary: StatusReport; backup: StatusReport}> {
  const status = await pairStatus(lab);
  if ('error' in status) throw new Error(`status failed: ${status.error}`);
  return status;
}

/** Passed when nothing went wrong; else the problems, then everything baton said in full. */
function verdict(problems: readonly string[], figures: string, story: readonly string[]): Verdict {
  if (problems.length === 0) return {ok: true, figures};
  return {ok: false, figures, detail: `${problems.join('; ')}\n  baton said: ${story.join('\n  baton said: ')}`};
}

/** What baton answered, short for a table cell: done, or the reason without the step and host it repeats. */
function said(result: SwitchResult | {error: string}, max: number): string {
  if ('error' in result) return `refused "${core(result.error, max)}"`;
  if (result.outcome === 'done') return `done in ${result.totalMs} ms`;
  const reason = (result.reason ?? '').replace(/^\S+ failed on the \w+: /, '');
  return `rolled back at ${result.failedStep ?? '?'}: "${core(reason, max)}"`;
}

/** Paths, boot ids and repeated explanations cut down; whitespace flattened; the length capped. */
function core(text: string, max: number): string {
  const cut = text
    .replaceAll(/'?\/[^\s']*\/([^\s'/]+)'?/g, '…/$1')
    .replace(/^the \w+ \S+ cannot write its switch journal in state_dir \S+: /, 'journal: ')
    .replace(/ \(boot \S+, now \S+\)/, ' (new boot id)')
    .replace(/(\d+) datagram\(s\) from its address rejected since the last valid one, the latest (\w+): [^;]*;/, '$1 datagrams rejected, latest $2;');
  return shorten(cut, max);
}

function shorten(text: string, max: number): string {
  const flat = text.replaceAll(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** Down, rename, up: a name change needs the link down; the addresses stay on it. */
async function renameLink(context: CampaignContext, host: LabHost, from: string, to: string): Promise<void> {
  await context.runner.run('ip', ['-n', host.namespace, 'link', 'set', 'dev', from, 'down']);
  await context.runner.run('ip', ['-n', host.namespace, 'link', 'set', 'dev', from, 'name', to]);
  await context.runner.run('ip', ['-n', host.namespace, 'link', 'set', 'dev', to, 'up']);
}

/** What logrotate's postrotate does for nginx: its master reopens the logs (and has the workers do so) on USR1. */
function reopenLogs(pid: number): void {
  process.kill(pid, 'SIGUSR1');
}

async function lineCount(file: string): Promise<number | string> {
  return readFile(file, 'utf8').then((text) => text.split('\n').filter((l) => l !== '').length, () => 'no file');
}

/** A superblock remount: every mount of the tmpfs, the agent's copy in its own mount namespace included. */
async function setReadOnly(context: CampaignContext, dir: string, readOnly: boolean): Promise<void> {
  await context.runner.run('mount', ['-o', `remount,${readOnly ? 'ro' : 'rw'}`, dir]);
}

/** Tries to create a file in `dir` from inside the agent's mount namespace: 'writable' or 'read-only' or why not. */
async function agentCanWrite(context: CampaignContext, host: LabHost, dir: string): Promise<string> {
  const probe = join(dir, 'campaign-write-probe');
  try {
    await context.runner.run('nsenter', ['-t', String(host.pid), '-m', 'touch', probe]);
    await context.runner.run('nsenter', ['-t', String(host.pid), '-m', 'rm', '-f', probe]);
    return 'writable';
  } catch (error) {
    return /Read-only file system/.test(describeError(error)) ? 'read-only' : describeError(error);
  }
}

/** Unmounts the tmpfs (in this mount namespace; the agent's copy goes with its namespace when the lab stops it). */
async function unmountAfterStop(context: CampaignContext, host: LabHost, dir: string): Promise<void> {
  await setReadOnly(context, dir, false).catch(() => undefined);
  await context.runner.run('umount', [dir]).catch(async () => {
    await signalAgent(host, 'SIGTERM').catch(() => undefined);
    await context.runner.run('umount', [dir]);
  });
}

/** libfaketime's path on this machine; throws naming the package when it is not installed. */
async function findLibfaketime(): Promise<string> {
  const triplets = (await readdir('/usr/lib').catch(() => [] as string[])).filter((name) => name.endsWith('-linux-gnu'));
  for (const triplet of triplets) {
    const candidate = join('/usr/lib', triplet, LIBFAKETIME);
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  throw new Error(`libfaketime is not installed (no /usr/lib/*-linux-gnu/${LIBFAKETIME}): install the Debian package faketime, ` +
    'e.g. with `npm run system-deps -- --test`');
}

/** The last line of the agent's log that matches, or undefined. */
async function lastLogLine(host: LabHost, pattern: RegExp): Promise<string | undefined> {
  const lines = (await readFile(host.logFile, 'utf8').catch(() => '')).split('\n');
  return lines.findLast((line) => pattern.test(line));
}
