// Fault cases on the path of a switch: the taker's service interface renamed mid-switch (so `ip` fails), and its
// web server's access log deleted or rotated while confirm-traffic counts requests in it.

import {copyFile, readFile, rename, truncate, unlink} from 'node:fs/promises';
import type {LabHost} from '../cli/lab/lab.js';
import type {CampaignContext} from './case.js';
import {describeSwitch, settle} from './lab.js';
import {holderIs, isDone, isPause, isRolledBack, isStepOk, PAUSE_S, said, switchWith, Trigger, type Verdict, verdict, withFaultLab} from './fault-kit.js';

// Confirmations sized by the client's 50 ms rhythm: 40 requests take ~2 s, inside the access-log watcher's 5 s
// grace for a vanished log; 200 take ~10 s, outlasting it.
interface ConfirmSize {
  readonly minRequests: number;
  readonly confirmTimeoutS: number;
}
export const QUICK_CONFIRM: ConfirmSize = {minRequests: 40, confirmTimeoutS: 15};
export const SLOW_CONFIRM: ConfirmSize = {minRequests: 200, confirmTimeoutS: 30};
// Interface names hold at most 15 characters; this one is obviously not the configured eth0.
const RENAMED_INTERFACE = 'eth0-renamed';
const SERVICE_INTERFACE = 'eth0';

/**
 * Paused after backup-net-down, the taker's service interface is renamed (down, rename, up: the link and its
 * addresses stay, only the name baton was configured with is gone), so assign-ip's `ip` fails. The switch must
 * roll back naming the interface; renamed back, the next switch must work.
 */
export async function interfaceRenamed(context: CampaignContext): Promise<Verdict> {
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
export async function accessLogFault(context: CampaignContext, kind: 'delete' | 'rename' | 'copytruncate', confirm: ConfirmSize): Promise<Verdict> {
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
