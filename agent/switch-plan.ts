// Pure: the planned switch as ordered steps, which host runs each, and the rollback of what was applied.
//
// The order is the runbook's, and it is what keeps the service IP from ever being live on both hosts:
//
//   taker  backup-net-down    the taker's service network is down (it must not answer for the IP yet)
//   taker  assign-ip          the taker is configured with the IP (link mode: on its downed interface)
//   giver  primary-net-down   the giver releases the IP
//   taker  backup-net-up      the taker brings the IP up and announces it (gratuitous ARP)
//   taker  confirm-traffic    the taker's access log shows real requests arriving after backup-net-up
//
// "giver" is the host that holds the IP (it plays "primary" in the step names), "taker" the one that will
// (it plays "backup"). A switchback is the same plan with the hosts in the other sides.

import type {ServiceMode} from './config/schema.js';

export type SwitchStepName = 'backup-net-down' | 'assign-ip' | 'primary-net-down' | 'backup-net-up' | 'confirm-traffic';
export const SWITCH_STEP_NAMES: readonly SwitchStepName[] = ['backup-net-down', 'assign-ip', 'primary-net-down', 'backup-net-up', 'confirm-traffic'];
export type SwitchSide = 'giver' | 'taker';

export interface PlannedStep {
  readonly name: SwitchStepName;
  readonly on: SwitchSide;
}

export const SWITCHOVER_PLAN: readonly PlannedStep[] = [
  {name: 'backup-net-down', on: 'taker'},
  {name: 'assign-ip', on: 'taker'},
  {name: 'primary-net-down', on: 'giver'},
  {name: 'backup-net-up', on: 'taker'},
  {name: 'confirm-traffic', on: 'taker'},
];

export function sideOf(step: SwitchStepName): SwitchSide {
  return SWITCHOVER_PLAN.find((s) => s.name === step)?.on ?? 'taker';
}

/** confirm-traffic only observes: there is nothing to undo. */
export function hasUndo(step: SwitchStepName): boolean {
  return step !== 'confirm-traffic';
}

/** The undo of the applied steps, newest first: only what was done is undone (keepalived's ip_addr->set). */
export function planRollback(applied: readonly SwitchStepName[]): PlannedStep[] {
  return [...applied].reverse().filter(hasUndo).map((name) => ({name, on: sideOf(name)}));
}

/** What each step does on its host, in words, for --dry-run and the docs. */
export function describeStep(step: SwitchStepName, mode: ServiceMode): string {
  switch (step) {
    case 'backup-net-down':
      return mode === 'link' ? 'bring the service interface down' : 'make sure the service IP is not on the interface';
    case 'assign-ip':
      return mode === 'link' ? 'add the service IP to the downed service interface' : 'check the service interface is present and up (the IP is added at backup-net-up)';
    case 'primary-net-down':
      return mode === 'link' ? 'bring the service interface down' : 'remove the service IP';
    case 'backup-net-up':
      return mode === 'link' ? 'bring the service interface up and announce the IP (gratuitous ARP)' : 'add the service IP and announce it (gratuitous ARP)';
    case 'confirm-traffic':
      return 'wait for real requests in the access log';
  }
}
