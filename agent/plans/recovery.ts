// After a restart: a switch journal left by a run of this agent that did not finish (killed, host rebooted).
// Brings this host to a state where exactly one host holds the IP, and says what happened.

import type {Config} from '../config/schema.js';
import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {JournalStore} from '../ports.js';
import type {PeerView} from '../state-machine.js';
import {isAnyInUse, isServingAll, removeAll} from '../net/service-addresses.js';
import {executeUndo, type StepRun} from './executor.js';
import {isSwitchStepName, planRollback} from './plans.js';
import {takeBackIfFree, type TakeBack} from './take-back.js';

export interface RecoveryDeps {
  readonly node: Config['node'];
  readonly journal: JournalStore;
  readonly log: Logger;
  /** This host's steps, run through the executor. */
  readonly steps: StepRun;
}

export interface Recovered {
  readonly switchId: string;
  readonly reason: string;
}

/**
 * A host that serves keeps serving. A giver that had released the IP takes it back when takeBackIfFree finds it
 * free and this host the one to decide. A taker undoes its preparations. Returns what happened, or undefined when there was no journal.
 */
export async function recoverInterruptedSwitch(deps: RecoveryDeps, peer: PeerView | undefined): Promise<Recovered | undefined> {
  const {journal, log} = deps;
  const recorded = await journal.load();
  if (recorded === undefined) return undefined;
  const applied = recorded.applied.filter(isSwitchStepName);
  const last = applied.at(-1);
  const where = [last === undefined ? '' : `after ${last}`, recorded.pending === undefined ? '' : `before or during ${recorded.pending}`].filter((s) => s !== '');
  const stepNote = where.length === 0 ? 'before any of its steps' : where.join(', ');
  log.warning(`(switch ${recorded.switchId}) found unfinished from before this start: ${recorded.side}, ${stepNote}; recovering`);
  const undo = async (name: (typeof applied)[number]): Promise<void> => {
    try {
      await executeUndo(name, deps.steps);
    } catch (error) {
      log.error(`(switch ${recorded.switchId}) recovery: undo ${name} failed: ${describeError(error)}`);
    }
  };
  let outcome: string;
  if (await isServingAll(deps.steps.ctx.network, deps.steps.ctx.service.ips)) {
    outcome = recorded.side === 'giver' && applied.includes('hold-connections') && await yieldedWhileHolding(deps)
      ? 'this host was handing the service IP over and another host answers for it now (the peer took it over while ' +
        'this agent was down): this host let it go'
      : 'this host serves and keeps the service IP';
  } else {
    const mayTakeBack = recorded.side === 'giver' && (applied.includes('primary-net-down') || recorded.pending === 'primary-net-down');
    // The taker's preparations (link down, address on a downed link) are undone; the giver's release is undone
    // only when this host is the one to decide and nobody else serves.
    for (const step of planRollback(applied)) {
      if (step.name !== 'primary-net-down') await undo(step.name);
    }
    if (!mayTakeBack) {
      outcome = peer?.alive === true && peer.holdsIp ? `the peer ${peer.state} holds the service IP` : 'this host does not hold the service IP';
    } else {
      // A failed probe leaves the IP where it is and says so; the pair's own rules settle who serves from here.
      const result = await takeBackIfFree(deps.steps, deps.node, peer).catch((error: unknown): TakeBack => ({tookBack: false, why: `it could not tell whether the IP is free: ${describeError(error)}`}));
      outcome = result.tookBack ? 'this host had released the service IP and took it back: nobody else held it'
        : `this host had released the service IP and leaves it: ${result.why}`;
    }
  }
  await journal.clear();
  log.notice(`(switch ${recorded.switchId}) recovered: ${outcome}`);
  return {switchId: recorded.switchId, reason: `switch ${recorded.switchId} was interrupted by a restart of this agent (${recorded.side}, ${stepNote}); ${outcome}`};
}

/**
 * A giver killed after hold-connections, before primary-net-down: the service IP is still on its interface, but it
 * answered no ARP for it, so the taker, its switch abandoned and this host silent, may have probed, found the IP free
 * and taken it. While this host's own answers are still held back, a reply to a probe can only come from another
 * host: then that host serves, and this one removes its address instead of answering ARP for it again beside it.
 * Without the hold in place, or when the probe cannot tell, the host keeps serving as before (the pair's epochs
 * settle a conflict).
 */
async function yieldedWhileHolding(deps: RecoveryDeps): Promise<boolean> {
  const {ctx} = deps.steps;
  const {ips} = ctx.service;
  try {
    for (const ip of ips) if (!(await ctx.drain.isHolding(ip))) return false;
    if (!(await isAnyInUse(ctx.network, ips))) return false;
    await removeAll(ctx.network, ips);
    return true;
  } catch (error) {
    deps.log.warning(`(recovery) could not tell whether another host took the service IP over while this one was handing it over: ` +
      `${describeError(error)}; this host keeps it`);
    return false;
  }
}
