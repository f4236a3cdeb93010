// Fault cases around the other host: the peer agent restarted mid-switch (a new boot id), and the backup's name
// server unreachable while switches run their preflight.

import {access, mkdir, rm, rmdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {StatusReport} from '../agent/control-protocol.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent} from '../cli/lab/lab.js';
import {until} from '../cli/lab/observe.js';
import type {CampaignContext} from './case.js';
import {checkJournals, describeSwitch, pairStatus, settle} from './lab.js';
import {DEFAULT_DEAD_AFTER_MS, holderIs, isDone, isPause, notSwitching, outcomeText, PAUSE_S, said, settledOr, statusOrThrow, switchWith, Trigger, type Verdict, verdict, withFaultLab} from './fault-kit.js';

// The boot-id case restarts an agent (Node starts in ~0.5 s here, more on a loaded machine) within the dead timer.
const RESTART_DEAD_AFTER_MS = 4000;
// Where `ip netns exec NS` finds files to mount over /etc for that namespace's processes.
const NETNS_ETC = '/etc/netns';
// On the lab's network (TEST-NET-1) and held by no host.
const UNANSWERED_NAME_SERVER = '192.0.2.53';
// Switchover and switchback, twice: each runs the preflight on both hosts.
const DNS_SWITCHES = 4;

/**
 * Paused after backup-net-down, the taker's agent is killed (SIGKILL) and started again at once, well inside
 * the dead timer (4 s here), so the coordinator never finds the peer silent; it comes back with a new boot id
 * and its journal. The coordinator must notice the new boot and roll back (or finish safely) saying so.
 */
export async function peerRestarted(context: CampaignContext): Promise<Verdict> {
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
export async function dnsUnreachable(context: CampaignContext): Promise<Verdict> {
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
