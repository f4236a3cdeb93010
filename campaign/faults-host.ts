// Fault cases in a host's own state: the journal's filesystem gone read-only (before and in the middle of a switch),
// and one agent's wall clock stepped by an hour.

import {access, copyFile, mkdir, mkdtemp, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {describeError} from '../agent/errors.js';
import {signalAgent, startAgent, type LabHost} from '../cli/lab/lab.js';
import type {CampaignContext} from './case.js';
import {describeHoldings} from '../cli/lab/observe.js';
import {checkOneHolder, describeSwitch, pairStatus, settle} from './lab.js';
import {DEFAULT_DEAD_AFTER_MS, holderIs, isDone, isPause, lastLogLine, notSwitching, outcomeText, PAUSE_S, said, settledOr, switchWith, Trigger, type Verdict, verdict, withFaultLab} from './fault-kit.js';

// libfaketime (Debian package libfaketime, pulled in by faketime), the build for threaded programs, as Node is;
// under /usr/lib/<multiarch triplet>/faketime/. Only the agent's wall clock moves (see clockStepped).
const LIBFAKETIME = 'faketime/libfaketimeMT.so.1';
const HOUR_S = 3600;

/**
 * The taker's state_dir is a 1 MB tmpfs mounted before its agent starts (so the agent's `ip netns exec` mount
 * namespace has its own copy of the mount), then remounted read-only: a superblock flag, so the agent's copy
 * is read-only too (checked by writing from inside the agent's mount namespace). Read-only before a switch:
 * refused with a clear error and nothing left stuck. Read-only after backup-net-down (the next journal write
 * fails before assign-ip) and after primary-net-down (backup-net-up's own journal write fails after the IP is
 * up): rolled back, never two holders. Writable again, a switch works.
 */
export async function journalReadOnly(context: CampaignContext): Promise<Verdict> {
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
      const after = await switchWith(holder.holder === 'backup' ? lab.hosts.backup : lab.hosts.primary, {});
      figures.push(`rw again: ${said(after, 30)}`);
      story.push(describeSwitch(after));
      if (!isDone(after)) problems.push(`the switch once writable again: ${describeSwitch(after)}`);
      const final = await checkOneHolder(lab);
      if (!final.ok) problems.push(`at the end: ${final.problem}`);
      figures.push(`${describeHoldings(final.holdings)} serves`);
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
export async function clockStepped(context: CampaignContext): Promise<Verdict> {
  return withFaultLab(context, {}, async (lab) => {
    const skewed = lab.hosts.backup;
    const clockFile = join(lab.dir, 'backup-clock-offset');
    const problems: string[] = [];
    const figures: string[] = [];
    const story: string[] = [];
    const library = await findLibfaketime();
    await writeFile(clockFile, '+0\n');
    await signalAgent(skewed, 'SIGTERM');
    await startAgent(skewed, lab, undefined, {env: libfaketimeEnv(library, clockFile)});
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

/** The environment that runs an agent with its wall clock offset by what `clockFile` says ("+3600", "-3600", "+0"). */
export function libfaketimeEnv(library: string, clockFile: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LD_PRELOAD: library,
    FAKETIME_TIMESTAMP_FILE: clockFile,
    // Re-read the file on every time call: the step takes effect at once, as a real clock step does.
    FAKETIME_NO_CACHE: '1',
    // performance.now() and libuv's timers stay true: only the wall clock steps, as with `date -s`.
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    // Only the agent: the `ip` and `arping` it runs keep the real time.
    FAKETIME_ONLY_CMDS: 'node',
  };
}

/** libfaketime's path on this machine; throws naming the package when it is not installed. */
export async function findLibfaketime(): Promise<string> {
  const triplets = (await readdir('/usr/lib').catch(() => [] as string[])).filter((name) => name.endsWith('-linux-gnu'));
  for (const triplet of triplets) {
    const candidate = join('/usr/lib', triplet, LIBFAKETIME);
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  throw new Error(`libfaketime is not installed (no /usr/lib/*-linux-gnu/${LIBFAKETIME}): install the Debian package faketime, ` +
    'e.g. with `npm run system-deps -- --test`');
}
